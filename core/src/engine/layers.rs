//! Mutual-exclusion layers: members agree on salt and unit types, and running members hold
//! disjoint slices of the layer's bucket space.

use std::collections::BTreeMap;

use crate::keys::is_valid_key;
use crate::problems::Problems;
use crate::snapshot::{Experiment, LayerSlot};

use crate::keys::key_message;

/// Layers seen so far: their salts, unit types and the slices running experiments hold.
#[derive(Default)]
pub(super) struct LayerTable {
    index: BTreeMap<String, usize>,
    pub(super) seeds: Vec<String>,
    salts: Vec<String>,
    /// `(unit, fallback_unit)` of the layer's first member.
    units: Vec<(String, Option<String>)>,
    /// `(start, end, experiment index)` per layer.
    claims: Vec<Vec<(u16, u16, usize)>>,
}

impl LayerTable {
    /// Registers `exp` in its layer, checking it agrees with the layer's other members.
    pub(super) fn join(
        &mut self,
        slot: &LayerSlot,
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
        let units = (exp.unit.clone(), exp.fallback_unit.clone());
        if let Some(&layer) = self.index.get(&slot.key) {
            let (salt, first_units) = (self.salts.get(layer)?, self.units.get(layer)?);
            if *salt != slot.salt {
                problems.push(
                    format!("{path}.layer.salt"),
                    format!("layer {:?} already uses salt {salt:?}", slot.key),
                );
            }
            // One layer hash per request only works if every member hashes the same id.
            if *first_units != units {
                problems.push(
                    format!("{path}.unit"),
                    format!(
                        "layer {:?} hashes on unit type {:?} (fallback {:?})",
                        slot.key, first_units.0, first_units.1
                    ),
                );
            }
            return Some(layer);
        }
        let layer = self.seeds.len();
        self.index.insert(slot.key.clone(), layer);
        self.seeds.push(crate::bucket::layer_seed(&slot.salt));
        self.salts.push(slot.salt.clone());
        self.units.push(units);
        self.claims.push(Vec::new());
        Some(layer)
    }

    pub(super) fn claim(&mut self, layer: usize, ranges: &[(u16, u16)], experiment: usize) {
        if let Some(claims) = self.claims.get_mut(layer) {
            claims.extend(ranges.iter().map(|&(s, e)| (s, e, experiment)));
        }
    }

    /// Running experiments of one layer must hold disjoint slices.
    pub(super) fn check_overlaps(&mut self, experiments: &[Experiment], problems: &mut Problems) {
        let key = |i: usize| experiments.get(i).map_or("?", |e| e.key.as_str());
        for claims in &mut self.claims {
            crate::order::sort(claims);
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
