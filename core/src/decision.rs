//! What a decision produces, as every other part reads it: the units a request carries, the
//! variant an experiment assigned, and why a unit is or is not enrolled. A leaf: evaluation
//! ([`crate::engine`]), routing, sticky records, headers and exposures all build on it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::snapshot::{Experiment, Variant};

/// Unit identifiers by unit type (`user`, `account`, ...).
pub type Units = BTreeMap<String, String>;

/// Why a unit is or is not enrolled in an experiment, with the buckets that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Explanation<'a> {
    /// The experiment is not running.
    NotRunning,
    /// The experiment's routes do not include the request's URL.
    OutsideRoute,
    /// `now` is outside `start_at`/`end_at`.
    OutsideWindow,
    /// The request has no id of the experiment's unit type (nor of its fallback).
    NoUnit,
    /// A valid force token pins this variant.
    Forced { variant: &'a str },
    /// The unit id is on this variant's allow-list.
    AllowListed { variant: &'a str },
    /// The visitor's sticky record keeps the variant drawn on their fallback id.
    Sticky { variant: &'a str },
    /// A crawler, and the bot policy excludes bots.
    Bot,
    /// A crawler, and the bot policy shows bots the control variant.
    BotControl { variant: &'a str },
    /// The unit is in the environment holdout.
    Holdout { holdout_bucket: u16 },
    /// No targeting rule matched.
    NotTargeted,
    /// The unit is not assigned a required variant of `requires`.
    Prerequisite { requires: &'a str },
    /// The layer bucket is in another experiment's slice.
    OutsideLayer { layer_bucket: u16 },
    /// The traffic gate is at or above the experiment's traffic.
    TrafficGate { gate: u16, traffic: u16 },
    /// The bucket falls in no variant's ranges.
    NoVariant { bucket: u16 },
    /// Enrolled by bucketing on the id of `unit` type.
    Assigned {
        variant: &'a str,
        unit: &'a str,
        bucket: u16,
        gate: u16,
    },
}

/// The variant one experiment assigned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment<'a> {
    pub experiment: &'a Experiment,
    pub variant: &'a Variant,
    /// Positions of the experiment in `snapshot.experiments` and of the variant in its
    /// `variants`, for callers that keep per-variant tables.
    pub experiment_index: usize,
    pub variant_index: usize,
    /// Decided on the experiment's fallback unit, or kept by the sticky record: what the
    /// visitor's next sticky record remembers.
    pub by_fallback: bool,
}
