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

/// Every route of the API, with every method: refused without a token (HEAD included),
/// refused with a token one role too weak, and let through with a sufficient one.
#[sqlx::test(migrations = "./migrations")]
async fn every_route_and_method_needs_its_role(pool: PgPool) {
    use cleave_admin::access::Role;
    use cleave_admin::http::policy::{need, Need, ROUTES};
    let tokens = format!("{TOKENS}, ingest:edge:ingest-tok");
    let app = TestApp::with_access(pool, Access::from_config(Some(&tokens), None).unwrap());
    let token_of = |role: Role| match role {
        Role::Ingest => "ingest-tok",
        Role::Viewer => "view-tok",
        Role::Editor => "edit-tok",
        Role::Publisher => "pub-tok",
    };
    let id = uuid::Uuid::new_v4().to_string();
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut walked = 0;
    let routes: std::collections::BTreeSet<&str> = ROUTES.iter().map(|(r, _, _)| *r).collect();
    assert!(routes.len() >= 27, "{routes:?}");
    let expected = routes.len() * methods.len();
    for route in routes {
        let path = route
            .replace("{id}", &id)
            .replace("{variant}", &id)
            .replace("{version}", "1");
        for method in &methods {
            let needed = need(route, method);
            let (weak, enough) = match needed {
                Need::Read => (Some(Role::Ingest), Role::Viewer),
                Need::Ingest => (Some(Role::Editor), Role::Ingest),
                Need::Role(Role::Editor) => (Some(Role::Viewer), Role::Editor),
                Need::Role(Role::Publisher) => (Some(Role::Editor), Role::Publisher),
                Need::Role(r) => (None, r),
            };
            let what = format!("{method} {route}");
            let (status, _) = app.call_as(method.clone(), &path, None, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} without a token");
            if let Some(weak) = weak {
                let (status, _) = app
                    .call_as(method.clone(), &path, None, Some(token_of(weak)))
                    .await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{what} with a {weak:?} token"
                );
            }
            let (status, body) = app
                .call_as(method.clone(), &path, None, Some(token_of(enough)))
                .await;
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{what} with a {enough:?} token: {status} {body}"
            );
            walked += 1;
        }
    }
    assert_eq!(walked, expected, "every route was walked with every method");
}

/// Every path the API routes is in the policy table: a route left out would need a publisher
/// by default, so a read-only page would refuse its viewers. The dashboard's own files are
/// public and carry no data.
#[test]
fn every_routed_path_is_in_the_policy_table() {
    use cleave_admin::http::policy::ROUTES;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = vec![std::fs::read_to_string(dir.join("http.rs")).unwrap()];
    for entry in std::fs::read_dir(dir.join("http")).unwrap() {
        sources.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let mut routed = Vec::new();
    for source in &sources {
        for (at, _) in source.match_indices(".route(") {
            let rest = source[at + ".route(".len()..].trim_start();
            if let Some(quoted) = rest.strip_prefix('"') {
                routed.push(quoted.split('"').next().unwrap().to_owned());
            }
        }
    }
    assert!(routed.len() > 30, "{routed:?}");
    let public = ["/", "/ui", "/ui/", "/ui/{file}"];
    let missing: Vec<&String> = routed
        .iter()
        .filter(|r| !public.contains(&r.as_str()) && !ROUTES.iter().any(|(p, _, _)| p == r))
        .collect();
    assert!(
        missing.is_empty(),
        "routed but not in policy::ROUTES: {missing:?}"
    );
}
