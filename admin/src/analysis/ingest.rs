//! `POST /ingest`: exposures and events from the edge, checked and stored idempotently,
//! record by record.
//!
//! Each record is judged on its own: the answer lists the refused ones by index with the
//! reason, and one bad record (or an environment this admin does not know) never costs its
//! neighbours their delivery. The accepted records are stored in one transaction. Records
//! already stored (a redelivery, the same visitor twice in a day) are skipped by their ids,
//! so delivering a batch twice counts it once.

use cleave_core::exposure::{exposure_id, utc_day, Exposure, HOLDOUT_EXPERIMENT};
use cleave_core::ingest::{check_event, Counted, Event, Receipt, Refused};
use cleave_core::keys::is_valid_key;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::db::environments;
use crate::error::{AdminError, Result};
use crate::service::Ctx;

/// Events older than this are refused here; the edge refuses them after a week, and queue
/// retries may deliver a few days later.
const MAX_EVENT_AGE_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Records in one batch.
pub const MAX_RECORDS: usize = 50_000;

/// One delivery as it arrives: records stay raw JSON until each is read on its own, so one
/// malformed record cannot make the whole body unreadable.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    pub environment: String,
    #[serde(default)]
    pub exposures: Vec<Value>,
    #[serde(default)]
    pub events: Vec<Value>,
}

/// Checks and stores one delivery.
///
/// # Errors
/// 400 only for a delivery over [`MAX_RECORDS`]; records are refused one by one in the
/// receipt. Database failures are 500s, which the edge retries.
pub async fn ingest(ctx: &Ctx, delivery: Delivery) -> Result<Receipt> {
    let records = delivery.exposures.len() + delivery.events.len();
    if records > MAX_RECORDS {
        return Err(AdminError::BadRequest(format!(
            "{records} records in one batch; at most {MAX_RECORDS} are accepted"
        )));
    }
    let now = now_ms();
    let known = if is_valid_key(&delivery.environment) {
        environments::by_name(&ctx.pool, &delivery.environment).await?
    } else {
        None
    };
    let unknown = match &known {
        Some(_) => None,
        None => Some(format!(
            "environment: {:?} is not an environment of this admin",
            delivery.environment
        )),
    };
    let (exposures, mut exposures_counted) = judge(
        &delivery.exposures,
        unknown.as_deref(),
        "exposures",
        |e: &Exposure| check_exposure(&delivery.environment, e),
    );
    let (events, mut events_counted) = judge(
        &delivery.events,
        unknown.as_deref(),
        "events",
        |e: &Event| check_event(e, now, MAX_EVENT_AGE_MS),
    );
    if let Some(environment) = known {
        let (exposures_stored, events_stored) = ctx
            .analytics
            .store(environment.id, &exposures, &events)
            .await?;
        exposures_counted.stored = exposures_stored;
        events_counted.stored = events_stored;
    }
    let refused = exposures_counted.refused.len() + events_counted.refused.len();
    if refused > 0 {
        tracing::warn!(
            environment = %delivery.environment,
            refused,
            first = %exposures_counted.refused.iter().chain(&events_counted.refused)
                .next().map(|r| r.error.as_str()).unwrap_or_default(),
            "ingest refused records"
        );
        crate::observability::count_refused_records(refused);
    }
    Ok(Receipt {
        exposures: exposures_counted,
        events: events_counted,
    })
}

/// Reads and checks each record of `kind`; returns the good ones and the count with every
/// refusal (all of them, with `unknown`, when the environment is not known).
fn judge<T: DeserializeOwned>(
    raw: &[Value],
    unknown: Option<&str>,
    kind: &str,
    check: impl Fn(&T) -> std::result::Result<(), String>,
) -> (Vec<T>, Counted) {
    let mut good = Vec::new();
    let mut refused = Vec::new();
    for (index, value) in raw.iter().enumerate() {
        let verdict = match unknown {
            Some(reason) => Err(reason.to_owned()),
            None => T::deserialize(value)
                .map_err(|e| format!("{kind}[{index}]: {e}"))
                .and_then(|record| {
                    check(&record).map_err(|e| format!("{kind}[{index}].{e}"))?;
                    Ok(record)
                }),
        };
        match verdict {
            Ok(record) => good.push(record),
            Err(error) => refused.push(Refused { index, error }),
        }
    }
    let counted = Counted {
        received: raw.len(),
        stored: 0,
        refused,
    };
    (good, counted)
}

/// An exposure must be well-formed, and its id must be the one its fields give (a mismatch
/// means a sender computing ids differently: storing it would break dedup).
fn check_exposure(environment: &str, e: &Exposure) -> std::result::Result<(), String> {
    for (field, text) in [
        ("variant", &e.variant),
        ("unit_type", &e.unit_type),
        ("unit", &e.unit),
        ("salt", &e.salt),
    ] {
        if text.is_empty() || text.len() > 256 {
            return Err(format!("{field}: must be 1 to 256 bytes"));
        }
    }
    // The holdout's own exposures use a key no experiment can have.
    if !is_valid_key(&e.experiment) && e.experiment != HOLDOUT_EXPERIMENT {
        return Err("experiment: is not an experiment key".to_owned());
    }
    if let Some(problem) = e.slice.problem() {
        return Err(format!("slice.{problem}"));
    }
    if utc_day(e.at_ms).as_deref() != Some(e.day.as_str()) {
        return Err("day: is not the UTC day of at_ms".to_owned());
    }
    let expected = exposure_id(
        environment,
        &e.experiment,
        &e.salt,
        &e.variant,
        &e.unit_type,
        &e.unit,
        &e.day,
    );
    if e.id != expected {
        return Err("id: does not match the exposure's fields".to_owned());
    }
    Ok(())
}

fn now_ms() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(nanos).unwrap_or(i64::MAX)
}
