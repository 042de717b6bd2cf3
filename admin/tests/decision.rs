//! Which reading decides: an experiment set to decide by the Bayesian chance to beat control
//! calls a lift the sequential test does not yet; guardrails stay sequential.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "analysis/support.rs"]
mod support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use support::{app, deliver, running_experiment};

#[sqlx::test(migrations = "./migrations")]
async fn the_experiment_says_which_reading_sets_its_verdicts(pool: PgPool) {
    let app = app(pool);
    let id = running_experiment(&app).await;
    // 10% against 11.8% on 2,000 units each: about a 97% chance to beat control, while the
    // sequential test is far from deciding; revenue and latency do not move.
    deliver(&app, [2000, 2000], [200, 236], [10.0, 10.0], [100.0, 100.0]).await;
    let path = format!("/experiments/{id}/decision");
    let (status, body) = app.call(Method::GET, &path, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"decision": "sequential"}))
    );
    let results = format!("/experiments/{id}/results");
    let (_, r) = app.call(Method::GET, &results, None).await;
    assert_eq!(r["decision"], "sequential");
    let purchase = &r["metrics"][0]["comparisons"][0];
    let chance = purchase["bayesian"]["chanceToBeatControl"]
        .as_f64()
        .unwrap();
    assert!((0.95..0.99).contains(&chance), "{purchase}");
    assert!(
        purchase["sequentialPValue"].as_f64().unwrap() > 0.05,
        "{purchase}"
    );
    assert_eq!(purchase["verdict"], "inconclusive");

    // Viewers may not change it; a wrong word is named.
    let (status, _) = app
        .call_as(
            Method::PUT,
            &path,
            Some(json!({"decision": "bayesian"})),
            Some("view"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(Method::PUT, &path, Some(json!({"decision": "vibes"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.to_string().contains("use sequential or bayesian"),
        "{body}"
    );
    let (_, r) = app.call(Method::GET, &results, None).await;
    assert_eq!(
        r["decision"], "sequential",
        "a refused change changes nothing"
    );

    let (status, body) = app
        .call(Method::PUT, &path, Some(json!({"decision": "bayesian"})))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"decision": "bayesian"}))
    );
    let (_, r) = app.call(Method::GET, &results, None).await;
    assert_eq!(r["decision"], "bayesian");
    assert_eq!(r["metrics"][0]["comparisons"][0]["verdict"], "better");
    let revenue = &r["metrics"][1]["comparisons"][0];
    assert_eq!(revenue["verdict"], "inconclusive", "{revenue}");
    assert_eq!(r["metrics"][2]["comparisons"][0]["verdict"], "inconclusive");
    // Nothing was published: the setting is the analysis's alone.
    let (_, envs) = app.call(Method::GET, "/environments", None).await;
    let env = envs[0]["id"].as_str().unwrap();
    let (_, history) = app
        .call(Method::GET, &format!("/environments/{env}/snapshots"), None)
        .await;
    let before = history.as_array().map_or(0, Vec::len);
    assert!(before > 0, "{history}");
    app.call(Method::PUT, &path, Some(json!({"decision": "sequential"})))
        .await;
    let (_, history) = app
        .call(Method::GET, &format!("/environments/{env}/snapshots"), None)
        .await;
    assert_eq!(history.as_array().map_or(0, Vec::len), before);
}
