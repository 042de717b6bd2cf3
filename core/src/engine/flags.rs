//! Flags checked with the snapshot and evaluated with the same engine, in the same pass as
//! the experiments they may be served by (the rules are in [`crate::flags`]).

use std::collections::BTreeSet;

use crate::bucket::draw;
use crate::decision::Assignment;
use crate::flags::{FlagOutcome, FlagValue, Reason};
use crate::keys::{is_valid_key, key_message, salt_problem};
use crate::problems::Problems;
use crate::snapshot::{Flag, FlagType, Serve};
use crate::targeting::{prepare_rules, AudienceTable, Targeting};

use super::{Engine, ExperimentsByKey, Subject};

/// A flag checked and turned into indices.
#[derive(Debug, Clone)]
pub(crate) struct PreparedFlag {
    /// Index into `snapshot.flags`.
    index: usize,
    off: usize,
    rules: Vec<(Targeting, Served)>,
    fallthrough: Served,
}

#[derive(Debug, Clone)]
enum Served {
    Variant(usize),
    /// `(traffic, [(last bucket of the slice, variant index)])`.
    Rollout(u16, Vec<(u16, usize)>),
    /// `(experiment key, flag variant index per experiment variant index)`.
    Experiment(String, Vec<usize>),
}

/// Checks every flag of a snapshot and prepares the good ones, in snapshot order. Keys are
/// shared with experiments: a flag may not reuse one.
pub(crate) fn prepare_flags(
    flags: &[Flag],
    audiences: &AudienceTable,
    experiments: &ExperimentsByKey<'_>,
    problems: &mut Problems,
) -> Vec<PreparedFlag> {
    let mut seen = BTreeSet::new();
    flags
        .iter()
        .enumerate()
        .filter_map(|(index, flag)| {
            let path = format!("flags[{index}]");
            if !seen.insert(flag.key.as_str()) {
                problems.push(
                    format!("{path}.key"),
                    format!("duplicate flag key {:?}", flag.key),
                );
            }
            if experiments.get(&flag.key).is_some() {
                problems.push(
                    format!("{path}.key"),
                    format!("{:?} is already an experiment's key", flag.key),
                );
            }
            prepare_flag(index, flag, &path, audiences, experiments, problems)
        })
        .collect()
}

fn prepare_flag(
    index: usize,
    flag: &Flag,
    path: &str,
    audiences: &AudienceTable,
    experiments: &ExperimentsByKey<'_>,
    problems: &mut Problems,
) -> Option<PreparedFlag> {
    let before = problems.len();
    if !is_valid_key(&flag.key) {
        problems.push(format!("{path}.key"), key_message("flag key", &flag.key));
    }
    if !is_valid_key(&flag.unit) {
        problems.push(format!("{path}.unit"), key_message("unit type", &flag.unit));
    }
    match flag.salt.as_deref() {
        Some("") => problems.push(
            format!("{path}.salt"),
            "salt is empty (omit it to use the key)",
        ),
        Some(salt) => {
            if let Some(problem) = salt_problem(salt) {
                problems.push(format!("{path}.salt"), problem);
            }
        }
        None => {}
    }
    check_variants(flag, path, problems);
    let off = variant_index(
        flag,
        &flag.off_variant,
        &format!("{path}.off_variant"),
        problems,
    );
    let rules = flag
        .rules
        .iter()
        .enumerate()
        .map(|(r, rule)| {
            let at = format!("{path}.rules[{r}]");
            let targeting = prepare_rules(&rule.targeting, &at, Some(audiences), problems);
            let served = prepare_serve(
                flag,
                &rule.serve,
                &format!("{at}.serve"),
                experiments,
                problems,
            );
            (targeting, served)
        })
        .collect::<Vec<_>>();
    let fallthrough = prepare_serve(
        flag,
        &flag.fallthrough,
        &format!("{path}.fallthrough"),
        experiments,
        problems,
    );
    if problems.len() > before {
        return None;
    }
    Some(PreparedFlag {
        index,
        off: off?,
        rules: rules
            .into_iter()
            .map(|(t, s)| s.map(|s| (t, s)))
            .collect::<Option<_>>()?,
        fallthrough: fallthrough?,
    })
}

fn check_variants(flag: &Flag, path: &str, problems: &mut Problems) {
    if flag.variants.is_empty() {
        problems.push(
            format!("{path}.variants"),
            "a flag needs at least one variant",
        );
    }
    let mut keys = BTreeSet::new();
    for (v, variant) in flag.variants.iter().enumerate() {
        let at = format!("{path}.variants[{v}]");
        if !is_valid_key(&variant.key) {
            problems.push(
                format!("{at}.key"),
                key_message("variant key", &variant.key),
            );
        }
        if !keys.insert(variant.key.as_str()) {
            problems.push(
                format!("{at}.key"),
                format!("duplicate variant key {:?}", variant.key),
            );
        }
        let value = variant.value.to_value();
        let fits = match flag.kind {
            FlagType::Boolean => value.is_boolean(),
            FlagType::String => value.is_string(),
            FlagType::Number => value.is_number(),
            FlagType::Json => value.is_object(),
        };
        if !fits {
            let wanted = match flag.kind {
                FlagType::Json => "a JSON object",
                FlagType::Boolean => "true or false",
                FlagType::String => "a string",
                FlagType::Number => "a number",
            };
            problems.push(
                format!("{at}.value"),
                format!(
                    "a {} flag's value must be {wanted}, not {}",
                    flag.kind.as_str(),
                    variant.value.as_json()
                ),
            );
        }
    }
}

fn variant_index(flag: &Flag, key: &str, path: &str, problems: &mut Problems) -> Option<usize> {
    let found = flag.variants.iter().position(|v| v.key == key);
    if found.is_none() {
        problems.push(path, format!("no variant {key:?} in this flag"));
    }
    found
}

fn prepare_serve(
    flag: &Flag,
    serve: &Serve,
    path: &str,
    experiments: &ExperimentsByKey<'_>,
    problems: &mut Problems,
) -> Option<Served> {
    let forms = [
        serve.variant.is_some(),
        serve.rollout.is_some(),
        serve.experiment.is_some(),
    ];
    if forms.iter().filter(|f| **f).count() != 1 {
        problems.push(
            path,
            "serve exactly one of \"variant\", \"rollout\" and \"experiment\"",
        );
        return None;
    }
    if let Some(key) = &serve.variant {
        return variant_index(flag, key, &format!("{path}.variant"), problems).map(Served::Variant);
    }
    if let Some(rollout) = &serve.rollout {
        let at = format!("{path}.rollout");
        let traffic = u16::try_from(rollout.traffic).ok().filter(|t| *t <= 10_000);
        if traffic.is_none() {
            problems.push(
                format!("{at}.traffic"),
                format!("traffic {} is outside 0..=10000", rollout.traffic),
            );
        }
        let mut slots = Vec::with_capacity(rollout.split.len());
        let mut end: i64 = 0;
        for (s, split) in rollout.split.iter().enumerate() {
            let here = format!("{at}.split[{s}]");
            if !(0..=10_000).contains(&split.weight) {
                problems.push(
                    format!("{here}.weight"),
                    format!("weight {} is outside 0..=10000", split.weight),
                );
                continue;
            }
            let v = variant_index(flag, &split.variant, &format!("{here}.variant"), problems);
            end += split.weight;
            if let (Some(v), Ok(last)) = (v, u16::try_from(end - 1)) {
                if split.weight > 0 {
                    slots.push((last, v));
                }
            }
        }
        if end != 10_000 {
            problems.push(
                format!("{at}.split"),
                format!("weights add up to {end}, not 10000"),
            );
        }
        return traffic.map(|t| Served::Rollout(t, slots));
    }
    let wanted = serve.experiment.as_ref()?;
    let at = format!("{path}.experiment");
    let Some(exp) = experiments.get(&wanted.key) else {
        problems.push(
            format!("{at}.key"),
            format!("no experiment {:?}", wanted.key),
        );
        return None;
    };
    let mut map = Vec::with_capacity(exp.variants.len());
    for variant in &exp.variants {
        match wanted.variants.get(&variant.key) {
            Some(to) => map.extend(variant_index(
                flag,
                to,
                &format!("{at}.variants.{}", variant.key),
                problems,
            )),
            None => problems.push(
                format!("{at}.variants"),
                format!(
                    "experiment variant {:?} maps to no flag variant",
                    variant.key
                ),
            ),
        }
    }
    for from in wanted.variants.keys() {
        if !exp.variants.iter().any(|v| v.key == *from) {
            problems.push(
                format!("{at}.variants.{from}"),
                format!("experiment {:?} has no variant {from:?}", wanted.key),
            );
        }
    }
    (map.len() == exp.variants.len()).then(|| Served::Experiment(wanted.key.clone(), map))
}
/// The experiments flags are served by, for the assignment flags need.
pub(crate) fn served_experiments(flags: &[Flag]) -> BTreeSet<String> {
    let serves = flags
        .iter()
        .flat_map(|f| f.rules.iter().map(|r| &r.serve).chain([&f.fallthrough]));
    crate::order::set_of(serves.filter_map(|s| s.experiment.as_ref().map(|e| e.key.clone())))
}
impl Engine {
    /// Every flag (or those in `only`) for `subject`, in snapshot order. A key in `only`
    /// that is no flag is skipped.
    pub fn evaluate_flags(
        &self,
        subject: &Subject<'_>,
        only: Option<&BTreeSet<String>>,
    ) -> Vec<FlagOutcome<'_>> {
        self.evaluate_flags_given(subject, only, None)
    }

    /// [`Engine::evaluate_flags`] with the subject's assignments already made: `assigned`,
    /// when given, must come from [`Engine::assign`] of the same subject without an
    /// experiment filter, so a request that assigned its experiments does not assign them
    /// again for its flags.
    pub fn evaluate_flags_given<'e>(
        &'e self,
        subject: &Subject<'_>,
        only: Option<&BTreeSet<String>>,
        assigned: Option<&[Assignment<'e>]>,
    ) -> Vec<FlagOutcome<'e>> {
        let flags = &self.snapshot().flags;
        let chosen: Vec<&PreparedFlag> = self
            .flags
            .iter()
            .filter(|p| {
                only.is_none_or(|only| flags.get(p.index).is_some_and(|f| only.contains(&f.key)))
            })
            .collect();
        let needs_experiments = chosen.iter().any(|p| p.uses_experiments());
        let made;
        let assignments: &[Assignment<'e>] = match assigned {
            Some(given) => given,
            None if needs_experiments => {
                made = self.assign(&Subject {
                    only: Some(&self.flag_experiments),
                    ..*subject
                });
                &made
            }
            None => &[],
        };
        chosen
            .into_iter()
            .filter_map(|p| p.evaluate(flags.get(p.index)?, subject, assignments))
            .collect()
    }

    /// One flag for `subject`; `None` when no flag has `key`, or it is a draft the subject
    /// does not force.
    pub fn evaluate_flag(&self, subject: &Subject<'_>, key: &str) -> Option<FlagOutcome<'_>> {
        let mut only = BTreeSet::new();
        only.insert(key.to_owned());
        self.evaluate_flags(subject, Some(&only)).into_iter().next()
    }

    /// The flag with `key`.
    pub fn flag(&self, key: &str) -> Option<&Flag> {
        self.snapshot().flags.iter().find(|f| f.key == key)
    }
}

impl PreparedFlag {
    /// Whether some rule's targeting reads an attribute `pred` accepts.
    pub(crate) fn reads_any(&self, pred: impl Fn(&str) -> bool + Copy) -> bool {
        self.rules.iter().any(|(t, _)| t.reads_any(pred))
    }

    fn uses_experiments(&self) -> bool {
        self.rules
            .iter()
            .map(|(_, s)| s)
            .chain([&self.fallthrough])
            .any(|s| matches!(s, Served::Experiment(..)))
    }

    fn evaluate<'a>(
        &self,
        flag: &'a Flag,
        subject: &Subject<'_>,
        assignments: &[Assignment<'a>],
    ) -> Option<FlagOutcome<'a>> {
        let value = |v: usize, reason: Reason, assignment: Option<Assignment<'a>>| {
            flag.variants.get(v).map(|variant| {
                FlagOutcome::Value(FlagValue {
                    flag,
                    variant,
                    reason,
                    assignment,
                })
            })
        };
        let forced = subject
            .forced
            .and_then(|forced| forced.get(&flag.key))
            .and_then(|key| flag.variants.iter().position(|v| v.key == *key));
        if flag.draft && forced.is_none() {
            return None;
        }
        if !flag.enabled {
            return value(self.off, Reason::Disabled, None);
        }
        // A QA force token wins over the rules; OFREP's reasons have no word for it, and
        // the token did target this caller.
        if let Some(v) = forced {
            return value(v, Reason::TargetingMatch, None);
        }
        for (targeting, served) in &self.rules {
            if !targeting.matches(subject.attributes) {
                continue;
            }
            match draw_served(flag, served, subject, assignments) {
                Drawn::Variant(v, assignment) => {
                    let reason = match served {
                        Served::Variant(_) => Reason::TargetingMatch,
                        _ => Reason::Split,
                    };
                    return value(v, reason, assignment);
                }
                Drawn::NoUnit => return Some(FlagOutcome::TargetingKeyMissing(flag)),
                Drawn::NotTaken => {}
            }
        }
        match draw_served(flag, &self.fallthrough, subject, assignments) {
            Drawn::Variant(v, assignment) => {
                let reason = match self.fallthrough {
                    Served::Variant(_) => Reason::Static,
                    _ => Reason::Split,
                };
                value(v, reason, assignment)
            }
            Drawn::NoUnit => Some(FlagOutcome::TargetingKeyMissing(flag)),
            Drawn::NotTaken => value(self.off, Reason::Split, None),
        }
    }
}

enum Drawn<'a> {
    Variant(usize, Option<Assignment<'a>>),
    NotTaken,
    NoUnit,
}

fn draw_served<'a>(
    flag: &Flag,
    served: &Served,
    subject: &Subject<'_>,
    assignments: &[Assignment<'a>],
) -> Drawn<'a> {
    match served {
        Served::Variant(v) => Drawn::Variant(*v, None),
        Served::Rollout(traffic, slots) => {
            let Some(unit) = subject.units.get(&flag.unit) else {
                return Drawn::NoUnit;
            };
            let d = draw(flag.effective_salt(), unit);
            if d.gate >= *traffic {
                return Drawn::NotTaken;
            }
            slots
                .iter()
                .find(|(last, _)| d.bucket <= *last)
                .map_or(Drawn::NotTaken, |(_, v)| Drawn::Variant(*v, None))
        }
        Served::Experiment(key, map) => assignments
            .iter()
            .find(|a| a.experiment.key == *key)
            .and_then(|a| {
                map.get(a.variant_index)
                    .map(|v| Drawn::Variant(*v, Some(*a)))
            })
            .unwrap_or(Drawn::NotTaken),
    }
}
