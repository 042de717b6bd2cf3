//! Results by slice: the same comparisons within each country, device class or browser family
//! a unit was first exposed from. Slices are exploratory — many looks at once find effects by
//! chance — so every slice's comparisons are corrected together as one family (Benjamini-
//! Hochberg unless asked otherwise), on the sequential test, without CUPED; a slice's sample
//! ratio check is corrected across slices the same way, so one bad region shows up by name.

use cleave_core::stats::{self, Correction, SampleRatio, SRM_ALPHA};
use serde::Serialize;
use uuid::Uuid;

use super::{
    allocated_buckets, analysed, arms, check, control_of, correct_family, metric_results, to_f64,
    to_u64, MetricResult, Options,
};
use crate::analytics_store::{Cohort, Dimension, SliceCount};
use crate::db::analysis as store;
use crate::error::Result;
use crate::model::Decision;
use crate::service::Ctx;

/// Slices reported, largest first; the rest are counted in `otherUnits`.
pub const MAX_SLICES: usize = 10;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceReport {
    pub experiment_id: Uuid,
    pub experiment: String,
    pub salt: String,
    pub dimension: Dimension,
    pub control: String,
    pub alpha: f64,
    pub correction: Correction,
    /// Always true: slice findings are leads to test, not results to ship on.
    pub exploratory: bool,
    pub slices: Vec<Slice>,
    /// Units in slices past the largest [`MAX_SLICES`].
    pub other_units: i64,
    /// Slices whose sample ratio check, corrected across slices, fails at `SRM_ALPHA`.
    pub srm_mismatches: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Slice {
    /// The dimension's value (`unknown` where the edge did not say).
    pub value: String,
    pub units: i64,
    pub variants: Vec<SliceArm>,
    pub srm: Option<SampleRatio>,
    /// The slice's sequential SRM p-value after correction across the slices reported.
    pub adjusted_srm_p_value: Option<f64>,
    pub metrics: Vec<MetricResult>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceArm {
    pub key: String,
    pub units: i64,
}

/// Results of experiment `id` sliced by `dimension`; `options.correction` is the family's.
///
/// # Errors
/// 404 for an unknown experiment or phase, 400 for options out of range.
pub async fn slices(
    ctx: &Ctx,
    id: Uuid,
    dimension: Dimension,
    options: Options,
) -> Result<SliceReport> {
    check(&options)?;
    let experiment = analysed(ctx, id, options.phase).await?;
    let metrics = store::experiment_metrics(&ctx.pool, id).await?;
    let control = control_of(&experiment).unwrap_or("control").to_owned();
    let buckets = allocated_buckets(&experiment);
    let arms = arms(&experiment, &buckets);
    let weights: Vec<f64> = arms
        .iter()
        .map(|arm| to_f64(buckets.get(arm).copied().unwrap_or(0)))
        .collect();
    let mut labelled = Cohort::phase(experiment.environment_id, &experiment.key, &experiment.salt);
    labelled.slice = Some((dimension, None));
    let counts = ctx.analytics.slice_counts(&labelled).await?;
    let (largest, other_units) = largest_slices(&counts);

    let mut slices = Vec::with_capacity(largest.len());
    let mut all_metrics = Vec::new();
    for (value, units) in &largest {
        let mut cohort = labelled;
        cohort.slice = Some((dimension, Some(value.as_str())));
        let phase = super::arms::Phase {
            cohort,
            arms: &arms,
            control: &control,
        };
        let mut results = metric_results(ctx, &phase, &metrics, options, 0).await?;
        let variants: Vec<SliceArm> = arms
            .iter()
            .map(|arm| SliceArm {
                key: (*arm).to_owned(),
                units: counts
                    .iter()
                    .find(|c| &c.slice == value && c.variant == *arm)
                    .map_or(0, |c| c.units),
            })
            .collect();
        let observed: Vec<u64> = variants.iter().map(|v| to_u64(v.units)).collect();
        all_metrics.append(&mut results);
        slices.push(Slice {
            value: value.clone(),
            units: *units,
            srm: stats::sample_ratio(&observed, &weights),
            adjusted_srm_p_value: None,
            variants,
            metrics: Vec::new(),
        });
    }

    // One family across every slice and metric, read on the sequential test.
    correct_family(&mut all_metrics, options, Decision::Sequential, |_| true);
    let mut corrected = all_metrics.into_iter();
    for slice in &mut slices {
        slice.metrics = corrected.by_ref().take(metrics.len()).collect();
    }
    let srm_mismatches = adjust_srm(&mut slices, options.correction);
    Ok(SliceReport {
        experiment_id: experiment.id,
        experiment: experiment.key.clone(),
        salt: experiment.salt.clone(),
        dimension,
        control,
        alpha: options.alpha,
        correction: options.correction,
        exploratory: true,
        slices,
        other_units,
        srm_mismatches,
    })
}

/// The largest [`MAX_SLICES`] slices by units (ties by name) and the units of the rest.
fn largest_slices(counts: &[SliceCount]) -> (Vec<(String, i64)>, i64) {
    let mut totals: Vec<(String, i64)> = Vec::new();
    for c in counts {
        match totals.iter_mut().find(|(value, _)| *value == c.slice) {
            Some((_, units)) => *units += c.units,
            None => totals.push((c.slice.clone(), c.units)),
        }
    }
    totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let rest = totals.split_off(totals.len().min(MAX_SLICES));
    (totals, rest.iter().map(|(_, units)| units).sum())
}

/// Corrects the slices' sequential SRM p-values together; names the slices that fail.
fn adjust_srm(slices: &mut [Slice], correction: Correction) -> Vec<String> {
    let tested: Vec<usize> = (0..slices.len())
        .filter(|&i| slices[i].srm.is_some())
        .collect();
    let p: Vec<f64> = tested
        .iter()
        .filter_map(|&i| slices[i].srm.as_ref().map(|s| s.sequential_p_value))
        .collect();
    let mut mismatches = Vec::new();
    for (&i, adjusted) in tested.iter().zip(stats::adjust(&p, correction)) {
        slices[i].adjusted_srm_p_value = Some(adjusted);
        if adjusted < SRM_ALPHA {
            mismatches.push(slices[i].value.clone());
        }
    }
    mismatches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(slice: &str, variant: &str, units: i64) -> SliceCount {
        SliceCount {
            slice: slice.to_owned(),
            variant: variant.to_owned(),
            units,
        }
    }

    #[test]
    fn the_largest_slices_are_kept_and_the_rest_counted() {
        let mut counts = vec![count("DE", "control", 5), count("DE", "treatment", 6)];
        for i in 0..12 {
            counts.push(count(&format!("C{i:02}"), "control", 1));
        }
        counts.push(count("FR", "treatment", 3));
        let (largest, rest) = largest_slices(&counts);
        assert_eq!(largest.len(), MAX_SLICES);
        assert_eq!(largest[0], ("DE".to_owned(), 11));
        assert_eq!(largest[1], ("FR".to_owned(), 3));
        // 12 one-unit slices, 8 of them kept (sorted by name), 4 left over.
        assert_eq!(largest[2].0, "C00");
        assert_eq!(rest, 4);
    }
}
