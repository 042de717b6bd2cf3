//! The holdout report against a real Postgres: everyone else against the held-out units,
//! from the `$holdout` exposures the edge records, under the holdout's current salt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "analysis/support.rs"]
mod support;

use axum::http::{Method, StatusCode};
use cleave_core::exposure::{exposure_id, utc_day};
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{app, event, ingest, now_ms, running_experiment};

fn holdout_exposure(salt: &str, variant: &str, unit: &str, at: i64) -> Value {
    let day = utc_day(at).unwrap();
    json!({
        "id": exposure_id("prod", "$holdout", salt, variant, "user", unit, &day),
        "experiment": "$holdout", "variant": variant, "unit_type": "user", "unit": unit,
        "salt": salt, "day": day, "at_ms": at,
    })
}

#[sqlx::test(migrations = "./migrations")]
async fn the_rest_is_compared_with_the_held_out_under_the_current_salt(pool: PgPool) {
    let app = app(pool);
    running_experiment(&app).await; // defines purchase, revenue and latency
    let environments = app.ok(Method::GET, "/environments", Value::Null).await;
    let env = environments[0]["id"].as_str().unwrap().to_owned();
    let report = format!("/environments/{env}/holdout");

    let (status, body) = app.call(Method::GET, &report, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("has no holdout"));

    app.ok(
        Method::PUT,
        &format!("/environments/{env}/settings"),
        json!({"holdout": {"salt": "h2", "unit": "user", "ranges": [[0, 999]]}}),
    )
    .await;
    let at = now_ms() - 60_000;
    let (mut exposures, mut events) = (Vec::new(), Vec::new());
    // 10% held out buy 10% of the time, the rest 20%.
    for (variant, units, every) in [("held_out", 200, 10), ("rest", 1_800, 5)] {
        for i in 0..units {
            let unit = format!("{variant}-{i}");
            exposures.push(holdout_exposure("h2", variant, &unit, at));
            if i % every == 0 {
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
    // Exposures under an earlier salt are another holdout's.
    for i in 0..500 {
        exposures.push(holdout_exposure("h1", "held_out", &format!("old-{i}"), at));
    }
    let (status, body) = ingest(
        &app,
        json!({"environment": "prod", "exposures": exposures, "events": events}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["exposures"]["stored"], 2_500, "{body}");

    let (status, r) = app
        .call(
            Method::GET,
            &format!("{report}?metrics=purchase,revenue"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["salt"], "h2");
    assert_eq!(r["control"], "held_out");
    assert!((r["heldOutShare"].as_f64().unwrap() - 0.1).abs() < 1e-12);
    assert_eq!(r["variants"][0]["key"], "held_out");
    assert_eq!(r["variants"][0]["units"], 200);
    assert_eq!(r["variants"][1]["units"], 1_800);
    assert_eq!(r["srm"]["mismatch"], false, "{}", r["srm"]);
    let keys: Vec<&str> = r["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["purchase", "revenue"],
        "the metrics asked for, in order"
    );
    let purchase = &r["metrics"][0];
    assert_eq!(purchase["variants"][0]["conversions"], 20);
    assert_eq!(purchase["variants"][1]["conversions"], 360);
    let c = &purchase["comparisons"][0];
    assert_eq!(c["variant"], "rest");
    assert!(
        (c["difference"].as_f64().unwrap() - 0.1).abs() < 1e-9,
        "{c}"
    );
    assert_eq!(c["verdict"], "better", "{c}");

    let (status, all) = app.call(Method::GET, &report, None).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(
        all["metrics"].as_array().unwrap().len(),
        3,
        "every defined metric"
    );

    let (status, body) = app
        .call(Method::GET, &format!("{report}?metrics=nope"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("\"nope\""));
}
