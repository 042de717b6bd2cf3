//! What the edge sends the control plane: exposures and custom events, in batches, and the
//! validation of events as clients post them to `POST /_cleave/v1/events`.
//!
//! The same checks run at the edge (so a client learns at once what is wrong) and at the
//! admin's ingest endpoint (so nothing unchecked is stored, whoever sends it).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::exposure::Exposure;
use crate::keys::is_valid_key;

/// Limits of one events request.
pub mod limits {
    /// Events in one request.
    pub const EVENTS: usize = 500;
    /// Bytes of one request body.
    pub const BODY_BYTES: usize = 256 * 1024;
    /// Characters of an event id.
    pub const EVENT_ID: usize = 128;
    /// Characters of a unit id.
    pub const UNIT: usize = 256;
    /// How far ahead of the edge's clock a timestamp may be (clock skew).
    pub const FUTURE_MS: i64 = 5 * 60 * 1000;
    /// How old an event may be when it arrives.
    pub const PAST_MS: i64 = 7 * 24 * 60 * 60 * 1000;
}

/// One custom event: a unit did something worth `value` of `metric` at `timestamp_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Chosen by the client; a retried event keeps its id and is stored once.
    pub event_id: String,
    pub unit: String,
    pub metric: String,
    pub value: f64,
    pub timestamp_ms: i64,
}

/// One delivery from the edge to the control plane.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IngestBatch {
    pub environment: String,
    #[serde(default)]
    pub exposures: Vec<Exposure>,
    #[serde(default)]
    pub events: Vec<Event>,
}

/// Parses `{"events": [...]}` (or a bare array) as a client posts it. Each event is
/// `{event_id, unit, metric, value?, timestamp?}`: `value` defaults to 1 (a conversion),
/// `timestamp` (epoch milliseconds or RFC 3339) to `now_ms`. Each event is judged on its
/// own, so one bad event costs the others nothing: its entry is the problem, naming it by
/// position (`events[3].metric: …`).
///
/// # Errors
/// What is wrong with the request as a whole (not JSON, no events, too many).
pub fn parse_events(body: &[u8], now_ms: i64) -> Result<Vec<Result<Event, String>>, String> {
    if body.len() > limits::BODY_BYTES {
        return Err(format!(
            "request body is longer than {} bytes",
            limits::BODY_BYTES
        ));
    }
    // UTF-8 first, for a message that says so; then from bytes, as every JSON read in core
    // and the worker is, so the bundle holds one decoder per type.
    std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?;
    // Read by reference: no map removal code for a one-off lookup.
    let items = match &value {
        Value::Array(items) => items,
        Value::Object(object) => match object.get("events") {
            Some(Value::Array(items)) => items,
            _ => return Err("body must be {\"events\": [...]}".to_owned()),
        },
        _ => return Err("body must be {\"events\": [...]}".to_owned()),
    };
    if items.is_empty() {
        return Err("events is empty".to_owned());
    }
    if items.len() > limits::EVENTS {
        return Err(format!(
            "{} events in one request; at most {} are accepted",
            items.len(),
            limits::EVENTS
        ));
    }
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let event = event_of(item, now_ms).map_err(|e| format!("events[{i}].{e}"))?;
            check_event(&event, now_ms, limits::PAST_MS).map_err(|e| format!("events[{i}].{e}"))?;
            Ok(event)
        })
        .collect())
}

fn event_of(item: &Value, now_ms: i64) -> Result<Event, String> {
    let Value::Object(object) = item else {
        return Err(": each event must be an object".to_owned());
    };
    if let Some(unknown) = object.keys().find(|k| {
        !matches!(
            k.as_str(),
            "event_id" | "unit" | "metric" | "value" | "timestamp"
        )
    }) {
        return Err(format!(
            "{unknown}: unknown field (expected event_id, unit, metric, value, timestamp)"
        ));
    }
    let text = |field: &str| match object.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{field}: must be a string")),
        None => Err(format!("{field}: missing")),
    };
    let value = match object.get("value") {
        None | Some(Value::Null) => 1.0,
        Some(v) => v
            .as_f64()
            .ok_or_else(|| "value: must be a number".to_owned())?,
    };
    let timestamp_ms = match object.get("timestamp") {
        None | Some(Value::Null) => now_ms,
        Some(Value::String(s)) => crate::time::parse_rfc3339_ms(s)
            .ok_or_else(|| format!("timestamp: {s:?} is not an RFC 3339 time"))?,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| "timestamp: must be epoch milliseconds or RFC 3339".to_owned())?,
    };
    Ok(Event {
        event_id: text("event_id")?,
        unit: text("unit")?,
        metric: text("metric")?,
        value,
        timestamp_ms,
    })
}

/// Checks one event's fields against the limits, relative to the receiver's clock; events
/// older than `max_age_ms` are refused (the edge accepts a week; the control plane, which
/// may receive them after queue retries, more).
///
/// # Errors
/// `field: what is wrong`.
pub fn check_event(event: &Event, now_ms: i64, max_age_ms: i64) -> Result<(), String> {
    let sized = |field: &str, text: &str, max: usize| {
        if text.is_empty() || text.chars().count() > max || text.chars().any(char::is_control) {
            Err(format!(
                "{field}: must be 1 to {max} characters without control characters"
            ))
        } else {
            Ok(())
        }
    };
    sized("event_id", &event.event_id, limits::EVENT_ID)?;
    sized("unit", &event.unit, limits::UNIT)?;
    if !is_valid_key(&event.metric) {
        return Err(format!(
            "metric: {:?} is not a metric key (lowercase letter, then up to 63 of a-z 0-9 _ . -)",
            event.metric
        ));
    }
    if !event.value.is_finite() {
        return Err("value: must be a finite number".to_owned());
    }
    if event.timestamp_ms > now_ms.saturating_add(limits::FUTURE_MS) {
        return Err("timestamp: more than 5 minutes in the future".to_owned());
    }
    if event.timestamp_ms < now_ms.saturating_sub(max_age_ms) {
        return Err(format!(
            "timestamp: older than {} days",
            max_age_ms / (24 * 60 * 60 * 1000)
        ));
    }
    Ok(())
}

/// What the control plane did with one delivery, record by record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Receipt {
    pub exposures: Counted,
    pub events: Counted,
}

/// `received` in the delivery, `stored` new (the rest were stored before, or refused);
/// `refused` names each record that no retry can fix, by its index in the delivery.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counted {
    pub received: usize,
    pub stored: u64,
    #[serde(default)]
    pub refused: Vec<Refused>,
}

/// One record the control plane will not store, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub index: usize,
    pub error: String,
}

/// One ingest body made by [`pack`], and which of the records given it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    pub body: String,
    /// Indexes into the exposures given, in the order the body lists them.
    pub exposures: Vec<usize>,
    /// Indexes into the events given.
    pub events: Vec<usize>,
}

/// Packs records (each already JSON) into `{"environment", "exposures", "events"}` bodies of
/// at most `max_bytes` and `max_records` each, so a delivery never exceeds a Queue message
/// or the admin's body limit: records are split across bodies, never dropped. A single
/// record longer than `max_bytes` travels alone.
pub fn pack(
    environment: &str,
    exposures: &[&str],
    events: &[&str],
    max_bytes: usize,
    max_records: usize,
) -> Vec<Packed> {
    let head = format!(
        "{{\"environment\":{},\"exposures\":[",
        Value::String(environment.to_owned())
    );
    const MIDDLE: &str = "],\"events\":[";
    const TAIL: &str = "]}";
    let empty = head.len() + MIDDLE.len() + TAIL.len();
    let mut out = Vec::new();
    let mut current: (Vec<usize>, Vec<usize>, usize) = (Vec::new(), Vec::new(), empty);
    let records = exposures
        .iter()
        .enumerate()
        .map(|(i, r)| (true, i, r.len()))
        .chain(events.iter().enumerate().map(|(i, r)| (false, i, r.len())));
    for (is_exposure, index, len) in records {
        let count = current.0.len() + current.1.len();
        if count > 0 && (count >= max_records || current.2 + len + 1 > max_bytes) {
            out.push(std::mem::replace(
                &mut current,
                (Vec::new(), Vec::new(), empty),
            ));
        }
        current.2 += len + 1;
        if is_exposure {
            current.0.push(index);
        } else {
            current.1.push(index);
        }
    }
    if !current.0.is_empty() || !current.1.is_empty() {
        out.push(current);
    }
    out.into_iter()
        .map(|(ex, ev, len)| {
            let join = |all: &[&str], picked: &[usize]| {
                picked
                    .iter()
                    .filter_map(|&i| all.get(i).copied())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let mut body = String::with_capacity(len);
            body.push_str(&head);
            body.push_str(&join(exposures, &ex));
            body.push_str(MIDDLE);
            body.push_str(&join(events, &ev));
            body.push_str(TAIL);
            Packed {
                body,
                exposures: ex,
                events: ev,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
