//! Assignment: the enrolment steps of docs/contracts.md §2, with the overrides and exclusions around
//! them, applied to every running experiment.
//!
//! Per experiment, in order: a valid force token wins; then the window (1) and the unit (2,
//! the experiment's unit type, else its fallback); an allow-listed unit gets its variant; bots
//! follow the bot policy; units in the environment holdout are excluded; then targeting (3),
//! prerequisites, the layer slice (4), the traffic gate (5) and the variant ranges (6).
//!
//! A sticky record ([`crate::sticky`]) for an experiment with a fallback unit replaces the
//! holdout, layer, gate and bucket steps: the visitor keeps the variant they were drawn on
//! their fallback id, and the rest of that layer stays closed to them.

use std::collections::BTreeSet;

use crate::bucket::draw;
use crate::decision::{Assignment, Explanation, Units};
use crate::force::Forced;
use crate::routing::RequestRoute;
use crate::snapshot::{BotPolicy, Experiment, Status};
use crate::sticky::Sticky;
use crate::targeting::Attributes;

use super::{find_by_key, Engine, PreparedExperiment};

mod draws;
use draws::Step;

/// Everything a decision depends on. Time is an input: core reads no clock.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub units: &'a Units,
    pub attributes: &'a Attributes,
    pub now_ms: i64,
    /// Only these experiment keys (`None` = all).
    pub only: Option<&'a BTreeSet<String>>,
    /// Variants a verified force token pins.
    pub forced: Option<&'a Forced>,
    /// Whether the request comes from a crawler (`ua.device = "bot"`).
    pub bot: bool,
    /// The visitor's verified sticky record.
    pub sticky: Option<&'a Sticky>,
    /// The request's host and path: experiments scoped to other routes do not apply. `None`
    /// applies every experiment.
    pub route: Option<RequestRoute<'a>>,
}

impl<'a> Subject<'a> {
    /// A subject with no filter, no force token, not a bot.
    pub fn new(units: &'a Units, attributes: &'a Attributes, now_ms: i64) -> Self {
        Self {
            units,
            attributes,
            now_ms,
            only: None,
            forced: None,
            bot: false,
            sticky: None,
            route: None,
        }
    }
}

/// Prerequisite chains deeper than this count as unmet rather than recurse further.
const MAX_PREREQUISITE_DEPTH: usize = 32;

impl Engine {
    /// Assigns `subject` to a variant of every experiment it is enrolled in, in experiment-key
    /// order. Experiments it is not enrolled in are absent.
    pub fn assign(&self, subject: &Subject<'_>) -> Vec<Assignment<'_>> {
        let mut run = Evaluation::new(self, subject);
        let experiments = &self.snapshot().experiments;
        let wanted = |pos: &usize| {
            self.running
                .get(*pos)
                .and_then(|p| experiments.get(p.index))
                .is_some_and(|e| subject.only.is_none_or(|only| only.contains(&e.key)))
        };
        let positions = (0..self.running.len()).filter(wanted);
        let variants: Vec<(usize, Option<usize>)> = if self.has_prerequisites {
            // A prerequisite needs another experiment's variant mid-way: one at a time.
            positions.map(|pos| (pos, run.variant(pos, 0))).collect()
        } else {
            run.variants_drawn_together(positions)
        };
        let assigned: Vec<Assignment<'_>> = variants
            .into_iter()
            .filter_map(|(pos, v)| {
                let prepared = self.running.get(pos)?;
                let experiment = experiments.get(prepared.index)?;
                let v = v?;
                Some(Assignment {
                    experiment,
                    variant: experiment.variants.get(v)?,
                    experiment_index: prepared.index,
                    variant_index: v,
                    by_fallback: run.by_fallback(pos, prepared),
                })
            })
            .collect();
        self.with_previews(assigned, subject)
    }

    /// `assigned` plus the drafts a verified force token previews, in key order. A draft
    /// enrols nobody otherwise; its forced exposures are excluded from results like any
    /// forced one.
    fn with_previews<'e>(
        &'e self,
        mut assigned: Vec<Assignment<'e>>,
        subject: &Subject<'_>,
    ) -> Vec<Assignment<'e>> {
        let Some(forced) = subject.forced else {
            return assigned;
        };
        let before = assigned.len();
        for (key, wanted) in forced {
            if subject.only.is_some_and(|only| !only.contains(key)) {
                continue;
            }
            let Some(index) = find_by_key(&self.snapshot().experiments, &self.by_key, key) else {
                continue;
            };
            let Some(experiment) = self.snapshot().experiments.get(index) else {
                continue;
            };
            if experiment.status != Status::Draft {
                continue;
            }
            let Some(v) = experiment.variants.iter().position(|x| x.key == *wanted) else {
                continue;
            };
            if let Some(variant) = experiment.variants.get(v) {
                assigned.push(Assignment {
                    experiment,
                    variant,
                    experiment_index: index,
                    variant_index: v,
                    by_fallback: false,
                });
            }
        }
        if assigned.len() > before {
            crate::order::sort_by(&mut assigned, |a, b| {
                a.experiment.key.cmp(&b.experiment.key)
            });
        }
        assigned
    }

    /// Each running experiment's control variant, for a visitor who has not consented, in key
    /// order; `route` leaves out experiments scoped to other pages.
    pub fn controls(&self, route: Option<RequestRoute<'_>>) -> Vec<Assignment<'_>> {
        let experiments = &self.snapshot().experiments;
        self.running
            .iter()
            .filter(|p| {
                route.is_none_or(|r| {
                    p.routes
                        .as_ref()
                        .is_none_or(|m| m.applies(Some(r.host), r.path))
                })
            })
            .filter_map(|p| {
                let experiment = experiments.get(p.index)?;
                Some(Assignment {
                    experiment,
                    variant: experiment.variants.get(p.control)?,
                    experiment_index: p.index,
                    variant_index: p.control,
                    by_fallback: false,
                })
            })
            .collect()
    }

    /// For every experiment in the snapshot (any status), the step that decided it, in key
    /// order.
    pub fn explain(&self, subject: &Subject<'_>) -> Vec<(&Experiment, Explanation<'_>)> {
        let mut run = Evaluation::new(self, subject);
        let mut out: Vec<(&Experiment, Explanation<'_>)> = self
            .snapshot()
            .experiments
            .iter()
            .filter(|e| subject.only.is_none_or(|only| only.contains(&e.key)))
            .map(|e| (e, Explanation::NotRunning))
            .collect();
        for pos in 0..self.running.len() {
            let Some(prepared) = self.running.get(pos) else {
                continue;
            };
            let Some(experiment) = self.snapshot().experiments.get(prepared.index) else {
                continue;
            };
            if let Some(slot) = out.iter_mut().find(|(e, _)| e.key == experiment.key) {
                slot.1 = run.decide(pos, 0).1;
            }
        }
        crate::order::sort_by(&mut out, |a, b| a.0.key.cmp(&b.0.key));
        out
    }
}

/// How an enrolled unit reached its variant without a draw.
enum Chosen {
    AllowListed,
    Sticky,
    BotControl,
}

/// Steps 1-4 passed: the variant, or the draw that decides it.
enum Enrolled<'e, 's> {
    Chosen(usize, Chosen),
    Draw { unit_type: &'e str, unit: &'s str },
}

/// One request's evaluation: per-request caches shared by all experiments.
struct Evaluation<'e, 's> {
    engine: &'e Engine,
    subject: &'s Subject<'s>,
    /// One layer hash per request, shared by the layer's experiments (docs/contracts.md §2 step 4).
    layer_buckets: Vec<Option<u16>>,
    /// `None` until computed; then the holdout bucket when the unit is held out.
    holdout: Option<Option<u16>>,
    /// Variant per running experiment, once decided; only kept when prerequisites exist.
    memo: Vec<Option<Option<usize>>>,
    /// Per running experiment, the variant its sticky record keeps (empty without a record).
    kept: Vec<Option<usize>>,
    /// Per layer, the running experiment a sticky record holds the layer for.
    pinned_layers: Vec<Option<usize>>,
}

impl<'e, 's> Evaluation<'e, 's> {
    fn new(engine: &'e Engine, subject: &'s Subject<'s>) -> Self {
        let memo_len = if engine.has_prerequisites {
            engine.running.len()
        } else {
            0
        };
        let (kept, pinned_layers) = match subject.sticky {
            Some(sticky) if !sticky.is_empty() => kept_variants(engine, subject.units, sticky),
            _ => (Vec::new(), Vec::new()),
        };
        Self {
            engine,
            subject,
            layer_buckets: vec![None; engine.layer_seeds.len()],
            holdout: None,
            memo: vec![None; memo_len],
            kept,
            pinned_layers,
        }
    }

    /// Whether the assignment of the running experiment at `pos` is one a sticky record keeps:
    /// made on its fallback unit (the primary id is absent) or kept from the record, and not
    /// forced.
    fn by_fallback(&self, pos: usize, exp: &PreparedExperiment) -> bool {
        let Some(experiment) = self.engine.snapshot().experiments.get(exp.index) else {
            return false;
        };
        experiment.fallback_unit.is_some()
            && self
                .subject
                .forced
                .is_none_or(|f| !f.contains_key(&experiment.key))
            && (self.kept.get(pos).is_some_and(Option::is_some)
                || !self.subject.units.contains_key(&experiment.unit))
    }

    /// The variant index the running experiment at `pos` assigns, memoised.
    fn variant(&mut self, pos: usize, depth: usize) -> Option<usize> {
        if let Some(Some(known)) = self.memo.get(pos) {
            return *known;
        }
        let decided = self.decide(pos, depth).0;
        if let Some(slot) = self.memo.get_mut(pos) {
            *slot = Some(decided);
        }
        decided
    }

    /// The variant (if any) and the reason, for the running experiment at `pos`.
    fn decide(&mut self, pos: usize, depth: usize) -> (Option<usize>, Explanation<'e>) {
        match self.decide_until_draw(pos, depth) {
            Step::Decided(v, why) => (v, why),
            Step::Draw {
                salt,
                unit_type,
                unit,
            } => self.decide_by_draw(pos, unit_type, draw(salt, unit)),
        }
    }

    /// Every step before the draw for the running experiment at `pos`.
    fn decide_until_draw(&mut self, pos: usize, depth: usize) -> Step<'e, 's> {
        let engine = self.engine;
        let Some(exp) = engine.running.get(pos) else {
            return Step::Decided(None, Explanation::NotRunning);
        };
        let Some(experiment) = engine.snapshot().experiments.get(exp.index) else {
            return Step::Decided(None, Explanation::NotRunning);
        };
        if let (Some(route), Some(routes)) = (self.subject.route, &exp.routes) {
            if !routes.applies(Some(route.host), route.path) {
                return Step::Decided(None, Explanation::OutsideRoute);
            }
        }
        // A verified force token overrides everything.
        if let Some(wanted) = self.subject.forced.and_then(|f| f.get(&experiment.key)) {
            if let Some(v) = experiment.variants.iter().position(|x| x.key == *wanted) {
                let variant = variant_key(experiment, v);
                return Step::Decided(Some(v), Explanation::Forced { variant });
            }
        }
        match self.enrol(pos, exp, experiment, depth) {
            Ok(Enrolled::Chosen(v, how)) => {
                let variant = variant_key(experiment, v);
                let why = match how {
                    Chosen::AllowListed => Explanation::AllowListed { variant },
                    Chosen::Sticky => Explanation::Sticky { variant },
                    Chosen::BotControl => Explanation::BotControl { variant },
                };
                Step::Decided(Some(v), why)
            }
            Ok(Enrolled::Draw { unit_type, unit }) => Step::Draw {
                salt: experiment.effective_salt(),
                unit_type,
                unit,
            },
            Err(why) => Step::Decided(None, why),
        }
    }

    /// Steps 1-4 with allow-lists, bots, holdout and prerequisites: the variant index and how
    /// it was reached, the unit whose draw decides, or why the unit is not enrolled.
    fn enrol(
        &mut self,
        pos: usize,
        exp: &'e PreparedExperiment,
        experiment: &'e Experiment,
        depth: usize,
    ) -> Result<Enrolled<'e, 's>, Explanation<'e>> {
        let subject = self.subject;
        // 1. inside the window (status was filtered when the engine was built)
        if exp.start_ms.is_some_and(|start| subject.now_ms < start)
            || exp.end_ms.is_some_and(|end| subject.now_ms >= end)
        {
            return Err(Explanation::OutsideWindow);
        }
        // 2. the unit: the experiment's own type, else its fallback
        let (unit_type, unit) =
            resolve_unit(experiment, subject.units).ok_or(Explanation::NoUnit)?;
        if let Ok(at) = exp.allow.binary_search_by(|(id, _)| id.as_str().cmp(unit)) {
            let v = exp.allow.get(at).map_or(0, |(_, v)| *v);
            return Ok(Enrolled::Chosen(v, Chosen::AllowListed));
        }
        if subject.bot {
            match self.engine.bot_policy {
                BotPolicy::Exclude => return Err(Explanation::Bot),
                BotPolicy::Control => return Ok(Enrolled::Chosen(exp.control, Chosen::BotControl)),
                BotPolicy::Include => {}
            }
        }
        let kept = self.kept.get(pos).copied().flatten();
        if kept.is_none() {
            if let Some(holdout_bucket) = self.holdout_bucket() {
                return Err(Explanation::Holdout { holdout_bucket });
            }
        }
        // 3. targeting
        if !exp.rules.matches(subject.attributes) {
            return Err(Explanation::NotTargeted);
        }
        for (required, accepted) in &exp.prerequisites {
            let met = depth < MAX_PREREQUISITE_DEPTH
                && required
                    .and_then(|pos| self.variant(pos, depth + 1))
                    .is_some_and(|v| accepted.contains(&v));
            if !met {
                let requires = required
                    .and_then(|pos| self.engine.running.get(pos))
                    .and_then(|p| self.engine.snapshot().experiments.get(p.index))
                    .map_or("", |e| e.key.as_str());
                return Err(Explanation::Prerequisite { requires });
            }
        }
        if let Some(v) = kept {
            return Ok(Enrolled::Chosen(v, Chosen::Sticky));
        }
        // 4. layer slot, unless a sticky record holds the layer for another experiment
        if let Some(membership) = &exp.layer {
            let bucket = self.layer_bucket(membership.layer, unit);
            let pinned = self.pinned_layers.get(membership.layer).copied().flatten();
            if pinned.is_some_and(|p| p != pos) || !in_ranges(&membership.ranges, bucket) {
                return Err(Explanation::OutsideLayer {
                    layer_bucket: bucket,
                });
            }
        }
        // 5. traffic gate, 6. variant bucket: both from one digest, drawn by the caller
        Ok(Enrolled::Draw { unit_type, unit })
    }

    /// The unit's bucket in `layer`, hashed at most once per request.
    fn layer_bucket(&mut self, layer: usize, unit: &str) -> u16 {
        if let Some(Some(bucket)) = self.layer_buckets.get(layer) {
            return *bucket;
        }
        let seed = self
            .engine
            .layer_seeds
            .get(layer)
            .map_or("", String::as_str);
        let bucket = draw(seed, unit).bucket;
        if let Some(slot) = self.layer_buckets.get_mut(layer) {
            *slot = Some(bucket);
        }
        bucket
    }

    /// The holdout bucket when the request's unit is held out, hashed at most once.
    fn holdout_bucket(&mut self) -> Option<u16> {
        if let Some(known) = self.holdout {
            return known;
        }
        let held = self
            .engine
            .holdout
            .as_ref()
            .and_then(|h| h.holds(self.subject.units.get(&h.unit)?));
        self.holdout = Some(held);
        held
    }
}

impl super::PreparedHoldout {
    /// The unit's holdout bucket when the holdout holds it out.
    pub(crate) fn holds(&self, unit: &str) -> Option<u16> {
        let bucket = draw(&self.seed, unit).bucket;
        in_ranges(&self.ranges, bucket).then_some(bucket)
    }
}

/// Per running experiment, the variant a sticky record keeps, and per layer the experiment it
/// keeps. An entry counts only for an experiment with a fallback unit, for the fallback id
/// the request carries, in the phase it was made in, for a variant that still exists.
fn kept_variants(
    engine: &Engine,
    units: &Units,
    sticky: &Sticky,
) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
    let mut kept = vec![None; engine.running.len()];
    let mut pinned = vec![None; engine.layer_seeds.len()];
    for (pos, exp) in engine.running.iter().enumerate() {
        let Some(experiment) = engine.snapshot().experiments.get(exp.index) else {
            continue;
        };
        let Some(id) = experiment.fallback_unit.as_ref().and_then(|u| units.get(u)) else {
            continue;
        };
        let Some(variant) = sticky.variant(&experiment.key, experiment.effective_salt(), id) else {
            continue;
        };
        let v = experiment.variants.iter().position(|x| x.key == variant);
        if let (Some(slot), Some(v)) = (kept.get_mut(pos), v) {
            *slot = Some(v);
            if let Some(layer) = exp.layer.as_ref().and_then(|m| pinned.get_mut(m.layer)) {
                *layer = Some(pos);
            }
        }
    }
    (kept, pinned)
}

/// `(unit type, id)` the experiment hashes for these units.
fn resolve_unit<'e, 'u>(
    experiment: &'e Experiment,
    units: &'u Units,
) -> Option<(&'e str, &'u str)> {
    unit_for(&experiment.unit, experiment.fallback_unit.as_deref(), units)
}

/// `(unit type, id)` an experiment on `unit` (else `fallback`) hashes for these units.
pub(crate) fn unit_for<'e, 'u>(
    unit: &'e str,
    fallback: Option<&'e str>,
    units: &'u Units,
) -> Option<(&'e str, &'u str)> {
    if let Some(id) = units.get(unit) {
        return Some((unit, id));
    }
    let fallback = fallback?;
    units.get(fallback).map(|id| (fallback, id.as_str()))
}

fn in_ranges(ranges: &[(u16, u16)], bucket: u16) -> bool {
    ranges
        .iter()
        .any(|(start, end)| (*start..=*end).contains(&bucket))
}

/// The key of variant `v` of `experiment`.
fn variant_key(experiment: &Experiment, v: usize) -> &str {
    experiment.variants.get(v).map_or("", |x| x.key.as_str())
}
