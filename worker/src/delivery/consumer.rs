//! The Queue consumer: regroups a batch of messages into ingest requests per environment
//! (a few requests instead of a hundred, each under the admin's limits) and settles each
//! message by what happened to its own records:
//! - stored, or already there: acknowledged;
//! - the admin unreachable, 5xx, 401/403 (a credential an operator will fix), 408 or 429:
//!   retried with backoff (redelivery is harmless, ids dedup);
//! - refused by the admin (a bad field, an unknown environment): those records alone are
//!   dead-lettered — sent to the `CLEAVE_DEAD_LETTERS` queue when one is bound, always
//!   logged with the reason and counted — and the message is acknowledged.
//!
//! One refused record never costs another its delivery.

use std::rc::Rc;

use cleave_core::ingest::{pack, Receipt};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use worker::js_sys::{Array, Promise, Reflect};
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

use super::post_reading;
use crate::config::Config;
use crate::telemetry::{self, Event};

/// Longest wait between retries.
const MAX_RETRY_DELAY_SECONDS: u32 = 600;
/// Name of the optional producer binding refused records are sent to.
pub const DEAD_LETTER_BINDING: &str = "CLEAVE_DEAD_LETTERS";
/// One ingest request stays well under the admin's 16 MiB body and 50,000 records.
const DELIVERY_BYTES: usize = 4 * 1024 * 1024;
const DELIVERY_RECORDS: usize = 10_000;

#[wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    inline_js = r#"
export function message_bodies(batch) {
  return batch.messages.map((m) => (typeof m.body === "string" ? m.body : JSON.stringify(m.body)));
}
export function attempts(batch, i) { return batch.messages[i].attempts || 1; }
export function ack(batch, i) { batch.messages[i].ack(); }
export function retry(batch, i, seconds) { batch.messages[i].retry({ delaySeconds: seconds }); }
export function dead_letter(queue, body) {
  return queue.send(body, { contentType: "text" }).then(() => true, (e) => {
    console.error("cleave: could not dead-letter a refused record", String(e));
    return false;
  });
}
"#
)]
extern "C" {
    fn message_bodies(batch: &JsValue) -> Array;
    fn attempts(batch: &JsValue, index: u32) -> f64;
    fn ack(batch: &JsValue, index: u32);
    fn retry(batch: &JsValue, index: u32, seconds: u32);
    /// Resolves to whether the queue took the message.
    fn dead_letter(queue: &JsValue, body: &str) -> Promise;
}

/// Settles one `MessageBatch`: what the queue handler runs.
pub async fn consume(batch: JsValue, env: Env, config: Rc<Config>) -> Result<JsValue, JsValue> {
    let bodies: Vec<String> = message_bodies(&batch)
        .iter()
        .map(|body| body.as_string().unwrap_or_default())
        .collect();
    let dead_letters = Reflect::get(&env, &JsValue::from_str(DEAD_LETTER_BINDING))
        .ok()
        .filter(JsValue::is_object);
    let fate = settle(&config, &bodies, dead_letters.as_ref()).await;
    for (i, retried) in fate.iter().enumerate() {
        let Ok(index) = u32::try_from(i) else { break };
        if let Some(why) = retried {
            let delay = retry_delay(config.ingest_retry_seconds, attempts(&batch, index));
            worker::console_warn!("cleave: ingest failed ({why}); retrying in {delay} s");
            retry(&batch, index, delay);
        } else {
            ack(&batch, index);
        }
    }
    Ok(JsValue::UNDEFINED)
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

/// A record and the message it came in.
#[derive(Clone, Copy)]
struct Record<'a> {
    message: usize,
    json: &'a str,
}

/// The records of one environment, from every message that carries it.
struct Group<'a> {
    environment: String,
    exposures: Vec<Record<'a>>,
    events: Vec<Record<'a>>,
}

/// A record the admin refused (or that could not be read), on its way to the dead letters.
struct Refusal<'a> {
    message: usize,
    environment: &'a str,
    kind: &'static str,
    record: Option<&'a str>,
    error: String,
}

/// Delivers every message's records; returns, per message, why it must be retried (`None`:
/// acknowledge it).
async fn settle(
    config: &Config,
    bodies: &[String],
    dead_letters: Option<&JsValue>,
) -> Vec<Option<String>> {
    let mut fate: Vec<Option<String>> = vec![None; bodies.len()];
    let (groups, unreadable) = group(bodies);
    let mut refused: Vec<Refusal<'_>> = unreadable
        .into_iter()
        .map(|(message, error)| Refusal {
            message,
            environment: "",
            kind: "message",
            record: bodies.get(message).map(String::as_str),
            error,
        })
        .collect();
    let Some(url) = config.ingest_url.as_deref() else {
        let why = "CLEAVE_INGEST_URL is not set".to_owned();
        return fate.iter().map(|_| Some(why.clone())).collect();
    };
    let token = config.ingest_token.as_deref().unwrap_or("");
    for g in &groups {
        let exposures: Vec<&str> = g.exposures.iter().map(|r| r.json).collect();
        let events: Vec<&str> = g.events.iter().map(|r| r.json).collect();
        for packed in pack(
            &g.environment,
            &exposures,
            &events,
            DELIVERY_BYTES,
            DELIVERY_RECORDS,
        ) {
            let picked = || {
                let ex = packed.exposures.iter().filter_map(|&i| g.exposures.get(i));
                let ev = packed.events.iter().filter_map(|&i| g.events.get(i));
                ex.chain(ev)
            };
            match deliver(url, token, &packed.body).await {
                Delivery::Receipt(receipt) => {
                    let kinds = [
                        (
                            "exposure",
                            &receipt.exposures.refused,
                            &packed.exposures,
                            &g.exposures,
                        ),
                        ("event", &receipt.events.refused, &packed.events, &g.events),
                    ];
                    for (kind, refusals, indexes, records) in kinds {
                        for r in refusals {
                            let Some(record) = indexes.get(r.index).and_then(|&i| records.get(i))
                            else {
                                continue;
                            };
                            refused.push(Refusal {
                                message: record.message,
                                environment: &g.environment,
                                kind,
                                record: Some(record.json),
                                error: r.error.clone(),
                            });
                        }
                    }
                }
                Delivery::Retry(why) => {
                    for record in picked() {
                        if let Some(slot) = fate.get_mut(record.message) {
                            *slot = Some(why.clone());
                        }
                    }
                }
                Delivery::Refused(error) => {
                    let ex = packed.exposures.len();
                    for (n, record) in picked().enumerate() {
                        refused.push(Refusal {
                            message: record.message,
                            environment: &g.environment,
                            kind: if n < ex { "exposure" } else { "event" },
                            record: Some(record.json),
                            error: error.clone(),
                        });
                    }
                }
            }
        }
    }
    for r in &refused {
        // A message that is retried anyway is redelivered whole: its refusal comes again.
        if fate.get(r.message).is_some_and(Option::is_some) {
            continue;
        }
        if !dead_letter_one(r, dead_letters).await {
            if let Some(slot) = fate.get_mut(r.message) {
                *slot = Some("the dead-letter queue did not take a refused record".to_owned());
            }
        }
    }
    fate
}

/// Logs, counts and (when a dead-letter queue is bound) sends one refused record; whether it
/// was kept.
async fn dead_letter_one(r: &Refusal<'_>, queue: Option<&JsValue>) -> bool {
    let line = json!({
        "environment": r.environment, "kind": r.kind, "error": r.error,
        "record": r.record.map(|text| serde_json::from_slice::<serde_json::Value>(text.as_bytes())
            .unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))),
    })
    .to_string();
    worker::console_error!("cleave: record refused and dead-lettered: {line}");
    telemetry::report(Event::RecordRefused {
        environment: r.environment,
        kind: r.kind,
        reason: &r.error,
    });
    match queue {
        Some(queue) => JsFuture::from(dead_letter(queue, &line))
            .await
            .ok()
            .and_then(|kept| kept.as_bool())
            .unwrap_or(false),
        None => true,
    }
}

enum Delivery {
    /// The admin answered record by record.
    Receipt(Receipt),
    /// Worth trying again later.
    Retry(String),
    /// The admin refused the delivery as a whole; no retry can fix it.
    Refused(String),
}

async fn deliver(url: &str, token: &str, body: &str) -> Delivery {
    let answer = JsFuture::from(post_reading(url, token, body)).await.ok();
    let pair = answer.map(|value| Array::from(&value));
    let status = pair
        .as_ref()
        .and_then(|p| p.get(0).as_f64())
        .map_or(0, http_status);
    let text = pair.and_then(|p| p.get(1).as_string()).unwrap_or_default();
    match status {
        200..=299 => match serde_json::from_slice::<Receipt>(text.as_bytes()) {
            Ok(receipt) => Delivery::Receipt(receipt),
            // An admin that does not answer per record stored the delivery whole.
            Err(_) => Delivery::Receipt(Receipt::default()),
        },
        0 => Delivery::Retry(format!("{url} unreachable")),
        401 | 403 | 408 | 429 | 500.. => Delivery::Retry(format!("status {status}")),
        _ => Delivery::Refused(format!("the admin refused the delivery ({status}): {text}")),
    }
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

/// Regroups message bodies by environment, remembering each record's message; messages that
/// cannot be read (which no retry could fix) are returned with the reason.
fn group(bodies: &[String]) -> (Vec<Group<'_>>, Vec<(usize, String)>) {
    // A handful of environments at most.
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut unreadable = Vec::new();
    for (message, body) in bodies.iter().enumerate() {
        let parsed = match serde_json::from_slice::<Message<'_>>(body.as_bytes()) {
            Ok(parsed) => parsed,
            Err(e) => {
                unreadable.push((message, format!("unreadable queue message: {e}")));
                continue;
            }
        };
        let at = match groups
            .iter()
            .position(|g| g.environment == parsed.environment)
        {
            Some(at) => at,
            None => {
                groups.push(Group {
                    environment: parsed.environment,
                    exposures: Vec::new(),
                    events: Vec::new(),
                });
                groups.len() - 1
            }
        };
        if let Some(g) = groups.get_mut(at) {
            g.exposures
                .extend(parsed.exposures.into_iter().map(|r| Record {
                    message,
                    json: r.get(),
                }));
            g.events.extend(parsed.events.into_iter().map(|r| Record {
                message,
                json: r.get(),
            }));
        }
    }
    (groups, unreadable)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn messages_group_per_environment_and_remember_where_each_record_came_from() {
        let bodies = [
            r#"{"environment":"a","exposures":[{"id":"1"}]}"#,
            r#"{"environment":"a","exposures":[{"id":"2"}],"events":[{"event_id":"x"}]}"#,
            r#"{"environment":"b","exposures":[{"id":"1"}]}"#,
            "not json",
        ]
        .map(str::to_owned);
        let (groups, unreadable) = group(&bodies);
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].0, 3);
        assert_eq!(groups.len(), 2);
        let a = &groups[0];
        assert_eq!(a.environment, "a");
        let seen: Vec<_> = a.exposures.iter().map(|r| (r.message, r.json)).collect();
        assert_eq!(seen, [(0, r#"{"id":"1"}"#), (1, r#"{"id":"2"}"#)]);
        assert_eq!(a.events[0].message, 1);
        assert_eq!(groups[1].exposures[0].message, 2);
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
