#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde::Deserialize;

use super::*;
use crate::stats::tests::close;

/// The Bayesian cases of `scripts/stats-reference.py` (scipy's normal, losses integrated).
#[derive(Deserialize)]
struct Reference {
    alpha: f64,
    bayesian: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    control: (f64, f64),
    treatment: (f64, f64),
    chance_to_beat_control: f64,
    lift: f64,
    lift_ci_low: f64,
    lift_ci_high: f64,
    expected_loss: f64,
    control_expected_loss: f64,
}

#[test]
fn the_bayesian_reading_matches_scipy() {
    let r: Reference = serde_json::from_str(include_str!("../reference.json")).unwrap();
    assert_eq!(r.bayesian.len(), 4, "the reference has four Bayesian cases");
    for (i, case) in r.bayesian.iter().enumerate() {
        let got = bayesian(
            case.control.0,
            case.control.1,
            case.treatment.0,
            case.treatment.1,
            r.alpha,
        )
        .unwrap();
        close(got.lift, case.lift, &format!("case {i} lift"));
        close(
            got.chance_to_beat_control,
            case.chance_to_beat_control,
            &format!("case {i} chance"),
        );
        close(got.lift_ci_low, case.lift_ci_low, &format!("case {i} low"));
        close(
            got.lift_ci_high,
            case.lift_ci_high,
            &format!("case {i} high"),
        );
        close(
            got.expected_loss,
            case.expected_loss,
            &format!("case {i} loss"),
        );
        close(
            got.control_expected_loss,
            case.control_expected_loss,
            &format!("case {i} control loss"),
        );
    }
}

#[test]
fn undefined_readings_say_so() {
    assert_eq!(
        bayesian(0.0, 1.0, 1.0, 1.0, 0.05),
        None,
        "no lift over zero"
    );
    assert_eq!(bayesian(1.0, 0.0, 1.0, 0.0, 0.05), None, "nothing varies");
}
