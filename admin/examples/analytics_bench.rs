//! Throughput of the two analytics stores side by side: exposures (and events) stored per
//! second through the store the ingest endpoint calls, in batches the size the edge's Queue
//! consumer delivers, then the time of the reads one results request makes (counts, the
//! breakdown, who was left out, enrolment time, a conversion and a continuous metric with
//! CUPED, a ratio) at that size.
//!
//! ```text
//! DATABASE_URL=$(scripts/postgres.sh) CLEAVE_ANALYTICS_URL=$(scripts/clickhouse.sh) \
//!   cargo run --release -p cleave-admin --example analytics_bench -- 10000000
//! ```
//! Each run uses fresh databases (`cleave_bench_*`) on both servers and drops them after.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use cleave_admin::analytics_store::clickhouse::Store;
use cleave_admin::analytics_store::Analytics;
use cleave_admin::db;
use cleave_admin::db::analysis::Cohort;
use cleave_core::exposure::{exposure_id, utc_day, Exposure};
use cleave_core::ingest::Event;
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

async fn run(name: &str, analytics: &Analytics, environment: Uuid, batches: usize, now: i64) {
    let mut rows = 0usize;
    let started = Instant::now();
    for i in 0..batches {
        let (exposures, events) = batch(i, now);
        rows += exposures.len();
        analytics
            .store(environment, &exposures, &events)
            .await
            .unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name}: stored {rows} exposures in {secs:.1} s: {:.0} exposures/s",
        rows as f64 / secs
    );
    let cohort = Cohort::phase(environment, "checkout", "checkout");
    let started = Instant::now();
    let counts = analytics.variant_counts(&cohort).await.unwrap();
    analytics.variant_breakdown(&cohort).await.unwrap();
    analytics.left_out(&cohort).await.unwrap();
    analytics.days_enrolling(&cohort).await.unwrap();
    let reads = started.elapsed().as_secs_f64();
    let mut line = format!("{name}: enrolment reads {reads:.2} s");
    for (metric, conversion) in [("purchase", true), ("revenue", false)] {
        let started = Instant::now();
        analytics
            .metric_sums(&cohort, metric, conversion, 14)
            .await
            .unwrap();
        line.push_str(&format!(
            ", {metric} {:.2} s",
            started.elapsed().as_secs_f64()
        ));
    }
    let started = Instant::now();
    analytics
        .ratio_sums(&cohort, ("clicks", "views"), 14)
        .await
        .unwrap();
    line.push_str(&format!(", ratio {:.2} s", started.elapsed().as_secs_f64()));
    println!(
        "{line}; units {:?}",
        counts.iter().map(|c| c.units).collect::<Vec<_>>()
    );
}

#[tokio::main]
async fn main() {
    let exposures: usize = std::env::args()
        .nth(1)
        .map_or(10_000_000, |a| a.parse().unwrap());
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
    run(
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
    run(
        "clickhouse",
        &Analytics::clickhouse(store.clone()),
        environment,
        batches,
        now,
    )
    .await;
    store.drop_database().await.unwrap();
}
