//! The two analytics stores against each other: the same generated deliveries ingested into
//! Postgres and into a two-shard ClickHouse cluster (`CLEAVE_ANALYTICS_URL`, started by
//! `scripts/clickhouse.sh`) give identical sufficient statistics and the same results,
//! timeline and slice JSON. Every statement the ClickHouse store sent is then replayed on a
//! current ClickHouse (chDB, embedded) by `scripts/chdb-replay.py`, which must answer the
//! same rows the 18.16 cluster did.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "analysis/support.rs"]
mod support;

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use cleave_admin::access::Access;
use cleave_admin::analytics_store::clickhouse::{Statement, Store};
use cleave_admin::analytics_store::Analytics;
use cleave_admin::analytics_store::{Cohort, Dimension};
use cleave_core::exposure::{exposure_id, utc_day};
use common::TestApp;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{now_ms, INGEST};
use uuid::Uuid;

const DAY: i64 = 86_400_000;

/// A small deterministic generator (an LCG), so both stores see the same data every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A value with an exact binary representation, so sums do not depend on their order.
    fn value(&mut self) -> f64 {
        f64::from(u32::try_from(self.below(400)).unwrap()) * 0.25
    }
}

fn exposure(unit: &str, variant: &str, at: i64, g: &mut Gen) -> Value {
    let day = utc_day(at).unwrap();
    let mut e = json!({
        "id": exposure_id("prod", "checkout", "checkout", variant, "user", unit, &day),
        "experiment": "checkout", "variant": variant, "unit_type": "user", "unit": unit,
        "salt": "checkout", "day": day, "at_ms": at,
    });
    let sources = ["api", "confirmed", "proxy_declared", "proxy_implicit"];
    if g.below(5) > 0 {
        e["source"] = json!(sources[usize::try_from(g.below(4)).unwrap()]);
    }
    let mut slice = serde_json::Map::new();
    if g.below(6) > 0 {
        slice.insert(
            "country".into(),
            json!(["US", "DE", "FR", "BR"][usize::try_from(g.below(4)).unwrap()]),
        );
    }
    if g.below(4) > 0 {
        slice.insert(
            "device".into(),
            json!(["mobile", "desktop"][usize::try_from(g.below(2)).unwrap()]),
        );
    }
    slice.insert(
        "browser".into(),
        json!(["chrome", "safari", "firefox"][usize::try_from(g.below(3)).unwrap()]),
    );
    e["slice"] = Value::Object(slice);
    e
}

fn event(id: &str, unit: &str, metric: &str, value: f64, at: i64) -> Value {
    json!({"event_id": id, "unit": unit, "metric": metric, "value": value, "timestamp_ms": at})
}

/// Deliveries of about `units` units over the last four days: redelivered exposures with
/// later times, excluded and mixed units, events before exposure (CUPED's window and within
/// the minute of skew), after it, redelivered, and for the ratio's two parts.
fn deliveries(units: usize, now: i64) -> Vec<Value> {
    let mut g = Gen(7);
    let mut batches = Vec::new();
    let (mut exposures, mut events) = (Vec::new(), Vec::new());
    for i in 0..units {
        let unit = format!("u-{i}");
        let variant = if g.below(2) == 0 {
            "control"
        } else {
            "treatment"
        };
        let first =
            now - i64::try_from(g.below(u64::try_from(4 * DAY).unwrap())).unwrap() - 3_600_000;
        exposures.push(exposure(&unit, variant, first, &mut g));
        match g.below(20) {
            // Redelivered later, with another source and slice: the first stays.
            0..=2 => exposures.push(exposure(&unit, variant, first + 1_000, &mut g)),
            // Seen in the other variant too: mixed, left out.
            3 => {
                let other = if variant == "control" {
                    "treatment"
                } else {
                    "control"
                };
                exposures.push(exposure(&unit, other, first + 5_000, &mut g));
            }
            // Excluded (forced, a bot): every exposure of such a unit says so.
            4 => {
                let reason = if g.below(2) == 0 { "bot" } else { "forced" };
                exposures.last_mut().unwrap()["excluded"] = json!(reason);
            }
            // Seen again on a later day: another exposure id of the same unit.
            5 | 6 => exposures.push(exposure(&unit, variant, (first + DAY).min(now - 1), &mut g)),
            _ => {}
        }
        let lift = if variant == "treatment" { 3 } else { 2 };
        for k in 0..g.below(4) {
            let at = first - 30_000
                + i64::try_from(
                    g.below(u64::try_from(first.min(now) - first + 30_000 + 1).unwrap_or(1)),
                )
                .unwrap_or(0)
                + i64::try_from(k).unwrap();
            let at = at.min(now);
            events.push(event(
                &format!("r-{i}-{k}"),
                &unit,
                "revenue",
                g.value(),
                at,
            ));
        }
        if g.below(10) < lift {
            let at =
                (first + i64::try_from(g.below(u64::try_from(2 * DAY).unwrap())).unwrap()).min(now);
            events.push(event(&format!("p-{i}"), &unit, "purchase", 1.0, at));
            if g.below(3) == 0 {
                // A redelivery of the same event.
                events.push(event(&format!("p-{i}"), &unit, "purchase", 1.0, at));
            }
        }
        // Before exposure: in CUPED's window, and a purchase just inside the minute of skew.
        if g.below(3) == 0 {
            let at =
                first - i64::try_from(g.below(u64::try_from(10 * DAY).unwrap())).unwrap() - 120_000;
            events.push(event(&format!("pre-{i}"), &unit, "revenue", g.value(), at));
        }
        if g.below(25) == 0 {
            events.push(event(
                &format!("skew-{i}"),
                &unit,
                "purchase",
                1.0,
                first - 20_000,
            ));
        }
        for (metric, n) in [("views", g.below(5)), ("clicks", g.below(3))] {
            for k in 0..n {
                let after = i64::try_from(g.below(u64::try_from(DAY).unwrap())).unwrap();
                let at = if k == 0 && g.below(4) == 0 {
                    first - after - 120_000
                } else {
                    (first + after).min(now)
                };
                events.push(event(
                    &format!("{metric}-{i}-{k}"),
                    &unit,
                    metric,
                    g.value(),
                    at,
                ));
            }
        }
        if exposures.len() + events.len() > 2_000 {
            batches.push(json!({"environment": "prod", "exposures": exposures, "events": events}));
            (exposures, events) = (Vec::new(), Vec::new());
        }
    }
    batches.push(json!({"environment": "prod", "exposures": exposures, "events": events}));
    batches
}

fn access() -> Access {
    let tokens = format!("ingest:edge:{INGEST},publisher:pub:{}", common::TOKEN);
    Access::from_config(Some(&tokens), None).unwrap()
}

/// The cluster's URL with a database of its own for this run.
fn cluster_url() -> String {
    let url = std::env::var("CLEAVE_ANALYTICS_URL").expect(
        "CLEAVE_ANALYTICS_URL names the ClickHouse cluster this test runs on: \
         export CLEAVE_ANALYTICS_URL=$(scripts/clickhouse.sh)",
    );
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    format!("{base}/cleave_test_{}", Uuid::new_v4().simple())
}

/// An experiment with a conversion, a continuous and a ratio metric: (environment, id).
async fn experiment(app: &TestApp) -> (String, String) {
    let env = app.environment("prod").await;
    for body in [
        json!({"key": "purchase", "kind": "conversion", "direction": "increase"}),
        json!({"key": "revenue", "kind": "continuous", "direction": "increase"}),
        json!({"key": "ctr", "kind": "ratio", "direction": "increase",
               "numerator": "clicks", "denominator": "views"}),
    ] {
        app.ok(Method::POST, "/metric-definitions", body).await;
    }
    let (id, _) = app.experiment(&env, "checkout").await;
    app.ok(
        Method::PUT,
        &format!("/experiments/{id}/metrics"),
        json!({"metrics": [{"metric": "purchase", "role": "primary"},
                           {"metric": "revenue", "role": "secondary"},
                           {"metric": "ctr", "role": "secondary"}]}),
    )
    .await;
    app.ok(
        Method::PATCH,
        &format!("/experiments/{id}/status"),
        json!({"status": "RUNNING"}),
    )
    .await;
    (env, id)
}

async fn get(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

#[sqlx::test(migrations = "./migrations")]
async fn postgres_and_clickhouse_give_the_same_sums_and_results(pool: PgPool) {
    let store = Store::from_url(&cluster_url()).unwrap().recording();
    store.migrate().await.unwrap();
    // Migrations are recorded per shard: a second run applies nothing and fails nothing.
    store.migrate().await.unwrap();
    let now = now_ms();
    let postgres = Analytics::postgres(pool.clone()).as_of(now);
    let clickhouse = Analytics::clickhouse(store.clone()).as_of(now);
    let pg_app = TestApp::with_analytics(pool.clone(), postgres.clone(), access());
    let ch_app = TestApp::with_analytics(pool.clone(), clickhouse.clone(), access());
    let (env, id) = experiment(&pg_app).await;

    let batches = deliveries(3_000, now);
    for batch in &batches {
        for app in [&pg_app, &ch_app] {
            let (status, body) = app
                .call_as(Method::POST, "/ingest", Some(batch.clone()), Some(INGEST))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["exposures"]["refused"], json!([]), "{body}");
            assert_eq!(body["events"]["refused"], json!([]), "{body}");
        }
    }
    // A whole delivery again: both stores count it once.
    let (status, _) = ch_app
        .call_as(
            Method::POST,
            "/ingest",
            Some(batches[0].clone()),
            Some(INGEST),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // The sufficient statistics themselves.
    let env = Uuid::parse_str(&env).unwrap();
    let cohort = Cohort::phase(env, "checkout", "checkout");
    let (p, c) = (&postgres, &clickhouse);
    let pg_counts = format!("{:?}", p.variant_counts(&cohort).await.unwrap());
    assert_eq!(
        pg_counts,
        format!("{:?}", c.variant_counts(&cohort).await.unwrap())
    );
    assert!(
        pg_counts.contains("control") && pg_counts.contains("treatment"),
        "{pg_counts}"
    );
    for (metric, conversion) in [("purchase", true), ("revenue", false)] {
        for pre_days in [0, 14] {
            let pg = p
                .metric_sums(&cohort, metric, conversion, pre_days)
                .await
                .unwrap();
            let ch = c
                .metric_sums(&cohort, metric, conversion, pre_days)
                .await
                .unwrap();
            assert_eq!(pg, ch, "{metric} over {pre_days} days");
            assert_eq!(pg.len(), 2);
            assert!(pg.iter().all(|(_, s)| s.x > 0.0), "{pg:?}");
            if pre_days > 0 && !conversion {
                assert!(
                    pg.iter().all(|(_, s)| s.c > 0.0),
                    "the covariate is read: {pg:?}"
                );
            }
        }
        let pg = p
            .daily_metric_sums(&cohort, metric, conversion)
            .await
            .unwrap();
        assert_eq!(
            pg,
            c.daily_metric_sums(&cohort, metric, conversion)
                .await
                .unwrap()
        );
        assert!(pg.len() >= 8, "four days or more, two variants: {pg:?}");
    }
    let parts = ("clicks", "views");
    let pg = p.ratio_sums(&cohort, parts, 14).await.unwrap();
    assert_eq!(pg, c.ratio_sums(&cohort, parts, 14).await.unwrap());
    assert!(
        pg.iter().all(|(_, s)| s.sums.iter().all(|v| *v > 0.0)),
        "{pg:?}"
    );
    assert_eq!(
        p.daily_ratio_sums(&cohort, parts).await.unwrap(),
        c.daily_ratio_sums(&cohort, parts).await.unwrap()
    );
    assert_eq!(
        p.left_out(&cohort).await.unwrap(),
        c.left_out(&cohort).await.unwrap()
    );
    let mut by_country = cohort;
    by_country.slice = Some((Dimension::Country, None));
    assert_eq!(
        format!("{:?}", p.slice_counts(&by_country).await.unwrap()),
        format!("{:?}", c.slice_counts(&by_country).await.unwrap())
    );

    // What users read: the same JSON from both.
    for path in [
        format!("/experiments/{id}/results"),
        format!("/experiments/{id}/results?cuped_days=0&correction=bh"),
        format!("/experiments/{id}/timeline?metric=revenue"),
        format!("/experiments/{id}/timeline?metric=ctr"),
        format!("/experiments/{id}/slices?dimension=device"),
    ] {
        let from_pg = get(&pg_app, &path).await;
        assert_eq!(from_pg, get(&ch_app, &path).await, "{path}");
    }
    let results = get(&pg_app, &format!("/experiments/{id}/results")).await;
    assert!(
        results["excludedUnits"]["mixed"].as_i64().unwrap() > 0,
        "{results}"
    );
    assert!(
        results["excludedUnits"]["bot"].as_i64().unwrap() > 0,
        "{results}"
    );

    replay_on_a_current_engine(&store.journal());
}

/// Rows keyed by their text fields and day, numbers added up (`first_ms` by its minimum):
/// how the store combines its shards, so one engine's answer compares with two shards'.
fn combined(rows: &[Value]) -> BTreeMap<String, BTreeMap<String, Vec<f64>>> {
    let numbers = |v: &Value| -> Vec<f64> {
        match v {
            Value::Array(items) => items.iter().map(|x| x.as_f64().unwrap()).collect(),
            other => vec![other.as_f64().unwrap()],
        }
    };
    let mut out: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for row in rows {
        let object = row.as_object().unwrap();
        // A shard without units answers `min` over nothing; the store skips it too.
        if object.contains_key("first_ms") && object["units"].as_f64() == Some(0.0) {
            continue;
        }
        let keyed = |k: &str, v: &Value| v.is_string() || k == "day";
        let key: Vec<String> = object
            .iter()
            .filter(|(k, v)| keyed(k, v))
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            })
            .collect();
        let slot = out.entry(key.join(",")).or_default();
        for (k, v) in object.iter().filter(|(k, v)| !keyed(k, v)) {
            let value = numbers(v);
            let merged = match slot.get(k) {
                None => value,
                Some(a) if k == "first_ms" => vec![a[0].min(value[0])],
                Some(a) => a.iter().zip(&value).map(|(x, y)| x + y).collect(),
            };
            slot.insert(k.clone(), merged);
        }
    }
    out
}

fn replay_on_a_current_engine(journal: &[Statement]) {
    let queries = journal.iter().filter(|s| s.kind == "query").count();
    assert!(queries >= 12, "the journal holds the reads: {queries}");
    let dir = std::env::temp_dir().join(format!("cleave-chdb-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("journal.json");
    std::fs::write(&input, serde_json::to_vec(journal).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/chdb-replay.py");
    let run = std::process::Command::new("python3")
        .arg(script)
        .arg(&input)
        .output()
        .expect("python3 runs scripts/chdb-replay.py");
    assert!(
        run.status.success(),
        "chDB replay failed (pip install chdb-core):\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let answers: Vec<Value> = serde_json::from_slice(&run.stdout).unwrap();
    let sent: Vec<&Statement> = journal.iter().filter(|s| s.kind == "query").collect();
    assert_eq!(answers.len(), sent.len());
    for (statement, answer) in sent.iter().zip(&answers) {
        let current = answer["rows"].as_array().unwrap();
        assert_eq!(
            combined(&statement.rows),
            combined(current),
            "a current ClickHouse answers differently:\n{}",
            statement.sql
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
