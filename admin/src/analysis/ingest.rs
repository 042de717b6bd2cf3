//! `POST /ingest`: exposures and events from the edge, checked and stored idempotently.
//!
//! A batch is checked whole before anything is stored, then stored in one transaction: either
//! every new record lands or none does. Records already stored (a redelivery, the same visitor
//! twice in a day) are skipped by their ids, so delivering a batch twice counts it once.

use cleave_core::exposure::{exposure_id, utc_day};
use cleave_core::ingest::{check_event, IngestBatch};
use cleave_core::keys::is_valid_key;
use serde::Serialize;
use time::OffsetDateTime;

use crate::db::analysis as store;
use crate::error::{AdminError, Result};
use crate::service::{self, Ctx};

/// Events older than this are refused here; the edge refuses them after a week, and queue
/// retries may deliver a few days later.
const MAX_EVENT_AGE_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Records in one batch.
pub const MAX_RECORDS: usize = 50_000;

#[derive(Debug, Clone, Serialize)]
pub struct Ingested {
    pub exposures: Counted,
    pub events: Counted,
}

/// `received` in the batch, `stored` new; the rest were already there.
#[derive(Debug, Clone, Serialize)]
pub struct Counted {
    pub received: usize,
    pub stored: u64,
}

/// Checks and stores one batch.
///
/// # Errors
/// 400 naming the first bad record (nothing is stored), 404 for an unknown environment.
pub async fn ingest(ctx: &Ctx, batch: IngestBatch) -> Result<Ingested> {
    let records = batch.exposures.len() + batch.events.len();
    if records > MAX_RECORDS {
        return Err(AdminError::BadRequest(format!(
            "{records} records in one batch; at most {MAX_RECORDS} are accepted"
        )));
    }
    check(&batch, now_ms())?;
    let environment = service::environment_named(ctx, &batch.environment).await?;
    let mut tx = ctx.pool.begin().await?;
    let exposures = store::insert_exposures(&mut *tx, environment.id, &batch.exposures).await?;
    let events = store::insert_events(&mut *tx, environment.id, &batch.events).await?;
    tx.commit().await?;
    Ok(Ingested {
        exposures: Counted {
            received: batch.exposures.len(),
            stored: exposures,
        },
        events: Counted {
            received: batch.events.len(),
            stored: events,
        },
    })
}

fn bad(message: String) -> AdminError {
    AdminError::BadRequest(message)
}

/// Every record must be well-formed, and every exposure id must be the one its fields give
/// (a mismatch means a sender computing ids differently: storing it would break dedup).
fn check(batch: &IngestBatch, now_ms: i64) -> Result<()> {
    if !is_valid_key(&batch.environment) {
        return Err(bad(format!(
            "environment: {:?} is not an environment name",
            batch.environment
        )));
    }
    for (i, e) in batch.exposures.iter().enumerate() {
        let at = |field: &str, what: &str| bad(format!("exposures[{i}].{field}: {what}"));
        for (field, text) in [
            ("variant", &e.variant),
            ("unit_type", &e.unit_type),
            ("unit", &e.unit),
            ("salt", &e.salt),
        ] {
            if text.is_empty() || text.len() > 256 {
                return Err(at(field, "must be 1 to 256 bytes"));
            }
        }
        if !is_valid_key(&e.experiment) {
            return Err(at("experiment", "is not an experiment key"));
        }
        if utc_day(e.at_ms).as_deref() != Some(e.day.as_str()) {
            return Err(at("day", "is not the UTC day of at_ms"));
        }
        let expected = exposure_id(
            &batch.environment,
            &e.experiment,
            &e.salt,
            &e.variant,
            &e.unit_type,
            &e.unit,
            &e.day,
        );
        if e.id != expected {
            return Err(at("id", "does not match the exposure's fields"));
        }
    }
    for (i, event) in batch.events.iter().enumerate() {
        check_event(event, now_ms, MAX_EVENT_AGE_MS)
            .map_err(|e| bad(format!("events[{i}].{e}")))?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(nanos).unwrap_or(i64::MAX)
}
