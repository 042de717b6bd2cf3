//! The daily metric reads (the timeline): per day and variant, the sums of each unit's outcome
//! as it stood at the end of that day. Each unit is joined to its events once per day it
//! counts; the outcome's days need the unit's first exposure inside a nested lambda, which
//! 18.16 cannot read, so the single-pass shape of [`super::sums`] does not apply here.

use ::clickhouse::Row;
use cleave_core::stats::{MetricSums, RatioSums};
use serde::{Deserialize, Serialize};

use super::queries::{merge, units};
use super::sums::{products, DAY_MS, SKEW_MS};
use super::{Error, Param, Store};
use crate::analytics_store::Cohort;

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

impl Store {
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
