//! Assignment: the six enrolment steps of DESIGN §2, applied to every running experiment.

use std::collections::{BTreeMap, BTreeSet};

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
                if subject.only.is_some_and(|only| !only.contains(&experiment.key)) {
                    return None;
                }
                let v = self.enrol(prepared, subject, &mut layer_buckets)?;
                Some(Assignment {
                    experiment,
                    variant: experiment.variants.get(v)?,
                })
            })
            .collect()
    }

    /// Steps 1-6 for one running experiment; returns the variant index.
    fn enrol(
        &self,
        exp: &PreparedExperiment,
        subject: &Subject<'_>,
        layer_buckets: &mut [Option<u16>],
    ) -> Option<usize> {
        // 1. inside the window (status was filtered when the engine was built)
        if exp.start_ms.is_some_and(|start| subject.now_ms < start)
            || exp.end_ms.is_some_and(|end| subject.now_ms >= end)
        {
            return None;
        }
        // 2. unit present
        let unit = subject.units.get(&exp.unit)?;
        // 3. targeting
        if !matches(&exp.rules, subject.attributes) {
            return None;
        }
        // 4. layer slot
        if let Some(membership) = &exp.layer {
            let cached = layer_buckets.get_mut(membership.layer)?;
            let bucket = match *cached {
                Some(bucket) => bucket,
                None => {
                    let seed = self.layer_seeds.get(membership.layer)?;
                    let bucket = draw(seed, unit).bucket;
                    *cached = Some(bucket);
                    bucket
                }
            };
            if !in_ranges(&membership.ranges, bucket) {
                return None;
            }
        }
        // 5. traffic gate, 6. variant bucket: both from one digest
        let d = draw(&exp.salt, unit);
        if d.gate >= exp.traffic {
            return None;
        }
        exp.slots
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&d.bucket))
            .map(|(_, _, v)| *v)
    }
}

fn in_ranges(ranges: &[(u16, u16)], bucket: u16) -> bool {
    ranges
        .iter()
        .any(|(start, end)| (*start..=*end).contains(&bucket))
}
