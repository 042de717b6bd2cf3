//! Lifecycle, publishing, rollback and sinks against a real Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use cleave_admin::sink::{Namespaces, Sink};
use cleave_core::Engine;
use common::{problems, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

async fn set_status(app: &TestApp, id: &str, status: &str) -> (StatusCode, Value) {
    app.call(
        Method::PATCH,
        &format!("/experiments/{id}/status"),
        Some(json!({"status": status})),
    )
    .await
}

async fn versions(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("select version from snapshots order by version")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn lifecycle_transitions_publish_to_and_from_running(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let env = app.environment("prod").await;
    let (_, empty) = app
        .call(
            Method::POST,
            "/experiments",
            Some(json!({"key": "empty", "environmentId": env})),
        )
        .await;
    let (status, body) = set_status(&app, empty["id"].as_str().unwrap(), "RUNNING").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problems(&body)
            .iter()
            .any(|p| p.ends_with("experiment has no variants")),
        "{body}"
    );
    let (_, still) = app
        .call(
            Method::GET,
            &format!("/experiments/{}", empty["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        still["status"], "DRAFT",
        "a failed publish leaves the status unchanged"
    );

    let (id, variants) = app.experiment(&env, "checkout").await;
    let (status, body) = set_status(&app, &id, "PAUSED").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is DRAFT; it cannot become PAUSED"));

    let (status, body) = set_status(&app, &id, "RUNNING").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "RUNNING");
    assert_eq!(body["published"]["version"], 1);
    let current = app.current_file("prod");
    assert_eq!(current["environment"], "prod");
    assert_eq!(current["version"], 1);
    assert_eq!(current["published_by"], "tester@example.com");
    let exp = &current["experiments"][0];
    assert_eq!(
        (
            exp["key"].clone(),
            exp["status"].clone(),
            exp["salt"].clone()
        ),
        (json!("checkout"), json!("running"), json!("checkout"))
    );
    assert_eq!(exp["variants"][0]["id"], json!(variants[0]));
    assert_eq!(exp["variants"][1]["ranges"], json!([[5000, 9999]]));
    Engine::decode(current.to_string().as_bytes())
        .expect("the worker accepts what admin published");

    let audit_before = app.audit(&id).await.len();
    let (status, _) = set_status(&app, &id, "RUNNING").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        app.audit(&id).await.len(),
        audit_before,
        "a refused activation changes nothing"
    );
    assert_eq!(versions(&pool).await, [1]);

    let (_, body) = set_status(&app, &id, "PAUSED").await;
    assert_eq!(body["published"]["version"], 2);
    assert_eq!(
        app.current_file("prod")["experiments"][0]["status"],
        "paused"
    );
    let (_, body) = set_status(&app, &id, "RUNNING").await;
    assert_eq!(body["published"]["version"], 3);
    let (_, body) = set_status(&app, &id, "STOPPED").await;
    assert_eq!(body["published"]["version"], 4);
    assert_eq!(app.current_file("prod")["experiments"], json!([]));
    let (status, body) = set_status(&app, &id, "ARCHIVED").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["published"],
        json!(null),
        "STOPPED -> ARCHIVED does not touch RUNNING"
    );
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{id}"),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "archived experiments are read-only"
    );
    let (status, _) = set_status(&app, &id, "RUNNING").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(versions(&pool).await, [1, 2, 3, 4]);
    let statuses: Vec<Value> = app
        .audit(&id)
        .await
        .into_iter()
        .filter(|e| e["action"] == "experiment.status")
        .map(|e| json!([e["before"]["status"], e["after"]["status"]]))
        .collect();
    assert_eq!(
        statuses,
        [
            json!(["DRAFT", "RUNNING"]),
            json!(["RUNNING", "PAUSED"]),
            json!(["PAUSED", "RUNNING"]),
            json!(["RUNNING", "STOPPED"]),
            json!(["STOPPED", "ARCHIVED"])
        ]
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn twenty_racing_activations_succeed_exactly_once(pool: PgPool) {
    let app = Arc::new(TestApp::new(pool.clone()));
    let env = app.environment("prod").await;
    let (id, _) = app.experiment(&env, "race").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = Arc::clone(&app);
            let id = id.clone();
            tokio::spawn(async move { set_status(&app, &id, "RUNNING").await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        19,
        "{statuses:?}"
    );
    let activations = app
        .audit(&id)
        .await
        .into_iter()
        .filter(|e| e["action"] == "experiment.status")
        .count();
    assert_eq!(activations, 1);
    assert_eq!(versions(&pool).await, [1]);
}

#[sqlx::test(migrations = "./migrations")]
async fn publish_is_monotonic_idempotent_and_rolls_back(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let env = app.environment("prod").await;
    let (id, _) = app.experiment(&env, "exp").await;
    let publish = format!("/environments/{env}/publish");
    let (status, first) = app.call(Method::POST, &publish, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (first["version"].clone(), first["changed"].clone()),
        (json!(1), json!(true))
    );
    // A draft travels marked as such: it enrols nobody, a force token previews it.
    let drafts = &app.current_file("prod")["experiments"];
    assert_eq!(drafts.as_array().unwrap().len(), 1);
    assert_eq!(drafts[0]["status"], "draft");
    let (_, again) = app.call(Method::POST, &publish, None).await;
    assert_eq!(
        (again["version"].clone(), again["changed"].clone()),
        (json!(1), json!(false)),
        "unchanged content is a no-op"
    );

    set_status(&app, &id, "RUNNING").await;
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}"),
        json!({"traffic": 5000}),
    )
    .await;
    let (_, third) = app.call(Method::POST, &publish, None).await;
    assert_eq!(third["version"], 3);
    assert_eq!(app.current_file("prod")["experiments"][0]["traffic"], 5000);
    assert_eq!(versions(&pool).await, [1, 2, 3]);

    let v1 = std::fs::read_to_string(app.dir.join("prod/v1.json")).unwrap();
    let (status, back) = app
        .call(
            Method::POST,
            &format!("/environments/{env}/rollback"),
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["version"], 1);
    assert_eq!(
        std::fs::read_to_string(app.dir.join("prod.json")).unwrap(),
        v1
    );
    let (_, e) = app
        .call(Method::GET, &format!("/environments/{env}"), None)
        .await;
    assert_eq!(e["currentVersion"], 1);
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/environments/{env}/rollback"),
            Some(json!({"version": 99})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The next publish after a rollback still gets a new, higher version.
    let (_, next) = app.call(Method::POST, &publish, None).await;
    assert_eq!(next["version"], 4);
    let actions: Vec<Value> = app
        .audit(&env)
        .await
        .into_iter()
        .map(|e| e["action"].clone())
        .collect();
    assert!(actions.contains(&json!("environment.rollback")));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_failed_upload_leaves_everything_where_it_was(pool: PgPool) {
    // A sink folder that is a file: every write fails.
    let blocker = std::env::temp_dir().join(format!("cleave-blocked-{}", uuid::Uuid::new_v4()));
    std::fs::write(&blocker, "not a folder").unwrap();
    let app = TestApp::with_sink(
        pool.clone(),
        Sink::File {
            dir: blocker.clone(),
        },
        blocker.clone(),
    );
    let env = app.environment("prod").await;
    let (id, _) = app.experiment(&env, "exp").await;
    let (status, body) = set_status(&app, &id, "RUNNING").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["error"]["code"], "upload_failed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no version is published"),
        "{body}"
    );
    let (_, e) = app
        .call(Method::GET, &format!("/experiments/{id}"), None)
        .await;
    assert_eq!(e["status"], "DRAFT");
    assert_eq!(versions(&pool).await, Vec::<i64>::new());
    let (_, envs) = app.call(Method::GET, "/environments", None).await;
    assert_eq!(envs[0]["currentVersion"], json!(null));
}

/// A stand-in for the Cloudflare KV REST API on loopback that records every request.
async fn fake_cloudflare(
    fail_pointer: bool,
) -> (String, Arc<Mutex<Vec<(String, String, String, Vec<u8>)>>>) {
    use axum::extract::{Request, State};
    use axum::http::HeaderMap;
    type Log = Arc<Mutex<Vec<(String, String, String, Vec<u8>)>>>;
    let log: Log = Arc::default();
    async fn record(
        State((log, fail)): State<(Log, bool)>,
        headers: HeaderMap,
        req: Request,
    ) -> (StatusCode, String) {
        let method = req.method().to_string();
        let path = req.uri().path().to_owned();
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec();
        let pointer = path.ends_with("%3Acurrent");
        log.lock().unwrap().push((method, path, auth, body));
        if fail && pointer {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"success":false,"errors":[{"code":10001,"message":"boom"}]}"#.to_owned(),
            )
        } else {
            (
                StatusCode::OK,
                r#"{"success":true,"errors":[],"messages":[],"result":null}"#.to_owned(),
            )
        }
    }
    let router = axum::Router::new()
        .fallback(record)
        .with_state((Arc::clone(&log), fail_pointer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/client/v4"), log)
}

fn cloudflare(api_base: String) -> Sink {
    Sink::Cloudflare {
        api_base,
        account_id: "acct-1".into(),
        namespaces: Namespaces::single("ns-1"),
        api_token: "cf-token".into(),
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn cloudflare_sink_publishes_each_environment_to_its_own_namespace(pool: PgPool) {
    let (base, log) = fake_cloudflare(false).await;
    let sink = Sink::Cloudflare {
        api_base: base,
        account_id: "acct-1".into(),
        namespaces: Namespaces::parse("staging=ns-staging, production=ns-prod").unwrap(),
        api_token: "cf-token".into(),
    };
    let app = TestApp::with_sink(pool, sink, std::env::temp_dir().join("unused"));
    for name in ["staging", "production", "qa"] {
        let env = app.environment(name).await;
        let (status, body) = app
            .call(Method::POST, &format!("/environments/{env}/publish"), None)
            .await;
        if name == "qa" {
            assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(r#"no KV namespace configured for environment "qa""#),
                "{message}"
            );
        } else {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    let paths: Vec<String> = log.lock().unwrap().iter().map(|e| e.1.clone()).collect();
    let prefix = "/client/v4/accounts/acct-1/storage/kv/namespaces/";
    assert_eq!(
        paths,
        [
            format!("{prefix}ns-staging/values/snapshot%3Astaging%3Av1"),
            format!("{prefix}ns-staging/values/snapshot%3Astaging%3Av1.bin"),
            format!("{prefix}ns-staging/values/snapshot%3Astaging%3Acurrent"),
            format!("{prefix}ns-prod/values/snapshot%3Aproduction%3Av1"),
            format!("{prefix}ns-prod/values/snapshot%3Aproduction%3Av1.bin"),
            format!("{prefix}ns-prod/values/snapshot%3Aproduction%3Acurrent"),
        ]
    );
    assert!(Namespaces::parse("staging=").is_err());
    assert_eq!(
        Namespaces::parse("*=ns-all")
            .unwrap()
            .for_environment("any"),
        Ok("ns-all")
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn cloudflare_sink_writes_body_then_pointer(pool: PgPool) {
    let (base, log) = fake_cloudflare(false).await;
    let app = TestApp::with_sink(pool, cloudflare(base), std::env::temp_dir().join("unused"));
    let env = app.environment("prod").await;
    let (id, _) = app.experiment(&env, "exp").await;
    let (status, body) = set_status(&app, &id, "RUNNING").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3);
    let prefix = "/client/v4/accounts/acct-1/storage/kv/namespaces/ns-1/values/";
    let (method, path, auth, sent) = &log[0];
    assert_eq!(
        (method.as_str(), path.as_str(), auth.as_str()),
        (
            "PUT",
            &*format!("{prefix}snapshot%3Aprod%3Av1"),
            "Bearer cf-token"
        )
    );
    let snapshot: Value = serde_json::from_slice(sent).unwrap();
    assert_eq!(
        (snapshot["environment"].clone(), snapshot["version"].clone()),
        (json!("prod"), json!(1))
    );
    let from_json = Engine::decode(sent).unwrap();
    // The sidecar carries exactly the body's snapshot.
    let (method, path, _, sidecar) = &log[1];
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("PUT", &*format!("{prefix}snapshot%3Aprod%3Av1.bin"))
    );
    let from_binary = Engine::decode_binary(sidecar).unwrap();
    assert_eq!(from_binary.snapshot(), from_json.snapshot());
    let (method, path, auth, sent) = &log[2];
    assert_eq!(
        (method.as_str(), path.as_str(), auth.as_str()),
        (
            "PUT",
            &*format!("{prefix}snapshot%3Aprod%3Acurrent"),
            "Bearer cf-token"
        )
    );
    let pointer: Value = serde_json::from_slice(sent).unwrap();
    assert_eq!(pointer["version"], 1);
    assert_eq!(
        pointer["binary"],
        json!({"format": cleave_core::snapshot::BINARY_FORMAT})
    );
    assert_eq!(pointer["sha256"], body["published"]["sha256"]);
}

#[sqlx::test(migrations = "./migrations")]
async fn cloudflare_pointer_failure_is_reported_and_rolled_back(pool: PgPool) {
    let (base, log) = fake_cloudflare(true).await;
    let app = TestApp::with_sink(
        pool.clone(),
        cloudflare(base),
        std::env::temp_dir().join("unused"),
    );
    let env = app.environment("prod").await;
    let (status, body) = app
        .call(Method::POST, &format!("/environments/{env}/publish"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("flipping the pointer of prod to v1 failed") && message.contains("500"),
        "{message}"
    );
    assert_eq!(log.lock().unwrap().len(), 3);
    assert_eq!(versions(&pool).await, Vec::<i64>::new());
}
