//! The publish plan of feature flags: per flag, the exact share of units whose value
//! changes, counted over the rollout's (gate, bucket) space of 10^8 cells, never sampled.
//!
//! A flag's value depends on the request's attributes (which rules' targeting matches) and on
//! the unit's two draws. The attributes are not known ahead, so the plan counts two things:
//! `changed_share`, for a unit no targeted rule matches (rules without targeting apply to
//! everyone), and `rules`, for each rule position, the share of the units reaching it that it
//! now treats differently (serves another value, or passes on where it served, or the
//! reverse). A share that depends on an experiment's assignment, or whose rules' targeting
//! changed, is `None`: `also_changed` says why.

use serde::Serialize;

use crate::bucket::BUCKETS;
use crate::snapshot::{Flag, Serve, Snapshot};

/// Cells in the (gate, bucket) space.
pub const FLAG_CELLS: u64 = (BUCKETS as u64) * (BUCKETS as u64);

/// What a publish changes for one flag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagChange {
    pub flag: String,
    pub kind: FlagChangeKind,
    /// Share of the units no targeted rule matches whose value changes; `None` when an
    /// experiment decides it.
    pub changed_share: Option<f64>,
    pub changed_cells: Option<u64>,
    /// Per rule position (the new flag's), the share of units reaching it that it treats
    /// differently; `None` where an experiment decides or the rule list changed shape.
    pub rules: Vec<Option<f64>>,
    /// Settings that changed whose effect depends on request attributes.
    pub also_changed: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagChangeKind {
    Added,
    Removed,
    Changed,
    Killed,
    Revived,
    /// A new salt or unit type: every unit is drawn again.
    NewPhase,
}

/// What one rule (or the whole flag, for a unit) gives at a cell.
#[derive(Debug, Clone, PartialEq)]
enum Out<'a> {
    /// A value, by its JSON text.
    Value(&'a str),
    /// The rule does not take the unit: it goes on to the next rule.
    Pass,
    /// An experiment's assignment decides.
    Experiment,
}

/// The flag changes between `published` and `next`, in key order.
pub fn plan_flags(published: Option<&Snapshot>, next: &Snapshot) -> Vec<FlagChange> {
    let old: &[Flag] = published.map_or(&[], |s| &s.flags);
    let new = &next.flags;
    let mut keys: Vec<&str> = old.iter().chain(new).map(|f| f.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| change(key, find(old, key), find(new, key)))
        .collect()
}

/// The flag serving `key`: a draft serves nobody, so to the plan it is not there yet.
fn find<'a>(flags: &'a [Flag], key: &str) -> Option<&'a Flag> {
    flags.iter().find(|f| f.key == key && !f.draft)
}

/// What rule `i` of `f` gives at cell `(g, b)`.
fn at_rule(f: &Flag, i: usize, g: u16, b: u16) -> Out<'_> {
    match f.rules.get(i) {
        Some(rule) if f.enabled => serve(f, &rule.serve, g, b),
        Some(_) => value(f, &f.off_variant),
        None => Out::Pass,
    }
}

fn change(key: &str, old: Option<&Flag>, new: Option<&Flag>) -> Option<FlagChange> {
    let (kind, o, n) = match (old, new) {
        (None, None) => return None,
        (None, Some(_)) => (FlagChangeKind::Added, None, new),
        (Some(_), None) => (FlagChangeKind::Removed, old, None),
        (Some(o), Some(n)) => {
            if o == n {
                return None;
            }
            let kind = if (o.effective_salt(), &o.unit) != (n.effective_salt(), &n.unit) {
                FlagChangeKind::NewPhase
            } else if o.enabled && !n.enabled {
                FlagChangeKind::Killed
            } else if !o.enabled && n.enabled {
                FlagChangeKind::Revived
            } else {
                FlagChangeKind::Changed
            };
            (kind, old, new)
        }
    };
    let mut also_changed = Vec::new();
    let shape = |f: &Flag| {
        f.rules
            .iter()
            .map(|r| r.targeting.clone())
            .collect::<Vec<_>>()
    };
    let same_targeting = match (o, n) {
        (Some(o), Some(n)) => shape(o) == shape(n),
        _ => true,
    };
    if !same_targeting {
        also_changed.push("targeting");
    }
    let phase = kind == FlagChangeKind::NewPhase;
    let everyone = if phase {
        None
    } else {
        count([o, n], |g, b| (untargeted(o, g, b), untargeted(n, g, b)))
    };
    let rules = match (o, n) {
        (Some(o), Some(n)) if same_targeting && !phase => (0..n.rules.len())
            .map(|i| {
                let pair = |g, b| (at_rule(o, i, g, b), at_rule(n, i, g, b));
                count([Some(o), Some(n)], pair).map(share)
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(FlagChange {
        flag: key.to_owned(),
        kind,
        changed_share: everyone.map(share),
        changed_cells: everyone,
        rules,
        also_changed,
    })
}

#[allow(clippy::cast_precision_loss)] // shares are for display; counts stay exact
fn share(cells: u64) -> f64 {
    cells as f64 / FLAG_CELLS as f64
}

/// The value a unit no targeted rule matches gets at cell `(g, b)`; an absent flag gives
/// nothing (`Pass`).
fn untargeted<'a>(flag: Option<&'a Flag>, g: u16, b: u16) -> Out<'a> {
    let Some(f) = flag else {
        return Out::Pass;
    };
    if !f.enabled {
        return value(f, &f.off_variant);
    }
    for rule in f.rules.iter().filter(|r| r.targeting.is_empty()) {
        match serve(f, &rule.serve, g, b) {
            Out::Pass => continue,
            other => return other,
        }
    }
    match serve(f, &f.fallthrough, g, b) {
        Out::Pass => value(f, &f.off_variant),
        other => other,
    }
}

fn serve<'a>(f: &'a Flag, serve: &'a Serve, g: u16, b: u16) -> Out<'a> {
    if let Some(key) = &serve.variant {
        return value(f, key);
    }
    if serve.experiment.is_some() {
        return Out::Experiment;
    }
    let Some(rollout) = &serve.rollout else {
        return Out::Pass;
    };
    if i64::from(g) >= rollout.traffic {
        return Out::Pass;
    }
    let mut end = 0;
    for split in &rollout.split {
        end += split.weight;
        if i64::from(b) < end {
            return value(f, &split.variant);
        }
    }
    Out::Pass
}

fn value<'a>(f: &'a Flag, key: &str) -> Out<'a> {
    f.variants
        .iter()
        .find(|v| v.key == key)
        .map_or(Out::Pass, |v| Out::Value(v.value.as_json()))
}

/// Cells where `pair(g, b)` gives two different outputs; `None` when an experiment decides
/// anywhere. The outputs are constant between the traffic and split boundaries of the
/// `flags`' rollouts, so one probe per rectangle between them counts exactly.
fn count<'a>(
    flags: [Option<&Flag>; 2],
    pair: impl Fn(u16, u16) -> (Out<'a>, Out<'a>),
) -> Option<u64> {
    let mut gates = vec![0, BUCKETS];
    let mut buckets = vec![0, BUCKETS];
    let rollouts = flags.into_iter().flatten().flat_map(|f| {
        f.rules
            .iter()
            .map(|r| &r.serve)
            .chain([&f.fallthrough])
            .filter_map(|s| s.rollout.as_ref())
    });
    for rollout in rollouts {
        gates.extend(
            u16::try_from(rollout.traffic)
                .ok()
                .filter(|t| *t <= BUCKETS),
        );
        let mut end = 0;
        for split in &rollout.split {
            end += split.weight;
            buckets.extend(u16::try_from(end).ok().filter(|e| *e <= BUCKETS));
        }
    }
    for cuts in [&mut gates, &mut buckets] {
        cuts.sort_unstable();
        cuts.dedup();
    }
    let mut changed = 0u64;
    for g in gates.windows(2) {
        for b in buckets.windows(2) {
            let (&[g0, g1], &[b0, b1]) = (g, b) else {
                continue;
            };
            let (x, y) = pair(g0, b0);
            if x == Out::Experiment || y == Out::Experiment {
                return None;
            }
            if x != y {
                changed += u64::from(g1 - g0) * u64::from(b1 - b0);
            }
        }
    }
    Some(changed)
}

#[cfg(test)]
mod tests;
