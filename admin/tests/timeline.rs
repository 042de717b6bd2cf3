//! Results over time against a real Postgres: each day's cumulative numbers are what results
//! showed at the end of that day, and the last day is today's results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "analysis/support.rs"]
mod support;

use axum::http::{Method, StatusCode};
use cleave_core::exposure::utc_day;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{app, event, exposure, ingest, now_ms, running_experiment};

const DAY_MS: i64 = 86_400_000;

/// One unit: its variant, when it was first exposed and when (if ever) it purchased.
struct Unit {
    variant: &'static str,
    id: String,
    exposed: i64,
    purchased: Option<i64>,
}

fn units() -> Vec<Unit> {
    let now = now_ms();
    let mut out = Vec::new();
    for (batch, at) in [now - 2 * DAY_MS, now - DAY_MS, now - 5_000]
        .into_iter()
        .enumerate()
    {
        for i in 0..300 {
            let n = batch * 300 + i;
            for (variant, every) in [("control", 10), ("treatment", 4)] {
                out.push(Unit {
                    variant,
                    id: format!("{variant}-{n}"),
                    exposed: at,
                    purchased: (n % every == 0).then_some(at + 1_000),
                });
            }
        }
    }
    // A unit of the first day that buys only today counts from today on.
    out.iter_mut()
        .find(|u| u.id == "control-1")
        .unwrap()
        .purchased = Some(now - 1_000);
    out
}

#[sqlx::test(migrations = "./migrations")]
async fn each_day_shows_the_cumulative_effect_and_the_last_day_is_todays_results(pool: PgPool) {
    let app = app(pool);
    let id = running_experiment(&app).await;
    let units = units();
    let exposures: Vec<Value> = units
        .iter()
        .map(|u| exposure("prod", "checkout", u.variant, &u.id, u.exposed))
        .collect();
    let events: Vec<Value> = units
        .iter()
        .filter_map(|u| {
            let at = u.purchased?;
            Some(event(&format!("p-{}", u.id), &u.id, "purchase", 1.0, at))
        })
        .collect();
    let (status, body) = ingest(
        &app,
        json!({"environment": "prod", "exposures": exposures, "events": events}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, t) = app
        .call(Method::GET, &format!("/experiments/{id}/timeline"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(
        t["metric"], "purchase",
        "the first primary metric by default"
    );
    let days = t["days"].as_array().unwrap();
    let first = utc_day(units[0].exposed).unwrap();
    let today = utc_day(now_ms()).unwrap();
    assert_eq!(days[0]["day"], first.as_str());
    assert_eq!(days.last().unwrap()["day"], today.as_str());
    assert!((3..=4).contains(&days.len()), "{} days", days.len());
    for day in days {
        let d = day["day"].as_str().unwrap();
        for (at, variant) in ["control", "treatment"].iter().enumerate() {
            let by_then = |t: i64| utc_day(t).unwrap().as_str() <= d;
            let mine: Vec<&Unit> = units
                .iter()
                .filter(|u| u.variant == *variant && by_then(u.exposed))
                .collect();
            let converted = mine
                .iter()
                .filter(|u| u.purchased.is_some_and(by_then))
                .count();
            let v = &day["variants"][at];
            assert_eq!(v["variant"], *variant);
            assert_eq!(v["units"], mine.len(), "{d} {variant}");
            assert_eq!(v["conversions"], converted, "{d} {variant}");
        }
        // The always-valid sequence is wider than the one-look interval, and excludes 0
        // exactly when the sequential p-value rejects.
        let c = &day["comparisons"][0];
        let f = |k: &str| c[k].as_f64().unwrap();
        assert!(f("sequentialCiLow") <= f("ciLow") && f("ciHigh") <= f("sequentialCiHigh"));
        assert_eq!(
            f("sequentialCiLow") > 0.0,
            f("sequentialPValue") < 0.05,
            "{c}"
        );
    }

    let (_, r) = app
        .call(Method::GET, &format!("/experiments/{id}/results"), None)
        .await;
    let today_test = &days.last().unwrap()["comparisons"][0];
    let results_test = &r["metrics"][0]["comparisons"][0];
    for k in [
        "difference",
        "ciLow",
        "ciHigh",
        "pValue",
        "sequentialPValue",
    ] {
        assert_eq!(today_test[k], results_test[k], "{k}");
    }

    let (status, revenue) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/timeline?metric=revenue&alpha=0.01"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revenue}");
    assert_eq!(
        (revenue["metric"].clone(), revenue["alpha"].clone()),
        (json!("revenue"), json!(0.01))
    );
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/timeline?metric=nope"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body.to_string().contains("not judged on metric nope"),
        "{body}"
    );
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/timeline?alpha=2"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
