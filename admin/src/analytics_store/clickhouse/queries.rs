//! The reads: the same operations as the Postgres store, each shard summing its own units,
//! the shards' rows added up by key here.

use std::collections::BTreeMap;

use ::clickhouse::Row;
use cleave_core::stats::{MetricSums, RatioSums};
use serde::{Deserialize, Serialize};

use super::{Error, Param, Store};
use crate::analytics_store::{Cohort, SliceCount, VariantCount};

/// The minute of clock skew allowed between the edge and the client, in milliseconds.
const SKEW_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Adds up rows of the same key, in key order.
fn merge<K: Ord, V>(
    rows: impl IntoIterator<Item = (K, V)>,
    add: impl Fn(&mut V, &V),
) -> Vec<(K, V)> {
    let mut out: BTreeMap<K, V> = BTreeMap::new();
    for (key, value) in rows {
        match out.get_mut(&key) {
            Some(sum) => add(sum, &value),
            None => {
                out.insert(key, value);
            }
        }
    }
    out.into_iter().collect()
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The filter of a cohort's exposure rows, binding environment, experiment and salt.
fn phase_rows(cohort: &Cohort<'_>, params: &mut Vec<Param>) -> &'static str {
    params.push(Param::Text(cohort.environment.to_string()));
    params.push(cohort.experiment.into());
    params.push(cohort.salt.into());
    "environment = ? AND experiment = ? AND salt = ?"
}

/// The cohort's units on one shard, one row each: `unit`, `arm`, `first_ms`, `n_exposures`,
/// `first_source` and `first_slice` (as the Postgres store's `units`).
fn units(cohort: &Cohort<'_>, params: &mut Vec<Param>) -> String {
    let slice = cohort.slice.map_or_else(
        || "''".to_owned(),
        |(d, _)| {
            let c = d.as_str();
            format!("if(argMin({c}, at_ms) = '', 'unknown', argMin({c}, at_ms))")
        },
    );
    let filter = phase_rows(cohort, params);
    let mut having = "uniqExact(variant) = 1".to_owned();
    if let Some((_, Some(value))) = cohort.slice {
        having.push_str(" AND first_slice = ?");
        params.push(value.into());
    }
    format!(
        "SELECT unit, min(variant) AS arm, min(at_ms) AS first_ms, uniqExact(id) AS n_exposures, \
           argMin(if(source = '', 'unknown', source), at_ms) AS first_source, {slice} AS first_slice \
         FROM {{db}}.exposures_local WHERE {filter} AND excluded = '' \
         GROUP BY unit HAVING {having}"
    )
}

/// Events of `metrics` in the cohort's environment, each once, with `matched = 1` to tell
/// them from the defaults a left join fills in.
fn events(cohort: &Cohort<'_>, metrics: &[&str], params: &mut Vec<Param>) -> String {
    params.push(Param::Text(cohort.environment.to_string()));
    let marks = vec!["?"; metrics.len()].join(", ");
    params.extend(metrics.iter().map(|m| Param::from(*m)));
    format!(
        "SELECT unit, metric, value, at_ms, 1 AS matched FROM {{db}}.events_local FINAL \
         WHERE environment = ? AND metric IN ({marks})"
    )
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct CountRow {
    arm: String,
    units: u64,
    exposures: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct SliceRow {
    slice: String,
    arm: String,
    units: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct FirstRow {
    first_ms: i64,
    units: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct BreakdownRow {
    arm: String,
    kind: String,
    what: String,
    units: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct LeftOutRow {
    reason: String,
    units: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct SumsRow {
    arm: String,
    units: u64,
    conversions: u64,
    sx: f64,
    sxx: f64,
    sc: f64,
    scc: f64,
    sxc: f64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct DailyRow {
    day: i64,
    arm: String,
    units: u64,
    conversions: u64,
    sx: f64,
    sxx: f64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct RatioRow {
    arm: String,
    units: u64,
    with_denominator: u64,
    sums: [f64; 4],
    /// Σ aᵢ·aⱼ for i <= j, row by row.
    products: [f64; 10],
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct DailyRatioRow {
    day: i64,
    arm: String,
    units: u64,
    with_denominator: u64,
    sn: f64,
    sd: f64,
    snn: f64,
    snd: f64,
    sdd: f64,
}

/// `sum(a * b)` for every pair `a <= b` of `names`, row by row (the order `products` and
/// [`triangle`] read them in).
fn products(names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i..] {
            out.push(format!("sum({a} * {b})"));
        }
    }
    out
}

fn triangle(flat: &[f64; 10]) -> [[f64; 4]; 4] {
    let mut out = [[0.0; 4]; 4];
    let mut values = flat.iter();
    for (i, row) in out.iter_mut().enumerate() {
        for (cell, value) in row[i..].iter_mut().zip(&mut values) {
            *cell = *value;
        }
    }
    out
}

impl Store {
    pub async fn variant_counts(&self, cohort: &Cohort<'_>) -> Result<Vec<VariantCount>, Error> {
        let mut params = Vec::new();
        let sql = format!(
            "SELECT arm, count() AS units, sum(n_exposures) AS exposures FROM ({}) AS u GROUP BY arm",
            units(cohort, &mut params)
        );
        let rows: Vec<CountRow> = self.each_shard(&sql, &params).await?;
        Ok(merge(
            rows.into_iter().map(|r| (r.arm, (r.units, r.exposures))),
            |a, b| {
                a.0 += b.0;
                a.1 += b.1;
            },
        )
        .into_iter()
        .map(|(variant, (units, exposures))| VariantCount {
            variant,
            units: signed(units),
            exposures: signed(exposures),
        })
        .collect())
    }

    pub async fn slice_counts(&self, cohort: &Cohort<'_>) -> Result<Vec<SliceCount>, Error> {
        let mut params = Vec::new();
        let sql = format!(
            "SELECT first_slice AS slice, arm, count() AS units FROM ({}) AS u \
             GROUP BY first_slice, arm",
            units(cohort, &mut params)
        );
        let rows: Vec<SliceRow> = self.each_shard(&sql, &params).await?;
        Ok(merge(
            rows.into_iter().map(|r| ((r.slice, r.arm), r.units)),
            |a, b| {
                *a += b;
            },
        )
        .into_iter()
        .map(|((slice, variant), units)| SliceCount {
            slice,
            variant,
            units: signed(units),
        })
        .collect())
    }

    /// The earliest first exposure of the cohort's units (milliseconds); `None` without any.
    pub async fn first_exposure(&self, cohort: &Cohort<'_>) -> Result<Option<i64>, Error> {
        let mut params = Vec::new();
        let sql = format!(
            "SELECT min(first_ms) AS first_ms, count() AS units FROM ({}) AS u",
            units(cohort, &mut params)
        );
        let rows: Vec<FirstRow> = self.each_shard(&sql, &params).await?;
        Ok(rows
            .iter()
            .filter(|r| r.units > 0)
            .map(|r| r.first_ms)
            .min())
    }

    pub async fn variant_breakdown(
        &self,
        cohort: &Cohort<'_>,
    ) -> Result<Vec<(String, String, String, i64)>, Error> {
        let mut params = Vec::new();
        let units = units(cohort, &mut params);
        let filter = phase_rows(cohort, &mut params);
        let sql = format!(
            "SELECT arm, 'source' AS kind, first_source AS what, count() AS units FROM ({units}) AS u \
             GROUP BY arm, first_source \
             UNION ALL \
             SELECT variant AS arm, 'excluded' AS kind, excluded AS what, uniqExact(unit) AS units \
             FROM {{db}}.exposures_local WHERE {filter} AND excluded != '' \
             GROUP BY variant, excluded"
        );
        let rows: Vec<BreakdownRow> = self.each_shard(&sql, &params).await?;
        Ok(merge(
            rows.into_iter().map(|r| ((r.arm, r.kind, r.what), r.units)),
            |a, b| *a += b,
        )
        .into_iter()
        .map(|((arm, kind, what), units)| (arm, kind, what, signed(units)))
        .collect())
    }

    pub async fn left_out(&self, cohort: &Cohort<'_>) -> Result<Vec<(String, i64)>, Error> {
        let mut params = Vec::new();
        let excluded = phase_rows(cohort, &mut params);
        let mixed = phase_rows(cohort, &mut params);
        let sql = format!(
            "SELECT excluded AS reason, uniqExact(unit) AS units FROM {{db}}.exposures_local \
             WHERE {excluded} AND excluded != '' GROUP BY excluded \
             UNION ALL \
             SELECT 'mixed' AS reason, count() AS units FROM ( \
               SELECT unit FROM {{db}}.exposures_local WHERE {mixed} AND excluded = '' \
               GROUP BY unit HAVING uniqExact(variant) > 1) AS m"
        );
        let rows: Vec<LeftOutRow> = self.each_shard(&sql, &params).await?;
        Ok(
            merge(rows.into_iter().map(|r| (r.reason, r.units)), |a, b| {
                *a += b
            })
            .into_iter()
            .map(|(reason, units)| (reason, signed(units)))
            .collect(),
        )
    }

    pub async fn metric_sums(
        &self,
        cohort: &Cohort<'_>,
        metric: &str,
        conversion: bool,
        pre_days: i32,
    ) -> Result<Vec<(String, MetricSums)>, Error> {
        let mut params = Vec::new();
        let units = units(cohort, &mut params);
        let events = events(cohort, &[metric], &mut params);
        let pre_ms = i64::from(pre_days) * DAY_MS;
        let conversion = u8::from(conversion);
        let sql = format!(
            "SELECT arm, count() AS units, countIf(n > 0) AS conversions, sum(x) AS sx, \
               sum(x * x) AS sxx, sum(c) AS sc, sum(c * c) AS scc, sum(x * c) AS sxc \
             FROM ( \
               SELECT unit, any(arm) AS arm, \
                 countIf(matched = 1 AND at_ms >= first_ms - {SKEW_MS}) AS n, \
                 sumIf(value, matched = 1 AND at_ms >= first_ms - {SKEW_MS}) AS total, \
                 countIf(matched = 1 AND at_ms < first_ms - {SKEW_MS} AND at_ms >= first_ms - {pre_ms}) AS pre_n, \
                 sumIf(value, matched = 1 AND at_ms < first_ms - {SKEW_MS} AND at_ms >= first_ms - {pre_ms}) AS pre_total, \
                 if({conversion} = 1, toFloat64(n > 0), total) AS x, \
                 if({conversion} = 1, toFloat64(pre_n > 0), pre_total) AS c \
               FROM ({units}) AS u ALL LEFT JOIN ({events}) AS ev USING unit \
               GROUP BY unit) AS per_unit \
             GROUP BY arm"
        );
        let rows: Vec<SumsRow> = self.each_shard(&sql, &params).await?;
        Ok(merge(
            rows.into_iter().map(|r| {
                let sums = MetricSums {
                    units: r.units,
                    conversions: r.conversions,
                    x: r.sx,
                    xx: r.sxx,
                    c: r.sc,
                    cc: r.scc,
                    xc: r.sxc,
                };
                (r.arm, sums)
            }),
            MetricSums::add,
        ))
    }

    /// Per day number (days since the epoch) to `now_ms`'s day and variant.
    pub async fn daily_metric_sums(
        &self,
        cohort: &Cohort<'_>,
        metric: &str,
        conversion: bool,
        now_ms: i64,
    ) -> Result<Vec<(i64, String, MetricSums)>, Error> {
        let mut params = Vec::new();
        let days = days_of_units(cohort, now_ms, &mut params);
        let events = events(cohort, &[metric], &mut params);
        let conversion = u8::from(conversion);
        let sql = format!(
            "SELECT day, arm, count() AS units, countIf(n > 0) AS conversions, sum(x) AS sx, \
               sum(x * x) AS sxx \
             FROM ( \
               SELECT unit, day, any(arm) AS arm, \
                 countIf(matched = 1 AND at_ms >= first_ms - {SKEW_MS} AND at_ms < (day + 1) * {DAY_MS}) AS n, \
                 sumIf(value, matched = 1 AND at_ms >= first_ms - {SKEW_MS} AND at_ms < (day + 1) * {DAY_MS}) AS total, \
                 if({conversion} = 1, toFloat64(n > 0), total) AS x \
               FROM ({days}) AS u ALL LEFT JOIN ({events}) AS ev USING unit \
               GROUP BY unit, day) AS per_unit \
             GROUP BY day, arm"
        );
        let rows: Vec<DailyRow> = self.each_shard(&sql, &params).await?;
        Ok(merge(
            rows.into_iter().map(|r| {
                let sums = MetricSums {
                    units: r.units,
                    conversions: r.conversions,
                    x: r.sx,
                    xx: r.sxx,
                    ..MetricSums::default()
                };
                ((r.day, r.arm), sums)
            }),
            MetricSums::add,
        )
        .into_iter()
        .map(|((day, arm), sums)| (day, arm, sums))
        .collect())
    }

    pub async fn ratio_sums(
        &self,
        cohort: &Cohort<'_>,
        (numerator, denominator): (&str, &str),
        pre_days: i32,
    ) -> Result<Vec<(String, RatioSums)>, Error> {
        // Bound in the order the statement reads them: the four parts, the units, the events.
        let mut params: Vec<Param> = [numerator, denominator, numerator, denominator]
            .map(Param::from)
            .into();
        let units = units(cohort, &mut params);
        let events = events(cohort, &[numerator, denominator], &mut params);
        let pre_ms = i64::from(pre_days) * DAY_MS;
        let after = format!("matched = 1 AND at_ms >= first_ms - {SKEW_MS}");
        let before = format!(
            "matched = 1 AND at_ms < first_ms - {SKEW_MS} AND at_ms >= first_ms - {pre_ms}"
        );
        let sql = format!(
            "SELECT arm, count() AS units, countIf(d > 0) AS with_denominator, \
               (sum(n), sum(d), sum(p), sum(q)) AS sums, ({}) AS products \
             FROM ( \
               SELECT unit, any(arm) AS arm, \
                 sumIf(value, metric = ? AND {after}) AS n, \
                 sumIf(value, metric = ? AND {after}) AS d, \
                 sumIf(value, metric = ? AND {before}) AS p, \
                 sumIf(value, metric = ? AND {before}) AS q \
               FROM ({units}) AS u ALL LEFT JOIN ({events}) AS ev USING unit \
               GROUP BY unit) AS per_unit \
             GROUP BY arm",
            products(&["n", "d", "p", "q"]).join(", ")
        );
        let rows: Vec<RatioRow> = self.each_shard(&sql, &params).await?;
        Ok(merge(
            rows.into_iter().map(|r| {
                let sums = RatioSums {
                    units: r.units,
                    with_denominator: r.with_denominator,
                    sums: r.sums,
                    products: triangle(&r.products),
                };
                (r.arm, sums)
            }),
            RatioSums::add,
        ))
    }

    pub async fn daily_ratio_sums(
        &self,
        cohort: &Cohort<'_>,
        (numerator, denominator): (&str, &str),
        now_ms: i64,
    ) -> Result<Vec<(i64, String, RatioSums)>, Error> {
        let mut params: Vec<Param> = [numerator, denominator].map(Param::from).into();
        let days = days_of_units(cohort, now_ms, &mut params);
        let events = events(cohort, &[numerator, denominator], &mut params);
        let within = format!(
            "matched = 1 AND at_ms >= first_ms - {SKEW_MS} AND at_ms < (day + 1) * {DAY_MS}"
        );
        let sql = format!(
            "SELECT day, arm, count() AS units, countIf(d > 0) AS with_denominator, \
               sum(n) AS sn, sum(d) AS sd, {} \
             FROM ( \
               SELECT unit, day, any(arm) AS arm, \
                 sumIf(value, metric = ? AND {within}) AS n, \
                 sumIf(value, metric = ? AND {within}) AS d \
               FROM ({days}) AS u ALL LEFT JOIN ({events}) AS ev USING unit \
               GROUP BY unit, day) AS per_unit \
             GROUP BY day, arm",
            ["snn", "snd", "sdd"]
                .iter()
                .zip(products(&["n", "d"]))
                .map(|(alias, sum)| format!("{sum} AS {alias}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows: Vec<DailyRatioRow> = self.each_shard(&sql, &params).await?;
        Ok(merge(
            rows.into_iter().map(|r| {
                let mut products = [[0.0; 4]; 4];
                products[0][0] = r.snn;
                products[0][1] = r.snd;
                products[1][1] = r.sdd;
                let sums = RatioSums {
                    units: r.units,
                    with_denominator: r.with_denominator,
                    sums: [r.sn, r.sd, 0.0, 0.0],
                    products,
                };
                ((r.day, r.arm), sums)
            }),
            RatioSums::add,
        )
        .into_iter()
        .map(|((day, arm), sums)| (day, arm, sums))
        .collect())
    }
}

/// The cohort's units once per day (days since the epoch) from the day of their first
/// exposure to the day of `now_ms`: the days a unit counts in a daily reading.
fn days_of_units(cohort: &Cohort<'_>, now_ms: i64, params: &mut Vec<Param>) -> String {
    let units = units(cohort, params);
    let today = now_ms.div_euclid(DAY_MS);
    format!(
        "SELECT unit, arm, first_ms, \
           arrayJoin(arrayMap(i -> intDiv(first_ms, {DAY_MS}) + toInt64(i), \
             range(toUInt64(greatest({today} - intDiv(first_ms, {DAY_MS}) + 1, 0))))) AS day \
         FROM ({units}) AS units_once"
    )
}
