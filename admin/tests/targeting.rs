//! Targeting, audiences, environment settings and the publish plan, against a real Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{problems, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

async fn run(app: &TestApp, id: &str) -> Value {
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}/status"),
        json!({"status": "RUNNING"}),
    )
    .await
}

#[sqlx::test(migrations = "./migrations")]
async fn typed_values_are_checked_and_every_problem_listed(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let (id, _) = app.experiment(&env, "checkout").await;
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{id}"),
            Some(json!({"targetingRules": [{"conditions": [
                {"attribute": "email", "operator": "regex", "value": "(unclosed"},
                {"attribute": "app", "operator": "semver_gte", "value": "2.x"},
                {"any": [{"attribute": "seats", "operator": "gt", "value": "many"}]},
                {"audience": "nobody-made-this"}
            ]}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let found = problems(&body);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found[0].contains("conditions[0].value: invalid regex"));
    assert!(found[1].contains("conditions[1].value: expected a SemVer"));
    assert!(found[2].contains("conditions[2].any[0].value: expected a number"));
    assert!(found[3].contains("unknown audience \"nobody-made-this\""));
}

#[sqlx::test(migrations = "./migrations")]
async fn audiences_compile_into_snapshots_and_wait_for_a_publisher_when_changed(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let audience = app
        .ok(
            Method::POST,
            "/audiences",
            json!({"key": "beta-testers", "name": "Beta testers", "targetingRules": [
                {"conditions": [{"attribute": "beta", "operator": "eq", "value": "true"}]}
            ]}),
        )
        .await;
    let aid = audience["id"].as_str().unwrap().to_owned();
    let (id, _) = app.experiment(&env, "new-nav").await;
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}"),
        json!({"targetingRules": [{"conditions": [{"audience": "beta-testers"}]}]}),
    )
    .await;
    run(&app, &id).await;
    let snapshot = app.current_file("prod");
    assert_eq!(snapshot["version"], 1);
    assert_eq!(snapshot["audiences"][0]["key"], "beta-testers");

    let changed = app
        .ok(
            Method::PATCH,
            &format!("/audiences/{aid}"),
            json!({"targetingRules": [{"conditions": [{"attribute": "beta", "operator": "in", "value": ["true", "1"]}]}]}),
        )
        .await;
    // Editing an audience publishes nothing: the change waits in the pending diff.
    assert_eq!(changed["pendingPublish"], json!(["prod"]), "{changed}");
    assert!(changed.get("published").is_none(), "{changed}");
    assert_eq!(app.current_file("prod")["version"], 1);
    assert_eq!(
        app.current_file("prod")["audiences"][0]["targeting"][0]["conditions"][0]["operator"],
        "eq"
    );
    let (_, pending) = app
        .call(Method::GET, &format!("/environments/{env}/pending"), None)
        .await;
    assert!(
        pending["settings"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["path"].as_str().unwrap_or("").starts_with("audiences"))),
        "{pending}"
    );
    let published = app
        .ok(
            Method::POST,
            &format!("/environments/{env}/publish"),
            json!({}),
        )
        .await;
    assert_eq!(published["version"], 2, "{published}");
    let snapshot = app.current_file("prod");
    assert_eq!(
        snapshot["audiences"][0]["targeting"][0]["conditions"][0]["operator"],
        "in"
    );

    let (status, body) = app
        .call(Method::DELETE, &format!("/audiences/{aid}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("new-nav"));
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/audiences/{aid}"),
            Some(json!({"targetingRules": [{"conditions": [{"audience": "x"}]}]})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "audiences do not nest"
    );

    let unused = app
        .ok(Method::POST, "/audiences", json!({"key": "unused"}))
        .await;
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/audiences/{}", unused["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call(
            Method::POST,
            "/audiences",
            Some(json!({"key": "beta-testers"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_publish_that_moves_enrolled_units_needs_confirmation(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let (id, variants) = app.experiment(&env, "checkout").await;
    run(&app, &id).await;
    app.ok(
        Method::PUT,
        &format!("/experiments/{id}/allocations"),
        json!({"allocations": [
            {"variantId": variants[0], "rangeStart": 0, "rangeEnd": 5999},
            {"variantId": variants[1], "rangeStart": 6000, "rangeEnd": 9999}
        ]}),
    )
    .await;
    let (status, plan) = app
        .call(Method::GET, &format!("/environments/{env}/plan"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plan["needs_confirmation"], json!(["checkout"]));
    let moved = plan["changes"][0]["moved_share"].as_f64().unwrap();
    assert!((moved - 0.10).abs() < 1e-12, "{plan}");

    let (status, body) = app
        .call(Method::POST, &format!("/environments/{env}/publish"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "confirmation_required");
    assert_eq!(
        body["error"]["plan"]["needs_confirmation"],
        json!(["checkout"])
    );
    assert_eq!(
        app.current_file("prod")["version"],
        1,
        "nothing was published"
    );

    let published = app
        .ok(
            Method::POST,
            &format!("/environments/{env}/publish?confirm=true"),
            json!(null),
        )
        .await;
    assert_eq!(published["version"], 2);
    assert_eq!(published["plan"]["changes"][0]["experiment"], "checkout");

    // Ramping traffic down moves nobody between variants: no confirmation.
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}"),
        json!({"traffic": 5000}),
    )
    .await;
    let published = app
        .ok(
            Method::POST,
            &format!("/environments/{env}/publish"),
            json!(null),
        )
        .await;
    assert_eq!(published["version"], 3);
}

#[sqlx::test(migrations = "./migrations")]
async fn settings_identity_and_prerequisites_reach_the_snapshot(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/environments/{env}/settings"),
            Some(json!({"contextSchema": [
                {"name": "ua.device", "source": "header", "key": "x", "type": "string"}
            ], "holdout": {"salt": "", "ranges": [[0, 99]]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(problems(&body).len(), 2, "{body}");
    app.ok(
        Method::PUT,
        &format!("/environments/{env}/settings"),
        json!({
            "holdout": {"salt": "h-2026", "unit": "user", "ranges": [[0, 499]]},
            "botPolicy": "control",
            "contextSchema": [{"name": "plan", "source": "header", "key": "x-plan", "type": "string", "required": true}]
        }),
    )
    .await;
    let (a, _) = app.experiment(&env, "checkout").await;
    let (b, _) = app.experiment(&env, "upsell").await;
    app.ok(
        Method::PATCH,
        &format!("/experiments/{b}"),
        json!({
            "fallbackUnit": "anonymous",
            "prerequisites": [{"experiment": "checkout", "variants": ["treatment"]}],
            "allowLists": {"treatment": ["qa-1"]}
        }),
    )
    .await;
    // Requiring a draft is allowed; publishing it is not, until the draft runs.
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{b}/status"),
            Some(json!({"status": "RUNNING"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    run(&app, &a).await;
    run(&app, &b).await;
    // A cycle is refused.
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{a}"),
            Some(json!({"prerequisites": [{"experiment": "upsell", "variants": ["control"]}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        problems(&body).iter().any(|p| p.contains("cycle")),
        "{body}"
    );
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{a}"),
            Some(json!({"allowLists": {"purple": ["x"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let snapshot = app.current_file("prod");
    assert_eq!(snapshot["holdout"]["salt"], "h-2026");
    assert_eq!(snapshot["bot_policy"], "control");
    assert_eq!(snapshot["context_schema"][0]["name"], "plan");
    let upsell = snapshot["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "upsell")
        .unwrap();
    assert_eq!(upsell["fallback_unit"], "anonymous");
    assert_eq!(upsell["prerequisites"][0]["experiment"], "checkout");
    assert_eq!(upsell["variants"][1]["allow"], json!(["qa-1"]));
    cleave_core::Engine::new(serde_json::from_value(snapshot).unwrap()).unwrap();
}

#[sqlx::test(migrations = "./migrations")]
async fn the_operator_list_is_cores_and_each_listed_operator_is_accepted(pool: PgPool) {
    let app = TestApp::new(pool);
    let (status, body) = app.call(Method::GET, "/targeting/operators", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = body.as_array().unwrap();
    let names: Vec<&str> = listed.iter().map(|o| o["name"].as_str().unwrap()).collect();
    let core: Vec<&str> = cleave_core::snapshot::Operator::known()
        .map(|o| o.name())
        .collect();
    assert_eq!(names, core);
    let semver = listed.iter().find(|o| o["name"] == "semver_gte").unwrap();
    assert_eq!(semver["operand"], "version");
    let exists = listed.iter().find(|o| o["name"] == "exists").unwrap();
    assert_eq!(exists["operand"], "nothing");

    // What the dashboard builds from the list is what the experiment editor accepts.
    let env = app.environment("prod").await;
    let (id, _) = app.experiment(&env, "every-operator").await;
    let sample = |operand: &str| match operand {
        "list" => json!(["a", "b"]),
        "number" => json!(4),
        "version" => json!("1.2.3"),
        "time" => json!("2026-12-01T00:00:00Z"),
        "pattern" => json!("^a"),
        "nothing" => Value::Null,
        _ => json!("a"),
    };
    let conditions: Vec<Value> = listed
        .iter()
        .map(|o| {
            let mut c = json!({"attribute": "a", "operator": o["name"]});
            let value = sample(o["operand"].as_str().unwrap());
            if !value.is_null() {
                c["value"] = value;
            }
            c
        })
        .collect();
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{id}"),
            Some(json!({"targetingRules": [{"conditions": conditions}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[sqlx::test(migrations = "./migrations")]
async fn the_consent_signal_is_a_setting_checked_and_published(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/environments/{env}/settings"),
            Some(json!({"consent": {"source": "query", "name": "a b", "value": "yes"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let found = problems(&body);
    assert!(found[0].starts_with("consent.source: "), "{found:?}");
    assert!(found[1].starts_with("consent.name: "), "{found:?}");
    let consent =
        json!({"source": "cookie", "name": "cookie_consent", "value": "yes", "without": "none"});
    app.ok(
        Method::PUT,
        &format!("/environments/{env}/settings"),
        json!({ "consent": consent }),
    )
    .await;
    app.ok(
        Method::POST,
        &format!("/environments/{env}/publish"),
        json!({}),
    )
    .await;
    assert_eq!(app.current_file("prod")["consent"], consent);
}

#[sqlx::test(migrations = "./migrations")]
async fn identity_sources_are_checked_warned_about_and_published(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let settings = format!("/environments/{env}/settings");
    let (status, body) = app
        .call(
            Method::PUT,
            &settings,
            Some(json!({"identity": [
                {"unit": "user", "source": "cookie", "name": "session"},
                {"unit": "account", "source": "query", "name": "acct"},
                {"unit": "account", "source": "cookie", "name": "s",
                 "jwt": {"algorithm": "HS256", "secret": "SESSION_KEY"}},
                {"unit": "account", "source": "header", "name": "authorization",
                 "jwt": {"algorithm": "ES256"}}
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let found = problems(&body);
    for expected in [
        "identity[0].unit: ",
        "identity[1].source: ",
        "identity[2].jwt.secret: ",
        "identity[3].jwt.keys: ",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "{expected} in {found:?}"
        );
    }
    // Nothing of the refused settings was kept.
    let (_, environment) = app
        .call(Method::GET, &format!("/environments/{env}"), None)
        .await;
    assert!(
        environment["settings"]["identity"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{environment}"
    );

    let identity = json!([
        {"unit": "account", "source": "cookie", "name": "session",
         "jwt": {"algorithm": "HS256", "secret": "CLEAVE_JWT_SESSION", "claim": "acct", "leeway_s": 60}},
        {"unit": "team", "source": "header", "name": "x-team"}
    ]);
    app.ok(Method::PUT, &settings, json!({ "identity": identity }))
        .await;
    let (_, environment) = app
        .call(Method::GET, &format!("/environments/{env}"), None)
        .await;
    let warnings = environment["identityWarnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{environment}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("identity[1]: `team`"),
        "{warnings:?}"
    );
    app.ok(
        Method::POST,
        &format!("/environments/{env}/publish"),
        json!({}),
    )
    .await;
    assert_eq!(app.current_file("prod")["identity"], identity);
}
