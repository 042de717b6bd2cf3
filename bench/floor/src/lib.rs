//! A workers-rs worker that does nothing but answer: what any Rust worker costs in workerd.
// `#[event(fetch)]` expands to exported symbols, which the `unsafe_code` lint covers.
#![allow(unsafe_code)]

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    Response::ok(r#"{"data":{},"meta":{"status":200}}"#)
}
