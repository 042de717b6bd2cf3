#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Gamma, Poisson};
use serde::Deserialize;

use super::*;
use crate::stats::cuped;
use crate::stats::tests::close;

/// The ratio cases of `scripts/stats-reference.py`: statsmodels' delta method, and OLS on the
/// linearised values for CUPED.
#[derive(Deserialize)]
struct Reference {
    ratio: Vec<RatioCase>,
    ratio_cuped: Vec<CupedCase>,
}

#[derive(Deserialize)]
struct RatioCase {
    arms: Vec<Arm>,
    difference: f64,
    variance: f64,
    p_value: f64,
    ci_low: f64,
    ci_high: f64,
}

#[derive(Deserialize)]
struct Arm {
    units: u64,
    numerator_mean: f64,
    denominator_mean: f64,
    numerator_variance: f64,
    denominator_variance: f64,
    covariance: f64,
}

#[derive(Deserialize)]
struct CupedCase {
    arms: Vec<CupedArm>,
    theta: f64,
    adjusted_difference: f64,
    adjusted_variances: Vec<f64>,
}

#[derive(Deserialize)]
struct CupedArm {
    units: u64,
    means: [f64; 4],
    covariance: [[f64; 4]; 4],
}

fn reference() -> Reference {
    serde_json::from_str(include_str!("../reference.json")).unwrap()
}

fn moments(a: &Arm) -> RatioMoments {
    RatioMoments {
        units: a.units,
        numerator_mean: a.numerator_mean,
        denominator_mean: a.denominator_mean,
        numerator_variance: a.numerator_variance,
        denominator_variance: a.denominator_variance,
        covariance: a.covariance,
    }
}

#[test]
fn the_delta_method_matches_statsmodels() {
    let cases = reference().ratio;
    assert_eq!(cases.len(), 3);
    for case in cases {
        let (c, t) = (moments(&case.arms[0]), moments(&case.arms[1]));
        let got = ratio_comparison(&c, &t, 0.05).unwrap();
        close(got.difference, case.difference, "difference");
        let (sc, st) = (ratio_summary(&c).unwrap(), ratio_summary(&t).unwrap());
        let v = sc.variance / sc.units as f64 + st.variance / st.units as f64;
        close(v, case.variance, "variance");
        close(got.p_value, case.p_value, "p");
        close(got.ci_low, case.ci_low, "ci low");
        close(got.ci_high, case.ci_high, "ci high");
    }
}

#[test]
fn ratios_under_cuped_match_the_regression_on_linearised_values() {
    let cases = reference().ratio_cuped;
    assert_eq!(cases.len(), 2);
    for case in cases {
        let arms: Vec<RatioCovariateMoments> = case
            .arms
            .iter()
            .map(|a| RatioCovariateMoments {
                units: a.units,
                means: a.means,
                covariance: a.covariance,
            })
            .collect();
        let summaries = ratio_covariates(&arms).unwrap();
        let adjustment = cuped(&summaries).unwrap();
        close(adjustment.theta, case.theta, "theta");
        let difference = adjustment.arms[1].mean - adjustment.arms[0].mean;
        close(difference, case.adjusted_difference, "adjusted difference");
        for (arm, want) in adjustment.arms.iter().zip(&case.adjusted_variances) {
            close(arm.variance, *want, "adjusted variance");
        }
        assert!(adjustment.variance_reduction > 0.0);
    }
}

#[test]
fn undefined_ratios_say_so() {
    let none = RatioMoments {
        units: 10,
        numerator_mean: 0.0,
        denominator_mean: 0.0,
        numerator_variance: 0.0,
        denominator_variance: 0.0,
        covariance: 0.0,
    };
    assert_eq!(ratio_summary(&none), None);
    let one = RatioMoments {
        units: 1,
        denominator_mean: 1.0,
        ..none
    };
    assert_eq!(ratio_summary(&one), None);
    let no_pre = RatioCovariateMoments {
        units: 10,
        means: [5.0, 1.0, 0.0, 0.0],
        covariance: [[1.0; 4]; 4],
    };
    assert_eq!(ratio_covariates(&[no_pre, no_pre]), None);
}

/// Moments of `units` simulated units: Poisson orders, gamma order values.
fn simulate(rng: &mut StdRng, units: usize) -> RatioMoments {
    let orders = Poisson::new(1.5).unwrap();
    let value = Gamma::new(4.0, 10.0).unwrap();
    let (mut n, mut d) = (Vec::new(), Vec::new());
    for _ in 0..units {
        let k: f64 = orders.sample(rng);
        d.push(k);
        n.push((0..k as usize).map(|_| value.sample(rng)).sum::<f64>());
    }
    let count = units as f64;
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / count;
    let (mn, md) = (mean(&n), mean(&d));
    let cov = |a: &[f64], ma: f64, b: &[f64], mb: f64| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - ma) * (y - mb))
            .sum::<f64>()
            / (count - 1.0)
    };
    RatioMoments {
        units: units as u64,
        numerator_mean: mn,
        denominator_mean: md,
        numerator_variance: cov(&n, mn, &n, mn),
        denominator_variance: cov(&d, md, &d, md),
        covariance: cov(&n, mn, &d, md),
    }
}

#[test]
fn a_a_ratio_tests_keep_alpha() {
    let mut rng = StdRng::seed_from_u64(11);
    let runs = 400;
    let rejected = (0..runs)
        .filter(|_| {
            let (c, t) = (simulate(&mut rng, 400), simulate(&mut rng, 400));
            ratio_comparison(&c, &t, 0.05).unwrap().p_value <= 0.05
        })
        .count();
    let rate = rejected as f64 / f64::from(runs);
    eprintln!("A/A revenue per order, {runs} runs of 2 x 400 units: false positives {rate}");
    // Standard error at 0.05 over 400 runs: 0.011.
    assert!(rate <= 0.05 + 3.0 * 0.011, "FPR {rate}");
    assert!(rate >= 0.01, "FPR {rate}: the variance is too wide");
}
