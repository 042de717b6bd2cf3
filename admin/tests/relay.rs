//! Pointers pushed to the worker's pointer object (`PUT /_cleave/v1/pointer`) before KV is
//! written, against a local server standing in for both the worker and Cloudflare's KV API
//! (neither is reachable from a test), which records every request in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use cleave_admin::relay::Relay;
use cleave_admin::sink::{Namespaces, PerEnvironment, Sink};
use common::TestApp;
use serde_json::{json, Value};
use sqlx::PgPool;

/// `(method, path?query, authorization, body)` of each request.
type Log = Arc<Mutex<Vec<(String, String, String, Vec<u8>)>>>;

/// A server answering KV writes as Cloudflare does and pushes with `push_status`.
async fn fake(push_status: StatusCode) -> (String, Log) {
    async fn record(
        State((log, push)): State<(Log, StatusCode)>,
        req: Request,
    ) -> (StatusCode, String) {
        let method = req.method().to_string();
        let target = req.uri().to_string();
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec();
        let is_push = target.starts_with("/_cleave/v1/pointer");
        log.lock().unwrap().push((method, target, auth, body));
        if is_push {
            let answer = if push.is_success() {
                json!({"data": {"version": 1}, "meta": {"status": 200}})
            } else {
                json!({"data": {}, "meta": {"status": push.as_u16(), "error": "pointer refused: v1 is older than v2 in service"}})
            };
            (push, answer.to_string())
        } else {
            (
                StatusCode::OK,
                r#"{"success":true,"errors":[],"messages":[],"result":null}"#.to_owned(),
            )
        }
    }
    let log: Log = Arc::default();
    let router = axum::Router::new()
        .fallback(record)
        .with_state((Arc::clone(&log), push_status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), log)
}

fn app(pool: PgPool, base: &str) -> TestApp {
    let sink = Sink::Cloudflare {
        api_base: format!("{base}/client/v4"),
        account_id: "acct-1".into(),
        namespaces: Namespaces::single("ns-1"),
        api_token: "cf-token".into(),
    };
    let relay = Relay {
        workers: PerEnvironment::parse_var(
            &format!("prod={base}/"),
            "CLEAVE_WORKER_URL",
            "worker URL",
        )
        .unwrap(),
        token: "publish-token".into(),
    };
    TestApp::with_relay(pool, sink, relay, std::env::temp_dir().join("unused"))
}

async fn start(app: &TestApp) -> (StatusCode, Value) {
    let env = app.environment("prod").await;
    let (id, _) = app.experiment(&env, "exp").await;
    app.call(
        Method::PATCH,
        &format!("/experiments/{id}/status"),
        Some(json!({"status": "RUNNING"})),
    )
    .await
}

#[sqlx::test(migrations = "./migrations")]
async fn the_pointer_is_pushed_after_the_body_and_before_kvs_pointer(pool: PgPool) {
    let (base, log) = fake(StatusCode::OK).await;
    let app = app(pool, &base);
    let (status, body) = start(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let log = log.lock().unwrap().clone();
    let order: Vec<(&str, &str)> = log
        .iter()
        .map(|(m, t, _, _)| (m.as_str(), t.as_str()))
        .collect();
    let kv = "/client/v4/accounts/acct-1/storage/kv/namespaces/ns-1/values/";
    assert_eq!(
        order,
        [
            ("PUT", &*format!("{kv}snapshot%3Aprod%3Av1")),
            ("PUT", &*format!("{kv}snapshot%3Aprod%3Av1.bin")),
            ("PUT", "/_cleave/v1/pointer?env=prod"),
            ("PUT", &*format!("{kv}snapshot%3Aprod%3Acurrent")),
        ]
    );
    let (_, _, auth, pushed) = &log[2];
    assert_eq!(auth, "Bearer publish-token");
    // The same pointer goes to the object and to KV.
    let pushed: Value = serde_json::from_slice(pushed).unwrap();
    let written: Value = serde_json::from_slice(&log[3].3).unwrap();
    assert_eq!(pushed, written);
    assert_eq!(pushed["version"], 1);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_refused_push_fails_the_publish_and_flips_nothing(pool: PgPool) {
    let (base, log) = fake(StatusCode::CONFLICT).await;
    let app = app(pool, &base);
    let (status, body) = start(&app).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body.to_string();
    assert!(
        message.contains("refused the pointer (409 Conflict)"),
        "{message}"
    );
    assert!(
        message.contains("older than v2"),
        "the worker's reason is passed on: {message}"
    );
    let log = log.lock().unwrap().clone();
    assert!(
        !log.iter()
            .any(|(_, target, _, _)| target.ends_with("%3Acurrent")),
        "KV's pointer is not written after a refused push"
    );
    let envs = app.ok(Method::GET, "/environments", Value::Null).await;
    assert_eq!(envs[0]["currentVersion"], Value::Null, "{envs}");
}

#[test]
fn worker_urls_are_one_or_one_per_environment() {
    let one = PerEnvironment::parse_var(
        "https://edge.example.com/?a=b",
        "CLEAVE_WORKER_URL",
        "worker URL",
    )
    .unwrap();
    assert_eq!(
        one.for_environment("any"),
        Ok("https://edge.example.com/?a=b")
    );
    let per = PerEnvironment::parse_var(
        "staging=https://staging.example.com, production=https://www.example.com",
        "CLEAVE_WORKER_URL",
        "worker URL",
    )
    .unwrap();
    assert_eq!(
        per.for_environment("production"),
        Ok("https://www.example.com")
    );
    let missing = per.for_environment("qa").unwrap_err();
    assert!(
        missing.contains(r#"no worker URL configured for environment "qa""#),
        "{missing}"
    );
    assert!(PerEnvironment::parse_var("", "CLEAVE_WORKER_URL", "worker URL").is_err());
}
