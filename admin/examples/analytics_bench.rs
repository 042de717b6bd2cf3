//! Throughput of the two analytics stores side by side: exposures (and events) stored per
//! second through the store the ingest endpoint calls, in batches the size the edge's Queue
//! consumer delivers, then the time of the reads one results request makes (counts, the
//! breakdown, who was left out, enrolment time, a conversion and a continuous metric with
//! CUPED, a ratio) at that size.
//!
//! ```text
//! scripts/bench-analytics.sh [exposures]     # 10,000,000 unless given; about 15 minutes
//! ```
//! writes `bench/analytics.json`, which `bench/report.py` renders into `BENCHMARKS.md`.
//! Each run uses fresh databases (`cleave_bench_*`) on both servers and drops them after.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss
)]

use std::time::Instant;

use cleave_admin::analytics_store::clickhouse::Store;
use cleave_admin::analytics_store::Analytics;
use cleave_admin::analytics_store::Cohort;
use cleave_admin::db;
use cleave_core::exposure::{exposure_id, utc_day, Exposure};
use cleave_core::ingest::Event;
use serde_json::{json, Value};
use uuid::Uuid;

const BATCH: usize = 50_000;
const DAY: i64 = 86_400_000;

/// Batch `index` of `exposures` in all: two exposures per unit (two days), half the units
/// in each variant; a fifth of the units purchase, every unit has revenue, views and clicks.
fn batch(index: usize, now: i64) -> (Vec<Exposure>, Vec<Event>) {
    let mut exposures = Vec::with_capacity(BATCH);
    let mut events = Vec::with_capacity(BATCH * 2);
    for k in 0..BATCH / 2 {
        let n = index * BATCH / 2 + k;
        let unit = format!("u{n}");
        let variant = if n.is_multiple_of(2) {
            "control"
        } else {
            "treatment"
        };
        let first = now - 3 * DAY + i64::try_from(n % 1_000_000).unwrap() * 100;
        for day in 0..2 {
            let at = first + day * DAY;
            let d = utc_day(at).unwrap();
            exposures.push(Exposure {
                id: exposure_id("bench", "checkout", "checkout", variant, "user", &unit, &d),
                experiment: "checkout".into(),
                variant: variant.into(),
                unit_type: "user".into(),
                unit: unit.clone(),
                salt: "checkout".into(),
                day: d,
                at_ms: at,
                excluded: None,
                source: None,
                slice: Default::default(),
            });
        }
        let value = |metric: &str, v: f64, at: i64| Event {
            event_id: format!("{metric}-{n}"),
            unit: unit.clone(),
            metric: metric.into(),
            value: v,
            timestamp_ms: at,
        };
        if n.is_multiple_of(5) {
            events.push(value("purchase", 1.0, first + 60_000));
        }
        events.push(value("revenue", (n % 40) as f64, first + 120_000));
        if n.is_multiple_of(4) {
            events.push(value("views", (n % 7) as f64, first + 30_000));
            events.push(value("clicks", (n % 3) as f64, first + 40_000));
        }
    }
    (exposures, events)
}

/// Stores every batch, then times the reads of one results request; answers the figures.
async fn run(
    name: &str,
    analytics: &Analytics,
    environment: Uuid,
    batches: usize,
    now: i64,
) -> Value {
    let (mut rows, mut events) = (0usize, 0usize);
    let started = Instant::now();
    for i in 0..batches {
        let (exposures, batch_events) = batch(i, now);
        rows += exposures.len();
        events += batch_events.len();
        analytics
            .store(environment, &exposures, &batch_events)
            .await
            .unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = rows as f64 / secs;
    eprintln!(
        "{name}: stored {rows} exposures and {events} events in {secs:.1} s: {rate:.0} exposures/s"
    );
    let cohort = Cohort::phase(environment, "checkout", "checkout");
    let timed = Instant::now();
    let counts = analytics.variant_counts(&cohort).await.unwrap();
    analytics.variant_breakdown(&cohort).await.unwrap();
    analytics.left_out(&cohort).await.unwrap();
    analytics.days_enrolling(&cohort).await.unwrap();
    let enrolment = timed.elapsed().as_secs_f64();
    let metric = |conversion: bool| {
        let key = if conversion { "purchase" } else { "revenue" };
        let cohort = &cohort;
        async move {
            let timed = Instant::now();
            let sums = analytics
                .metric_sums(cohort, key, conversion, 14)
                .await
                .unwrap();
            assert_eq!(sums.len(), 2);
            timed.elapsed().as_secs_f64()
        }
    };
    let conversion = metric(true).await;
    let continuous = metric(false).await;
    let timed = Instant::now();
    analytics
        .ratio_sums(&cohort, ("clicks", "views"), 14)
        .await
        .unwrap();
    let ratio = timed.elapsed().as_secs_f64();
    let units: i64 = counts.iter().map(|c| c.units).sum();
    eprintln!("{name}: reads {enrolment:.2} s, {conversion:.2} s, {continuous:.2} s, {ratio:.2} s over {units} units");
    json!({
        "store": name,
        "exposures_per_s": rate,
        "units": units,
        "events": events,
        "reads_s": {"enrolment": enrolment, "conversion": conversion, "continuous": continuous, "ratio": ratio},
    })
}

#[tokio::main]
async fn main() {
    let exposures: usize = std::env::args()
        .nth(1)
        .map_or(10_000_000, |a| a.parse().unwrap());
    let out = std::env::args().nth(2);
    let batches = exposures.div_ceil(BATCH);
    let now =
        i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap();
    let name = format!("cleave_bench_{}", Uuid::new_v4().simple());

    let server = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let admin = db::connect(&server).await.unwrap();
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let base = server.rsplit_once('/').unwrap().0;
    let pool = db::connect(&format!("{base}/{name}")).await.unwrap();
    db::migrate(&pool).await.unwrap();
    let environment = db::environments::insert(&pool, "bench").await.unwrap().id;
    let postgres = run(
        "postgres",
        &Analytics::postgres(pool.clone()),
        environment,
        batches,
        now,
    )
    .await;
    pool.close().await;
    sqlx::query(&format!("drop database {name}"))
        .execute(&admin)
        .await
        .unwrap();

    let cluster = std::env::var("CLEAVE_ANALYTICS_URL").expect("CLEAVE_ANALYTICS_URL");
    let store =
        Store::from_url(&format!("{}/{name}", cluster.rsplit_once('/').unwrap().0)).unwrap();
    store.migrate().await.unwrap();
    let clickhouse = run(
        "clickhouse",
        &Analytics::clickhouse(store.clone()),
        environment,
        batches,
        now,
    )
    .await;
    store.drop_database().await.unwrap();
    assert_eq!(postgres["units"], clickhouse["units"]);
    let report = json!({
        "date": cleave_core::exposure::utc_day(now).unwrap(),
        "exposures": batches * BATCH,
        "units": postgres["units"],
        "events": postgres["events"],
        "batch": BATCH,
        "stores": [postgres, clickhouse],
    });
    let text = serde_json::to_string_pretty(&report).unwrap();
    match out {
        Some(path) => std::fs::write(path, text + "\n").unwrap(),
        None => println!("{text}"),
    }
}
