//! Exposures and events on their way to the control plane, off the request path.
//!
//! With `CLEAVE_INGEST_URL` set, every decision's exposures (and every accepted events
//! request) become one message. With a Queue bound as `CLEAVE_EVENTS` — the production path —
//! the message is enqueued within `waitUntil`, and this worker's queue consumer delivers
//! batches to the admin's `POST /ingest`, merged per environment and deduplicated; if the
//! admin is down or answers 5xx, the batch is retried with backoff, and Queues keeps it until
//! it goes through (or lands in the dead-letter queue after `max_retries`). Ids make
//! redelivery harmless. Without a Queue, the message is POSTed directly within `waitUntil`
//! (tried twice): simple, but a long admin outage loses what arrives meanwhile.
//!
//! A visitor's repeated requests within a day produce the same exposure ids; an isolate
//! remembers the ids it already sent so it does not send them again.

mod consumer;

use std::cell::RefCell;
use std::collections::BTreeSet;

use cleave_core::exposure::Exposure;
use cleave_core::ingest::{pack, Event, IngestBatch};
use worker::js_sys::{Promise, Reflect};
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::JsValue;
use worker::worker_sys::Context;
use worker::Env;

use crate::config::Config;

pub use consumer::consume;

/// Name of the Queue producer binding.
pub const QUEUE_BINDING: &str = "CLEAVE_EVENTS";

/// Exposure ids an isolate remembers; cleared when full (a resend is only a duplicate).
const REMEMBERED_IDS: usize = 20_000;

thread_local! {
    static QUEUE: RefCell<Option<JsValue>> = const { RefCell::new(None) };
    static SENT: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
}

#[wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    inline_js = r#"
export function enqueue(queue, body) {
  return queue.send(body, { contentType: "text" })
    .catch((e) => console.error("cleave: could not enqueue exposures/events", String(e)));
}
export function post(url, token, body) {
  return post_reading(url, token, body).then((r) => r[0]);
}
export function post_reading(url, token, body) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + token },
    body,
  }).then((r) => r.text().then((text) => [r.status, text], () => [r.status, ""]), () => [0, ""]);
}
export function post_twice(url, token, body) {
  // One more try on a network error or a 5xx; a 4xx means the batch itself is bad.
  return post(url, token, body)
    .then((status) => (status === 0 || status >= 500 ? post(url, token, body) : status));
}
"#
)]
extern "C" {
    /// `queue.send(body)` as text; resolves even when sending fails (the failure is logged).
    fn enqueue(queue: &JsValue, body: &str) -> Promise;
    /// POSTs `body` to the ingest endpoint; resolves to the status, 0 when unreachable.
    fn post(url: &str, token: &str, body: &str) -> Promise;
    /// [`post`], resolving to `[status, response text]`.
    pub(crate) fn post_reading(url: &str, token: &str, body: &str) -> Promise;
    /// [`post`], once more after a network error or a 5xx.
    fn post_twice(url: &str, token: &str, body: &str) -> Promise;
}

/// Looks the Queue binding up; called once per isolate with the configuration.
pub fn bind(env: &Env) {
    let queue = Reflect::get(env, &JsValue::from_str(QUEUE_BINDING))
        .ok()
        .filter(JsValue::is_object);
    QUEUE.with(|cell| *cell.borrow_mut() = queue);
}

/// Sends a decision's exposures (when a destination is configured), leaving out those this
/// isolate already sent.
pub fn send_exposures(config: &Config, ctx: &Context, environment: &str, exposures: Vec<Exposure>) {
    if config.ingest_url.is_none() || exposures.is_empty() {
        return;
    }
    let fresh: Vec<Exposure> = SENT.with(|sent| {
        let mut sent = sent.borrow_mut();
        if sent.len() + exposures.len() > REMEMBERED_IDS {
            sent.clear();
        }
        exposures
            .into_iter()
            .filter(|e| sent.insert(e.id.clone()))
            .collect()
    });
    if fresh.is_empty() {
        return;
    }
    send(
        config,
        ctx,
        &IngestBatch {
            environment: environment.to_owned(),
            exposures: fresh,
            events: Vec::new(),
        },
    );
}

/// Sends accepted events.
pub fn send_events(config: &Config, ctx: &Context, environment: &str, events: Vec<Event>) {
    send(
        config,
        ctx,
        &IngestBatch {
            environment: environment.to_owned(),
            exposures: Vec::new(),
            events,
        },
    );
}

/// A Queue message stays under this; the platform refuses messages over 128 KB.
const MESSAGE_BYTES: usize = 100 * 1024;
/// Records in one message.
const MESSAGE_RECORDS: usize = 1_000;

/// Sends `batch` as as many messages as its size needs: split, never dropped.
fn send(config: &Config, ctx: &Context, batch: &IngestBatch) {
    let exposures = records(&batch.exposures);
    let events = records(&batch.events);
    let exposures: Vec<&str> = exposures.iter().map(String::as_str).collect();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    for packed in pack(
        &batch.environment,
        &exposures,
        &events,
        MESSAGE_BYTES,
        MESSAGE_RECORDS,
    ) {
        send_body(config, ctx, packed.body);
    }
}

/// Each record as JSON (these types always serialize; one that did not would be logged).
fn records<T: serde::Serialize>(items: &[T]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| match serde_json::to_string(item) {
            Ok(text) => Some(text),
            Err(e) => {
                worker::console_error!("cleave: a record could not be encoded: {e}");
                None
            }
        })
        .collect()
}

fn send_body(config: &Config, ctx: &Context, body: String) {
    let Some(url) = config.ingest_url.as_deref() else {
        return;
    };
    let pending = QUEUE.with(|cell| match cell.borrow().as_ref() {
        Some(queue) => enqueue(queue, &body),
        None => post_twice(url, config.ingest_token.as_deref().unwrap_or(""), &body),
    });
    if let Err(e) = ctx.wait_until(&pending) {
        worker::console_error!("cleave: waitUntil refused exposure delivery: {e:?}");
    }
}
