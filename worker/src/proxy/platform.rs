//! Two workerd features reached through a few lines of JavaScript, so no Rust closure has to
//! outlive the call that made it: HTMLRewriter's element handlers, and a cache write whose
//! failure is swallowed after the response went out.

use worker::js_sys::Promise;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::web_sys::{Cache, Response};

#[wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    inline_js = r#"
export function append_to_head(response, html) {
  return new HTMLRewriter()
    .on("head", { element(head) { head.append(html, { html: true }); } })
    .transform(response);
}
export function put_quietly(cache, key, response) {
  return cache.put(key, response).catch(() => {});
}
"#
)]
extern "C" {
    /// `response` with `html` appended inside its `<head>`, streamed (no buffering).
    pub fn append_to_head(response: &Response, html: &str) -> Response;
    /// `cache.put(key, response)`, resolving even when the write fails.
    pub fn put_quietly(cache: &Cache, key: &str, response: &Response) -> Promise;
}
