//! The REST calls the dashboard adds (session, history, pending publish, status dry run,
//! variant edits) and the files it is served from, against a real Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use cleave_admin::access::Access;
use common::TestApp;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;

async fn start(app: &TestApp, id: &str) -> Value {
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}/status"),
        json!({"status": "RUNNING"}),
    )
    .await
}

#[sqlx::test(migrations = "./migrations")]
async fn a_status_dry_run_shows_the_plan_and_changes_nothing(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let env = app.environment("prod").await;
    let (id, _) = app.experiment(&env, "cta").await;
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}"),
        json!({"traffic": 2500}),
    )
    .await;

    let (status, preview) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/plan?status=RUNNING"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["from"], "DRAFT");
    assert_eq!(preview["allowed"], true);
    assert_eq!(preview["publishes"], true);
    let change = &preview["plan"]["changes"][0];
    assert_eq!(change["experiment"], "cta");
    assert_eq!(change["kind"], "started");
    assert!((change["changed_share"].as_f64().unwrap() - 0.25).abs() < 1e-9);

    // Nothing happened: still a draft, nothing published, nothing audited.
    let (_, e) = app
        .call(Method::GET, &format!("/experiments/{id}"), None)
        .await;
    assert_eq!(e["status"], "DRAFT");
    let published: i64 = sqlx::query_scalar("select count(*) from snapshots")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(published, 0);
    assert!(app
        .audit(&id)
        .await
        .iter()
        .all(|a| a["action"] != "experiment.status"));

    // A change the lifecycle refuses is reported as not allowed, without a plan.
    let (_, refused) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/plan?status=ARCHIVED"),
            None,
        )
        .await;
    assert_eq!(refused["allowed"], false);
    assert!(refused.get("plan").is_none());
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/plan?status=LIVE"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrations = "./migrations")]
async fn history_lists_versions_and_diffs_them_field_by_field(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let (id, variants) = app.experiment(&env, "cta").await;
    start(&app, &id).await;

    // Edit a payload: pending shows it before publishing, as a field change that moves nobody.
    let (status, variant) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{id}/variants/{}", variants[1]),
            Some(json!({"payload": {"color": "green"}, "name": "Green"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{variant}");
    assert_eq!(variant["key"], "treatment");
    assert_eq!(variant["payload"], json!({"color": "green"}));
    let pending = app
        .ok(
            Method::GET,
            &format!("/environments/{env}/pending"),
            json!(null),
        )
        .await;
    assert_eq!(
        (pending["from"].as_i64(), pending["to"].as_i64()),
        (Some(1), Some(2))
    );
    let fields = &pending["experiments"][0]["fields"];
    assert_eq!(fields[0]["path"], "variants[1].payload.color");
    assert_eq!(fields[0]["before"], "#00cc66");
    assert_eq!(fields[0]["after"], "green");
    assert_eq!(pending["plan"]["changes"][0]["moved_share"], 0.0);

    app.ok(
        Method::POST,
        &format!("/environments/{env}/publish"),
        json!({}),
    )
    .await;
    let (_, versions) = app
        .call(Method::GET, &format!("/environments/{env}/snapshots"), None)
        .await;
    let listed: Vec<(i64, bool, i64)> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["current"].as_bool().unwrap(),
                v["experiments"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(2, true, 1), (1, false, 1)]);
    assert_eq!(versions[0]["publishedBy"], "tester@example.com");

    let (_, diff) = app
        .call(
            Method::GET,
            &format!("/environments/{env}/snapshots/2/diff"),
            None,
        )
        .await;
    assert_eq!(diff["experiments"][0]["change"], "changed");
    assert_eq!(diff["experiments"][0]["fields"], *fields);
    // Version 1 against nothing: the experiment is added.
    let (_, first) = app
        .call(
            Method::GET,
            &format!("/environments/{env}/snapshots/1/diff"),
            None,
        )
        .await;
    assert_eq!(first["experiments"][0]["change"], "added");
    assert_eq!(first["plan"]["changes"][0]["kind"], "started");
    let (_, body) = app
        .call(
            Method::GET,
            &format!("/environments/{env}/snapshots/1"),
            None,
        )
        .await;
    assert_eq!(body["version"], 1);
    assert_eq!(
        body["experiments"][0]["variants"][1]["payload"]["color"],
        "#00cc66"
    );

    for missing in ["9", "0", "x"] {
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/environments/{env}/snapshots/{missing}/diff"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "version {missing}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn variant_edits_are_audited_and_refused_for_unknown_variants(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let (id, variants) = app.experiment(&env, "cta").await;
    let (other, _) = app.experiment(&env, "other").await;
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}/variants/{}", variants[0]),
        json!({"payload": null}),
    )
    .await;
    let entry = app.audit(&id).await.pop().unwrap();
    assert_eq!(entry["action"], "variant.update");
    assert_eq!(entry["before"]["payload"]["color"], "#0066cc");
    assert_eq!(entry["after"]["payload"], Value::Null);
    assert_eq!(entry["after"]["name"], "control");

    // A variant of another experiment is not found; an unknown field is a bad request.
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{other}/variants/{}", variants[0]),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{id}/variants/{}", variants[0]),
            Some(json!({"key": "renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrations = "./migrations")]
async fn the_session_says_what_a_token_may_do(pool: PgPool) {
    let access = Access::from_config(
        Some("viewer:vera:v-token,editor:eddie:e-token,publisher:pat:p-token,ingest:edge:i-token"),
        None,
    )
    .unwrap();
    let app = TestApp::with_access(pool, access);
    let session = |token| {
        let app = &app;
        async move { app.call_as(Method::GET, "/session", None, token).await }
    };
    let (_, viewer) = session(Some("v-token")).await;
    assert_eq!(
        viewer,
        json!({"actor": "tester@example.com (vera)", "role": "viewer", "canEdit": false,
               "canPublish": false, "tokensRequired": true})
    );
    let (_, editor) = session(Some("e-token")).await;
    assert_eq!(
        (editor["canEdit"].as_bool(), editor["canPublish"].as_bool()),
        (Some(true), Some(false))
    );
    let (_, publisher) = session(Some("p-token")).await;
    assert_eq!(publisher["canPublish"], true);
    assert_eq!(session(None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(session(Some("i-token")).await.0, StatusCode::FORBIDDEN);
    assert_eq!(session(Some("wrong")).await.0, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "./migrations")]
async fn the_dashboard_files_load_without_a_token(pool: PgPool) {
    let access = Access::from_config(Some("viewer:vera:v-token"), None).unwrap();
    let app = TestApp::with_access(pool, access);
    let get = |path: &'static str| {
        let router = app.router.clone();
        async move {
            let req = Request::get(path).body(Body::empty()).unwrap();
            router.oneshot(req).await.unwrap()
        }
    };
    let root = get("/").await;
    assert_eq!(root.status(), StatusCode::SEE_OTHER);
    assert_eq!(root.headers()["location"], "/ui/");
    let index = get("/ui/").await;
    assert_eq!(index.status(), StatusCode::OK);
    assert!(index.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let html = index.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&html).contains("/ui/app.js"));
    let script = get("/ui/app.js").await;
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(get("/ui/secrets.txt").await.status(), StatusCode::NOT_FOUND);
    // Every file of the dashboard is served, and every module a module imports exists: a new
    // module left out of the binary would break the page only in a browser.
    let ui = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    for entry in std::fs::read_dir(&ui).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let path: &'static str = Box::leak(format!("/ui/{name}").into_boxed_str());
        assert_eq!(get(path).await.status(), StatusCode::OK, "{path}");
        let text = std::fs::read_to_string(ui.join(&name)).unwrap();
        for import in text.split("from \"./").skip(1) {
            let module = import.split('"').next().unwrap();
            assert!(
                ui.join(module).exists(),
                "{name} imports a missing {module}"
            );
        }
    }
    // The data behind it still needs the token.
    assert_eq!(
        get("/environments").await.status(),
        StatusCode::UNAUTHORIZED
    );
}
