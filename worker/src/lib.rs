//! cleave-worker: the Cloudflare Worker. Glue only — it turns a request, `Env` and KV into
//! `cleave-core` inputs and core's answers into responses. Paths under `/_cleave/` are the
//! decision API; everything else is proxied to the origin with assignments attached.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// `#[event(fetch)]` expands to exported symbols, which the `unsafe_code` lint covers.
#![allow(unsafe_code)]

mod api;
mod config;
pub mod decide_request;
mod edge;
mod envelope;
pub mod identity;
mod proxy;
mod request_context;
mod snapshot_store;

use worker::{event, Context, Env, Request, Response, Result};

use crate::config::Config;

/// Path prefix of every endpoint the worker owns.
const OWN_PREFIX: &str = "/_cleave/";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let config = Config::cached(&env);
    let url = match req.url() {
        Ok(url) => url,
        Err(e) => return envelope::error(400, &format!("unreadable request URL: {e}")),
    };
    let own = url.path().starts_with(OWN_PREFIX);
    let result = if own {
        api::handle(req, &env, &config, &url).await
    } else {
        proxy::forward(req, &env, &config, &url).await
    };
    result.or_else(|e| {
        worker::console_error!("cleave: {e}");
        envelope::error(500, "internal error")
    })
}
