//! A snapshot checked and prepared for evaluation.
//!
//! [`Engine::new`] validates the whole snapshot and reports every problem at once; a snapshot
//! that passes is turned into per-experiment lookup tables so a decision does no parsing and
//! allocates only its result.

use std::collections::BTreeSet;

use thiserror::Error;

use crate::problems::Problems;
use crate::routing::{check_origins, RouteMatcher};
use crate::snapshot::{BotPolicy, Experiment, Holdout, Snapshot, Status, SCHEMA_VERSION};
use crate::targeting::{is_reserved, prepare_audiences, Targeting};

mod evaluate;
mod flags;
mod layers;
mod links;
mod prepare;

pub(crate) use evaluate::unit_for;
pub use evaluate::Subject;

use flags::{prepare_flags, served_experiments, PreparedFlag};
use layers::LayerTable;

/// Why a snapshot cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes are not snapshot JSON.
    #[error("snapshot is not valid JSON: {0}")]
    Json(String),
    /// The bytes are not a binary sidecar this build reads.
    #[error("snapshot sidecar is unusable: {0}")]
    Binary(String),
    /// The JSON parsed but breaks the contract; every problem is listed.
    #[error("snapshot is invalid: {0}")]
    Invalid(Problems),
}

/// A validated snapshot, ready to assign units.
#[derive(Debug, Clone)]
pub struct Engine {
    snapshot: Snapshot,
    /// Indices into `snapshot.experiments` in key order, for lookups by key.
    by_key: Vec<usize>,
    /// Running experiments only, sorted by key so results come out in key order.
    pub(crate) running: Vec<PreparedExperiment>,
    /// `"layer:" ++ salt` for each layer, indexed by `PreparedExperiment::layer`.
    pub(crate) layer_seeds: Vec<String>,
    /// Whether any running experiment targets an edge-derived attribute (`cf.*`, `url.*`,
    /// `ua.*`); when none does, the worker need not compute them.
    uses_edge_attributes: bool,
    pub(crate) holdout: Option<PreparedHoldout>,
    pub(crate) bot_policy: BotPolicy,
    /// Whether any running experiment has prerequisites (assignment then memoises results).
    pub(crate) has_prerequisites: bool,
    /// Whether any running experiment is scoped to routes.
    has_routes: bool,
    /// Flags in key order.
    pub(crate) flags: Vec<PreparedFlag>,
    /// Experiments some flag is served by.
    pub(crate) flag_experiments: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct PreparedExperiment {
    /// Index into `snapshot.experiments`.
    pub(crate) index: usize,
    /// Unit types and salt are read from the experiment itself (`index`), not copied.
    pub(crate) traffic: u16,
    pub(crate) start_ms: Option<i64>,
    pub(crate) end_ms: Option<i64>,
    pub(crate) layer: Option<LayerMembership>,
    pub(crate) rules: Targeting,
    /// Where the experiment applies; `None` = every request.
    pub(crate) routes: Option<RouteMatcher>,
    /// `(position in Engine::running, accepted variant indices)`; `None` = not running.
    pub(crate) prerequisites: Vec<(Option<usize>, Vec<usize>)>,
    /// `(start, end, variant index)`, inclusive, sorted by start.
    pub(crate) slots: Vec<(u16, u16, usize)>,
    /// `(unit id, variant index)`, sorted by id.
    pub(crate) allow: Vec<(String, usize)>,
    /// The variant bots see under [`BotPolicy::Control`].
    pub(crate) control: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct PreparedHoldout {
    pub(crate) seed: String,
    pub(crate) unit: String,
    pub(crate) ranges: Vec<(u16, u16)>,
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

    /// Decodes and validates a snapshot's binary sidecar ([`crate::snapshot::decode_binary`]),
    /// exactly as [`Engine::decode`] does its JSON body.
    ///
    /// # Errors
    /// [`SnapshotError::Binary`] for bytes that are not a sidecar of this format,
    /// [`SnapshotError::Invalid`] listing every contract violation.
    pub fn decode_binary(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let snapshot = crate::snapshot::decode_binary(bytes)
            .map_err(|e| SnapshotError::Binary(e.to_string()))?;
        Self::new(snapshot).map_err(SnapshotError::Invalid)
    }

    /// Validates `snapshot` and prepares it for evaluation.
    ///
    /// # Errors
    /// Every problem found, with its path.
    pub fn new(snapshot: Snapshot) -> Result<Self, Problems> {
        let mut problems = Problems::default();
        check_header(&snapshot, &mut problems);
        crate::context::check_schema(&snapshot.context_schema, &mut problems);
        check_origins(&snapshot.origins, &mut problems);
        let audiences = prepare_audiences(&snapshot.audiences, &mut problems);
        let holdout = snapshot
            .holdout
            .as_ref()
            .map(|h| prepare_holdout(h, &mut problems));
        let mut layers = LayerTable::default();
        // Indexed like `snapshot.experiments`: the prepared form of each running experiment.
        let mut prepared = Vec::with_capacity(snapshot.experiments.len());
        // One path buffer for every experiment, its index written by `itoa`: `write!` alone
        // was a tenth of preparing a valid snapshot.
        const PREFIX: &str = "experiments[";
        let mut path = String::from(PREFIX);
        let mut digits = itoa::Buffer::new();
        for (index, exp) in snapshot.experiments.iter().enumerate() {
            path.truncate(PREFIX.len());
            path.push_str(digits.format(index));
            path.push(']');
            let this = prepare::prepare_experiment(
                index,
                exp,
                &path,
                &mut layers,
                &audiences,
                &snapshot.origins,
                &mut problems,
            );
            prepared.push(this.filter(|_| exp.status == Status::Running));
        }
        let by_key = key_order(&snapshot.experiments, &mut problems);
        layers.check_overlaps(&snapshot.experiments, &mut problems);
        links::check_prerequisites(&snapshot.experiments, &by_key, &mut problems);
        let experiments = ExperimentsByKey {
            experiments: &snapshot.experiments,
            by_key: &by_key,
        };
        let flags = prepare_flags(&snapshot.flags, &audiences, &experiments, &mut problems);
        crate::flags::check_access(&snapshot.ofrep, &mut problems);
        if let Some(consent) = &snapshot.consent {
            crate::consent::check_consent(consent, &mut problems);
        }
        crate::identity::check_sources(&snapshot.identity, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        // In key order (so results come out in key order), without sorting again.
        let mut running: Vec<PreparedExperiment> = by_key
            .iter()
            .filter_map(|i| prepared.get_mut(*i).and_then(Option::take))
            .collect();
        links::resolve_prerequisites(&snapshot.experiments, &by_key, &mut running);
        let uses_edge_attributes = running.iter().any(|p| p.rules.reads_any(is_reserved));
        let has_prerequisites = running.iter().any(|p| !p.prerequisites.is_empty());
        let has_routes = running.iter().any(|p| p.routes.is_some());
        let uses_edge_attributes =
            uses_edge_attributes || flags.iter().any(|f| f.reads_any(is_reserved));
        let flag_experiments = served_experiments(&snapshot.flags);
        Ok(Self {
            flags,
            flag_experiments,
            by_key,
            layer_seeds: layers.seeds,
            bot_policy: snapshot.bot_policy,
            snapshot,
            running,
            uses_edge_attributes,
            holdout,
            has_prerequisites,
            has_routes,
        })
    }

    /// Whether a decision needs to know if the request comes from a bot: some experiment
    /// runs and bots are not simply bucketed like everyone else.
    pub fn needs_bot_check(&self) -> bool {
        !self.running.is_empty() && self.bot_policy != BotPolicy::Include
    }

    /// Whether some running experiment applies only to some routes (so the cache key and
    /// the decide API's `url=` matter).
    pub fn has_routes(&self) -> bool {
        self.has_routes
    }

    /// Whether evaluating this snapshot needs the edge-derived attributes.
    pub fn uses_edge_attributes(&self) -> bool {
        self.uses_edge_attributes
    }

    /// Whether the environment holdout keeps `units` out of every experiment; `None` without
    /// a holdout or without the unit it hashes.
    pub fn held_out(&self, units: &crate::decision::Units) -> Option<bool> {
        let holdout = self.holdout.as_ref()?;
        let unit = units.get(&holdout.unit)?;
        Some(holdout.holds(unit).is_some())
    }

    /// The snapshot as published.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The experiment with `key`, whatever its status.
    pub fn experiment(&self, key: &str) -> Option<&Experiment> {
        let experiments = &self.snapshot.experiments;
        experiments.get(find_by_key(experiments, &self.by_key, key)?)
    }
}

/// Experiments found by key, during preparation.
pub(crate) struct ExperimentsByKey<'a> {
    experiments: &'a [Experiment],
    by_key: &'a [usize],
}

impl<'a> ExperimentsByKey<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<&'a Experiment> {
        self.experiments
            .get(find_by_key(self.experiments, self.by_key, key)?)
    }
}

/// The index of the experiment with `key`, through `by_key` (indices in key order).
fn find_by_key(experiments: &[Experiment], by_key: &[usize], key: &str) -> Option<usize> {
    let at = by_key
        .binary_search_by(|i| experiments.get(*i).map_or("", |e| &e.key).cmp(key))
        .ok()?;
    by_key.get(at).copied()
}

/// Experiment indices sorted by key, for lookups by key; a key used twice is a problem,
/// reported at each later use against the first.
fn key_order(experiments: &[Experiment], problems: &mut Problems) -> Vec<usize> {
    let key = |i: &usize| experiments.get(*i).map_or("", |e| e.key.as_str());
    // Stable: equal keys stay in index order, so the first of a run is the first use.
    let order = crate::order::indices_by(experiments.len(), |a, b| key(&a).cmp(key(&b)));
    let mut first = None;
    for pair in order.windows(2) {
        let [a, b] = pair else { continue };
        if key(a) != key(b) {
            first = None;
            continue;
        }
        let first = *first.get_or_insert(*a);
        problems.push(
            format!("experiments[{b}].key"),
            format!(
                "duplicate experiment key {:?} (also experiments[{first}])",
                key(b)
            ),
        );
    }
    order
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

fn prepare_holdout(holdout: &Holdout, problems: &mut Problems) -> PreparedHoldout {
    if holdout.salt.is_empty() {
        problems.push("holdout.salt", "holdout salt is empty");
    }
    if !crate::keys::is_valid_key(&holdout.unit) {
        problems.push(
            "holdout.unit",
            crate::keys::key_message("unit type", &holdout.unit),
        );
    }
    let ranges = prepare::checked_ranges(&holdout.ranges, &|| "holdout.ranges".into(), problems);
    PreparedHoldout {
        seed: format!("holdout:{}", holdout.salt),
        unit: holdout.unit.clone(),
        ranges,
    }
}

#[cfg(test)]
mod tests;
