//! Request ids and Prometheus metrics of `cleave-admin serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use cleave_admin::access::Access;
use common::TestApp;
use http_body_util::BodyExt;
use sqlx::PgPool;
use tower::ServiceExt;

async fn raw(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Vec<(String, String)>, String) {
    let mut req = Request::builder().method(Method::GET).uri(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = app
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

#[sqlx::test(migrations = "./migrations")]
async fn every_answer_carries_a_request_id(pool: PgPool) {
    let app = TestApp::new(pool);
    let (_, headers, _) = raw(&app, "/environments", &[("x-request-id", "trace-42")]).await;
    assert_eq!(header(&headers, "x-request-id"), Some("trace-42"));
    let (_, headers, _) = raw(&app, "/environments", &[]).await;
    let fresh = header(&headers, "x-request-id").unwrap();
    assert_eq!(uuid::Uuid::parse_str(fresh).unwrap().get_version_num(), 4);
    // An id that could forge a log line is replaced.
    let (_, headers, _) = raw(&app, "/environments", &[("x-request-id", "a b\"c")]).await;
    assert_ne!(header(&headers, "x-request-id"), Some("a b\"c"));
}

#[sqlx::test(migrations = "./migrations")]
async fn metrics_count_requests_and_publishes(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("metrics-env").await;
    let publishes =
        r#"cleave_admin_publishes_total{environment="metrics-env",kind="publish",outcome="#;
    let (_, _, before) = raw(&app, "/metrics", &[]).await;
    let published_before = sample(&before, &format!("{publishes}\"published\"}}"));
    let publish = format!("/environments/{env}/publish");
    let (status, _) = app.call(Method::POST, &publish, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.call(Method::POST, &publish, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::POST,
            "/environments/00000000-0000-0000-0000-000000000000/publish",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, headers, metrics) = raw(&app, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&headers, "content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert_eq!(
        sample(&metrics, &format!("{publishes}\"published\"}}")),
        published_before + 1.0
    );
    assert!(sample(&metrics, &format!("{publishes}\"unchanged\"}}")) >= 1.0);
    let route = r#"cleave_admin_http_requests_total{method="POST",route="/environments/{id}/publish",status="#;
    assert!(
        sample(&metrics, &format!("{route}\"200\"}}")) >= 2.0,
        "{metrics}"
    );
    assert!(
        sample(&metrics, &format!("{route}\"404\"}}")) >= 1.0,
        "{metrics}"
    );
    assert!(metrics.contains("cleave_admin_http_request_duration_seconds_bucket{"));
    assert!(!metrics.contains(common::TOKEN), "no secret in the metrics");
}

#[sqlx::test(migrations = "./migrations")]
async fn metrics_follow_the_read_rules(pool: PgPool) {
    let tokens = "viewer:prometheus:scrape-tok";
    let app = TestApp::with_access(pool, Access::from_config(Some(tokens), None).unwrap());
    assert_eq!(raw(&app, "/metrics", &[]).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, _) = raw(&app, "/metrics", &[("authorization", "Bearer scrape-tok")]).await;
    assert_eq!(status, StatusCode::OK);
}
