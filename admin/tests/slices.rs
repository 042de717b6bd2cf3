//! Results by slice against a real Postgres: units fall in the slice of their first exposure,
//! every slice's comparisons are corrected together, and a slice whose arms are out of ratio
//! is named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "analysis/support.rs"]
mod support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{app, event, exposure, ingest, now_ms, running_experiment};

const DAY_MS: i64 = 86_400_000;

fn sliced(mut exposure: Value, country: Option<&str>) -> Value {
    if let Some(country) = country {
        exposure["slice"] = json!({"country": country, "device": "mobile", "browser": "chrome"});
    }
    exposure
}

/// `units[v]` units per variant in `country`, `buying[v]` of them purchase.
fn population(
    country: Option<&str>,
    units: [usize; 2],
    buying: [usize; 2],
    at: i64,
) -> (Vec<Value>, Vec<Value>) {
    let (mut exposures, mut events) = (Vec::new(), Vec::new());
    let tag = country.unwrap_or("none");
    for (v, variant) in ["control", "treatment"].iter().enumerate() {
        for i in 0..units[v] {
            let unit = format!("{tag}-{variant}-{i}");
            exposures.push(sliced(
                exposure("prod", "checkout", variant, &unit, at),
                country,
            ));
            if i < buying[v] {
                events.push(event(
                    &format!("p-{unit}"),
                    &unit,
                    "purchase",
                    1.0,
                    at + 1_000,
                ));
            }
        }
    }
    (exposures, events)
}

#[sqlx::test(migrations = "./migrations")]
async fn slices_compare_within_each_country_correct_together_and_name_a_skewed_one(pool: PgPool) {
    let app = app(pool);
    let id = running_experiment(&app).await;
    let first = now_ms() - 2 * DAY_MS;
    let mut batches = vec![
        // Germany: the treatment quadruples purchases.
        population(Some("DE"), [300, 300], [30, 120], first),
        // France: no effect.
        population(Some("FR"), [300, 300], [30, 30], first),
        // The US: twice as many control units as the 50/50 split allows.
        population(Some("US"), [500, 250], [50, 25], first),
        // Units whose edge did not say where they were.
        population(None, [50, 50], [5, 5], first),
    ];
    // A German unit seen a day later from France stays German: the first exposure decides.
    batches.push((
        vec![sliced(
            exposure(
                "prod",
                "checkout",
                "control",
                "DE-control-0",
                first + DAY_MS,
            ),
            Some("FR"),
        )],
        Vec::new(),
    ));
    for (exposures, events) in batches {
        let (status, body) = ingest(
            &app,
            json!({"environment": "prod", "exposures": exposures, "events": events}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let (status, r) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/slices?dimension=country"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["exploratory"], true);
    assert_eq!(r["dimension"], "country");
    assert_eq!(r["correction"], "benjamini_hochberg");
    assert_eq!(r["otherUnits"], 0);
    let slices = r["slices"].as_array().unwrap();
    let values: Vec<&str> = slices
        .iter()
        .map(|s| s["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["US", "DE", "FR", "unknown"], "largest first");
    let slice = |v: &str| slices.iter().find(|s| s["value"] == v).unwrap();
    let arm_units = |s: &Value| -> Vec<i64> {
        s["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["units"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(arm_units(slice("DE")), [300, 300]);
    assert_eq!(arm_units(slice("FR")), [300, 300]);
    assert_eq!(arm_units(slice("US")), [500, 250]);
    assert_eq!(arm_units(slice("unknown")), [50, 50]);
    assert_eq!(r["srmMismatches"], json!(["US"]));

    let purchase = |v: &str| -> Value {
        let metrics = slice(v)["metrics"].as_array().unwrap().clone();
        let m = metrics
            .into_iter()
            .find(|m| m["key"] == "purchase")
            .unwrap();
        assert!(m["cuped"].is_null(), "slices read without CUPED");
        m
    };
    let de = purchase("DE");
    assert_eq!(de["variants"][0]["units"], 300);
    assert_eq!(de["variants"][0]["conversions"], 30);
    assert_eq!(de["variants"][1]["conversions"], 120);
    let c = &de["comparisons"][0];
    assert_eq!(c["verdict"], "better", "{c}");
    let fr = &purchase("FR")["comparisons"][0];
    assert_eq!(fr["verdict"], "inconclusive", "{fr}");

    // Every slice's comparisons form one family: each adjusted p-value is at least its own,
    // and the Benjamini-Hochberg adjustment of the whole family reproduces them.
    let mut raw = Vec::new();
    let mut adjusted = Vec::new();
    for s in slices {
        for m in s["metrics"].as_array().unwrap() {
            for c in m["comparisons"].as_array().unwrap() {
                raw.push(c["sequentialPValue"].as_f64().unwrap());
                adjusted.push(c["adjustedSequentialPValue"].as_f64().unwrap());
            }
        }
    }
    assert!(raw.len() >= 4, "{raw:?}");
    let expected =
        cleave_core::stats::adjust(&raw, cleave_core::stats::Correction::BenjaminiHochberg);
    for (a, e) in adjusted.iter().zip(&expected) {
        assert!((a - e).abs() < 1e-12, "{adjusted:?} vs {expected:?}");
    }
    assert!(adjusted.iter().zip(&raw).all(|(a, p)| a >= p));
    assert!(
        adjusted.iter().zip(&raw).any(|(a, p)| a > p),
        "a family of several comparisons adjusts some"
    );

    // Device slices: every sliced unit said mobile.
    let (status, d) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/slices?dimension=device&correction=holm"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["correction"], "holm");
    let values: Vec<&str> = d["slices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["mobile", "unknown"]);
    assert_eq!(d["slices"][0]["units"], 1_950);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_bad_dimension_or_slice_is_refused_by_name(pool: PgPool) {
    let app = app(pool);
    let id = running_experiment(&app).await;
    for (query, says) in [
        (
            "?dimension=planet",
            "dimension \"planet\": use country, device or browser",
        ),
        ("", "dimension is required"),
    ] {
        let (status, body) = app
            .call(
                Method::GET,
                &format!("/experiments/{id}/slices{query}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(says), "{message}");
    }
    let mut bad = exposure("prod", "checkout", "control", "u-1", now_ms() - 1_000);
    bad["slice"] = json!({"country": "DE<script>"});
    let good = exposure("prod", "checkout", "control", "u-2", now_ms() - 1_000);
    let (status, body) = ingest(
        &app,
        json!({"environment": "prod", "exposures": [good, bad], "events": []}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = &body["exposures"]["refused"];
    assert_eq!(refused.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(refused[0]["index"], 1);
    let error = refused[0]["error"].as_str().unwrap();
    assert!(error.starts_with("exposures[1].slice.country"), "{error}");
    assert_eq!(
        support::count(&app.pool, "exposures").await,
        1,
        "the good neighbour is kept"
    );
}
