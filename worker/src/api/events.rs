//! `POST /_cleave/v1/events`: a caller's own events, checked record by record.

use cleave_core::ingest;
use serde_json::{json, Value};
use worker::web_sys::{Request, Response};
use worker::worker_sys::Context;
use worker::{Env, Result};

use super::environment_param;
use crate::config::Config;
use crate::decision::Caller;
use crate::envelope;
use crate::request_url::RequestUrl;
use crate::signed_ms;
use crate::snapshot_store;

/// `POST /_cleave/v1/events`: each event is checked here, so the client learns at once what
/// is wrong with it, and only the caller's own units' events are taken (docs/contracts.md §8); the
/// accepted ones are sent on like exposures. One refused event costs the others nothing:
/// 202 lists the refusals by index; with nothing accepted, the answer is the refusals'
/// status (403 when every one named another unit, else 400).
pub async fn events(
    req: &Request,
    env: &Env,
    ctx: &Context,
    config: &Config,
    url: &RequestUrl,
) -> Result<Response> {
    if config.ingest_url.is_none() {
        return not_collecting();
    }
    let body = match crate::body::read_capped(req, ingest::limits::BODY_BYTES, ctx).await? {
        Ok(body) => body,
        Err(too_large) => return too_large.answer(),
    };
    let now = crate::now_ms();
    let parsed = match ingest::parse_events(&body, signed_ms(now)) {
        Ok(parsed) => parsed,
        Err(message) => return envelope::error(400, &message),
    };
    let environment = environment_param(url, config);
    let served = snapshot_store::current(env, config, &environment, now).await;
    let engine = served.engine.as_deref();
    crate::identity_sources::verify_request(engine, req, config).await;
    let identities = crate::identity_sources::of_request(engine, req, config);
    let caller = Caller::of(req, config, engine, &identities);
    if caller == Caller::Unconsented {
        return envelope::error(
            403,
            "this visitor has not given the environment's consent signal: no event is recorded",
        );
    }
    let binding = caller.binding(served.engine.as_deref());
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (index, event) in parsed.into_iter().enumerate() {
        match event {
            Ok(event) if binding.allows_event(&event.unit) => accepted.push(event),
            Ok(event) => refused.push(json!({
                "index": index, "status": 403,
                "error": format!("events[{index}].unit: {:?} is not this caller's unit \
                    (send its own cleave_uid, or Authorization: Bearer <CLEAVE_SERVER_TOKEN>)",
                    event.unit),
            })),
            Err(error) => refused.push(json!({"index": index, "status": 400, "error": error})),
        }
    }
    let count = accepted.len();
    let mut data = json!({"accepted": count, "environment": environment});
    if !refused.is_empty() {
        data["refused"] = Value::Array(refused);
    }
    if count == 0 {
        let refusals = data["refused"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let forbidden = refusals.iter().all(|r| r["status"] == 403);
        let first = refusals
            .first()
            .and_then(|r| r["error"].as_str())
            .unwrap_or("no event accepted")
            .to_owned();
        return envelope::with_status(if forbidden { 403 } else { 400 }, &data, Some(&first));
    }
    crate::delivery::send_events(config, ctx, &environment, accepted);
    envelope::with_status(202, &data, None)
}

pub fn not_collecting() -> Result<Response> {
    envelope::error(
        503,
        "exposure and event collection is not configured (set CLEAVE_INGEST_URL)",
    )
}
