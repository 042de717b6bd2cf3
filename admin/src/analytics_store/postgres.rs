//! The Postgres analytics store: exposures and events in the control plane's own database,
//! and the per-variant sums results are computed from, in SQL.

pub mod planner;
pub mod ratio;

use cleave_core::exposure::Exposure;
use cleave_core::ingest::Event;
use cleave_core::stats::MetricSums;
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use super::{Cohort, SliceCount, VariantCount};

/// Stores exposures not stored before; returns how many were new. A unit's exposure of a day
/// keeps the earliest time any record of it carried, whatever order the records arrive in (a
/// retried batch can bring 10:00 after 14:00), so events after the real first exposure count.
pub async fn insert_exposures(
    db: impl PgExecutor<'_>,
    environment: Uuid,
    exposures: &[Exposure],
) -> Result<u64, sqlx::Error> {
    let column = |f: fn(&Exposure) -> String| exposures.iter().map(f).collect::<Vec<String>>();
    let at: Vec<i64> = exposures.iter().map(|e| e.at_ms).collect();
    let excluded: Vec<Option<String>> = exposures
        .iter()
        .map(|e| e.excluded.map(|x| x.as_str().to_owned()))
        .collect();
    let source: Vec<Option<String>> = exposures
        .iter()
        .map(|e| e.source.map(|x| x.as_str().to_owned()))
        .collect();
    let slice = |f: fn(&Exposure) -> &Option<String>| {
        exposures
            .iter()
            .map(|e| f(e).clone())
            .collect::<Vec<Option<String>>>()
    };
    let done: i64 = sqlx::query_scalar(
        "with stored as ( \
           insert into exposures (id, environment_id, experiment, variant, unit_type, unit, salt, day, exposed_at, excluded, source, country, device, browser) \
           select distinct on (id) id, $1, experiment, variant, unit_type, unit, salt, day::date, to_timestamp(at_ms / 1000.0), excluded, source, country, device, browser \
           from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[]) \
             as t(id, experiment, variant, unit_type, unit, salt, day, at_ms, excluded, source, country, device, browser) \
           order by id, at_ms \
           on conflict (id) do update set exposed_at = excluded.exposed_at, source = excluded.source, \
             country = excluded.country, device = excluded.device, browser = excluded.browser \
             where excluded.exposed_at < exposures.exposed_at \
           returning (xmax = 0) as inserted) \
         select count(*) filter (where inserted) from stored",
    )
    .bind(environment)
    .bind(column(|e| e.id.clone()))
    .bind(column(|e| e.experiment.clone()))
    .bind(column(|e| e.variant.clone()))
    .bind(column(|e| e.unit_type.clone()))
    .bind(column(|e| e.unit.clone()))
    .bind(column(|e| e.salt.clone()))
    .bind(column(|e| e.day.clone()))
    .bind(&at)
    .bind(&excluded)
    .bind(&source)
    .bind(slice(|e| &e.slice.country))
    .bind(slice(|e| &e.slice.device))
    .bind(slice(|e| &e.slice.browser))
    .fetch_one(db)
    .await?;
    Ok(u64::try_from(done).unwrap_or(0))
}

/// Stores events not stored before (by event id); returns how many were new.
pub async fn insert_events(
    db: impl PgExecutor<'_>,
    environment: Uuid,
    events: &[Event],
) -> Result<u64, sqlx::Error> {
    let column = |f: fn(&Event) -> String| events.iter().map(f).collect::<Vec<String>>();
    let values: Vec<f64> = events.iter().map(|e| e.value).collect();
    let at: Vec<i64> = events.iter().map(|e| e.timestamp_ms).collect();
    let done = sqlx::query(
        "insert into events (environment_id, event_id, unit, metric, value, occurred_at) \
         select $1, event_id, unit, metric, value, to_timestamp(at_ms / 1000.0) \
         from unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::bigint[]) \
           as t(event_id, unit, metric, value, at_ms) \
         on conflict (environment_id, event_id) do nothing",
    )
    .bind(environment)
    .bind(column(|e| e.event_id.clone()))
    .bind(column(|e| e.unit.clone()))
    .bind(column(|e| e.metric.clone()))
    .bind(&values)
    .bind(&at)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// A [`Cohort`]'s `units` CTE over parameters `$1`..`$4` (environment, experiment, salt,
/// slice value): one row per unit counted, as the ClickHouse store's per-shard `units`.
fn units(cohort: &Cohort<'_>) -> String {
    let slice = cohort.slice.map_or_else(
        || "null::text".to_owned(),
        |(d, _)| {
            format!(
                "coalesce((array_agg({} order by exposed_at))[1], 'unknown')",
                d.as_str()
            )
        },
    );
    format!(
        "units as ( \
           select unit, min(variant) as variant, min(exposed_at) as first_exposed, \
             count(*) as exposures, \
             (array_agg(coalesce(source, 'unknown') order by exposed_at))[1] as source, \
             {slice} as slice \
           from exposures \
           where environment_id = $1 and experiment = $2 and salt = $3 and excluded is null \
           group by unit \
           having count(distinct variant) = 1 and ($4::text is null or {slice} = $4::text))"
    )
}

/// Binds a [`Cohort`]'s `$1`..`$4`.
macro_rules! bind_cohort {
    ($query:expr, $cohort:expr) => {
        $query
            .bind($cohort.environment)
            .bind($cohort.experiment)
            .bind($cohort.salt)
            .bind($cohort.value())
    };
}
use bind_cohort;

pub async fn variant_counts(
    db: impl PgExecutor<'_>,
    cohort: &Cohort<'_>,
) -> Result<Vec<VariantCount>, sqlx::Error> {
    let sql = format!(
        "with {} select variant, count(*) as units, sum(exposures)::bigint as exposures \
         from units group by variant",
        units(cohort)
    );
    bind_cohort!(sqlx::query_as(&sql), cohort)
        .fetch_all(db)
        .await
}

pub async fn slice_counts(
    db: impl PgExecutor<'_>,
    cohort: &Cohort<'_>,
) -> Result<Vec<SliceCount>, sqlx::Error> {
    let sql = format!(
        "with {} select slice, variant, count(*) as units from units \
         group by slice, variant order by slice, variant",
        units(cohort)
    );
    bind_cohort!(sqlx::query_as(&sql), cohort)
        .fetch_all(db)
        .await
}

/// When the cohort's first counted exposure was (milliseconds since the epoch); `None`
/// before any.
pub async fn first_exposure(
    db: impl PgExecutor<'_>,
    cohort: &Cohort<'_>,
) -> Result<Option<i64>, sqlx::Error> {
    let sql = format!(
        "with {} select round(extract(epoch from min(first_exposed)) * 1000)::bigint from units",
        units(cohort)
    );
    bind_cohort!(sqlx::query_scalar(&sql), cohort)
        .fetch_one(db)
        .await
}

/// Per variant, what its units rest on: `("source", source, units)` rows count units by how
/// their first exposure was learned, `("excluded", reason, units)` rows the units kept out.
pub async fn variant_breakdown(
    db: impl PgExecutor<'_>,
    cohort: &Cohort<'_>,
) -> Result<Vec<(String, String, String, i64)>, sqlx::Error> {
    let sql = format!(
        "with {} \
         select variant, 'source', source, count(*) from units group by variant, source \
         union all \
         select variant, 'excluded', excluded, count(distinct unit) from exposures \
         where environment_id = $1 and experiment = $2 and salt = $3 and excluded is not null \
         group by variant, excluded",
        units(cohort)
    );
    bind_cohort!(sqlx::query_as(&sql), cohort)
        .fetch_all(db)
        .await
}

/// Exposure rows kept out of results, by reason (and `mixed` units seen in several variants).
pub async fn left_out(
    db: impl PgExecutor<'_>,
    cohort: &Cohort<'_>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "select excluded, count(distinct unit) from exposures \
         where environment_id = $1 and experiment = $2 and salt = $3 and excluded is not null \
         group by excluded \
         union all \
         select 'mixed', count(*) from ( \
           select unit from exposures \
           where environment_id = $1 and experiment = $2 and salt = $3 and excluded is null \
           group by unit having count(distinct variant) > 1) m",
    )
    .bind(cohort.environment)
    .bind(cohort.experiment)
    .bind(cohort.salt)
    .fetch_all(db)
    .await
}

/// One variant's [`MetricSums`] as a row.
#[derive(Debug, Clone, FromRow)]
struct SumsRow {
    #[sqlx(default)]
    day: Option<String>,
    variant: String,
    units: i64,
    conversions: i64,
    x: f64,
    xx: f64,
    #[sqlx(default)]
    c: f64,
    #[sqlx(default)]
    cc: f64,
    #[sqlx(default)]
    xc: f64,
}

impl SumsRow {
    fn sums(&self) -> MetricSums {
        MetricSums {
            units: count(self.units),
            conversions: count(self.conversions),
            x: self.x,
            xx: self.xx,
            c: self.c,
            cc: self.cc,
            xc: self.xc,
        }
    }
}

pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Per variant: the sums of each unit's outcome `x` (0/1 for a conversion metric, the sum of
/// values for a continuous one) from events at or after its first exposure, allowing a minute
/// of clock skew between the edge and the client, and of the same over the `pre_days` before
/// it (`c`, CUPED's covariate); units without events count as 0.
pub async fn metric_sums(
    db: impl PgExecutor<'_>,
    cohort: &Cohort<'_>,
    metric: &str,
    conversion: bool,
    pre_days: i32,
) -> Result<Vec<(String, MetricSums)>, sqlx::Error> {
    let sql = format!(
        "with {}, outcomes as ( \
           select u.unit, u.variant, coalesce(sum(ev.value), 0) as total, count(ev.event_id) as n \
           from units u left join events ev \
             on ev.environment_id = $1 and ev.metric = $5 and ev.unit = u.unit \
             and ev.occurred_at >= u.first_exposed - interval '1 minute' \
           group by u.unit, u.variant), \
         before as ( \
           select u.unit, coalesce(sum(ev.value), 0) as total, count(ev.event_id) as n \
           from units u left join events ev \
             on ev.environment_id = $1 and ev.metric = $5 and ev.unit = u.unit \
             and ev.occurred_at < u.first_exposed - interval '1 minute' \
             and ev.occurred_at >= u.first_exposed - make_interval(days => $7) \
           group by u.unit), \
         valued as ( \
           select o.variant, o.n, \
             case when $6 then (o.n > 0)::int::float8 else o.total end as x, \
             case when $6 then (b.n > 0)::int::float8 else b.total end as c \
           from outcomes o join before b using (unit)) \
         select variant, count(*) as units, count(*) filter (where n > 0) as conversions, \
           sum(x) as x, sum(x * x) as xx, sum(c) as c, sum(c * c) as cc, sum(x * c) as xc \
         from valued group by variant",
        units(cohort)
    );
    let rows: Vec<SumsRow> = bind_cohort!(sqlx::query_as(&sql), cohort)
        .bind(metric)
        .bind(conversion)
        .bind(pre_days)
        .fetch_all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.variant.clone(), r.sums()))
        .collect())
}

/// Every day (UTC) from the cohort's first exposure to the day of `$7` (milliseconds since
/// the epoch) with its end (`cutoff`): the rows daily results are read at, for plain and
/// ratio metrics alike.
pub(crate) const DAYS: &str = "days as ( \
    select d::date as day, (d::date + 1)::timestamp at time zone 'UTC' as cutoff \
    from generate_series( \
      (select min(first_exposed) at time zone 'UTC' from units)::date, \
      (to_timestamp($7 / 1000.0) at time zone 'UTC')::date, interval '1 day') d)";

/// [`metric_sums`] (without the covariate) at the end of each day from the phase's first
/// exposure to the day of `now_ms`: the units first exposed by then and their events until
/// then, so each day shows what results showed. The work grows with units × days; results
/// keep one row per day and variant, as `(day, variant, sums)`.
pub async fn daily_metric_sums(
    db: impl PgExecutor<'_>,
    cohort: &Cohort<'_>,
    metric: &str,
    conversion: bool,
    now_ms: i64,
) -> Result<Vec<(String, String, MetricSums)>, sqlx::Error> {
    let sql = format!(
        "with {}, {DAYS}, \
         outcomes as ( \
           select d.day, u.variant, coalesce(sum(ev.value), 0) as total, count(ev.event_id) as n \
           from days d join units u on u.first_exposed < d.cutoff \
           left join events ev \
             on ev.environment_id = $1 and ev.metric = $5 and ev.unit = u.unit \
             and ev.occurred_at >= u.first_exposed - interval '1 minute' \
             and ev.occurred_at < d.cutoff \
           group by d.day, u.variant, u.unit), \
         valued as ( \
           select day, variant, n, case when $6 then (n > 0)::int::float8 else total end as x \
           from outcomes) \
         select day::text as day, variant, count(*) as units, \
           count(*) filter (where n > 0) as conversions, sum(x) as x, sum(x * x) as xx \
         from valued group by day, variant order by day, variant",
        units(cohort)
    );
    let rows: Vec<SumsRow> = bind_cohort!(sqlx::query_as(&sql), cohort)
        .bind(metric)
        .bind(conversion)
        .bind(now_ms)
        .fetch_all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.day.clone().unwrap_or_default(),
                r.variant.clone(),
                r.sums(),
            )
        })
        .collect())
}
