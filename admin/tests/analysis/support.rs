//! What the analysis tests share: an admin with an ingest token, records as the edge sends
//! them, and a running experiment with three metrics.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use cleave_admin::access::Access;
use cleave_core::exposure::{exposure_id, utc_day};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{self, TestApp};

pub const INGEST: &str = "edge-secret";

pub fn app(pool: PgPool) -> TestApp {
    let tokens = format!(
        "ingest:edge:{INGEST},viewer:ann:view,publisher:pub:{}",
        common::TOKEN
    );
    TestApp::with_access(pool, Access::from_config(Some(&tokens), None).unwrap())
}

pub fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

pub fn exposure(env: &str, experiment: &str, variant: &str, unit: &str, at: i64) -> Value {
    let day = utc_day(at).unwrap();
    json!({
        "id": exposure_id(env, experiment, experiment, variant, "user", unit, &day),
        "experiment": experiment, "variant": variant, "unit_type": "user", "unit": unit,
        "salt": experiment, "day": day, "at_ms": at,
    })
}

pub fn event(id: &str, unit: &str, metric: &str, value: f64, at: i64) -> Value {
    json!({"event_id": id, "unit": unit, "metric": metric, "value": value, "timestamp_ms": at})
}

pub async fn ingest(app: &TestApp, batch: Value) -> (StatusCode, Value) {
    app.call_as(Method::POST, "/ingest", Some(batch), Some(INGEST))
        .await
}

pub async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A running 50/50 experiment with a primary conversion metric, a secondary continuous one
/// and a latency guardrail.
pub async fn running_experiment(app: &TestApp) -> String {
    let env = app.environment("prod").await;
    for (key, kind, direction) in [
        ("purchase", "conversion", "increase"),
        ("revenue", "continuous", "increase"),
        ("latency", "continuous", "decrease"),
    ] {
        app.ok(
            Method::POST,
            "/metric-definitions",
            json!({"key": key, "kind": kind, "direction": direction}),
        )
        .await;
    }
    let (id, _) = app.experiment(&env, "checkout").await;
    app.ok(
        Method::PUT,
        &format!("/experiments/{id}/metrics"),
        json!({"metrics": [{"metric": "purchase", "role": "primary"},
                           {"metric": "revenue", "role": "secondary"},
                           {"metric": "latency", "role": "guardrail"}]}),
    )
    .await;
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}/status"),
        json!({"status": "RUNNING"}),
    )
    .await;
    id
}

/// Delivers `units` exposures per variant and events: `converting[v]` of each variant's units
/// purchase, every unit has revenue `revenue[v] + i % 7` and latency `latency[v] + i % 5`.
pub async fn deliver(
    app: &TestApp,
    units: [usize; 2],
    converting: [usize; 2],
    revenue: [f64; 2],
    latency: [f64; 2],
) {
    let at = now_ms() - 60_000;
    for (v, variant) in ["control", "treatment"].iter().enumerate() {
        let (mut exposures, mut events) = (Vec::new(), Vec::new());
        for i in 0..units[v] {
            let unit = format!("{variant}-{i}");
            exposures.push(exposure("prod", "checkout", variant, &unit, at));
            if i < converting[v] {
                events.push(event(
                    &format!("p-{unit}"),
                    &unit,
                    "purchase",
                    1.0,
                    at + 1000,
                ));
            }
            let x = revenue[v] + (i % 7) as f64;
            events.push(event(&format!("r-{unit}"), &unit, "revenue", x, at + 2000));
            let y = latency[v] + (i % 5) as f64;
            events.push(event(&format!("l-{unit}"), &unit, "latency", y, at + 2000));
        }
        let (status, body) = ingest(
            app,
            json!({"environment": "prod", "exposures": exposures, "events": events}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}
