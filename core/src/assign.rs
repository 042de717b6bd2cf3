//! Assignment: the six enrolment steps of DESIGN §2, applied to every running experiment.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::bucket::draw;
use crate::engine::{Engine, PreparedExperiment};
use crate::snapshot::{Experiment, Variant};
use crate::targeting::{matches, Attributes};

/// Unit identifiers by unit type (`user`, `account`, ...).
pub type Units = BTreeMap<String, String>;

/// Everything a decision depends on. Time is an input: core reads no clock.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub units: &'a Units,
    pub attributes: &'a Attributes,
    pub now_ms: i64,
    /// Only these experiment keys (`None` = all).
    pub only: Option<&'a BTreeSet<String>>,
}

/// Why a unit is not enrolled in an experiment, or where it landed (DESIGN §2 steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Explanation {
    /// Step 1: the experiment is not running.
    NotRunning,
    /// Step 1: `now` is outside `start_at`/`end_at`.
    OutsideWindow,
    /// Step 2: the request has no id of the experiment's unit type.
    NoUnit,
    /// Step 3: no targeting rule matched.
    NotTargeted,
    /// Step 4: the layer bucket is in another experiment's slice.
    OutsideLayer { layer_bucket: u16 },
    /// Step 5: the traffic gate is at or above the experiment's traffic.
    TrafficGate { gate: u16, traffic: u16 },
    /// Step 6: the bucket falls in no variant's ranges.
    NoVariant { bucket: u16 },
    /// Enrolled.
    Assigned { bucket: u16, gate: u16 },
}

/// The variant one experiment assigned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment<'a> {
    pub experiment: &'a Experiment,
    pub variant: &'a Variant,
}

impl Engine {
    /// Assigns `subject` to a variant of every experiment it is enrolled in, in experiment-key
    /// order. Experiments it is not enrolled in are absent.
    pub fn assign(&self, subject: &Subject<'_>) -> Vec<Assignment<'_>> {
        // One layer hash per request, shared by the layer's experiments (DESIGN §2 step 4).
        let mut layer_buckets: Vec<Option<u16>> = vec![None; self.layer_seeds.len()];
        let experiments = &self.snapshot().experiments;
        self.running
            .iter()
            .filter_map(|prepared| {
                let experiment = experiments.get(prepared.index)?;
                if subject
                    .only
                    .is_some_and(|only| !only.contains(&experiment.key))
                {
                    return None;
                }
                let v = self.enrol(prepared, subject, &mut layer_buckets).ok()?;
                Some(Assignment {
                    experiment,
                    variant: experiment.variants.get(v)?,
                })
            })
            .collect()
    }

    /// For every experiment in the snapshot (any status), the step that decided it.
    pub fn explain(&self, subject: &Subject<'_>) -> Vec<(&Experiment, Explanation)> {
        let mut layer_buckets: Vec<Option<u16>> = vec![None; self.layer_seeds.len()];
        let mut out: Vec<(&Experiment, Explanation)> = self
            .snapshot()
            .experiments
            .iter()
            .filter(|e| subject.only.is_none_or(|only| only.contains(&e.key)))
            .map(|e| (e, Explanation::NotRunning))
            .collect();
        for prepared in &self.running {
            let Some(experiment) = self.snapshot().experiments.get(prepared.index) else {
                continue;
            };
            if let Some(slot) = out.iter_mut().find(|(e, _)| e.key == experiment.key) {
                slot.1 = match self.enrol(prepared, subject, &mut layer_buckets) {
                    Ok(_) => {
                        let unit = subject.units.get(&prepared.unit).map_or("", String::as_str);
                        let d = draw(&prepared.salt, unit);
                        Explanation::Assigned {
                            bucket: d.bucket,
                            gate: d.gate,
                        }
                    }
                    Err(why) => why,
                };
            }
        }
        out.sort_by(|a, b| a.0.key.cmp(&b.0.key));
        out
    }

    /// Steps 1-6 for one running experiment; returns the variant index.
    fn enrol(
        &self,
        exp: &PreparedExperiment,
        subject: &Subject<'_>,
        layer_buckets: &mut [Option<u16>],
    ) -> Result<usize, Explanation> {
        // 1. inside the window (status was filtered when the engine was built)
        if exp.start_ms.is_some_and(|start| subject.now_ms < start)
            || exp.end_ms.is_some_and(|end| subject.now_ms >= end)
        {
            return Err(Explanation::OutsideWindow);
        }
        // 2. unit present
        let unit = subject.units.get(&exp.unit).ok_or(Explanation::NoUnit)?;
        // 3. targeting
        if !matches(&exp.rules, subject.attributes) {
            return Err(Explanation::NotTargeted);
        }
        // 4. layer slot
        if let Some(membership) = &exp.layer {
            let bucket = self.layer_bucket(membership.layer, unit, layer_buckets);
            if !in_ranges(&membership.ranges, bucket) {
                return Err(Explanation::OutsideLayer {
                    layer_bucket: bucket,
                });
            }
        }
        // 5. traffic gate, 6. variant bucket: both from one digest
        let d = draw(&exp.salt, unit);
        if d.gate >= exp.traffic {
            return Err(Explanation::TrafficGate {
                gate: d.gate,
                traffic: exp.traffic,
            });
        }
        exp.slots
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&d.bucket))
            .map(|(_, _, v)| *v)
            .ok_or(Explanation::NoVariant { bucket: d.bucket })
    }

    /// The unit's bucket in `layer`, hashed at most once per request.
    fn layer_bucket(&self, layer: usize, unit: &str, cache: &mut [Option<u16>]) -> u16 {
        if let Some(Some(bucket)) = cache.get(layer) {
            return *bucket;
        }
        let seed = self.layer_seeds.get(layer).map_or("", String::as_str);
        let bucket = draw(seed, unit).bucket;
        if let Some(slot) = cache.get_mut(layer) {
            *slot = Some(bucket);
        }
        bucket
    }
}

fn in_ranges(ranges: &[(u16, u16)], bucket: u16) -> bool {
    ranges
        .iter()
        .any(|(start, end)| (*start..=*end).contains(&bucket))
}
