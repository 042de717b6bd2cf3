//! The analytics store: where exposures and events land and where the sums results are
//! computed from are read. Postgres (the default, in the control plane's own database) or
//! a ClickHouse cluster (`CLEAVE_ANALYTICS_URL=clickhouse://…`) answer the same operations
//! with the same additive sums ([`MetricSums`], [`RatioSums`]); the statistics on top are
//! `cleave_core::stats` for both.

pub mod clickhouse;
mod cohort;
pub mod postgres;

pub use cohort::{Cohort, Dimension, SliceCount, VariantCount};

use cleave_core::exposure::{utc_day, Exposure};
use cleave_core::ingest::Event;
use cleave_core::stats::{MetricSums, RatioSums};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{AdminError, Result};
use postgres::{self as pg, planner, ratio};

/// Where analytics data lives, and the clock results are read by.
#[derive(Debug, Clone)]
pub struct Analytics {
    backend: Backend,
    /// Results read as of this instant (milliseconds) instead of now.
    fixed_now_ms: Option<i64>,
}

#[derive(Debug, Clone)]
enum Backend {
    Postgres(PgPool),
    ClickHouse(clickhouse::Store),
}

/// `(day, variant, sums)` rows of a daily reading, oldest day first.
pub type Daily<T> = Vec<(String, String, T)>;

impl Analytics {
    /// Analytics in the control plane's own Postgres database.
    pub fn postgres(pool: PgPool) -> Self {
        Self {
            backend: Backend::Postgres(pool),
            fixed_now_ms: None,
        }
    }

    /// Analytics in this ClickHouse cluster (its schema already migrated).
    pub fn clickhouse(store: clickhouse::Store) -> Self {
        Self {
            backend: Backend::ClickHouse(store),
            fixed_now_ms: None,
        }
    }

    /// The store `url` names (`clickhouse://host:port[,host:port…]/database`); Postgres
    /// (`pool`) without one. Nothing is sent until the first operation.
    ///
    /// # Errors
    /// A URL of another kind or one that does not parse (400).
    pub fn connect(url: Option<&str>, pool: PgPool) -> Result<Self> {
        match url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(Self::postgres(pool)),
            Some(url) if url.starts_with("clickhouse://") => {
                let store = clickhouse::Store::from_url(url).map_err(AdminError::BadRequest)?;
                Ok(Self::clickhouse(store))
            }
            Some(url) => Err(AdminError::BadRequest(format!(
                "CLEAVE_ANALYTICS_URL {url:?}: use clickhouse://host:port[,host:port…]/database, \
                 or leave it unset to keep analytics in Postgres"
            ))),
        }
    }

    /// Brings a ClickHouse store's schema up to date on every shard (Postgres migrates with
    /// the control plane's schema).
    ///
    /// # Errors
    /// The statement a shard refused.
    pub async fn migrate(&self) -> Result<()> {
        if let Backend::ClickHouse(store) = &self.backend {
            store.migrate().await?;
        }
        Ok(())
    }

    /// The same store, reading results as of `now_ms` (milliseconds since the epoch).
    #[must_use]
    pub fn as_of(mut self, now_ms: i64) -> Self {
        self.fixed_now_ms = Some(now_ms);
        self
    }

    /// `postgres` or `clickhouse`.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Postgres(_) => "postgres",
            Backend::ClickHouse(_) => "clickhouse",
        }
    }

    /// The instant results are read at.
    pub fn now_ms(&self) -> i64 {
        self.fixed_now_ms.unwrap_or_else(|| {
            let ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            i64::try_from(ms).unwrap_or(i64::MAX)
        })
    }

    /// Stores checked exposures and events of one environment; answers how many of each were
    /// written (Postgres: new ones only; ClickHouse: all, redeliveries collapse by id there).
    ///
    /// # Errors
    /// The store's failure; nothing is kept then in Postgres (one transaction), and ClickHouse
    /// keeps whole blocks only, which a redelivery completes without counting twice.
    pub async fn store(
        &self,
        environment: Uuid,
        exposures: &[Exposure],
        events: &[Event],
    ) -> Result<(u64, u64)> {
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let stored_exposures =
                    pg::insert_exposures(&mut *tx, environment, exposures).await?;
                let stored_events = pg::insert_events(&mut *tx, environment, events).await?;
                tx.commit().await?;
                // The records are stored: a failure here is logged, not answered as one.
                match planner::refresh(pool).await {
                    Ok(tables) if !tables.is_empty() => tracing::info!(?tables, "analysed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not refresh planner statistics"),
                }
                Ok((stored_exposures, stored_events))
            }
            Backend::ClickHouse(ch) => Ok(ch.insert(environment, exposures, events).await?),
        }
    }

    pub async fn variant_counts(&self, cohort: &Cohort<'_>) -> Result<Vec<VariantCount>> {
        Ok(match &self.backend {
            Backend::Postgres(pool) => pg::variant_counts(pool, cohort).await?,
            Backend::ClickHouse(ch) => ch.variant_counts(cohort).await?,
        })
    }

    pub async fn slice_counts(&self, cohort: &Cohort<'_>) -> Result<Vec<SliceCount>> {
        Ok(match &self.backend {
            Backend::Postgres(pool) => pg::slice_counts(pool, cohort).await?,
            Backend::ClickHouse(ch) => ch.slice_counts(cohort).await?,
        })
    }

    /// Days from the cohort's first counted exposure to now (fractional); `None` before any.
    pub async fn days_enrolling(&self, cohort: &Cohort<'_>) -> Result<Option<f64>> {
        let first = match &self.backend {
            Backend::Postgres(pool) => pg::first_exposure(pool, cohort).await?,
            Backend::ClickHouse(ch) => ch.first_exposure(cohort).await?,
        };
        // Milliseconds as f64 are exact for any date in range.
        #[allow(clippy::cast_precision_loss)]
        Ok(first.map(|at| (self.now_ms() - at) as f64 / 86_400_000.0))
    }

    /// Per variant, what its units rest on: `("source", source, units)` rows count units by
    /// how their first exposure was learned, `("excluded", reason, units)` rows those kept out.
    pub async fn variant_breakdown(
        &self,
        cohort: &Cohort<'_>,
    ) -> Result<Vec<(String, String, String, i64)>> {
        Ok(match &self.backend {
            Backend::Postgres(pool) => pg::variant_breakdown(pool, cohort).await?,
            Backend::ClickHouse(ch) => ch.variant_breakdown(cohort).await?,
        })
    }

    /// Units kept out of results, by reason (and `mixed` units seen in several variants).
    pub async fn left_out(&self, cohort: &Cohort<'_>) -> Result<Vec<(String, i64)>> {
        Ok(match &self.backend {
            Backend::Postgres(pool) => pg::left_out(pool, cohort).await?,
            Backend::ClickHouse(ch) => ch.left_out(cohort).await?,
        })
    }

    /// Per variant, the sums of `metric` (and of its pre-exposure covariate over `pre_days`).
    pub async fn metric_sums(
        &self,
        cohort: &Cohort<'_>,
        metric: &str,
        conversion: bool,
        pre_days: i32,
    ) -> Result<Vec<(String, MetricSums)>> {
        Ok(match &self.backend {
            Backend::Postgres(pool) => {
                pg::metric_sums(pool, cohort, metric, conversion, pre_days).await?
            }
            Backend::ClickHouse(ch) => ch.metric_sums(cohort, metric, conversion, pre_days).await?,
        })
    }

    /// [`Self::metric_sums`] without the covariate at the end of each day to today.
    pub async fn daily_metric_sums(
        &self,
        cohort: &Cohort<'_>,
        metric: &str,
        conversion: bool,
    ) -> Result<Daily<MetricSums>> {
        let now = self.now_ms();
        Ok(match &self.backend {
            Backend::Postgres(pool) => {
                pg::daily_metric_sums(pool, cohort, metric, conversion, now).await?
            }
            Backend::ClickHouse(ch) => named_days(
                ch.daily_metric_sums(cohort, metric, conversion, now)
                    .await?,
            ),
        })
    }

    /// Per variant, the sums of a ratio's parts (and their pre-period over `pre_days`).
    pub async fn ratio_sums(
        &self,
        cohort: &Cohort<'_>,
        parts: (&str, &str),
        pre_days: i32,
    ) -> Result<Vec<(String, RatioSums)>> {
        Ok(match &self.backend {
            Backend::Postgres(pool) => ratio::ratio_sums(pool, cohort, parts, pre_days).await?,
            Backend::ClickHouse(ch) => ch.ratio_sums(cohort, parts, pre_days).await?,
        })
    }

    /// [`Self::ratio_sums`] without the pre-period at the end of each day to today.
    pub async fn daily_ratio_sums(
        &self,
        cohort: &Cohort<'_>,
        parts: (&str, &str),
    ) -> Result<Daily<RatioSums>> {
        let now = self.now_ms();
        Ok(match &self.backend {
            Backend::Postgres(pool) => ratio::daily_ratio_sums(pool, cohort, parts, now).await?,
            Backend::ClickHouse(ch) => named_days(ch.daily_ratio_sums(cohort, parts, now).await?),
        })
    }
}

/// Day numbers (days since the epoch) as `YYYY-MM-DD`, as Postgres names them.
fn named_days<T>(rows: Vec<(i64, String, T)>) -> Daily<T> {
    rows.into_iter()
        .map(|(day, variant, sums)| {
            let name = utc_day(day.saturating_mul(86_400_000)).unwrap_or_default();
            (name, variant, sums)
        })
        .collect()
}

impl From<::clickhouse::error::Error> for AdminError {
    fn from(e: ::clickhouse::error::Error) -> Self {
        Self::Internal(format!("analytics store (ClickHouse): {e}"))
    }
}
