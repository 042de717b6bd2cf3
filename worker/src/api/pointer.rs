//! `PUT /_cleave/v1/pointer?env=E`: the admin pushes an environment's new pointer into its
//! `SnapshotPointer` (before it writes KV), so every isolate follows it at its next refresh.
//! Only the holder of `CLEAVE_PUBLISH_TOKEN` may push; with `CLEAVE_SNAPSHOT_PUBLIC_KEY` set,
//! only a signed, unexpired pointer for this environment is taken.

use cleave_core::pointer::Pointer;
use serde_json::json;
use worker::web_sys::{Request, Response};
use worker::worker_sys::Context;
use worker::{Env, Result};

use crate::config::Config;
use crate::envelope;
use crate::pointer_object;
use crate::request_url::RequestUrl;
use crate::snapshot_signature;

/// Largest pointer accepted; a real one is well under 1 KiB.
const MAX_POINTER_BYTES: usize = 16 * 1024;

pub async fn push(
    req: &Request,
    env: &Env,
    ctx: &Context,
    config: &Config,
    url: &RequestUrl,
) -> Result<Response> {
    let allowed = crate::auth::request_presents(req, config.publish_token.as_deref());
    if !allowed {
        return envelope::error(
            401,
            "pushing a pointer requires Authorization: Bearer <CLEAVE_PUBLISH_TOKEN>",
        );
    }
    if !pointer_object::is_bound(env) {
        return envelope::error(
            501,
            "this worker has no CLEAVE_POINTERS Durable Object binding; it reads pointers from KV",
        );
    }
    let named = url
        .query_pairs()
        .find(|(k, _)| k == "env")
        .map(|(_, v)| v.into_owned());
    let environment = match named {
        None => config.environment.clone(),
        Some(name) if cleave_core::keys::is_valid_key(&name) => name,
        Some(name) => {
            return envelope::error(400, &format!("env {name:?} is not an environment key"))
        }
    };
    let body = match crate::body::read_capped(req, MAX_POINTER_BYTES, ctx).await? {
        Ok(body) => body,
        Err(too_large) => return too_large.answer(),
    };
    let pointer: Pointer = match serde_json::from_slice(&body) {
        Ok(pointer) => pointer,
        Err(e) => return envelope::error(400, &format!("the body is not a pointer: {e}")),
    };
    if let Some(public_key) = config.snapshot_public_key.as_deref() {
        let now = i64::try_from(crate::now_ms()).unwrap_or(i64::MAX);
        if let Err(reason) =
            snapshot_signature::verify_fresh(public_key, &environment, &pointer, now).await
        {
            return envelope::error(400, &format!("pointer refused: {reason}"));
        }
    }
    let text = serde_json::to_string(&pointer)?;
    let (status, answer) = match pointer_object::push(env, &environment, text).await {
        Ok(answer) => answer,
        Err(e) => {
            return envelope::error(
                502,
                &format!("the pointer object could not be reached: {e}"),
            )
        }
    };
    match status {
        200 => {
            let register: serde_json::Value = serde_json::from_slice(answer.as_bytes())?;
            envelope::ok(
                &json!({
                    "environment": environment,
                    "version": pointer.version,
                    "highest": register.get("highest"),
                }),
                None,
            )
        }
        409 => envelope::error(409, &format!("pointer refused: {answer}")),
        _ => envelope::error(
            502,
            &format!("the pointer object answered {status}: {answer}"),
        ),
    }
}
