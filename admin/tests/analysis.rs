//! The analysis loop in the control plane, against a real Postgres: idempotent ingest,
//! metric definitions, results (sums, SRM, corrections) and guardrails that pause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

mod common;
#[path = "analysis/support.rs"]
mod support;

use axum::http::{Method, StatusCode};
use cleave_core::exposure::{exposure_id, utc_day};
use common::problems;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{app, count, deliver, event, exposure, ingest, now_ms, running_experiment, INGEST};

#[sqlx::test(migrations = "./migrations")]
async fn ingest_is_idempotent_per_record_and_needs_an_ingest_token(pool: PgPool) {
    let app = app(pool.clone());
    app.environment("prod").await;
    let at = now_ms();
    let batch = json!({
        "environment": "prod",
        "exposures": [exposure("prod", "checkout", "control", "u1", at),
                      exposure("prod", "checkout", "control", "u1", at + 5),
                      exposure("prod", "checkout", "treatment", "u2", at)],
        "events": [event("e1", "u1", "purchase", 1.0, at), event("e2", "u2", "purchase", 1.0, at)],
    });
    let (status, body) = ingest(&app, batch.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same visitor twice in a day is one exposure.
    assert_eq!(
        body["exposures"],
        json!({"received": 3, "stored": 2, "refused": []})
    );
    assert_eq!(
        body["events"],
        json!({"received": 2, "stored": 2, "refused": []})
    );
    // A redelivered batch stores nothing.
    let (_, again) = ingest(&app, batch).await;
    assert_eq!(again["exposures"]["stored"], 0);
    assert_eq!(again["events"]["stored"], 0);
    assert_eq!(
        (
            count(&pool, "exposures").await,
            count(&pool, "events").await
        ),
        (2, 2)
    );

    // A forged, a malformed and a badly named record are refused by index, with the reason;
    // their neighbours are stored.
    let mut forged = exposure("prod", "checkout", "treatment", "u3", at);
    forged["variant"] = json!("control");
    let (status, body) = ingest(
        &app,
        json!({"environment": "prod",
               "exposures": [exposure("prod", "checkout", "control", "u9", at), forged, {"id": "x"}],
               "events": [event("e3", "u9", "purchase", 1.0, at), event("e4", "u9", "Bad Metric", 1.0, at)]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["exposures"]["stored"], 1);
    let refused = &body["exposures"]["refused"];
    assert_eq!(
        refused[0],
        json!({"index": 1, "error": "exposures[1].id: does not match the exposure's fields"})
    );
    assert_eq!(refused[1]["index"], 2);
    assert!(
        refused[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("exposures[2]: missing field"),
        "{refused}"
    );
    assert_eq!(body["events"]["stored"], 1);
    assert_eq!(body["events"]["refused"][0]["index"], 1);
    assert!(body["events"]["refused"][0]["error"]
        .as_str()
        .unwrap()
        .starts_with("events[1].metric:"));

    // An environment this admin does not know refuses each of its records, never the answer.
    let (status, body) = ingest(
        &app,
        json!({"environment": "nowhere", "events": [event("e5", "u9", "purchase", 1.0, at)]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["events"]["refused"],
        json!([{"index": 0, "error": "environment: \"nowhere\" is not an environment of this admin"}])
    );
    assert_eq!(
        (
            count(&pool, "exposures").await,
            count(&pool, "events").await
        ),
        (3, 3)
    );

    // People's tokens cannot deliver, and the edge's token cannot read.
    let (status, _) = app
        .call_as(
            Method::POST,
            "/ingest",
            Some(json!({"environment": "prod"})),
            Some("view"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call_as(Method::GET, "/experiments", None, Some(INGEST))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[sqlx::test(migrations = "./migrations")]
async fn metric_definitions_are_validated(pool: PgPool) {
    let app = app(pool);
    let (status, body) = app
        .call(
            Method::POST,
            "/metric-definitions",
            Some(json!({"key": "purchase", "kind": "share", "direction": "increase"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problems(&body),
        ["kind: \"share\": use conversion, continuous or ratio"]
    );
    // A ratio names both its events; other kinds name none.
    for (metric, want) in [
        (
            json!({"key": "aov", "direction": "increase", "kind": "ratio", "numerator": "revenue"}),
            vec!["denominator: a ratio metric needs a denominator: the event key whose values are summed"],
        ),
        (
            json!({"key": "aov", "direction": "increase", "kind": "ratio", "numerator": "Revenue", "denominator": "orders"}),
            vec!["numerator: \"Revenue\" is not an event key (lowercase letter, then up to 63 of a-z 0-9 _ . -)"],
        ),
        (
            json!({"key": "aov", "direction": "increase", "kind": "continuous", "numerator": "revenue"}),
            vec!["numerator: only a ratio metric has a numerator"],
        ),
    ] {
        let (status, body) = app.call(Method::POST, "/metric-definitions", Some(metric)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(problems(&body), want);
    }
    let id = running_experiment(&app).await;
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/experiments/{id}/metrics"),
            Some(json!({"metrics": [{"metric": "nope", "role": "primary"},
                                    {"metric": "purchase", "role": "tertiary"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problems(&body),
        [
            "metrics[0].metric: no metric \"nope\"; define it first (POST /metric-definitions)",
            "metrics[1].role: \"tertiary\": use primary, secondary or guardrail"
        ]
    );
    let (_, kept) = app
        .call(Method::GET, &format!("/experiments/{id}/metrics"), None)
        .await;
    assert_eq!(
        kept.as_array().unwrap().len(),
        3,
        "the refused change kept the old set"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn results_sum_units_and_events_per_variant_and_flag_srm(pool: PgPool) {
    let app = app(pool.clone());
    let id = running_experiment(&app).await;
    // 52/48 on a 50/50 split; a 10% vs 15% conversion; revenue 2 higher; latency equal.
    deliver(&app, [5200, 4800], [520, 720], [10.0, 12.0], [100.0, 100.0]).await;
    // An event before the unit's exposure does not count; forced traffic is left out.
    let early = now_ms() - 3_600_000;
    let at = now_ms();
    let mut forced = exposure("prod", "checkout", "treatment", "qa", at);
    forced["excluded"] = json!("forced");
    let (status, _) = ingest(
        &app,
        json!({"environment": "prod", "exposures": [forced],
               "events": [event("early", "control-999", "purchase", 1.0, early)]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, r) = app
        .call(Method::GET, &format!("/experiments/{id}/results"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["control"], "control");
    assert_eq!(r["variants"][0]["units"], 5200);
    assert_eq!(r["variants"][1]["units"], 4800);
    assert_eq!(r["variants"][0]["expectedShare"], 0.5);
    assert_eq!(r["excludedUnits"], json!({"forced": 1}));
    // 52/48 at 10,000 units fails a single chi-square look, but the always-valid sequential
    // test (scipy's Dirichlet-multinomial against the multinomial) does not yet call it.
    let srm = &r["srm"];
    assert!(srm["pValue"].as_f64().unwrap() < 0.001, "{srm}");
    assert_eq!(srm["mismatch"], false, "{srm}");
    let seq = srm["sequentialPValue"].as_f64().unwrap();
    assert!(
        (seq - 0.002_297_766_6).abs() <= 0.002_297_766_6 * 1e-6,
        "{srm}"
    );
    let purchase = &r["metrics"][0];
    assert_eq!(purchase["key"], "purchase");
    assert_eq!(purchase["variants"][0]["conversions"], 520);
    assert!((purchase["variants"][0]["mean"].as_f64().unwrap() - 0.1).abs() < 1e-12);
    assert!((purchase["variants"][1]["mean"].as_f64().unwrap() - 0.15).abs() < 1e-12);
    let c = &purchase["comparisons"][0];
    assert!((c["difference"].as_f64().unwrap() - 0.05).abs() < 1e-12);
    assert_eq!(c["verdict"], "better");
    assert!(c["pValue"].as_f64().unwrap() < 1e-6);
    // Holm over two comparisons (purchase, revenue): the smaller p doubles.
    let revenue = &r["metrics"][1];
    let ps = [
        c["pValue"].as_f64().unwrap(),
        revenue["comparisons"][0]["pValue"].as_f64().unwrap(),
    ];
    let smaller = ps[0].min(ps[1]);
    let adjusted = if ps[0] <= ps[1] {
        c["adjustedPValue"].clone()
    } else {
        revenue["comparisons"][0]["adjustedPValue"].clone()
    };
    assert!((adjusted.as_f64().unwrap() - (2.0 * smaller).min(1.0)).abs() < 1e-15);
    assert!((revenue["comparisons"][0]["difference"].as_f64().unwrap() - 2.0).abs() < 0.01);
    assert_eq!(r["metrics"][2]["comparisons"][0]["verdict"], "inconclusive");
    assert_eq!(r["guardrailBreaches"], json!([]));
    // The Bayesian reading of the relative lift (0.15 / 0.1 - 1) and the sample size plan of
    // the primary metric, against scipy and statsmodels' NormalIndPower.
    let b = &c["bayesian"];
    let near = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() <= want.abs() * 1e-6;
    assert!(near(&b["lift"], 0.5), "{b}");
    assert!(near(&b["liftCiLow"], 0.341_370_235_672_025_2), "{b}");
    assert!(near(&b["liftCiHigh"], 0.658_629_764_327_974_4), "{b}");
    assert!(
        near(&b["chanceToBeatControl"], 0.999_999_999_674_982_5),
        "{b}"
    );
    let plan = &r["plan"];
    assert_eq!(
        (
            plan["metric"].clone(),
            plan["unitsPerVariant"].clone(),
            plan["unitsNeeded"].clone()
        ),
        (json!("purchase"), json!(56_512), json!(113_024)),
        "{plan}"
    );
    assert!(plan["daysLeft"].as_f64().unwrap() > 0.0, "{plan}");
    let (_, planned) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/results?mde=0.1&power=0.9"),
            None,
        )
        .await;
    assert_eq!(
        planned["plan"]["unitsPerVariant"], 18_914,
        "{}",
        planned["plan"]
    );
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/results?power=1.5"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Benjamini-Hochberg on request; bad options are refused.
    let (_, bh) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/results?correction=bh"),
            None,
        )
        .await;
    assert_eq!(bh["correction"], "benjamini_hochberg");
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/results?alpha=2"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // 200 more control units (the first 5,200 deduplicate): now the sequential test flags it.
    deliver(&app, [5400, 4800], [520, 720], [10.0, 12.0], [100.0, 100.0]).await;
    let (_, r) = app
        .call(Method::GET, &format!("/experiments/{id}/results"), None)
        .await;
    assert_eq!(r["variants"][0]["units"], 5400);
    assert_eq!(r["srm"]["mismatch"], true, "{}", r["srm"]);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_breached_guardrail_pauses_the_experiment_and_publishes_only_the_pause(pool: PgPool) {
    let app = app(pool.clone());
    let id = running_experiment(&app).await;
    let (_, env) = app.call(Method::GET, "/environments", None).await;
    let env_id = env[0]["id"].as_str().unwrap().to_owned();
    // Nothing to do while latency is equal.
    deliver(&app, [300, 300], [30, 30], [10.0, 10.0], [100.0, 100.0]).await;
    let (_, paused) = app
        .call(Method::POST, "/guardrails/check", Some(json!({})))
        .await;
    assert_eq!(paused, json!([]));
    // The treatment's latency is far worse for the next units.
    sqlx::query("delete from exposures")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("delete from events")
        .execute(&pool)
        .await
        .unwrap();
    deliver(&app, [300, 300], [30, 30], [10.0, 10.0], [100.0, 130.0]).await;
    // An edit waiting for a publisher: the automatic pause must not publish it.
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}"),
        json!({"traffic": 2500}),
    )
    .await;
    let before = app.current_file("prod");
    let (status, paused) = app
        .call(Method::POST, "/guardrails/check", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused[0]["experiment"], "checkout");
    assert_eq!(paused[0]["breaches"][0]["metric"], "latency");
    assert_eq!(paused[0]["breaches"][0]["variant"], "treatment");
    let (_, experiment) = app
        .call(Method::GET, &format!("/experiments/{id}"), None)
        .await;
    assert_eq!(experiment["status"], "PAUSED");
    // The published snapshot has it paused, and the audit log says why.
    let (_, environment) = app
        .call(Method::GET, &format!("/environments/{env_id}"), None)
        .await;
    let snapshot = app.current_file("prod");
    assert_eq!(snapshot["version"], environment["currentVersion"]);
    assert_eq!(snapshot["experiments"][0]["status"], "paused");
    assert_eq!(snapshot["version"], before["version"].as_i64().unwrap() + 1);
    assert_eq!(
        snapshot["experiments"][0]["traffic"], 10000,
        "the pending edit stays pending"
    );
    let mut only_the_pause = before.clone();
    only_the_pause["experiments"][0]["status"] = json!("paused");
    for stamp in ["version", "published_at", "published_by"] {
        only_the_pause[stamp] = snapshot[stamp].clone();
    }
    assert_eq!(snapshot, only_the_pause);
    let (_, pending) = app
        .call(
            Method::GET,
            &format!("/environments/{env_id}/pending"),
            None,
        )
        .await;
    let fields = pending["experiments"][0]["fields"].to_string();
    assert!(fields.contains("traffic"), "{pending}");
    let audit = app.audit(&id).await;
    let pause = audit
        .iter()
        .find(|e| e["action"] == "experiment.status" && e["after"]["status"] == "PAUSED")
        .unwrap();
    assert!(pause["actor"]
        .as_str()
        .unwrap()
        .starts_with("guardrail: latency worse in treatment"));
}

#[sqlx::test(migrations = "./migrations")]
async fn the_first_exposure_is_the_earliest_whatever_order_records_arrive_in(pool: PgPool) {
    let app = app(pool.clone());
    app.environment("prod").await;
    // Noon of yesterday (UTC): 10:00 and 14:00 fall on one day, the exposure id's, and in the past.
    let now = now_ms();
    let noon = now - now.rem_euclid(86_400_000) - 12 * 3_600_000;
    let (ten, two) = (noon - 2 * 3_600_000, noon + 2 * 3_600_000);
    let late = json!({"environment": "prod",
        "exposures": [exposure("prod", "checkout", "control", "u1", two)]});
    let (status, body) = ingest(&app, late).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["exposures"]["stored"], 1);
    // The retried batch with the earlier record, twice in one batch: counted once, kept earliest.
    let early = json!({"environment": "prod", "exposures": [
        exposure("prod", "checkout", "control", "u1", ten),
        exposure("prod", "checkout", "control", "u1", ten + 1000),
    ]});
    let (status, body) = ingest(&app, early).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["exposures"]["stored"], 0,
        "the unit's day was already counted"
    );
    assert_eq!(count(&pool, "exposures").await, 1);
    let kept: f64 =
        sqlx::query_scalar("select extract(epoch from exposed_at)::float8 * 1000 from exposures")
            .fetch_one(&pool)
            .await
            .unwrap();
    #[allow(clippy::cast_precision_loss)]
    let ten_ms = ten as f64;
    assert!(
        (kept - ten_ms).abs() < 1.0,
        "kept {kept}, the earliest was {ten}"
    );
    // A later record never moves it forward again.
    let later = json!({"environment": "prod",
        "exposures": [exposure("prod", "checkout", "control", "u1", two + 1000)]});
    ingest(&app, later).await;
    let still: f64 =
        sqlx::query_scalar("select extract(epoch from exposed_at)::float8 * 1000 from exposures")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!((still - ten_ms).abs() < 1.0);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_second_phase_draws_again_and_has_results_of_its_own(pool: PgPool) {
    let app = app(pool.clone());
    let id = running_experiment(&app).await;
    let at = now_ms();
    // Phase 1 (salt "checkout"): three exposed units.
    let first: Vec<Value> = ["a", "b", "c"]
        .iter()
        .map(|u| exposure("prod", "checkout", "control", u, at))
        .collect();
    let (status, _) = ingest(&app, json!({"environment": "prod", "exposures": first})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/experiments/{id}/phases"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a running experiment cannot start a phase"
    );
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}/status"),
        json!({"status": "STOPPED"}),
    )
    .await;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/experiments/{id}/phases"),
            Some(json!({"salt": "checkout"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(problems(&body)[0].contains("was used before"), "{body}");
    let phased = app
        .ok(
            Method::POST,
            &format!("/experiments/{id}/phases"),
            json!({}),
        )
        .await;
    assert_eq!(
        (phased["status"].clone(), phased["salt"].clone()),
        (json!("DRAFT"), json!("checkout-2"))
    );
    let (_, phases) = app
        .call(Method::GET, &format!("/experiments/{id}/phases"), None)
        .await;
    let salts: Vec<&str> = phases
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["salt"].as_str().unwrap())
        .collect();
    assert_eq!(salts, ["checkout", "checkout-2"]);
    // Starting it again is a new phase in the plan: everyone is drawn anew.
    let (_, preview) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/plan?status=RUNNING"),
            None,
        )
        .await;
    assert!(preview["publishes"].as_bool().unwrap(), "{preview}");
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}/status"),
        json!({"status": "RUNNING"}),
    )
    .await;
    // Phase 2's exposures carry its salt; each phase counts only its own.
    let day = utc_day(at).unwrap();
    let second = json!({
        "id": exposure_id("prod", "checkout", "checkout-2", "treatment", "user", "z", &day),
        "experiment": "checkout", "variant": "treatment", "unit_type": "user", "unit": "z",
        "salt": "checkout-2", "day": day, "at_ms": at,
    });
    let (status, _) = ingest(&app, json!({"environment": "prod", "exposures": [second]})).await;
    assert_eq!(status, StatusCode::OK);
    let units = |r: &Value| -> i64 {
        r["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["units"].as_i64().unwrap())
            .sum()
    };
    let (_, now) = app
        .call(Method::GET, &format!("/experiments/{id}/results"), None)
        .await;
    assert_eq!(
        (units(&now), now["salt"].clone()),
        (1, json!("checkout-2")),
        "{now}"
    );
    let (_, before) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/results?phase=1"),
            None,
        )
        .await;
    assert_eq!(
        (units(&before), before["salt"].clone()),
        (3, json!("checkout")),
        "{before}"
    );
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/results?phase=9"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(app
        .audit(&id)
        .await
        .iter()
        .any(|e| e["action"] == "experiment.phase"));
    // History is per phase: the versions that carried each salt, and the changes made while
    // each phase was the current one.
    let (_, phases) = app
        .call(Method::GET, &format!("/experiments/{id}/phases"), None)
        .await;
    let history = |n: usize, field: &str, key: &str| -> Vec<Value> {
        phases[n][field]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v[key].clone())
            .collect()
    };
    let published_first = history(0, "versions", "version");
    let published_second = history(1, "versions", "version");
    assert!(
        !published_first.is_empty() && !published_second.is_empty(),
        "{phases}"
    );
    assert!(
        published_first.last().unwrap().as_i64() < published_second[0].as_i64(),
        "{phases}"
    );
    assert_eq!(history(1, "versions", "status"), [json!("running")]);
    assert!(phases[0]["endedAt"].is_string() && phases[1].get("endedAt").is_none());
    let first_changes = history(0, "changes", "action");
    let second_changes = history(1, "changes", "action");
    assert!(
        first_changes.contains(&json!("experiment.status")),
        "{first_changes:?}"
    );
    assert!(
        !first_changes.contains(&json!("experiment.phase")),
        "{first_changes:?}"
    );
    assert_eq!(second_changes[0], "experiment.phase", "{second_changes:?}");
    assert!(
        second_changes.contains(&json!("experiment.status")),
        "{second_changes:?}"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_sample_size_is_planned_before_the_start(pool: PgPool) {
    let app = app(pool);
    // Against statsmodels' NormalIndPower.solve_power, rounded up.
    let (status, rate) = app
        .call(
            Method::GET,
            "/sample-size?baseline=0.1&mde=0.05&daily_units=1000",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rate}");
    assert_eq!(
        (rate["unitsPerVariant"].clone(), rate["unitsNeeded"].clone()),
        (json!(56_512), json!(113_024))
    );
    assert!((rate["daysLeft"].as_f64().unwrap() - 113.024).abs() < 1e-9);
    let (_, mean) = app
        .call(
            Method::GET,
            "/sample-size?baseline=10&sd=3&mde=0.05&variants=3",
            None,
        )
        .await;
    assert_eq!(mean["unitsPerVariant"], 566, "{mean}");
    assert_eq!(mean["unitsNeeded"], 3 * 566);
    for bad in [
        "baseline=1.5",
        "baseline=0.1&power=2",
        "baseline=10&sd=0",
        "baseline=0.1&variants=1",
    ] {
        let (status, body) = app
            .call(Method::GET, &format!("/sample-size?{bad}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn cuped_adjusts_with_each_units_pre_exposure_value(pool: PgPool) {
    let app = app(pool);
    let id = running_experiment(&app).await;
    let at = now_ms() - 60_000;
    let before = at - 3_600_000;
    // Revenue after exposure is the unit's revenue before it plus 2 in treatment, plus a
    // little noise: the pre-period explains most of the variance. Every fourth unit has no
    // pre-period events and counts with a covariate of 0.
    for (variant, shift) in [("control", 0.0), ("treatment", 2.0)] {
        let (mut exposures, mut events) = (Vec::new(), Vec::new());
        for i in 0..200 {
            let unit = format!("{variant}-{i}");
            let base = 20.0 + f64::from(i % 17) * 3.0;
            exposures.push(exposure("prod", "checkout", variant, &unit, at));
            if i % 4 != 0 {
                events.push(event(
                    &format!("pre-{unit}"),
                    &unit,
                    "revenue",
                    base,
                    before,
                ));
            }
            let post = base + shift + f64::from(i % 3);
            events.push(event(
                &format!("post-{unit}"),
                &unit,
                "revenue",
                post,
                at + 1000,
            ));
        }
        let (status, body) = ingest(
            &app,
            json!({"environment": "prod", "exposures": exposures, "events": events}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, r) = app
        .call(Method::GET, &format!("/experiments/{id}/results"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let revenue = r["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "revenue")
        .unwrap();
    let plain = &revenue["comparisons"][0];
    let cuped = &revenue["cuped"];
    assert_eq!(cuped["preWindowDays"], 14, "{cuped}");
    let reduction = cuped["varianceReduction"].as_f64().unwrap();
    assert!(reduction > 0.2, "{cuped}");
    let adjusted = &cuped["comparisons"][0];
    assert_eq!(adjusted["variant"], "treatment");
    let width = |c: &Value| c["ciHigh"].as_f64().unwrap() - c["ciLow"].as_f64().unwrap();
    // The interval narrows by about the square root of what the variance lost.
    let narrowed = width(adjusted) / width(plain);
    assert!(
        (narrowed - (1.0 - reduction).sqrt()).abs() < 0.02,
        "{adjusted} vs {plain}"
    );
    // Both arms have the same pre-period values, so the adjustment moves nothing: the
    // difference stays 2.
    assert!(
        (adjusted["difference"].as_f64().unwrap() - 2.0).abs() < 1e-9,
        "{adjusted}"
    );
    // Turned off, or without pre-period data (purchase has none), there is no adjustment.
    let purchase = &r["metrics"][0];
    assert!(purchase["cuped"].is_null(), "{purchase}");
    let (_, off) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/results?cuped_days=0"),
            None,
        )
        .await;
    assert!(off["metrics"][1]["cuped"].is_null());
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/experiments/{id}/results?cuped_days=400"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
