//! The Queue consumer: merges a batch of messages into one ingest request per environment
//! (one request instead of a hundred; the admin drops repeated ids), and decides the batch's fate by the
//! admin's answer: 2xx acknowledges; unreachable, 5xx, 401/403 (a credential an operator
//! will fix) and 429 retry the whole batch with backoff (redelivery is harmless, ids dedup);
//! any other 4xx means a malformed batch no retry can fix: it is logged and acknowledged.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use worker::js_sys::{Array, Promise};
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::Context;
use worker::Env;

use super::post;
use crate::config::Config;

/// Longest wait between retries.
const MAX_RETRY_DELAY_SECONDS: u32 = 600;

#[wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    inline_js = r#"
export function message_bodies(batch) {
  return batch.messages.map((m) => (typeof m.body === "string" ? m.body : JSON.stringify(m.body)));
}
export function attempts(batch) {
  return Math.max(1, ...batch.messages.map((m) => m.attempts || 1));
}
export function ack_all(batch) { batch.ackAll(); }
export function retry_all(batch, seconds) { batch.retryAll({ delaySeconds: seconds }); }
"#
)]
extern "C" {
    fn message_bodies(batch: &JsValue) -> Array;
    fn attempts(batch: &JsValue) -> f64;
    fn ack_all(batch: &JsValue);
    fn retry_all(batch: &JsValue, seconds: u32);
}

/// The queue handler workerd calls with a `MessageBatch`.
#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
pub fn queue(batch: JsValue, env: Env, _ctx: Context) -> Promise {
    crate::spawn(Box::pin(async move {
        let config = Config::cached(&env);
        let bodies: Vec<String> = message_bodies(&batch)
            .iter()
            .filter_map(|body| body.as_string())
            .collect();
        let (merged, unreadable) = merge(&bodies);
        if unreadable > 0 {
            worker::console_error!("cleave: {unreadable} unreadable queue message(s) dropped");
        }
        match deliver(&config, merged).await {
            Outcome::Delivered => ack_all(&batch),
            Outcome::Refused(status) => {
                worker::console_error!(
                    "cleave: the admin refused an exposure/event batch ({status}); dropped"
                );
                ack_all(&batch);
            }
            Outcome::Retry(why) => {
                let delay = retry_delay(config.ingest_retry_seconds, attempts(&batch));
                worker::console_warn!("cleave: ingest failed ({why}); retrying in {delay} s");
                retry_all(&batch, delay);
            }
        }
        Ok(JsValue::UNDEFINED)
    }))
}

enum Outcome {
    Delivered,
    Refused(u16),
    Retry(String),
}

/// Posts each environment's batch; the first failure decides.
async fn deliver(config: &Config, merged: Vec<(String, String)>) -> Outcome {
    let Some(url) = config.ingest_url.as_deref() else {
        return Outcome::Retry("CLEAVE_INGEST_URL is not set".to_owned());
    };
    let token = config.ingest_token.as_deref().unwrap_or("");
    for (_, body) in &merged {
        let status = JsFuture::from(post(url, token, body))
            .await
            .ok()
            .and_then(|s| s.as_f64())
            .map_or(0, http_status);
        match status {
            200..=299 => {}
            0 => return Outcome::Retry(format!("{url} unreachable")),
            401 | 403 | 408 | 429 | 500.. => return Outcome::Retry(format!("status {status}")),
            _ => return Outcome::Refused(status),
        }
    }
    Outcome::Delivered
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn http_status(value: f64) -> u16 {
    // Statuses are small integers; anything else reads as "unreachable".
    if (0.0..1000.0).contains(&value) {
        value as u16
    } else {
        0
    }
}

/// Exponential backoff from `base` seconds: base, 2·base, 4·base…, capped.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn retry_delay(base: u32, attempts: f64) -> u32 {
    let doublings = attempts.clamp(1.0, 16.0) as u32 - 1;
    base.saturating_mul(1 << doublings)
        .min(MAX_RETRY_DELAY_SECONDS)
}

/// One queued message, its records left as raw JSON: the consumer only regroups them, and
/// the admin checks and deduplicates them.
#[derive(Deserialize)]
struct Message<'a> {
    environment: String,
    #[serde(borrow, default)]
    exposures: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    events: Vec<&'a RawValue>,
}

/// Regroups message bodies into one ingest body per environment; unreadable messages (which
/// no retry could fix) are counted and left out.
fn merge(bodies: &[String]) -> (Vec<(String, String)>, usize) {
    // (environment, exposures, events); a handful of environments at most.
    let mut groups: Vec<(String, Vec<&RawValue>, Vec<&RawValue>)> = Vec::new();
    let mut unreadable = 0;
    for body in bodies {
        let Ok(message) = serde_json::from_str::<Message<'_>>(body) else {
            unreadable += 1;
            continue;
        };
        let at = match groups.iter().position(|g| g.0 == message.environment) {
            Some(at) => at,
            None => {
                groups.push((message.environment, Vec::new(), Vec::new()));
                groups.len() - 1
            }
        };
        if let Some(group) = groups.get_mut(at) {
            group.1.extend(message.exposures);
            group.2.extend(message.events);
        }
    }
    let merged = groups
        .into_iter()
        .map(|(environment, exposures, events)| {
            let mut body = String::from("{\"environment\":");
            body.push_str(&Value::String(environment.clone()).to_string());
            for (name, records) in [("exposures", exposures), ("events", events)] {
                body.push_str(&format!(",\"{name}\":["));
                for (i, record) in records.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(record.get());
                }
                body.push(']');
            }
            body.push('}');
            (environment, body)
        })
        .collect();
    (merged, unreadable)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn messages_merge_per_environment() {
        let bodies = [
            r#"{"environment":"a","exposures":[{"id":"1"}]}"#,
            r#"{"environment":"a","exposures":[{"id":"2"}],"events":[{"event_id":"x"}]}"#,
            r#"{"environment":"b","exposures":[{"id":"1"}]}"#,
            "not json",
        ]
        .map(str::to_owned);
        let (merged, unreadable) = merge(&bodies);
        assert_eq!(unreadable, 1);
        assert_eq!(merged.len(), 2);
        assert_eq!(
            merged[0].1,
            r#"{"environment":"a","exposures":[{"id":"1"},{"id":"2"}],"events":[{"event_id":"x"}]}"#
        );
        assert_eq!(
            merged[1].1,
            r#"{"environment":"b","exposures":[{"id":"1"}],"events":[]}"#
        );
        for (_, body) in &merged {
            serde_json::from_str::<serde_json::Value>(body).unwrap();
        }
    }

    #[test]
    fn retries_back_off_exponentially_up_to_a_cap() {
        assert_eq!(retry_delay(10, 1.0), 10);
        assert_eq!(retry_delay(10, 2.0), 20);
        assert_eq!(retry_delay(10, 4.0), 80);
        assert_eq!(retry_delay(10, 50.0), MAX_RETRY_DELAY_SECONDS);
        assert_eq!(retry_delay(1, 0.0), 1);
    }
}
