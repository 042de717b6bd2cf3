//! Edge routing in the control plane, against a real Postgres: origins allow-listed per
//! environment, routes and routing actions validated before anything is saved or published.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{problems, TestApp};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrations = "./migrations")]
async fn routing_actions_only_reach_allowed_origins(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let env = app.environment("prod").await;
    let settings = format!("/environments/{env}/settings");
    let (status, body) = app
        .call(
            Method::PUT,
            &settings,
            Some(json!({"origins": {"beta": "ftp://beta"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(problems(&body)[0].starts_with("origins.beta: "), "{body}");
    app.ok(
        Method::PUT,
        &settings,
        json!({"origins": {"beta": "https://beta.example.com"}}),
    )
    .await;

    let (id, _) = app.experiment(&env, "landing").await;
    let path = format!("/experiments/{id}");
    // An origin outside the allow-list is refused, and nothing is saved.
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"routes": {"include": ["/shop/*"]},
                        "variantRoutes": {"treatment": {"origin": "https://evil.example"}}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        problems(&body),
        ["experiments[landing].variants[1].route.origin: origin \"https://evil.example\" is not in the environment's allowed origins"]
    );
    let (_, unchanged) = app.call(Method::GET, &path, None).await;
    assert_eq!(unchanged["routes"], json!(null));
    assert_eq!(unchanged["variants"][1]["route"], json!(null));
    // A new variant with such a route is not created either.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("{path}/variants"),
            Some(json!({"key": "rogue", "route": {"origin": "nowhere"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, still) = app.call(Method::GET, &path, None).await;
    assert_eq!(still["variants"].as_array().unwrap().len(), 2);

    // A redirect into the experiment's own routes would loop.
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"routes": {"include": ["/shop/*"]},
                        "variantRoutes": {"treatment": {"redirect": "/shop/new"}}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problems(&body)[0].contains("redirected again"), "{body}");

    // Targets a browser reads as another host: `\` is `/`, tabs and newlines are dropped.
    for target in ["/\\evil.example", "/\\/evil.example", "/\t/evil.example"] {
        let (status, body) = app
            .call(
                Method::PATCH,
                &path,
                Some(json!({"routes": {"include": ["/shop/*"]},
                            "variantRoutes": {"treatment": {"redirect": target}}})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{target:?}: {body}"
        );
        assert!(
            problems(&body)[0].contains("must be an http(s) URL or a path"),
            "{target:?}: {body}"
        );
    }

    let saved = app
        .ok(
            Method::PATCH,
            &path,
            json!({"routes": {"include": ["/shop/*"], "exclude": ["/shop/admin/*"]},
                   "variantRoutes": {"treatment": {"origin": "beta", "rewrite": "/v2{path}"}}}),
        )
        .await;
    assert_eq!(saved["variants"][1]["route"]["origin"], "beta");
    let running = app
        .ok(
            Method::PATCH,
            &format!("{path}/status"),
            json!({"status": "RUNNING"}),
        )
        .await;
    assert_eq!(running["published"]["version"], 1);
    let snapshot = app.current_file("prod");
    assert_eq!(
        snapshot["origins"],
        json!({"beta": "https://beta.example.com"})
    );
    let exp = &snapshot["experiments"][0];
    assert_eq!(
        exp["routes"],
        json!({"include": ["/shop/*"], "exclude": ["/shop/admin/*"]})
    );
    assert_eq!(
        exp["variants"][1]["route"],
        json!({"origin": "beta", "rewrite": "/v2{path}"})
    );
    assert_eq!(exp["variants"][0].get("route"), None);

    // Removing an origin a running variant still uses is refused before the next publish.
    let (status, body) = app
        .call(Method::PUT, &settings, Some(json!({"origins": {}})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        problems(&body)[0].starts_with("experiments[landing].variants[1].route.origin"),
        "{body}"
    );

    // Whatever slips past the edit checks (a row changed by hand) is refused at publish, and
    // the version in service stays.
    sqlx::query("update variants set route = '{\"origin\": \"gone\"}' where key = 'treatment'")
        .execute(&pool)
        .await
        .unwrap();
    let (status, body) = app
        .call(Method::POST, &format!("/environments/{env}/publish"), None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        problems(&body),
        ["experiments[landing].variants[1].route.origin: origin \"gone\" is not in the environment's allowed origins"]
    );
    assert_eq!(app.current_file("prod")["version"], 1);
}
