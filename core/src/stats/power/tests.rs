#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde::Deserialize;

use super::*;
use crate::stats::tests::close;

/// The power cases of `scripts/stats-reference.py` (statsmodels' `NormalIndPower`).
#[derive(Deserialize)]
struct Reference {
    alpha: f64,
    power: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    effect_size: f64,
    units_per_arm: f64,
    power: f64,
    wanted: f64,
    units_needed: f64,
}

#[test]
fn power_and_sample_size_match_statsmodels() {
    let r: Reference = serde_json::from_str(include_str!("../reference.json")).unwrap();
    assert_eq!(r.power.len(), 4, "the reference has four power cases");
    for (i, case) in r.power.iter().enumerate() {
        let got = power(case.effect_size, case.units_per_arm, r.alpha).unwrap();
        close(got, case.power, &format!("case {i} power"));
        let needed = units_per_arm(case.effect_size, r.alpha, case.wanted).unwrap();
        close(needed, case.units_needed, &format!("case {i} units"));
    }
}

/// Experiments of the planned size detect the planned effect about as often as planned.
#[test]
fn the_planned_size_has_the_planned_power_in_simulation() {
    let (alpha, wanted, effect) = (0.05, 0.8, 0.1);
    let n = units_per_arm(effect, alpha, wanted).unwrap().ceil() as usize;
    let mut rng = StdRng::seed_from_u64(20261203);
    let (control, treatment) = (
        Normal::new(0.0, 1.0).unwrap(),
        Normal::new(effect, 1.0).unwrap(),
    );
    let runs = 1500;
    let mut detected = 0;
    for _ in 0..runs {
        let mean = |d: &Normal<f64>, rng: &mut StdRng| {
            (0..n).map(|_| d.sample(rng)).sum::<f64>() / n as f64
        };
        let (c, t) = (mean(&control, &mut rng), mean(&treatment, &mut rng));
        // Known unit variance: the z-test the plan is for.
        if ((t - c) / (2.0 / n as f64).sqrt()).abs() > 1.959_963_984_540_054 {
            detected += 1;
        }
    }
    let rate = f64::from(detected) / f64::from(runs);
    // Three standard errors of a rate near 0.8 over 1500 runs.
    assert!(
        (rate - wanted).abs() < 0.031,
        "detected {rate} of runs, planned {wanted}"
    );
}

#[test]
fn a_plan_counts_units_and_days_left() {
    // Baseline 10 with variance 9 (sd 3): a 5% change is 0.5 / 3 standard deviations.
    let planned = plan(10.0, 9.0, 0.05, 0.05, 0.8, 2, Some((1000, 4.0))).unwrap();
    let per_arm = units_per_arm(0.5 / 3.0, 0.05, 0.8).unwrap().ceil() as u64;
    assert_eq!(planned.units_per_variant, per_arm);
    assert_eq!(planned.units_needed, 2 * per_arm);
    // 1000 units in 4 days is 250 a day.
    close(
        planned.days_left.unwrap(),
        (2 * per_arm - 1000) as f64 / 250.0,
        "days left",
    );
    assert_eq!(days_left(10, 12, 1.0), Some(0.0));
    assert_eq!(days_left(10, 0, 1.0), None);
    assert_eq!(plan(10.0, 0.0, 0.05, 0.05, 0.8, 2, None), None);
    assert_eq!(units_per_arm(0.0, 0.05, 0.8), None);
}
