//! The counting reads: who the cohort's units are, by variant, slice, source and exclusion,
//! each shard counting its own units, the shards' rows added up by key here.

use std::collections::BTreeMap;

use ::clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::{Error, Param, Store};
use crate::analytics_store::{Cohort, SliceCount, VariantCount};

/// Adds up rows of the same key, in key order.
pub(super) fn merge<K: Ord, V>(
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
pub(super) fn phase_rows(cohort: &Cohort<'_>, params: &mut Vec<Param>) -> &'static str {
    params.push(Param::Text(cohort.environment.to_string()));
    params.push(cohort.experiment.into());
    params.push(cohort.salt.into());
    "environment = ? AND experiment = ? AND salt = ?"
}

/// The cohort's units on one shard, one row each: `unit`, `arm`, `first_ms`, `n_exposures`,
/// `first_source` and `first_slice` (as the Postgres store's `units`).
pub(super) fn units(cohort: &Cohort<'_>, params: &mut Vec<Param>) -> String {
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
}
