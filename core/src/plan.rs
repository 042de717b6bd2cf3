//! The publish plan: what a new snapshot changes for units already bucketed, computed
//! exactly from ranges, never by sampling.
//!
//! A unit's assignment in an experiment is a function of three independent draws, each
//! uniform over 10,000 values: the layer bucket `l` (only when the experiment is in a layer),
//! the traffic gate `g` and the variant bucket `b`. Over that space of 10^12 cells, the plan
//! counts the cells whose assignment differs between the published and the new snapshot:
//! moved (a variant before and another after), entered and left. Counts are exact integers;
//! shares are those counts over 10^12.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bucket::BUCKETS;
use crate::snapshot::{Experiment, Snapshot, Status};

mod flags;
pub use flags::{plan_flags, FlagChange, FlagChangeKind, FLAG_CELLS};

/// Cells in the (layer, gate, bucket) space.
pub const CELLS: u64 = (BUCKETS as u64).pow(3);

/// Everything a publish would change, experiment by experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Changed experiments only, by key.
    pub changes: Vec<Change>,
    /// Whether the environment holdout changed (units move in or out of every experiment).
    pub holdout_changed: bool,
    /// Experiments that would move already-enrolled units between variants; publishing
    /// them needs an explicit confirmation or a new salt (a new phase).
    pub needs_confirmation: Vec<String>,
    /// Changed flags only, by key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<FlagChange>,
}

/// What happens to one experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub experiment: String,
    pub kind: ChangeKind,
    /// Share of units whose assignment changes (`changed_cells / 10^12`).
    pub changed_share: f64,
    /// Share of units moved from one variant to another.
    pub moved_share: f64,
    pub changed_cells: u64,
    pub moved_cells: u64,
    pub entered_cells: u64,
    pub left_cells: u64,
    /// Traffic before and after, in basis points.
    pub traffic: [i64; 2],
    /// Other settings that changed; their effect depends on request attributes.
    pub also_changed: Vec<&'static str>,
}

/// The kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Starts enrolling (was absent, stopped or a draft).
    Started,
    /// Stops enrolling.
    Stopped,
    /// Keeps its salt: units keep their draws and the counts say who moves.
    Changed,
    /// A new salt: every unit is drawn again, nobody keeps a variant by design.
    NewPhase,
}

/// The plan for replacing `published` (if any) with `next`.
pub fn plan(published: Option<&Snapshot>, next: &Snapshot) -> Plan {
    let before: BTreeMap<&str, &Experiment> = published
        .map(|s| s.experiments.iter().map(|e| (e.key.as_str(), e)).collect())
        .unwrap_or_default();
    let after: BTreeMap<&str, &Experiment> = next
        .experiments
        .iter()
        .map(|e| (e.key.as_str(), e))
        .collect();
    let mut keys: Vec<&str> = before.keys().chain(after.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    let changes: Vec<Change> = keys
        .into_iter()
        .filter_map(|key| {
            change(
                key,
                before.get(key).copied().filter(|e| enrols(e)),
                after.get(key).copied().filter(|e| enrols(e)),
            )
        })
        .collect();
    let needs_confirmation = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Changed && c.moved_cells > 0)
        .map(|c| c.experiment.clone())
        .collect();
    Plan {
        changes,
        holdout_changed: published.map_or(next.holdout.is_some(), |s| s.holdout != next.holdout),
        needs_confirmation,
        flags: plan_flags(published, next),
    }
}

/// Running experiments enrol; paused ones hold units that resuming will enrol again.
fn enrols(e: &Experiment) -> bool {
    matches!(e.status, Status::Running | Status::Paused)
}

fn change(key: &str, old: Option<&Experiment>, new: Option<&Experiment>) -> Option<Change> {
    let kind = match (old, new) {
        (None, None) => return None,
        (None, Some(_)) => ChangeKind::Started,
        (Some(_), None) => ChangeKind::Stopped,
        (Some(o), Some(n)) if o.effective_salt() != n.effective_salt() => ChangeKind::NewPhase,
        (Some(_), Some(_)) => ChangeKind::Changed,
    };
    let (o, n) = (Shape::of(old), Shape::of(new));
    let counts = if kind == ChangeKind::NewPhase {
        // Independent draws: everything enrolled before or after counts as changed.
        Counts {
            left: o.enrolled(),
            entered: n.enrolled(),
            ..Counts::default()
        }
    } else {
        o.diff(&n)
    };
    let also_changed = match (old, new) {
        (Some(o), Some(n)) => other_changes(o, n),
        _ => Vec::new(),
    };
    let changed = counts.moved + counts.entered + counts.left;
    if kind == ChangeKind::Changed && changed == 0 && also_changed.is_empty() {
        return None;
    }
    Some(Change {
        experiment: key.to_owned(),
        kind,
        changed_share: share(changed),
        moved_share: share(counts.moved),
        changed_cells: changed,
        moved_cells: counts.moved,
        entered_cells: counts.entered,
        left_cells: counts.left,
        traffic: [o.traffic_bps(), n.traffic_bps()],
        also_changed,
    })
}

#[allow(clippy::cast_precision_loss)] // shares are for display; counts stay exact
fn share(cells: u64) -> f64 {
    cells as f64 / CELLS as f64
}

fn other_changes(o: &Experiment, n: &Experiment) -> Vec<&'static str> {
    let mut out = Vec::new();
    if o.status != n.status {
        out.push("status");
    }
    if o.targeting != n.targeting {
        out.push("targeting");
    }
    if o.prerequisites != n.prerequisites {
        out.push("prerequisites");
    }
    if (&o.start_at, &o.end_at) != (&n.start_at, &n.end_at) {
        out.push("window");
    }
    if (&o.unit, &o.fallback_unit) != (&n.unit, &n.fallback_unit) {
        out.push("unit");
    }
    let allow = |e: &Experiment| -> Vec<(String, Vec<String>)> {
        e.variants
            .iter()
            .map(|v| (v.key.clone(), v.allow.clone()))
            .collect()
    };
    if allow(o) != allow(n) {
        out.push("allow_lists");
    }
    if o.variants
        .iter()
        .map(|v| &v.payload)
        .ne(n.variants.iter().map(|v| &v.payload))
    {
        out.push("payloads");
    }
    out
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    moved: u64,
    entered: u64,
    left: u64,
}

/// An experiment reduced to what bucketing reads; `None` parts mean "enrols nobody".
struct Shape {
    /// Variant key per bucket.
    variants: Vec<Option<String>>,
    /// Layer buckets that may enrol; all of them when not in a layer.
    layer: Vec<bool>,
    traffic: u64,
}

impl Shape {
    fn of(e: Option<&Experiment>) -> Self {
        let mut variants = vec![None; usize::from(BUCKETS)];
        let mut layer = vec![e.is_some(); usize::from(BUCKETS)];
        let Some(e) = e else {
            return Self {
                variants,
                layer,
                traffic: 0,
            };
        };
        for v in &e.variants {
            for i in covered(&v.ranges) {
                if let Some(slot) = variants.get_mut(i) {
                    *slot = Some(v.key.clone());
                }
            }
        }
        if let Some(slot) = &e.layer {
            layer = vec![false; usize::from(BUCKETS)];
            for i in covered(&slot.ranges) {
                if let Some(cell) = layer.get_mut(i) {
                    *cell = true;
                }
            }
        }
        Self {
            variants,
            layer,
            traffic: u64::try_from(e.traffic.clamp(0, 10_000)).unwrap_or(0),
        }
    }

    fn traffic_bps(&self) -> i64 {
        i64::try_from(self.traffic).unwrap_or(0)
    }

    fn layer_count(&self) -> u64 {
        self.layer.iter().filter(|l| **l).count() as u64
    }

    /// (layer, gate) cells that pass both the layer and the traffic gate.
    fn admitted(&self) -> u64 {
        self.layer_count() * self.traffic
    }

    fn enrolled(&self) -> u64 {
        self.variants.iter().filter(|v| v.is_some()).count() as u64 * self.admitted()
    }

    fn diff(&self, next: &Shape) -> Counts {
        let (a_old, a_new) = (self.admitted(), next.admitted());
        let shared_layer = self
            .layer
            .iter()
            .zip(&next.layer)
            .filter(|(a, b)| **a && **b)
            .count() as u64;
        // (l, g) cells admitted both before and after.
        let a_both = shared_layer * self.traffic.min(next.traffic);
        let mut counts = Counts::default();
        for (old, new) in self.variants.iter().zip(&next.variants) {
            match (old, new) {
                (None, None) => {}
                (Some(_), None) => counts.left += a_old,
                (None, Some(_)) => counts.entered += a_new,
                (Some(x), Some(y)) if x == y => {
                    counts.left += a_old - a_both;
                    counts.entered += a_new - a_both;
                }
                (Some(_), Some(_)) => {
                    counts.moved += a_both;
                    counts.left += a_old - a_both;
                    counts.entered += a_new - a_both;
                }
            }
        }
        counts
    }
}

/// Bucket indices covered by inclusive ranges, clamped to the bucket space.
fn covered(ranges: &[[i64; 2]]) -> impl Iterator<Item = usize> + '_ {
    ranges.iter().flat_map(|[start, end]| {
        let start = usize::try_from((*start).max(0)).unwrap_or(0);
        let end = usize::try_from((*end).min(9_999)).unwrap_or(0);
        start..=end
    })
}

#[cfg(test)]
mod tests;
