//! Feature flags in the control plane, against a real Postgres: create, check, edit,
//! publish, the kill switch (published at once, nothing else with it), archive, audit, roles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use cleave_admin::access::Access;
use common::{problems, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

fn new_nav() -> Value {
    json!({
        "key": "new-nav", "name": "New navigation", "type": "boolean",
        "variants": [{"key": "on", "value": true}, {"key": "off", "value": false}],
        "offVariant": "off",
        "rules": [
            {"targeting": [{"conditions": [{"attribute": "plan", "operator": "eq", "value": "staff"}]}],
             "serve": {"variant": "on"}},
            {"serve": {"rollout": {"traffic": 1000, "split": [{"variant": "on", "weight": 10000}]}}}
        ],
        "fallthrough": {"variant": "off"}
    })
}

async fn publish(app: &TestApp, env: &str) -> Value {
    app.ok(
        Method::POST,
        &format!("/environments/{env}/publish"),
        json!({}),
    )
    .await
}

#[sqlx::test(migrations = "./migrations")]
async fn a_flag_is_checked_before_it_is_kept(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    app.experiment(&env, "checkout").await;
    let mut bad = new_nav();
    bad["variants"][0]["value"] = json!("yes");
    bad["offVariant"] = json!("nope");
    bad["rules"][1]["serve"]["rollout"]["split"][0]["weight"] = json!(4000);
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/environments/{env}/flags"),
            Some(bad),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        problems(&body),
        [
            "variants[0].value: a boolean flag's value must be true or false, not \"yes\"",
            "offVariant: no variant \"nope\" in this flag",
            "rules[1].serve.rollout.split: weights add up to 4000, not 10000",
        ]
    );
    let mut unknown = new_nav();
    unknown["colour"] = json!("red");
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/environments/{env}/flags"),
            Some(unknown),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        problems(&body)[0].contains("unknown field `colour`"),
        "{body}"
    );
    // A flag may be served by a draft (it enrols nobody until it runs), not by nothing.
    let mut by_draft = new_nav();
    by_draft["fallthrough"] = json!({"experiment": {"key": "nowhere", "variants": {"control": "off", "treatment": "on"}}});
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/environments/{env}/flags"),
            Some(by_draft),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        problems(&body),
        ["fallthrough.experiment.key: no experiment \"nowhere\""]
    );
    let mut taken = new_nav();
    taken["key"] = json!("checkout");
    app.ok(
        Method::PATCH,
        &format!(
            "/experiments/{}/status",
            app.experiment(&env, "hero").await.0
        ),
        json!({"status": "RUNNING"}),
    )
    .await;
    taken["key"] = json!("hero");
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/environments/{env}/flags"),
            Some(taken),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        problems(&body),
        ["key: \"hero\" is already an experiment's key"]
    );
    let (status, list) = app
        .call(Method::GET, &format!("/environments/{env}/flags"), None)
        .await;
    assert_eq!(
        (status, list),
        (StatusCode::OK, json!([])),
        "nothing refused was kept"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn flags_publish_and_the_kill_switch_publishes_only_itself(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let flag = app
        .ok(
            Method::POST,
            &format!("/environments/{env}/flags"),
            new_nav(),
        )
        .await;
    let id = flag["id"].as_str().unwrap().to_owned();
    assert_eq!(flag["enabled"], true);
    let (status, again) = app
        .call(
            Method::POST,
            &format!("/environments/{env}/flags"),
            Some(new_nav()),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    publish(&app, &env).await;
    let snapshot = app.current_file("prod");
    assert_eq!(snapshot["version"], 1);
    assert_eq!(snapshot["flags"][0]["key"], "new-nav");
    assert_eq!(snapshot["flags"][0]["off_variant"], "off");
    assert_eq!(
        snapshot["flags"][0]["rules"][1]["serve"]["rollout"]["traffic"],
        1000
    );
    // An edit waits for a publisher; the kill switch does not, and takes only itself along.
    let patched = app
        .ok(
            Method::PATCH,
            &format!("/flags/{id}"),
            json!({"rules": [{"serve": {"rollout": {"traffic": 2000, "split": [{"variant": "on", "weight": 10000}]}}}]}),
        )
        .await;
    assert_eq!(patched["rules"][0]["serve"]["rollout"]["traffic"], 2000);
    assert_eq!(patched["name"], "New navigation", "fields not named stay");
    // The plan counts exactly who changes: the rollout moved from rule 1 to rule 0 and the
    // staff rule is gone, so the targeting changed; an untargeted unit gains 10%.
    let (_, plan) = app
        .call(Method::GET, &format!("/environments/{env}/plan"), None)
        .await;
    let change = &plan["flags"][0];
    assert_eq!(change["flag"], "new-nav");
    assert_eq!(change["kind"], "changed");
    assert_eq!(change["changed_share"], 0.1);
    assert_eq!(change["also_changed"], json!(["targeting"]));
    let killed = app
        .ok(
            Method::PUT,
            &format!("/flags/{id}/kill"),
            json!({"killed": true}),
        )
        .await;
    assert_eq!(killed["flag"]["enabled"], false);
    assert_eq!(killed["published"]["version"], 2);
    let snapshot = app.current_file("prod");
    assert_eq!(snapshot["version"], 2);
    assert_eq!(snapshot["flags"][0]["enabled"], false);
    assert_eq!(
        snapshot["flags"][0]["rules"][1]["serve"]["rollout"]["traffic"], 1000,
        "the pending edit is not published by the kill switch"
    );
    publish(&app, &env).await;
    let snapshot = app.current_file("prod");
    assert_eq!(snapshot["version"], 3);
    assert_eq!(
        snapshot["flags"][0]["rules"][0]["serve"]["rollout"]["traffic"],
        2000
    );
    assert_eq!(snapshot["flags"][0]["enabled"], false);
    let revived = app
        .ok(
            Method::PUT,
            &format!("/flags/{id}/kill"),
            json!({"killed": false}),
        )
        .await;
    assert_eq!(revived["published"]["version"], 4);
    assert!(
        app.current_file("prod")["flags"][0]
            .get("enabled")
            .is_none(),
        "enabled is the default"
    );
    // Archived, it leaves the next snapshot and its key is free again.
    app.ok(Method::DELETE, &format!("/flags/{id}"), json!({}))
        .await;
    publish(&app, &env).await;
    assert!(app.current_file("prod").get("flags").is_none());
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/flags/{id}"),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    app.ok(
        Method::POST,
        &format!("/environments/{env}/flags"),
        new_nav(),
    )
    .await;
    let actions: Vec<String> = app
        .audit(&id)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for wanted in [
        "flag.create",
        "flag.update",
        "flag.kill",
        "flag.revive",
        "flag.archive",
    ] {
        assert!(
            actions.iter().any(|a| a == wanted),
            "{wanted} missing from {actions:?}"
        );
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn editors_edit_flags_and_only_publishers_kill_them(pool: PgPool) {
    let access =
        Access::from_config(Some("editor:ed:ed-token,publisher:pub:pub-token"), None).unwrap();
    let app = TestApp::with_access(pool, access);
    let (_, env) = app
        .call_as(
            Method::POST,
            "/environments",
            Some(json!({"name": "prod"})),
            Some("ed-token"),
        )
        .await;
    let env = env["id"].as_str().unwrap().to_owned();
    let (status, flag) = app
        .call_as(
            Method::POST,
            &format!("/environments/{env}/flags"),
            Some(new_nav()),
            Some("ed-token"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{flag}");
    let id = flag["id"].as_str().unwrap();
    let kill = json!({"killed": true});
    let (status, _) = app
        .call_as(
            Method::PUT,
            &format!("/flags/{id}/kill"),
            Some(kill.clone()),
            Some("ed-token"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call_as(
            Method::PUT,
            &format!("/flags/{id}/kill"),
            Some(kill),
            Some("pub-token"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["published"],
        Value::Null,
        "never published: nothing to publish"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn ofrep_access_is_a_setting_and_snapshots_carry_key_hashes_only(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/environments/{env}/settings"),
            Some(json!({"ofrep": {"allowedOrigins": ["https://shop.example.com"], "clientKeys": ["short"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        problems(&body),
        ["ofrep.clientKeys[0]: a client key is at least 16 characters, without spaces"]
    );
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/environments/{env}/settings"),
            Some(json!({"ofrep": {"allowedOrigins": ["shop.example.com/x"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        problems(&body)[0].starts_with("ofrep.allowedOrigins[0]: "),
        "{body}"
    );
    let key = "client-key-for-the-shop";
    app.ok(
        Method::PUT,
        &format!("/environments/{env}/settings"),
        json!({"ofrep": {"allowedOrigins": ["https://shop.example.com"], "clientKeys": [key]}}),
    )
    .await;
    publish(&app, &env).await;
    let snapshot = app.current_file("prod");
    assert_eq!(
        snapshot["ofrep"]["allowed_origins"],
        json!(["https://shop.example.com"])
    );
    let hashes = snapshot["ofrep"]["client_key_hashes"].as_array().unwrap();
    assert_eq!(hashes.len(), 1);
    assert_eq!(hashes[0].as_str().unwrap().len(), 64);
    assert!(
        !snapshot.to_string().contains(key),
        "the key itself never reaches the edge"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_draft_flag_travels_as_a_draft_and_is_deleted_or_launched(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let mut draft = new_nav();
    draft["draft"] = json!(true);
    let flag = app
        .ok(Method::POST, &format!("/environments/{env}/flags"), draft)
        .await;
    let id = flag["id"].as_str().unwrap().to_owned();
    assert_eq!(flag["draft"], true);
    // A draft serves nobody, so the plan shows no flag change; it still goes out, for
    // previews.
    let (_, plan) = app
        .call(Method::GET, &format!("/environments/{env}/plan"), None)
        .await;
    assert!(plan["flags"].as_array().is_none_or(Vec::is_empty), "{plan}");
    publish(&app, &env).await;
    assert_eq!(app.current_file("prod")["flags"][0]["draft"], true);

    // Deleted, it is gone for good and its key free.
    let (status, _) = app
        .call(Method::DELETE, &format!("/flags/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.call(Method::GET, &format!("/flags/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let actions: Vec<String> = app
        .audit(&id)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(actions.iter().any(|a| a == "flag.delete"), "{actions:?}");

    // Launched, the plan counts it as added, and it can never be a draft again nor be
    // deleted: it is archived instead.
    let mut again = new_nav();
    again["draft"] = json!(true);
    let flag = app
        .ok(Method::POST, &format!("/environments/{env}/flags"), again)
        .await;
    let id = flag["id"].as_str().unwrap().to_owned();
    let launched = app
        .ok(
            Method::PATCH,
            &format!("/flags/{id}"),
            json!({"draft": false}),
        )
        .await;
    assert_eq!(launched["draft"], false);
    let (_, plan) = app
        .call(Method::GET, &format!("/environments/{env}/plan"), None)
        .await;
    assert_eq!(plan["flags"][0]["kind"], "added", "{plan}");
    publish(&app, &env).await;
    assert!(app.current_file("prod")["flags"][0].get("draft").is_none());
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/flags/{id}"),
            Some(json!({"draft": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let archived = app
        .ok(Method::DELETE, &format!("/flags/{id}"), json!({}))
        .await;
    assert_eq!(archived["archived"], true);
    let actions: Vec<String> = app
        .audit(&id)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(actions.iter().any(|a| a == "flag.launch"), "{actions:?}");
}
