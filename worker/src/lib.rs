//! cleave-worker: the Cloudflare Worker. Glue only — it turns a request, `Env` and KV into
//! `cleave-core` inputs and core's answers into responses. Paths under `/_cleave/` are the
//! decision API; everything else is proxied to the origin with assignments attached.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// `#[wasm_bindgen]` expands to exported symbols, which the `unsafe_code` lint covers.
#![allow(unsafe_code)]

mod api;
mod assignment_views;
mod auth;
mod body;
mod config;
pub mod decide_request;
mod decision;
mod delivery;
mod edge;
mod envelope;
pub mod identity;
mod identity_sources;
mod isolate;
mod ofrep_request;
mod pointer_object;
mod proxy;
mod rate_limit;
mod request_context;
mod request_url;
mod snapshot_signature;
mod snapshot_store;
mod telemetry;

use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::web_sys;
use worker::Env;

use crate::request_url::RequestUrl;

/// Path prefix of every endpoint the worker owns.
const OWN_PREFIX: &str = "/_cleave/";

/// The fetch handler workerd calls. A decision whose snapshot is already in memory is answered
/// synchronously with a `Response`; only work that waits (a KV refresh, a request body, the
/// origin) goes through a `Promise`. Skipping the promise machinery and workers-rs's eager
/// request conversion (which reads `cf`, method and headers whether needed or not) is most of
/// what a small decision costs beyond the platform itself.
#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
pub fn fetch(req: web_sys::Request, env: Env, ctx: worker::worker_sys::Context) -> JsValue {
    let config = isolate::start(&env);
    let Some(url) = RequestUrl::new(req.url()) else {
        return respond(envelope::error(400, "unreadable request URL"));
    };
    let own = url.path().starts_with(OWN_PREFIX);
    if own {
        if let Some(answer) = api::answer_now(&req, &env, &config, &ctx, &url, now_ms()) {
            return respond(answer);
        }
    }
    let req = if own {
        req
    } else {
        // A second handle on the same context, for the page finished after this call returns.
        let page_ctx = ctx.clone().unchecked_into::<worker::worker_sys::Context>();
        match proxy::forward_now(req, &env, page_ctx, &config, &url, now_ms()) {
            Ok(answer) => return answer.unwrap_or_else(|e| response_or_error(Err(e))),
            Err(req) => req,
        }
    };
    let pending = async move {
        let result = if own {
            api::handle(req, &env, &ctx, &config, &url).await
        } else {
            proxy::forward(req, &env, &ctx, &config, &url).await
        };
        respond_result(result)
    };
    spawn(Box::pin(pending)).into()
}

/// The queue handler workerd calls with a `MessageBatch` of exposures and events.
#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
pub fn queue(
    batch: JsValue,
    env: Env,
    _ctx: worker::worker_sys::Context,
) -> worker::js_sys::Promise {
    let config = isolate::start(&env);
    spawn(Box::pin(delivery::consume(batch, env, config)))
}

/// A future as a `Promise`. Every handler goes through this one instantiation of
/// `future_to_promise` (a boxed future), which keeps the task machinery in the bundle once.
pub(crate) fn spawn(
    future: std::pin::Pin<Box<dyn std::future::Future<Output = Result<JsValue, JsValue>>>>,
) -> worker::js_sys::Promise {
    worker::wasm_bindgen_futures::future_to_promise(future)
}

fn respond(result: worker::Result<web_sys::Response>) -> JsValue {
    match respond_result(result) {
        Ok(response) => response,
        Err(e) => worker::js_sys::Promise::reject(&e).into(),
    }
}

/// The response, or a 500 envelope; if even that fails, the error, which workerd turns into
/// its own 500.
pub(crate) fn response_or_error(result: worker::Result<web_sys::Response>) -> JsValue {
    respond_result(result).unwrap_or_else(|e| e)
}

/// The response, or a 500 envelope when building it failed; if even that fails, the error,
/// which workerd turns into its own 500.
pub(crate) fn respond_result(
    result: worker::Result<web_sys::Response>,
) -> Result<JsValue, JsValue> {
    result
        .or_else(|e| {
            worker::console_error!("cleave: {e}");
            envelope::error(500, "internal error")
        })
        .map(JsValue::from)
        .map_err(JsValue::from)
}

/// Epoch milliseconds, from one call into JavaScript (`Date.now()`, no `Date` object).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(crate) fn now_ms() -> u64 {
    // Integral, non-negative and far below 2^53: the cast is exact.
    worker::js_sys::Date::now().max(0.0) as u64
}

/// Epoch milliseconds as core's signed time.
pub(crate) fn signed_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}
