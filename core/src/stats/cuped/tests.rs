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
use crate::stats::welch;

/// The CUPED cases of `scripts/stats-reference.py` (statsmodels OLS `y ~ arm + x`).
#[derive(Deserialize)]
struct Reference {
    cuped: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    arms: Vec<Arm>,
    theta: f64,
    adjusted_difference: f64,
    adjusted_variances: Vec<f64>,
}

#[derive(Deserialize)]
struct Arm {
    units: u64,
    mean: f64,
    variance: f64,
    covariate_mean: f64,
    covariate_variance: f64,
    covariance: f64,
}

#[test]
fn the_adjustment_is_the_regression_adjustment_of_statsmodels() {
    let r: Reference = serde_json::from_str(include_str!("../reference.json")).unwrap();
    assert_eq!(r.cuped.len(), 3, "the reference has three CUPED cases");
    for (i, case) in r.cuped.iter().enumerate() {
        let arms: Vec<CovariateSummary> = case
            .arms
            .iter()
            .map(|a| CovariateSummary {
                units: a.units,
                mean: a.mean,
                variance: a.variance,
                covariate_mean: a.covariate_mean,
                covariate_variance: a.covariate_variance,
                covariance: a.covariance,
            })
            .collect();
        let got = cuped(&arms).unwrap();
        close(got.theta, case.theta, &format!("case {i} theta"));
        close(
            got.arms[1].mean - got.arms[0].mean,
            case.adjusted_difference,
            &format!("case {i} difference"),
        );
        for (a, want) in got.arms.iter().zip(&case.adjusted_variances) {
            close(a.variance, *want, &format!("case {i} adjusted variance"));
        }
        assert!(got.variance_reduction > 0.0, "case {i}");
    }
}

/// One simulated A/A run of `n` units an arm whose covariate correlates `rho` with the
/// metric: (unadjusted, adjusted) interval widths and whether each found a difference.
fn run(rng: &mut StdRng, n: usize, rho: f64) -> ((f64, bool), (f64, bool)) {
    let z = Normal::new(0.0, 1.0).unwrap();
    let arm = |rng: &mut StdRng| {
        let pairs: Vec<(f64, f64)> = (0..n)
            .map(|_| {
                let x = z.sample(rng);
                (x, rho * x + (1.0 - rho * rho).sqrt() * z.sample(rng))
            })
            .collect();
        let mean = |f: &dyn Fn(&(f64, f64)) -> f64| pairs.iter().map(f).sum::<f64>() / n as f64;
        let (mx, my) = (mean(&|p| p.0), mean(&|p| p.1));
        let co = |f: &dyn Fn(&(f64, f64)) -> f64| pairs.iter().map(f).sum::<f64>() / (n - 1) as f64;
        CovariateSummary {
            units: n as u64,
            mean: my,
            variance: co(&|p| (p.1 - my) * (p.1 - my)),
            covariate_mean: mx,
            covariate_variance: co(&|p| (p.0 - mx) * (p.0 - mx)),
            covariance: co(&|p| (p.0 - mx) * (p.1 - my)),
        }
    };
    let arms = [arm(rng), arm(rng)];
    let plain = |a: &CovariateSummary| Summary {
        units: a.units,
        mean: a.mean,
        variance: a.variance,
    };
    let before = welch(&plain(&arms[0]), &plain(&arms[1]), 0.05).unwrap();
    let adjusted = cuped(&arms).unwrap();
    let after = welch(&adjusted.arms[0], &adjusted.arms[1], 0.05).unwrap();
    (
        (before.ci_high - before.ci_low, before.p_value < 0.05),
        (after.ci_high - after.ci_low, after.p_value < 0.05),
    )
}

/// CUPED keeps the false-positive rate at α and narrows intervals by about `sqrt(1 - ρ²)`.
#[test]
fn a_a_runs_keep_alpha_and_narrow_by_the_correlation() {
    let (runs, rho) = (2000, 0.7);
    let mut rng = StdRng::seed_from_u64(20261203);
    let (mut ratio, mut false_positives) = (0.0, 0);
    for _ in 0..runs {
        let ((w0, _), (w1, found)) = run(&mut rng, 300, rho);
        ratio += w1 / w0;
        false_positives += u32::from(found);
    }
    let rate = f64::from(false_positives) / f64::from(runs);
    let ratio = ratio / f64::from(runs);
    eprintln!(
        "CUPED A/A, {runs} runs of 2 x 300 units, rho {rho}: false positives {rate}, \
         interval width ratio {ratio:.4} (sqrt(1 - rho^2) = {:.4})",
        (1.0 - rho * rho).sqrt()
    );
    // α plus three standard errors of a rate near 0.05 over 2000 runs.
    assert!(
        rate <= 0.05 + 3.0 * (0.05 * 0.95 / f64::from(runs)).sqrt(),
        "false positives {rate}"
    );
    let expected = (1.0 - rho * rho).sqrt();
    assert!(
        (ratio - expected).abs() < 0.01,
        "width ratio {ratio}, expected {expected}"
    );
}

#[test]
fn no_pre_period_data_means_no_adjustment() {
    let arm = CovariateSummary {
        units: 10,
        mean: 1.0,
        variance: 2.0,
        covariate_mean: 0.0,
        covariate_variance: 0.0,
        covariance: 0.0,
    };
    assert_eq!(cuped(&[arm, arm]), None);
}
