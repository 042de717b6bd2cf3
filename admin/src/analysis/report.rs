//! The shape of results as the API, the CLI and the dashboard read them.

use std::collections::BTreeMap;

use cleave_core::stats::{self, power, Bayesian, Comparison, Correction, SampleRatio};
use serde::Serialize;
use uuid::Uuid;

use crate::model::{Decision, Direction, MetricKind, MetricRole, Status, Verdict};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    pub experiment_id: Uuid,
    pub experiment: String,
    pub status: Status,
    /// The phase analysed: exposures under other salts are not counted.
    pub salt: String,
    pub control: String,
    pub alpha: f64,
    pub correction: Correction,
    /// Which reading sets the verdicts of primary and secondary metrics.
    pub decision: Decision,
    pub variants: Vec<VariantResult>,
    /// Units kept out of results: `forced`, `allow_listed`, `bot`, and `mixed` (seen in more
    /// than one variant, e.g. after allocations moved).
    pub excluded_units: BTreeMap<String, i64>,
    /// Excluded units (forced, allow-listed, bot) as a share of every unit exposed in this
    /// phase, so a reader sees how much of the traffic results leave out.
    pub excluded_share: f64,
    /// Sample ratio mismatch of units against the allocation (`None` until there are units).
    pub srm: Option<SampleRatio>,
    pub metrics: Vec<MetricResult>,
    /// Guardrail metrics whose sequential test shows a variant significantly worse.
    pub guardrail_breaches: Vec<Breach>,
    /// How many units the first primary metric needs for `mde` at `alpha` and `power`, from
    /// its control's mean and variance so far, and the days left at the enrolment rate so far.
    pub plan: Option<MetricPlan>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricPlan {
    pub metric: String,
    #[serde(flatten)]
    pub plan: power::Plan,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantResult {
    pub key: String,
    pub units: i64,
    pub exposures: i64,
    /// Share of units the allocation expects for this variant.
    pub expected_share: f64,
    pub observed_share: f64,
    /// Units by how their first exposure was learned: `api`, `confirmed`, `proxy_declared`,
    /// `proxy_implicit` (and `unknown` for records from workers that did not say).
    pub units_by_source: BTreeMap<String, i64>,
    /// Units of this variant kept out of results, by reason (`forced`, `allow_listed`, `bot`).
    pub excluded_units: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    pub key: String,
    pub role: MetricRole,
    pub kind: MetricKind,
    pub direction: Direction,
    pub variants: Vec<MetricVariant>,
    pub comparisons: Vec<VariantComparison>,
    /// The same comparisons adjusted with each unit's pre-exposure value (CUPED), beside the
    /// unadjusted ones above; absent when no unit has pre-period data.
    pub cuped: Option<Cuped>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cuped {
    pub pre_window_days: i32,
    #[serde(flatten)]
    pub adjustment: stats::Adjustment,
    pub comparisons: Vec<AdjustedComparison>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdjustedComparison {
    pub variant: String,
    #[serde(flatten)]
    pub test: Comparison,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricVariant {
    pub variant: String,
    pub units: i64,
    pub mean: f64,
    pub variance: f64,
    /// Units with at least one event (the numerator of a conversion rate).
    pub conversions: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantComparison {
    pub variant: String,
    #[serde(flatten)]
    pub test: Comparison,
    /// `p_value` after the correction across primary and secondary comparisons.
    pub adjusted_p_value: f64,
    /// `sequential_p_value` after the same correction.
    pub adjusted_sequential_p_value: f64,
    /// Fixed-horizon verdict at `alpha` (valid when read once, at the planned end).
    pub significant: bool,
    /// Sequential verdict at `alpha`: valid however often results are looked at.
    pub sequential_significant: bool,
    /// By the experiment's decision reading (guardrails: the sequential test) and the
    /// metric's direction.
    pub verdict: Verdict,
    /// The Bayesian reading of the relative lift (flat prior, normal approximation).
    pub bayesian: Option<Bayesian>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Breach {
    pub metric: String,
    pub variant: String,
    pub difference: f64,
    pub sequential_p_value: f64,
}
