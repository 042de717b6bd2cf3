#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal as NormalDist};
use serde::Deserialize;

use super::*;
use crate::bucket::draw;

/// Numbers computed by scipy and statsmodels (`scripts/stats-reference.py`).
#[derive(Deserialize)]
struct Reference {
    alpha: f64,
    welch: Vec<WelchCase>,
    proportions: Vec<ProportionCase>,
    srm: Vec<SrmCase>,
    corrections: Vec<CorrectionCase>,
    msprt: Vec<MsprtCase>,
}

#[derive(Deserialize)]
struct SummaryCase {
    units: u64,
    mean: f64,
    variance: f64,
}

#[derive(Deserialize)]
struct WelchCase {
    control: SummaryCase,
    treatment: SummaryCase,
    difference: f64,
    p_value: f64,
    ci_low: f64,
    ci_high: f64,
}

#[derive(Deserialize)]
struct ProportionCase {
    control: (u64, u64),
    treatment: (u64, u64),
    difference: f64,
    p_value: f64,
    ci_low: f64,
    ci_high: f64,
}

#[derive(Deserialize)]
struct SrmCase {
    observed: Vec<u64>,
    weights: Vec<f64>,
    chi_square: f64,
    p_value: f64,
    sequential_p_value: f64,
}

#[derive(Deserialize)]
struct CorrectionCase {
    p_values: Vec<f64>,
    holm: Vec<f64>,
    benjamini_hochberg: Vec<f64>,
}

#[derive(Deserialize)]
struct MsprtCase {
    difference: f64,
    variance: f64,
    tau2: f64,
    p_value: f64,
}

fn reference() -> Reference {
    let r: Reference = serde_json::from_str(include_str!("reference.json")).unwrap();
    // A shortened reference would pass every loop below: its size is pinned.
    assert_eq!(
        [r.welch.len(), r.proportions.len(), r.srm.len(), r.corrections.len(), r.msprt.len()],
        [4, 4, 6, 3, 3],
        "scripts/stats-reference.py writes 4 Welch, 4 proportion, 6 SRM, 3 correction and 3 mSPRT cases"
    );
    r
}

/// Agreement with a reference value: 1e-6 relative, or 1e-12 absolute for values near 0.
pub(super) fn close(actual: f64, expected: f64, what: &str) {
    let tolerance = 1e-12_f64.max(expected.abs() * 1e-6);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} != {expected}"
    );
}

fn summary(c: &SummaryCase) -> Summary {
    Summary {
        units: c.units,
        mean: c.mean,
        variance: c.variance,
    }
}

#[test]
fn welch_matches_statsmodels() {
    let r = reference();
    for (i, case) in r.welch.iter().enumerate() {
        let got = welch(&summary(&case.control), &summary(&case.treatment), r.alpha).unwrap();
        close(
            got.difference,
            case.difference,
            &format!("welch {i} difference"),
        );
        close(got.p_value, case.p_value, &format!("welch {i} p"));
        close(got.ci_low, case.ci_low, &format!("welch {i} ci_low"));
        close(got.ci_high, case.ci_high, &format!("welch {i} ci_high"));
    }
}

#[test]
fn two_proportions_match_statsmodels() {
    let r = reference();
    for (i, case) in r.proportions.iter().enumerate() {
        let (xc, nc) = case.control;
        let (xt, nt) = case.treatment;
        let got = two_proportions(xc, nc, xt, nt, r.alpha).unwrap();
        close(
            got.difference,
            case.difference,
            &format!("prop {i} difference"),
        );
        close(got.p_value, case.p_value, &format!("prop {i} p"));
        close(got.ci_low, case.ci_low, &format!("prop {i} ci_low"));
        close(got.ci_high, case.ci_high, &format!("prop {i} ci_high"));
    }
}

#[test]
fn sample_ratio_matches_scipy_and_flags_52_48() {
    let r = reference();
    for (i, case) in r.srm.iter().enumerate() {
        let got = sample_ratio(&case.observed, &case.weights).unwrap();
        close(got.chi_square, case.chi_square, &format!("srm {i} chi2"));
        close(got.p_value, case.p_value, &format!("srm {i} p"));
        close(
            got.sequential_p_value,
            case.sequential_p_value,
            &format!("srm {i} sequential p"),
        );
        assert_eq!(got.mismatch, case.sequential_p_value < SRM_ALPHA);
    }
    // One look's chi-square would flag 52/48 at 10,000 units; the always-valid test asks for
    // a little more evidence, and has it at 5400/4800.
    let early = sample_ratio(&[5200, 4800], &[1.0, 1.0]).unwrap();
    assert!(early.p_value < SRM_ALPHA && !early.mismatch, "{early:?}");
    assert!(sample_ratio(&[5400, 4800], &[1.0, 1.0]).unwrap().mismatch);
    assert!(!sample_ratio(&[5010, 4990], &[1.0, 1.0]).unwrap().mismatch);
}

/// A/A experiments looked at every day for a month: how many ever raise the alarm.
fn srm_false_alarms(experiments: usize, level: f64, seed: u64) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut sequential, mut fixed) = (0_usize, 0_usize);
    for _ in 0..experiments {
        let mut counts = [0_u64; 2];
        let (mut seq_alarm, mut fixed_alarm) = (false, false);
        for _day in 0..30 {
            for _unit in 0..300 {
                counts[usize::from(rng.random_bool(0.5))] += 1;
            }
            let s = sample_ratio(&counts, &[1.0, 1.0]).unwrap();
            seq_alarm |= s.sequential_p_value < level;
            fixed_alarm |= s.p_value < level;
        }
        sequential += usize::from(seq_alarm);
        fixed += usize::from(fixed_alarm);
    }
    let n = experiments as f64;
    (sequential as f64 / n, fixed as f64 / n)
}

#[test]
fn sequential_srm_keeps_its_false_alarm_rate_under_daily_looks() {
    // At a level where the difference shows: 30 daily looks at chi-square push its false alarms
    // far past the level; the sequential test stays under it.
    let (level, experiments) = (0.05, 2000);
    let (sequential, fixed) = srm_false_alarms(experiments, level, 7);
    eprintln!(
        "SRM A/A, {experiments} experiments x 30 daily looks at {level}: sequential false \
         alarms {sequential}, daily chi-square {fixed}"
    );
    let se = (level * (1.0 - level) / experiments as f64).sqrt();
    assert!(
        sequential <= level + 3.0 * se,
        "sequential false alarms {sequential}"
    );
    assert!(
        fixed > 2.0 * level,
        "daily chi-square false alarms only {fixed}"
    );
    // And at the level the flag uses.
    let (sequential, _) = srm_false_alarms(experiments, SRM_ALPHA, 8);
    eprintln!("SRM A/A at {SRM_ALPHA}: sequential false alarms {sequential}");
    let se = (SRM_ALPHA * (1.0 - SRM_ALPHA) / experiments as f64).sqrt();
    assert!(
        sequential <= SRM_ALPHA + 3.0 * se,
        "false alarms {sequential} at {SRM_ALPHA}"
    );
}

#[test]
fn corrections_match_statsmodels() {
    for case in reference().corrections {
        let n = case.p_values.len();
        assert_eq!((case.holm.len(), case.benjamini_hochberg.len()), (n, n));
        assert_eq!(holm(&case.p_values).len(), n);
        for (got, want) in holm(&case.p_values).iter().zip(&case.holm) {
            close(*got, *want, "holm");
        }
        let bh = benjamini_hochberg(&case.p_values);
        assert_eq!(bh.len(), n);
        for (got, want) in bh.iter().zip(&case.benjamini_hochberg) {
            close(*got, *want, "benjamini-hochberg");
        }
    }
}

#[test]
fn msprt_matches_the_formula() {
    for case in reference().msprt {
        let got = msprt_p_value(case.difference, case.variance, case.tau2);
        close(got, case.p_value, "msprt");
    }
}

#[test]
fn undefined_statistics_are_none() {
    let flat = Summary {
        units: 10,
        mean: 1.0,
        variance: 0.0,
    };
    assert!(welch(&flat, &flat, 0.05).is_none());
    assert!(two_proportions(0, 0, 1, 10, 0.05).is_none());
    assert!(two_proportions(0, 10, 0, 10, 0.05).is_none());
    assert!(sample_ratio(&[0, 0], &[1.0, 1.0]).is_none());
    assert!(sample_ratio(&[1, 2], &[1.0, 0.0]).is_none());
    assert_eq!(msprt_p_value(1.0, 0.0, 1.0), 1.0);
}

/// One simulated A/A (or A/B) experiment observed daily: whether each test ever rejected.
struct Looks {
    fixed_final: bool,
    fixed_any_day: bool,
    sequential_any_day: bool,
}

/// Units arrive over `days`, split 50/50 by cleave's own bucketing on a per-run salt, and
/// convert with `rates[variant]`; both tests are looked at after every day.
fn simulate_conversion(seed: u64, rates: [f64; 2], per_day: u64, days: u64) -> Looks {
    let mut rng = StdRng::seed_from_u64(seed);
    let salt = format!("sim-{seed}");
    let (mut units, mut conversions) = ([0u64; 2], [0u64; 2]);
    let mut looks = Looks {
        fixed_final: false,
        fixed_any_day: false,
        sequential_any_day: false,
    };
    for day in 0..days {
        for i in 0..per_day {
            let unit = format!("u{day}-{i}");
            let v = usize::from(draw(&salt, &unit).bucket >= 5000);
            units[v] += 1;
            conversions[v] += u64::from(rng.random_bool(rates[v]));
        }
        let Some(c) = two_proportions(conversions[0], units[0], conversions[1], units[1], 0.05)
        else {
            continue;
        };
        looks.fixed_any_day |= c.p_value <= 0.05;
        looks.sequential_any_day |= c.sequential_p_value <= 0.05;
        looks.fixed_final = c.p_value <= 0.05;
    }
    looks
}

#[test]
fn a_a_false_positive_rate_stays_near_alpha_and_peeking_needs_the_sequential_test() {
    let runs = 400;
    let results: Vec<Looks> = (0..runs)
        .map(|seed| simulate_conversion(seed, [0.1, 0.1], 400, 10))
        .collect();
    let rate = |f: fn(&Looks) -> bool| results.iter().filter(|l| f(l)).count() as f64 / 400.0;
    let fixed = rate(|l| l.fixed_final);
    let peeking_fixed = rate(|l| l.fixed_any_day);
    let peeking_sequential = rate(|l| l.sequential_any_day);
    eprintln!(
        "A/A, 400 runs, 10 daily looks: fixed-horizon {fixed}, fixed peeked daily \
         {peeking_fixed}, sequential peeked daily {peeking_sequential}"
    );
    // 400 runs at alpha 0.05: standard error 0.011.
    assert!(
        (0.015..=0.085).contains(&fixed),
        "fixed-horizon FPR {fixed}"
    );
    assert!(
        peeking_sequential <= 0.06,
        "sequential FPR with daily peeking {peeking_sequential}"
    );
    // Why the sequential test exists: ten daily looks at the fixed-horizon p-value reject far
    // more often than alpha.
    assert!(
        peeking_fixed > fixed + 0.04,
        "peeking the fixed test: {peeking_fixed} vs {fixed}"
    );
}

#[test]
fn a_a_continuous_false_positive_rate_stays_near_alpha() {
    let mut rejections = (0, 0);
    for seed in 0..300u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = NormalDist::new(50.0, 20.0).unwrap();
        let mut values: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for i in 0..600 {
            let v = usize::from(draw(&format!("cont-{seed}"), &format!("u{i}")).bucket >= 5000);
            values[v].push(noise.sample(&mut rng));
        }
        let [c, t] = values.map(|xs| summarise(&xs));
        let got = welch(&c, &t, 0.05).unwrap();
        rejections.0 += usize::from(got.p_value <= 0.05);
        rejections.1 += usize::from(got.sequential_p_value <= 0.05);
    }
    let fixed = rejections.0 as f64 / 300.0;
    assert!((0.01..=0.095).contains(&fixed), "Welch FPR {fixed}");
    assert!(rejections.1 as f64 / 300.0 <= 0.06);
}

fn summarise(xs: &[f64]) -> Summary {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let variance = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Summary {
        units: xs.len() as u64,
        mean,
        variance,
    }
}

#[test]
fn a_real_lift_is_found_by_both_tests() {
    let found = (0..20)
        .map(|seed| simulate_conversion(1000 + seed, [0.10, 0.13], 1000, 10))
        .filter(|l| l.fixed_final && l.sequential_any_day)
        .count();
    assert!(
        found >= 19,
        "a 30% lift on 10k units found in {found}/20 runs"
    );
}

#[test]
fn the_confidence_sequence_is_where_the_msprt_stops_rejecting() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let v = rng.random_range(1e-6..1e-2);
        let tau2 = rng.random_range(1e-6..1e-2);
        let alpha = rng.random_range(0.001..0.2);
        let d: f64 = rng.random_range(-0.5..0.5);
        let m = msprt_margin(v, tau2, alpha);
        // At either end the test of that difference sits exactly at alpha.
        close(msprt_p_value(m, v, tau2), alpha, "p at the margin");
        // 0 is outside the sequence exactly when the sequential p-value rejects.
        assert_eq!(d.abs() >= m, msprt_p_value(d, v, tau2) <= alpha, "{d} {m}");
    }
    assert!(msprt_margin(0.0, 1.0, 0.05).is_infinite());
}

#[test]
fn the_confidence_sequence_covers_a_real_effect_at_every_daily_look() {
    // 10% against 12%: the sequence must hold 0.02 on all 20 days in 95% of runs.
    let runs = 300u64;
    let mut covered = 0;
    for seed in 0..runs {
        let mut rng = StdRng::seed_from_u64(1_000 + seed);
        let (mut units, mut conversions) = ([0u64; 2], [0u64; 2]);
        let mut always = true;
        for day in 0..20 {
            for i in 0..300 {
                let v =
                    usize::from(draw(&format!("cs-{seed}"), &format!("u{day}-{i}")).bucket >= 5000);
                units[v] += 1;
                conversions[v] += u64::from(rng.random_bool([0.10, 0.12][v]));
            }
            let c =
                two_proportions(conversions[0], units[0], conversions[1], units[1], 0.05).unwrap();
            always &= c.sequential_ci_low <= 0.02 && 0.02 <= c.sequential_ci_high;
            assert!(c.sequential_ci_low <= c.ci_low && c.ci_high <= c.sequential_ci_high);
        }
        covered += u64::from(always);
    }
    let rate = covered as f64 / runs as f64;
    eprintln!("confidence sequence covered the true effect on all 20 looks in {rate} of runs");
    // Standard error of a 0.95 rate over 300 runs: 0.0126.
    assert!(rate >= 0.95 - 3.0 * 0.0126, "coverage {rate}");
}
