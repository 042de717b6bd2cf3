//! Checks one experiment and turns it into lookup tables for assignment.

use std::collections::BTreeMap;

use crate::keys::{is_valid_key, key_message};
use crate::problems::Problems;
use crate::routing::{check_actions, RouteMatcher};
use crate::snapshot::{Experiment, Status};
use crate::targeting::{prepare_rules, AudienceTable};
use crate::time::parse_rfc3339_ms;

use super::layers::LayerTable;
use super::{LayerMembership, PreparedExperiment};

/// Checks one experiment; returns its prepared form when it has no problems. Prerequisites
/// are resolved later, once every experiment is known.
pub(super) fn prepare_experiment(
    index: usize,
    exp: &Experiment,
    path: &str,
    layers: &mut LayerTable,
    audiences: &AudienceTable,
    origins: &BTreeMap<String, String>,
    problems: &mut Problems,
) -> Option<PreparedExperiment> {
    let before = problems.len();
    if exp.id.is_empty() {
        problems.push(format!("{path}.id"), "id is empty");
    }
    if !is_valid_key(&exp.key) {
        problems.push(
            format!("{path}.key"),
            key_message("experiment key", &exp.key),
        );
    }
    if !is_valid_key(&exp.unit) {
        problems.push(format!("{path}.unit"), key_message("unit type", &exp.unit));
    }
    if let Some(problem) = exp.salt.as_deref().and_then(crate::keys::salt_problem) {
        problems.push(format!("{path}.salt"), problem);
    }
    if let Some(fallback) = &exp.fallback_unit {
        if !is_valid_key(fallback) {
            problems.push(
                format!("{path}.fallback_unit"),
                key_message("unit type", fallback),
            );
        } else if *fallback == exp.unit {
            problems.push(
                format!("{path}.fallback_unit"),
                "fallback unit type is the experiment's own unit type",
            );
        }
    }
    if exp.salt.as_deref() == Some("") {
        problems.push(
            format!("{path}.salt"),
            "salt is empty (omit it to use the key)",
        );
    }
    let traffic = u16::try_from(exp.traffic).ok().filter(|t| *t <= 10_000);
    if traffic.is_none() {
        problems.push(
            format!("{path}.traffic"),
            format!("traffic {} is outside 0..=10000", exp.traffic),
        );
    }
    let start_ms = optional_time(
        exp.start_at.as_deref(),
        &|| format!("{path}.start_at"),
        problems,
    );
    let end_ms = optional_time(
        exp.end_at.as_deref(),
        &|| format!("{path}.end_at"),
        problems,
    );
    if let (Some(Some(start)), Some(Some(end))) = (start_ms, end_ms) {
        if start >= end {
            problems.push(format!("{path}.end_at"), "end_at must be after start_at");
        }
    }
    let slots = variant_slots(exp, path, problems);
    let allow = allow_list(exp, path, problems);
    let layer = exp.layer.as_ref().and_then(|slot| {
        let ranges = checked_ranges(&slot.ranges, &|| format!("{path}.layer.ranges"), problems);
        let layer = layers.join(slot, exp, path, problems)?;
        if exp.status == Status::Running {
            layers.claim(layer, &ranges, index);
        }
        Some(LayerMembership { layer, ranges })
    });
    let rules = prepare_rules(&exp.targeting, path, Some(audiences), problems);
    let routes = exp
        .routes
        .as_ref()
        .map(|r| RouteMatcher::prepare(r, path, problems));
    check_actions(
        exp,
        routes.as_ref().and_then(Option::as_ref),
        origins,
        path,
        problems,
    );
    if problems.len() != before {
        return None;
    }
    let control =
        crate::snapshot::control_position(exp.variants.iter().map(|v| v.key.as_str())).unwrap_or(0);
    Some(PreparedExperiment {
        index,
        traffic: traffic?,
        start_ms: start_ms.flatten(),
        end_ms: end_ms.flatten(),
        layer,
        rules,
        routes: routes.flatten(),
        prerequisites: Vec::new(),
        slots,
        allow,
        control,
    })
}

/// Parses an optional timestamp; `None` means it was present and invalid.
fn optional_time(
    text: Option<&str>,
    path: &dyn Fn() -> String,
    problems: &mut Problems,
) -> Option<Option<i64>> {
    let Some(text) = text else {
        return Some(None);
    };
    let parsed = parse_rfc3339_ms(text);
    if parsed.is_none() {
        problems.push(path(), format!("{text:?} is not an RFC 3339 timestamp"));
    }
    parsed.map(Some)
}

/// Validates variants and their bucket ranges and builds the bucket -> variant table.
fn variant_slots(exp: &Experiment, path: &str, problems: &mut Problems) -> Vec<(u16, u16, usize)> {
    if exp.variants.is_empty() {
        problems.push_coded(
            format!("{path}.variants"),
            crate::problems::Code::NoVariants,
            "experiment has no variants",
        );
    }
    let mut slots = Vec::with_capacity(exp.variants.iter().map(|v| v.ranges.len()).sum());
    for (v, variant) in exp.variants.iter().enumerate() {
        // Paths are built only when a problem is found: decoding a valid snapshot allocates none.
        let vpath = || format!("{path}.variants[{v}]");
        if variant.id.is_empty() {
            problems.push(format!("{}.id", vpath()), "id is empty");
        }
        if !is_valid_key(&variant.key) {
            problems.push(
                format!("{}.key", vpath()),
                key_message("variant key", &variant.key),
            );
        }
        if let Some(first) = earlier_use(exp, v) {
            problems.push(
                format!("{}.key", vpath()),
                format!(
                    "duplicate variant key {:?} (also variants[{first}])",
                    variant.key
                ),
            );
        }
        let ranges_path = || format!("{}.ranges", vpath());
        for (i, range) in variant.ranges.iter().enumerate() {
            if let Some((start, end)) = checked_range(i, *range, &ranges_path, problems) {
                slots.push((start, end, v));
            }
        }
    }
    crate::order::sort(&mut slots);
    for pair in slots.windows(2) {
        if let [(_, end_a, va), (start_b, _, vb)] = pair {
            if start_b <= end_a {
                let name = |v: &usize| exp.variants.get(*v).map_or("?", |x| x.key.as_str());
                problems.push(
                    format!("{path}.variants"),
                    format!(
                        "bucket ranges of {:?} and {:?} overlap at {start_b}",
                        name(va),
                        name(vb)
                    ),
                );
            }
        }
    }
    slots
}

/// `(unit id, variant index)` sorted by id; an id may be allow-listed in one variant only.
fn allow_list(exp: &Experiment, path: &str, problems: &mut Problems) -> Vec<(String, usize)> {
    let mut allow: Vec<(String, usize)> = exp
        .variants
        .iter()
        .enumerate()
        .flat_map(|(v, variant)| variant.allow.iter().map(move |id| (id.clone(), v)))
        .collect();
    crate::order::sort(&mut allow);
    allow.dedup();
    for pair in allow.windows(2) {
        if let [(a, va), (b, vb)] = pair {
            if a == b {
                let name = |v: &usize| exp.variants.get(*v).map_or("?", |x| x.key.as_str());
                problems.push(
                    format!("{path}.variants"),
                    format!(
                        "unit {a:?} is allow-listed in both {:?} and {:?}",
                        name(va),
                        name(vb)
                    ),
                );
            }
        }
    }
    allow
}

/// The first variant before `v` with the same key. Experiments have a handful of variants,
/// so a scan is cheaper than a map.
fn earlier_use(exp: &Experiment, v: usize) -> Option<usize> {
    let key = &exp.variants.get(v)?.key;
    exp.variants
        .iter()
        .take(v)
        .position(|other| other.key == *key)
}

/// Checks inclusive `[start, end]` ranges lie in `0..=9999`; returns the valid ones.
pub(super) fn checked_ranges(
    ranges: &[[i64; 2]],
    path: &dyn Fn() -> String,
    problems: &mut Problems,
) -> Vec<(u16, u16)> {
    ranges
        .iter()
        .enumerate()
        .filter_map(|(i, range)| checked_range(i, *range, path, problems))
        .collect()
}

/// Checks the `i`-th range of the list at `path()`. Out-of-bounds ranges are reported and
/// their in-bounds part kept, so overlaps with it are reported in the same pass; the snapshot
/// is refused either way.
fn checked_range(
    i: usize,
    [start, end]: [i64; 2],
    path: &dyn Fn() -> String,
    problems: &mut Problems,
) -> Option<(u16, u16)> {
    let bound = |n: i64| {
        u16::try_from(n)
            .ok()
            .filter(|n| *n < crate::bucket::BUCKETS)
    };
    match (bound(start), bound(end)) {
        (Some(s), Some(e)) if s <= e => Some((s, e)),
        (Some(_), Some(_)) => {
            problems.push(
                format!("{}[{i}]", path()),
                format!("range [{start}, {end}] ends before it starts"),
            );
            None
        }
        _ => {
            problems.push(
                format!("{}[{i}]", path()),
                format!("range [{start}, {end}] is outside 0..=9999"),
            );
            let clamp = |n: i64| u16::try_from(n.clamp(0, 9_999)).unwrap_or(0);
            (start <= end && end >= 0 && start <= 9_999).then(|| (clamp(start), clamp(end)))
        }
    }
}
