//! The metric reads: per variant, the sums of each unit's outcome, each shard summing its own
//! units. A unit's exposures and events are read in one pass grouped by unit (a union of the
//! two tables, the events gathered into an array per unit, its outcomes computed from that
//! array in the same select), which on ClickHouse costs about half of joining the two.
//!
//! The outcomes are lambdas over the unit's events that read `first_ms`, an aggregate of the
//! same select: 18.16's lambdas cannot read a column of a subquery ("Unknown identifier").

use ::clickhouse::Row;
use cleave_core::stats::{MetricSums, RatioSums};
use serde::{Deserialize, Serialize};

use super::queries::{merge, phase_rows};
use super::{Error, Param, Store};
use crate::analytics_store::Cohort;

/// The minute of clock skew allowed between the edge and the client, in milliseconds.
pub(super) const SKEW_MS: i64 = 60_000;
pub(super) const DAY_MS: i64 = 86_400_000;

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
struct RatioRow {
    arm: String,
    units: u64,
    with_denominator: u64,
    sums: [f64; 4],
    /// Σ aᵢ·aⱼ for i <= j, row by row.
    products: [f64; 10],
}

/// `sum(a * b)` for every pair `a <= b` of `names`, row by row (the order `products` and
/// [`triangle`] read them in).
pub(super) fn products(names: &[&str]) -> Vec<String> {
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

/// The cohort's units, one row each: `arm`, `first_ms` and the `outcomes` (select items over
/// `evs`, the unit's events of `metrics` read once each, as tuples `(value, at_ms, is
/// metrics[0], is metrics[1], …)`). Units seen in several variants, excluded or outside the
/// cohort's slice are left out; units without events have an empty `evs`.
fn per_unit(
    cohort: &Cohort<'_>,
    metrics: &[&str],
    outcomes: &[String],
    params: &mut Vec<Param>,
) -> String {
    let label = cohort.slice.map_or("''", |(d, _)| d.as_str());
    // Bound in the order the statement reads them: the exposures' filter, each metric's flag,
    // the events' filter, the slice.
    let exposures = phase_rows(cohort, params);
    let names: Vec<String> = (1..=metrics.len()).map(|m| format!("is_{m}")).collect();
    let flags: Vec<String> = names.iter().map(|n| format!("metric = ? AS {n}")).collect();
    let none: Vec<String> = names.iter().map(|n| format!("0 AS {n}")).collect();
    params.extend(metrics.iter().map(|m| Param::from(*m)));
    params.push(Param::Text(cohort.environment.to_string()));
    params.extend(metrics.iter().map(|m| Param::from(*m)));
    let marks = vec!["?"; metrics.len()].join(", ");
    let mut having = "countIf(is_event = 0) > 0 AND arm = maxIf(variant, is_event = 0)".to_owned();
    if let Some((_, Some(value))) = cohort.slice {
        having.push_str(
            " AND if(argMinIf(label, at_ms, is_event = 0) = '', 'unknown', \
               argMinIf(label, at_ms, is_event = 0)) = ?",
        );
        params.push(value.into());
    }
    format!(
        "SELECT minIf(variant, is_event = 0) AS arm, minIf(at_ms, is_event = 0) AS first_ms, \
           groupArrayIf((value, at_ms, {names}), is_event = 1) AS evs, {outcomes} \
         FROM ( \
           SELECT unit, variant, at_ms, {label} AS label, toFloat64(0) AS value, {none}, 0 AS is_event \
           FROM {{db}}.exposures_local WHERE {exposures} AND excluded = '' \
           UNION ALL \
           SELECT unit, '' AS variant, at_ms, '' AS label, value, {flags}, 1 AS is_event \
           FROM {{db}}.events_local FINAL WHERE environment = ? AND metric IN ({marks}) \
         ) AS unit_rows \
         GROUP BY unit HAVING {having}",
        names = names.join(", "),
        none = none.join(", "),
        flags = flags.join(", "),
        outcomes = outcomes.join(", "),
    )
}

/// Σ of the values of `evs` where `condition` (over an event `e`) holds.
fn sum_where(condition: &str) -> String {
    format!("arraySum(arrayMap(e -> if({condition}, e.1, toFloat64(0)), evs))")
}

/// How many events of `evs` `condition` holds for.
fn count_where(condition: &str) -> String {
    format!("arrayCount(e -> {condition}, evs)")
}

/// At or after the unit's first exposure (less the skew), of metric number `m` (from 1).
fn after(m: usize) -> String {
    format!("e.{} = 1 AND e.2 >= first_ms - {SKEW_MS}", m + 2)
}

/// In the `pre_ms` before the unit's first exposure (less the skew), of metric number `m`.
fn before(m: usize, pre_ms: i64) -> String {
    format!(
        "e.{} = 1 AND e.2 < first_ms - {SKEW_MS} AND e.2 >= first_ms - {pre_ms}",
        m + 2
    )
}

impl Store {
    pub async fn metric_sums(
        &self,
        cohort: &Cohort<'_>,
        metric: &str,
        conversion: bool,
        pre_days: i32,
    ) -> Result<Vec<(String, MetricSums)>, Error> {
        let mut params = Vec::new();
        let pre_ms = i64::from(pre_days) * DAY_MS;
        let outcomes = [
            format!("{} AS n", count_where(&after(1))),
            format!("{} AS total", sum_where(&after(1))),
            format!("{} AS pre_n", count_where(&before(1, pre_ms))),
            format!("{} AS pre_total", sum_where(&before(1, pre_ms))),
        ];
        let units = per_unit(cohort, &[metric], &outcomes, &mut params);
        let conversion = u8::from(conversion);
        let sql = format!(
            "SELECT arm, count() AS units, countIf(n > 0) AS conversions, sum(x) AS sx, \
               sum(x * x) AS sxx, sum(c) AS sc, sum(c * c) AS scc, sum(x * c) AS sxc \
             FROM ( \
               SELECT arm, n, if({conversion} = 1, toFloat64(n > 0), total) AS x, \
                 if({conversion} = 1, toFloat64(pre_n > 0), pre_total) AS c \
               FROM ({units}) AS per_unit) AS valued \
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

    pub async fn ratio_sums(
        &self,
        cohort: &Cohort<'_>,
        (numerator, denominator): (&str, &str),
        pre_days: i32,
    ) -> Result<Vec<(String, RatioSums)>, Error> {
        let mut params = Vec::new();
        let pre_ms = i64::from(pre_days) * DAY_MS;
        let outcomes = [
            format!("{} AS n", sum_where(&after(1))),
            format!("{} AS d", sum_where(&after(2))),
            format!("{} AS p", sum_where(&before(1, pre_ms))),
            format!("{} AS q", sum_where(&before(2, pre_ms))),
        ];
        let units = per_unit(cohort, &[numerator, denominator], &outcomes, &mut params);
        let sql = format!(
            "SELECT arm, count() AS units, countIf(d > 0) AS with_denominator, \
               (sum(n), sum(d), sum(p), sum(q)) AS sums, ({}) AS products \
             FROM ({units}) AS per_unit \
             GROUP BY arm",
            products(&["n", "d", "p", "q"]).join(", "),
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
}
