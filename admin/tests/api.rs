//! The REST API against a real Postgres (one fresh database per test, migrations applied).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{problems, TestApp};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrations = "./migrations")]
async fn environments_create_list_get(pool: PgPool) {
    let app = TestApp::new(pool);
    let (status, env) = app
        .call(Method::POST, "/environments", Some(json!({"name": "prod"})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(env["name"], "prod");
    assert_eq!(env["currentVersion"], json!(null));
    let (status, dup) = app
        .call(Method::POST, "/environments", Some(json!({"name": "prod"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(dup["error"]["code"], "conflict");
    let (status, bad) = app
        .call(
            Method::POST,
            "/environments",
            Some(json!({"name": "Prod!"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problems(&bad),
        ["name: \"Prod!\" does not match [a-z][a-z0-9_.-]{0,63}"]
    );
    let (status, list) = app.call(Method::GET, "/environments", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let id = env["id"].as_str().unwrap();
    let (status, got) = app
        .call(Method::GET, &format!("/environments/{id}"), None)
        .await;
    assert_eq!(
        (status, got["name"].clone()),
        (StatusCode::OK, json!("prod"))
    );
    for missing in [
        "/environments/00000000-0000-0000-0000-000000000000",
        "/environments/not-a-uuid",
        "/nope",
    ] {
        let (status, body) = app.call(Method::GET, missing, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(body["error"]["code"], "not_found");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn mutations_need_the_token(pool: PgPool) {
    let app = TestApp::new(pool);
    for token in [None, Some("wrong")] {
        let (status, body) = app
            .call_as(
                Method::POST,
                "/environments",
                Some(json!({"name": "prod"})),
                token,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let (_, list) = app.call(Method::GET, "/environments", None).await;
    assert_eq!(list, json!([]), "nothing was written");
}

#[sqlx::test(migrations = "./migrations")]
async fn malformed_bodies_are_400(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let (status, body) = app
        .call(Method::POST, "/experiments", Some(json!({"key": "a"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("environmentId"),
        "{body}"
    );
    let (id, _) = app.experiment(&env, "exp").await;
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{id}"),
            Some(json!({"salt": "changed"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `salt`"),
        "{body}"
    );
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{id}/status"),
            Some(json!({"status": "LIVE"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrations = "./migrations")]
async fn experiments_and_variants(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let other = app.environment("staging").await;
    let (status, e) = app
        .call(Method::POST, "/experiments", Some(json!({"key": "checkout-button-color", "name": "Checkout", "description": "d", "environmentId": env})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(e["status"], "DRAFT");
    assert_eq!(e["salt"], "checkout-button-color");
    assert_eq!(e["unit"], "user");
    assert_eq!(e["traffic"], 10000);
    assert_eq!(e["variants"], json!([]));
    let (status, _) = app
        .call(
            Method::POST,
            "/experiments",
            Some(json!({"key": "checkout-button-color", "environmentId": env})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The same key in another environment is fine.
    let (status, _) = app
        .call(Method::POST, "/experiments", Some(json!({"key": "checkout-button-color", "environmentId": other, "unit": "account", "salt": "s2"})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .call(
            Method::POST,
            "/experiments",
            Some(json!({"key": "Bad Key", "environmentId": env, "unit": "U", "salt": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problems(&body).len(), 3, "{body}");
    let (status, _) = app
        .call(
            Method::POST,
            "/experiments",
            Some(json!({"key": "x", "environmentId": "00000000-0000-0000-0000-000000000000"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let id = e["id"].as_str().unwrap();
    let (status, v) = app
        .call(
            Method::POST,
            &format!("/experiments/{id}/variants"),
            Some(json!({"key": "control", "name": "Control", "payload": {"color": "#0066cc"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(v["payload"], json!({"color": "#0066cc"}));
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/experiments/{id}/variants"),
            Some(json!({"key": "control"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/experiments/{id}/variants"),
            Some(json!({"key": "Nope!"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (_, listed) = app
        .call(
            Method::GET,
            &format!("/experiments?environmentId={env}"),
            None,
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (_, all) = app.call(Method::GET, "/experiments", None).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, got) = app
        .call(Method::GET, &format!("/experiments/{id}"), None)
        .await;
    assert_eq!(got["variants"][0]["key"], "control");
    let (status, _) = app
        .call(Method::GET, "/experiments?environmentId=zzz", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrations = "./migrations")]
async fn allocations_are_validated_with_every_problem_listed(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let (id, variants) = app.experiment(&env, "exp").await;
    let path = format!("/experiments/{id}/allocations");
    let (status, body) = app
        .call(Method::PUT, &path, Some(json!({"allocations": [
            {"variantId": variants[0], "rangeStart": 0, "rangeEnd": 6000},
            {"variantId": variants[1], "rangeStart": 5000, "rangeEnd": 9998},
            {"variantId": variants[1], "rangeStart": 9999, "rangeEnd": 10000},
            {"variantId": "00000000-0000-0000-0000-000000000000", "rangeStart": 1, "rangeEnd": 2}
        ]})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let got = problems(&body);
    assert!(
        got.iter()
            .any(|p| p.starts_with("allocations[3].variantId")),
        "{got:?}"
    );
    // Problems are named by the allocation the request sent, not the snapshot's shape.
    assert!(
        got.iter()
            .any(|p| p.starts_with("allocations[2]: range [9999, 10000] is outside 0..=9999")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|p| p.starts_with("allocations: ") && p.contains("overlap")),
        "{got:?}"
    );
    assert_eq!(got.len(), 3, "{got:?}");
    // Nothing changed.
    let (_, e) = app
        .call(Method::GET, &format!("/experiments/{id}"), None)
        .await;
    assert_eq!(e["allocations"].as_array().unwrap().len(), 2);
    assert_eq!(e["allocations"][1]["rangeStart"], 5000);
    // Gaps are fine (units there are not enrolled).
    let (status, e) = app
        .call(
            Method::PUT,
            &path,
            Some(json!({"allocations": [
                {"variantId": variants[0], "rangeStart": 0, "rangeEnd": 999},
                {"variantId": variants[1], "rangeStart": 9000, "rangeEnd": 9999}
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(e["allocations"][1]["rangeStart"], 9000);
    let audit = app.audit(&id).await;
    let last = audit.last().unwrap();
    assert_eq!(last["action"], "experiment.allocations");
    assert_eq!(last["actor"], "tester@example.com");
    assert_eq!(last["before"][1]["rangeStart"], 5000);
    assert_eq!(last["after"][1]["rangeStart"], 9000);
}

#[sqlx::test(migrations = "./migrations")]
async fn patch_validates_targeting_traffic_schedule_and_layers(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let (a, _) = app.experiment(&env, "a").await;
    let (b, _) = app.experiment(&env, "b").await;
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{a}"),
            Some(json!({
                "traffic": 20000,
                "startAt": "soon",
                "targetingRules": [{"conditions": [
                    {"attribute": "country", "operator": "shouts", "value": "US"},
                    {"attribute": "age", "operator": "gt", "value": "old"},
                    {"attribute": "country", "operator": "in", "value": "US"}
                ]}]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let got = problems(&body);
    assert_eq!(got.len(), 5, "{got:#?}");
    assert!(got.contains(&"traffic: traffic 20000 is outside 0..=10000".to_owned()));
    assert!(got
        .iter()
        .any(|p| p.contains("unknown operator \"shouts\"")));
    assert!(got
        .iter()
        .any(|p| p.contains("expected a number, got \"old\"")));
    assert!(got.iter().any(|p| p.contains("expected a list")));

    let (status, e) = app
        .call(Method::PATCH, &format!("/experiments/{a}"), Some(json!({
            "name": "renamed", "traffic": 2500, "startAt": "2026-01-01T00:00:00Z",
            "layer": {"key": "homepage", "ranges": [[0, 4999]]},
            "targetingRules": [{"conditions": [{"attribute": "country", "operator": "in", "value": ["US", "CA"]}]}]
        })))
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(
        e["layer"],
        json!({"key": "homepage", "salt": "homepage", "ranges": [[0, 4999]]})
    );
    assert_eq!(e["startAt"], "2026-01-01T00:00:00Z");
    app.ok(
        Method::PATCH,
        &format!("/experiments/{a}/status"),
        json!({"status": "RUNNING"}),
    )
    .await;

    // b overlapping a's slice of the running layer is refused.
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{b}"),
            Some(json!({"layer": {"key": "homepage", "ranges": [[4000, 9999]]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problems(&body)[0].contains("layer ranges of"), "{body}");
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{b}"),
            Some(json!({"layer": {"key": "homepage", "salt": "other", "ranges": [[5000, 9999]]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problems(&body)[0].contains("already uses salt"), "{body}");
    app.ok(
        Method::PATCH,
        &format!("/experiments/{b}"),
        json!({"layer": {"key": "homepage", "ranges": [[5000, 9999]]}}),
    )
    .await;
    let (_, e) = app
        .call(
            Method::PATCH,
            &format!("/experiments/{b}"),
            Some(json!({"layer": null, "startAt": null})),
        )
        .await;
    assert_eq!(e["layer"], json!(null));
    let audit = app.audit(&a).await;
    let update = audit
        .iter()
        .find(|x| x["action"] == "experiment.update")
        .unwrap();
    assert_eq!(update["before"]["name"], "a");
    assert_eq!(update["after"]["name"], "renamed");
}

#[sqlx::test(migrations = "./migrations")]
async fn drafts_can_be_deleted_and_nothing_that_ran_can(pool: PgPool) {
    let app = TestApp::new(pool);
    let env = app.environment("prod").await;
    let (draft, variants) = app.experiment(&env, "mistake").await;
    // A draft's variant goes with its allocation.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/experiments/{draft}/variants/{}", variants[1]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, left) = app
        .call(Method::GET, &format!("/experiments/{draft}"), None)
        .await;
    assert_eq!(left["variants"].as_array().unwrap().len(), 1);
    assert_eq!(left["allocations"].as_array().unwrap().len(), 1);
    let (status, _) = app
        .call(Method::DELETE, &format!("/experiments/{draft}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call(Method::GET, &format!("/experiments/{draft}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let actions: Vec<String> = app
        .audit(&draft)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        actions.contains(&"variant.delete".to_owned())
            && actions.contains(&"experiment.delete".to_owned()),
        "{actions:?}"
    );
    // Its key is free again.
    app.experiment(&env, "mistake").await;

    let (running, variants) = app.experiment(&env, "live").await;
    app.ok(
        Method::PATCH,
        &format!("/experiments/{running}/status"),
        json!({"status": "RUNNING"}),
    )
    .await;
    let (status, body) = app
        .call(Method::DELETE, &format!("/experiments/{running}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("only drafts can be deleted"));
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/experiments/{running}/variants/{}", variants[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, still) = app
        .call(Method::GET, &format!("/experiments/{running}"), None)
        .await;
    assert_eq!(
        still["variants"].as_array().unwrap().len(),
        2,
        "nothing was deleted"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn definitions_are_promoted_to_another_environment_as_drafts(pool: PgPool) {
    let app = TestApp::new(pool);
    let staging = app.environment("staging").await;
    let prod = app.environment("prod").await;
    let (id, _) = app.experiment(&staging, "checkout").await;
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}"),
        json!({"traffic": 2500, "targetingRules": [{"conditions": [
            {"attribute": "country", "operator": "eq", "value": "US"}]}]}),
    )
    .await;
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}/status"),
        json!({"status": "RUNNING"}),
    )
    .await;
    let copy = app
        .ok(
            Method::POST,
            &format!("/experiments/{id}/promote"),
            json!({"environmentId": prod}),
        )
        .await;
    assert_eq!(copy["environmentId"], prod.as_str());
    assert_eq!(copy["status"], "DRAFT");
    let (_, source) = app
        .call(Method::GET, &format!("/experiments/{id}"), None)
        .await;
    for field in ["key", "salt", "traffic", "targetingRules", "unit"] {
        assert_eq!(copy[field], source[field], "{field}");
    }
    let keys = |e: &serde_json::Value| {
        e["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["key"].clone(), v["payload"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&copy), keys(&source));
    let ranges = |e: &serde_json::Value| {
        e["allocations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["rangeStart"].clone(), a["rangeEnd"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ranges(&copy), ranges(&source));
    let copy_id = copy["id"].as_str().unwrap();
    let actions: Vec<String> = app
        .audit(copy_id)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["experiment.promote"]);
    // Twice is a conflict, and the target keeps one.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/experiments/{id}/promote"),
            Some(json!({"environmentId": prod})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // A copy the target cannot take is refused whole: nothing is left behind.
    let (routed, _) = app.experiment(&staging, "routed").await;
    app.ok(
        Method::PUT,
        &format!("/environments/{staging}/settings"),
        json!({"origins": {"beta": "https://beta.example.com"}}),
    )
    .await;
    app.ok(
        Method::PATCH,
        &format!("/experiments/{routed}"),
        json!({"variantRoutes": {"treatment": {"origin": "beta"}}}),
    )
    .await;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/experiments/{routed}/promote"),
            Some(json!({"environmentId": prod})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, in_prod) = app
        .call(
            Method::GET,
            &format!("/experiments?environmentId={prod}"),
            None,
        )
        .await;
    let prod_keys: Vec<&str> = in_prod
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(prod_keys, ["checkout"]);

    let flag = app
        .ok(
            Method::POST,
            &format!("/environments/{staging}/flags"),
            json!({"key": "new-nav", "type": "boolean", "offVariant": "off",
                   "variants": [{"key": "on", "value": true}, {"key": "off", "value": false}],
                   "fallthrough": {"variant": "on"}}),
        )
        .await;
    let promoted = app
        .ok(
            Method::POST,
            &format!("/flags/{}/promote", flag["id"].as_str().unwrap()),
            json!({"environmentId": prod}),
        )
        .await;
    assert_eq!(promoted["environmentId"], prod.as_str());
    assert_eq!(promoted["fallthrough"], flag["fallthrough"]);
    assert_eq!(
        (flag["draft"].clone(), promoted["draft"].clone()),
        (json!(false), json!(true)),
        "the copy is a draft: it serves nobody in prod until launched there"
    );
}
