//! Helpers for admin tests: the real router over a real (per-test) Postgres database.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use cleave_admin::access::Access;
use cleave_admin::analytics_store::Analytics;
use cleave_admin::http::{app, AppState};
use cleave_admin::relay::Relay;
use cleave_admin::service::Ctx;
use cleave_admin::sink::Sink;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;

pub const TOKEN: &str = "test-token";

pub struct TestApp {
    pub router: Router,
    pub pool: PgPool,
    pub dir: PathBuf,
}

impl TestApp {
    /// The app with a `file` sink in a fresh temporary folder.
    pub fn new(pool: PgPool) -> Self {
        Self::with_access(pool, Access::single(Some(TOKEN)))
    }

    /// The app with these tokens and a `file` sink in a fresh temporary folder.
    pub fn with_access(pool: PgPool, access: Access) -> Self {
        let dir = std::env::temp_dir().join(format!("cleave-admin-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self::build(pool, Sink::File { dir: dir.clone() }, dir, access)
    }

    pub fn with_sink(pool: PgPool, sink: Sink, dir: PathBuf) -> Self {
        Self::build(pool, sink, dir, Access::single(Some(TOKEN)))
    }

    /// Publishing to `sink`, with every pointer pushed through `relay` first.
    pub fn with_relay(pool: PgPool, sink: Sink, relay: Relay, dir: PathBuf) -> Self {
        Self::build_with(pool, sink, Some(relay), dir, Access::single(Some(TOKEN)))
    }

    fn build(pool: PgPool, sink: Sink, dir: PathBuf, access: Access) -> Self {
        Self::build_with(pool, sink, None, dir, access)
    }

    fn build_with(
        pool: PgPool,
        sink: Sink,
        relay: Option<Relay>,
        dir: PathBuf,
        access: Access,
    ) -> Self {
        Self::build_full(
            pool.clone(),
            Analytics::postgres(pool),
            sink,
            relay,
            dir,
            access,
        )
    }

    /// The app over `pool` with these tokens and its analytics in `analytics`.
    pub fn with_analytics(pool: PgPool, analytics: Analytics, access: Access) -> Self {
        let dir = std::env::temp_dir().join(format!("cleave-admin-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let sink = Sink::File { dir: dir.clone() };
        Self::build_full(pool, analytics, sink, None, dir, access)
    }

    fn build_full(
        pool: PgPool,
        analytics: Analytics,
        sink: Sink,
        relay: Option<Relay>,
        dir: PathBuf,
        access: Access,
    ) -> Self {
        let ctx = Ctx {
            pool: pool.clone(),
            analytics,
            sink,
            signer: None,
            relay,
        };
        let router = app(AppState { ctx, access });
        Self { router, pool, dir }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(method, path, body, Some(TOKEN)).await
    }

    pub async fn call_as(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        req = req.header("x-cleave-actor", "tester@example.com");
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    pub async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, value) = self.call(method, path, Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    pub async fn environment(&self, name: &str) -> String {
        let env = self
            .ok(Method::POST, "/environments", json!({"name": name}))
            .await;
        env["id"].as_str().unwrap().to_owned()
    }

    /// A DRAFT experiment with control/treatment split 50/50; returns (id, variant ids).
    pub async fn experiment(&self, env: &str, key: &str) -> (String, Vec<String>) {
        let e = self
            .ok(
                Method::POST,
                "/experiments",
                json!({"key": key, "name": key, "environmentId": env}),
            )
            .await;
        let id = e["id"].as_str().unwrap().to_owned();
        let mut variants = Vec::new();
        for (k, color) in [("control", "#0066cc"), ("treatment", "#00cc66")] {
            let v = self
                .ok(
                    Method::POST,
                    &format!("/experiments/{id}/variants"),
                    json!({"key": k, "name": k, "payload": {"color": color}}),
                )
                .await;
            variants.push(v["id"].as_str().unwrap().to_owned());
        }
        self.ok(
            Method::PUT,
            &format!("/experiments/{id}/allocations"),
            json!({"allocations": [
                {"variantId": variants[0], "rangeStart": 0, "rangeEnd": 4999},
                {"variantId": variants[1], "rangeStart": 5000, "rangeEnd": 9999}
            ]}),
        )
        .await;
        (id, variants)
    }

    pub async fn audit(&self, entity: &str) -> Vec<Value> {
        let (_, v) = self
            .call(Method::GET, &format!("/audit?entityId={entity}"), None)
            .await;
        v.as_array().unwrap().clone()
    }

    /// The snapshot the file sink holds as current for `env`.
    pub fn current_file(&self, env: &str) -> Value {
        let text = std::fs::read_to_string(self.dir.join(format!("{env}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn problems(body: &Value) -> Vec<String> {
    body["error"]["problems"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    format!(
                        "{}: {}",
                        p["path"].as_str().unwrap(),
                        p["message"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
