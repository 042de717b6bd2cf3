//! Planner statistics against a real Postgres: the ingest path analyses the tables results
//! read once they were never analysed or have grown, so results never run on a plan made
//! without statistics (minutes instead of half a second on a freshly loaded database).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "analysis/support.rs"]
mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{app, event, exposure, ingest, now_ms, running_experiment};

/// (rows the planner believes, whether an analysis was ever run) of `table`.
async fn planner_view(pool: &PgPool, table: &str) -> (f32, bool) {
    sqlx::query_as(
        "select c.reltuples, s.last_analyze is not null \
         from pg_class c join pg_stat_user_tables s on s.relid = c.oid where c.relname = $1",
    )
    .bind(table)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn ingest_analyses_the_tables_results_read_when_they_have_no_statistics(pool: PgPool) {
    let app = app(pool.clone());
    running_experiment(&app).await;
    for table in ["exposures", "events"] {
        assert_eq!(planner_view(&pool, table).await, (-1.0, false), "{table}");
    }
    let at = now_ms() - 60_000;
    let exposures: Vec<Value> = (0..300)
        .map(|i| exposure("prod", "checkout", "control", &format!("u-{i}"), at))
        .collect();
    let events: Vec<Value> = (0..120)
        .map(|i| {
            event(
                &format!("e-{i}"),
                &format!("u-{i}"),
                "purchase",
                1.0,
                at + 1_000,
            )
        })
        .collect();
    let (status, body) = ingest(
        &app,
        json!({"environment": "prod", "exposures": exposures, "events": events}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["exposures"]["stored"], 300, "{body}");
    // Analysed by the ingest itself: the planner now knows the rows just stored.
    assert_eq!(planner_view(&pool, "exposures").await, (300.0, true));
    assert_eq!(planner_view(&pool, "events").await, (120.0, true));
}
