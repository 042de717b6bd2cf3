//! The draw step for many experiments at once: every step before the draw first, then all
//! the draws together (which hashes several keys at once where the target allows), then each
//! experiment's traffic gate and variant bucket.

use crate::bucket::{draw_all, Draw};
use crate::decision::Explanation;

use super::{variant_key, Evaluation};

/// Where an experiment's evaluation stands before its draw.
pub(super) enum Step<'e, 's> {
    /// The variant (if any) and why, reached without a draw.
    Decided(Option<usize>, Explanation<'e>),
    /// Only the traffic gate and the variant bucket are left: the draw of `unit` (of type
    /// `unit_type`) on the experiment's `salt` decides.
    Draw {
        salt: &'e str,
        unit_type: &'e str,
        unit: &'s str,
    },
}

impl<'e, 's> Evaluation<'e, 's> {
    /// The variant (if any) of each running experiment at `positions`, the draws made together.
    /// Only for snapshots without prerequisites: nothing mid-way reads another experiment's
    /// variant.
    pub(super) fn variants_drawn_together(
        &mut self,
        positions: impl Iterator<Item = usize>,
    ) -> Vec<(usize, Option<usize>)> {
        let steps: Vec<(usize, Step<'e, 's>)> = positions
            .map(|pos| (pos, self.decide_until_draw(pos, 0)))
            .collect();
        let pairs: Vec<(&str, &str)> = steps
            .iter()
            .filter_map(|(_, step)| match step {
                Step::Draw { salt, unit, .. } => Some((*salt, *unit)),
                Step::Decided(..) => None,
            })
            .collect();
        let mut draws = draw_all(&pairs).into_iter();
        steps
            .into_iter()
            .map(|(pos, step)| {
                let variant = match step {
                    Step::Decided(v, _) => v,
                    Step::Draw { unit_type, .. } => draws
                        .next()
                        .and_then(|d| self.decide_by_draw(pos, unit_type, d).0),
                };
                (pos, variant)
            })
            .collect()
    }

    /// Steps 5 and 6 for the running experiment at `pos`, from the draw of its unit: the
    /// traffic gate, then the variant bucket.
    pub(super) fn decide_by_draw(
        &self,
        pos: usize,
        unit_type: &'e str,
        d: Draw,
    ) -> (Option<usize>, Explanation<'e>) {
        let engine = self.engine;
        let Some(exp) = engine.running.get(pos) else {
            return (None, Explanation::NotRunning);
        };
        let Some(experiment) = engine.snapshot().experiments.get(exp.index) else {
            return (None, Explanation::NotRunning);
        };
        if d.gate >= exp.traffic {
            let why = Explanation::TrafficGate {
                gate: d.gate,
                traffic: exp.traffic,
            };
            return (None, why);
        }
        let slot = exp
            .slots
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&d.bucket));
        match slot {
            Some((_, _, v)) => {
                let why = Explanation::Assigned {
                    variant: variant_key(experiment, *v),
                    unit: unit_type,
                    bucket: d.bucket,
                    gate: d.gate,
                };
                (Some(*v), why)
            }
            None => (None, Explanation::NoVariant { bucket: d.bucket }),
        }
    }
}
