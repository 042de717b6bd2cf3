//! Tokens with roles: viewer reads, editor changes definitions, publisher publishes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use cleave_admin::access::Access;
use common::TestApp;
use serde_json::json;
use sqlx::PgPool;

const TOKENS: &str = "viewer:grafana:view-tok, editor:ci:edit-tok, publisher:alice:pub-tok";

#[sqlx::test(migrations = "./migrations")]
async fn each_role_does_what_it_may_and_no_more(pool: PgPool) {
    let app = TestApp::with_access(pool, Access::from_config(Some(TOKENS), None).unwrap());
    let get = |token| app.call_as(Method::GET, "/environments", None, token);
    // With role tokens configured, reads need a token too.
    assert_eq!(get(None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(Some("nope")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(Some("view-tok")).await.0, StatusCode::OK);

    let create = |token| {
        app.call_as(
            Method::POST,
            "/environments",
            Some(json!({"name": "web"})),
            Some(token),
        )
    };
    let (status, body) = create("view-tok").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"]["message"],
        "token \"grafana\" is a viewer token; this needs editor"
    );
    let (status, env) = create("edit-tok").await;
    assert!(status.is_success(), "{status} {env}");
    let env = env["id"].as_str().unwrap();

    let publish_path = format!("/environments/{env}/publish");
    let publish = |token| app.call_as(Method::POST, &publish_path, None, Some(token));
    let (status, body) = publish("edit-tok").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = publish("pub-tok").await;
    assert!(status.is_success(), "{status} {body}");

    // The audit log names the token, with the person who said they used it.
    let (_, log) = app
        .call_as(
            Method::GET,
            &format!("/audit?entityId={env}"),
            None,
            Some("view-tok"),
        )
        .await;
    let actors: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors,
        ["tester@example.com (ci)", "tester@example.com (alice)"]
    );
}

#[test]
fn a_malformed_token_list_is_refused_without_showing_tokens() {
    for bad in [
        "admin:root:secret",
        "viewer:secret",
        "editor::secret",
        "viewer:x:",
    ] {
        let err = Access::from_config(Some(bad), None).unwrap_err();
        assert!(err.contains("entry 1"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
    let access = Access::from_config(Some("viewer:a:t1,publisher:b:t2"), Some("legacy")).unwrap();
    let shown = format!("{access:?}");
    assert!(shown.contains("viewer:a") && shown.contains("publisher:api-token"));
    assert!(
        !shown.contains("t1") && !shown.contains("legacy"),
        "{shown}"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn the_single_legacy_token_leaves_reads_open(pool: PgPool) {
    let app = TestApp::new(pool);
    let (status, _) = app.call_as(Method::GET, "/environments", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call_as(
            Method::POST,
            "/environments",
            Some(json!({"name": "web"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
