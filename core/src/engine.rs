//! A snapshot checked and prepared for evaluation.
//!
//! [`Engine::new`] validates the whole snapshot and reports every problem at once; a snapshot
//! that passes is turned into per-experiment lookup tables so a decision does no parsing and
//! allocates only its result.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::keys::is_valid_key;
use crate::problems::Problems;
use crate::snapshot::{Experiment, Snapshot, Status, SCHEMA_VERSION};
use crate::targeting::{prepare_rules, PreparedRule};
use crate::time::parse_rfc3339_ms;

/// Why a snapshot cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes are not snapshot JSON.
    #[error("snapshot is not valid JSON: {0}")]
    Json(String),
    /// The JSON parsed but breaks the contract; every problem is listed.
    #[error("snapshot is invalid: {0}")]
    Invalid(Problems),
}

/// A validated snapshot, ready to assign units.
#[derive(Debug, Clone)]
pub struct Engine {
    snapshot: Snapshot,
    /// Running experiments only, sorted by key so results come out in key order.
    pub(crate) running: Vec<PreparedExperiment>,
    /// `"layer:" ++ salt` for each layer, indexed by `PreparedExperiment::layer`.
    pub(crate) layer_seeds: Vec<String>,
    /// Whether any running experiment targets an edge-derived attribute (`cf.*`, `url.*`,
    /// `ua.*`); when none does, the worker need not compute them.
    uses_edge_attributes: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct PreparedExperiment {
    /// Index into `snapshot.experiments`.
    pub(crate) index: usize,
    pub(crate) unit: String,
    pub(crate) salt: String,
    pub(crate) traffic: u16,
    pub(crate) start_ms: Option<i64>,
    pub(crate) end_ms: Option<i64>,
    pub(crate) layer: Option<LayerMembership>,
    pub(crate) rules: Vec<PreparedRule>,
    /// `(start, end, variant index)`, inclusive, sorted by start.
    pub(crate) slots: Vec<(u16, u16, usize)>,
}

#[derive(Debug, Clone)]
pub(crate) struct LayerMembership {
    pub(crate) layer: usize,
    pub(crate) ranges: Vec<(u16, u16)>,
}

impl Engine {
    /// Decodes and validates snapshot JSON.
    ///
    /// # Errors
    /// [`SnapshotError::Json`] for bytes that are not a snapshot document,
    /// [`SnapshotError::Invalid`] listing every contract violation.
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let snapshot: Snapshot =
            serde_json::from_slice(bytes).map_err(|e| SnapshotError::Json(e.to_string()))?;
        Self::new(snapshot).map_err(SnapshotError::Invalid)
    }

    /// Validates `snapshot` and prepares it for evaluation.
    ///
    /// # Errors
    /// Every problem found, with its path.
    pub fn new(snapshot: Snapshot) -> Result<Self, Problems> {
        let mut problems = Problems::default();
        check_header(&snapshot, &mut problems);
        let mut layers = LayerTable::default();
        let mut running = Vec::new();
        let mut keys = BTreeMap::new();
        for (index, exp) in snapshot.experiments.iter().enumerate() {
            let path = format!("experiments[{index}]");
            if let Some(first) = keys.insert(exp.key.as_str(), index) {
                problems.push(
                    format!("{path}.key"),
                    format!(
                        "duplicate experiment key {:?} (also experiments[{first}])",
                        exp.key
                    ),
                );
            }
            let prepared = prepare_experiment(index, exp, &path, &mut layers, &mut problems);
            if exp.status == Status::Running {
                running.extend(prepared);
            }
        }
        layers.check_overlaps(&snapshot.experiments, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        running.sort_by(|a, b| {
            let key =
                |p: &PreparedExperiment| snapshot.experiments.get(p.index).map(|e| e.key.clone());
            key(a).cmp(&key(b))
        });
        let uses_edge_attributes = running.iter().any(|p| {
            snapshot.experiments.get(p.index).is_some_and(|e| {
                e.targeting
                    .iter()
                    .flat_map(|rule| &rule.conditions)
                    .any(|c| crate::targeting::is_reserved(&c.attribute))
            })
        });
        Ok(Self {
            layer_seeds: layers.seeds,
            snapshot,
            running,
            uses_edge_attributes,
        })
    }

    /// Whether evaluating this snapshot needs the edge-derived attributes.
    pub fn uses_edge_attributes(&self) -> bool {
        self.uses_edge_attributes
    }

    /// The snapshot as published.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The experiment with `key`, whatever its status.
    pub fn experiment(&self, key: &str) -> Option<&Experiment> {
        self.snapshot.experiments.iter().find(|e| e.key == key)
    }
}

fn check_header(snapshot: &Snapshot, problems: &mut Problems) {
    if snapshot.schema != SCHEMA_VERSION {
        problems.push(
            "schema",
            format!(
                "unsupported schema {} (this engine reads {SCHEMA_VERSION})",
                snapshot.schema
            ),
        );
    }
    if snapshot.environment.is_empty() {
        problems.push("environment", "environment is empty");
    }
    if snapshot.version == 0 {
        problems.push("version", "version must be at least 1");
    }
}

/// Checks one experiment; returns its prepared form when it has no problems.
fn prepare_experiment(
    index: usize,
    exp: &Experiment,
    path: &str,
    layers: &mut LayerTable,
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
    let layer = exp.layer.as_ref().and_then(|slot| {
        let ranges = checked_ranges(&slot.ranges, &|| format!("{path}.layer.ranges"), problems);
        let layer = layers.join(slot, exp, path, problems)?;
        if exp.status == Status::Running {
            layers.claim(layer, &ranges, index);
        }
        Some(LayerMembership { layer, ranges })
    });
    let rules = prepare_rules(&exp.targeting, path, problems);
    if problems.len() != before {
        return None;
    }
    Some(PreparedExperiment {
        index,
        unit: exp.unit.clone(),
        salt: exp.effective_salt().to_owned(),
        traffic: traffic?,
        start_ms: start_ms.flatten(),
        end_ms: end_ms.flatten(),
        layer,
        rules,
        slots,
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

fn key_message(what: &str, key: &str) -> String {
    format!("{what} {key:?} does not match [a-z][a-z0-9_.-]{{0,63}}")
}

/// Validates variants and their bucket ranges and builds the bucket -> variant table.
fn variant_slots(exp: &Experiment, path: &str, problems: &mut Problems) -> Vec<(u16, u16, usize)> {
    if exp.variants.is_empty() {
        problems.push(format!("{path}.variants"), "experiment has no variants");
    }
    let mut seen = BTreeMap::new();
    let mut slots = Vec::new();
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
        if let Some(first) = seen.insert(variant.key.as_str(), v) {
            problems.push(
                format!("{}.key", vpath()),
                format!(
                    "duplicate variant key {:?} (also variants[{first}])",
                    variant.key
                ),
            );
        }
        let ranges = checked_ranges(&variant.ranges, &|| format!("{}.ranges", vpath()), problems);
        slots.extend(ranges.into_iter().map(|(start, end)| (start, end, v)));
    }
    slots.sort_unstable();
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

/// Checks inclusive `[start, end]` ranges lie in `0..=9999`; returns the valid ones.
fn checked_ranges(
    ranges: &[[i64; 2]],
    path: &dyn Fn() -> String,
    problems: &mut Problems,
) -> Vec<(u16, u16)> {
    let mut out = Vec::with_capacity(ranges.len());
    for (i, [start, end]) in ranges.iter().enumerate() {
        let bound = |n: i64| {
            u16::try_from(n)
                .ok()
                .filter(|n| *n < crate::bucket::BUCKETS)
        };
        match (bound(*start), bound(*end)) {
            (Some(s), Some(e)) if s <= e => out.push((s, e)),
            (Some(_), Some(_)) => problems.push(
                format!("{}[{i}]", path()),
                format!("range [{start}, {end}] ends before it starts"),
            ),
            _ => {
                problems.push(
                    format!("{}[{i}]", path()),
                    format!("range [{start}, {end}] is outside 0..=9999"),
                );
                // Keep the in-bounds part so overlaps with it are reported in the same pass;
                // the snapshot is refused either way.
                let clamp = |n: i64| u16::try_from(n.clamp(0, 9_999)).unwrap_or(0);
                if start <= end && *end >= 0 && *start <= 9_999 {
                    out.push((clamp(*start), clamp(*end)));
                }
            }
        }
    }
    out
}

/// Layers seen so far: their salts, unit types and the slices running experiments hold.
#[derive(Default)]
struct LayerTable {
    index: BTreeMap<String, usize>,
    seeds: Vec<String>,
    salts: Vec<String>,
    units: Vec<String>,
    /// `(start, end, experiment index)` per layer.
    claims: Vec<Vec<(u16, u16, usize)>>,
}

impl LayerTable {
    /// Registers `exp` in its layer, checking it agrees with the layer's other members.
    fn join(
        &mut self,
        slot: &crate::snapshot::LayerSlot,
        exp: &Experiment,
        path: &str,
        problems: &mut Problems,
    ) -> Option<usize> {
        if !is_valid_key(&slot.key) {
            problems.push(
                format!("{path}.layer.key"),
                key_message("layer key", &slot.key),
            );
        }
        if slot.salt.is_empty() {
            problems.push(format!("{path}.layer.salt"), "layer salt is empty");
            return None;
        }
        if let Some(&layer) = self.index.get(&slot.key) {
            let (salt, unit) = (self.salts.get(layer)?, self.units.get(layer)?);
            if *salt != slot.salt {
                problems.push(
                    format!("{path}.layer.salt"),
                    format!("layer {:?} already uses salt {salt:?}", slot.key),
                );
            }
            if *unit != exp.unit {
                problems.push(
                    format!("{path}.unit"),
                    format!("layer {:?} hashes on unit type {unit:?}", slot.key),
                );
            }
            return Some(layer);
        }
        let layer = self.seeds.len();
        self.index.insert(slot.key.clone(), layer);
        self.seeds.push(crate::bucket::layer_seed(&slot.salt));
        self.salts.push(slot.salt.clone());
        self.units.push(exp.unit.clone());
        self.claims.push(Vec::new());
        Some(layer)
    }

    fn claim(&mut self, layer: usize, ranges: &[(u16, u16)], experiment: usize) {
        if let Some(claims) = self.claims.get_mut(layer) {
            claims.extend(ranges.iter().map(|&(s, e)| (s, e, experiment)));
        }
    }

    /// Running experiments of one layer must hold disjoint slices.
    fn check_overlaps(&mut self, experiments: &[Experiment], problems: &mut Problems) {
        let key = |i: usize| experiments.get(i).map_or("?", |e| e.key.as_str());
        for claims in &mut self.claims {
            claims.sort_unstable();
            for pair in claims.windows(2) {
                if let [(_, end_a, a), (start_b, _, b)] = pair {
                    if start_b <= end_a {
                        problems.push(
                            format!("experiments[{b}].layer.ranges"),
                            format!(
                                "layer ranges of {:?} and {:?} overlap at {start_b}",
                                key(*a),
                                key(*b)
                            ),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
