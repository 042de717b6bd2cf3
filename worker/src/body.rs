//! Request bodies read as a stream under a byte cap: a body is refused (413) the moment it
//! crosses the cap, whether or not it declared a `Content-Length`, so an oversized chunked
//! upload never sits whole in the isolate's memory.

use worker::js_sys::{Promise, Uint8Array};
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{Request, Response};

use crate::envelope;

/// A body that crossed its cap.
#[derive(Debug, Clone, Copy)]
pub struct TooLarge(pub usize);

impl TooLarge {
    /// The 413 answer naming the cap.
    pub fn answer(self) -> worker::Result<Response> {
        envelope::error(
            413,
            &format!("request body is longer than {} bytes", self.0),
        )
    }
}

#[wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    inline_js = r#"
export async function read_capped(request, cap) {
  const declared = Number(request.headers.get("content-length"));
  if (declared > cap) {
    request.body?.cancel().catch(() => {});
    return null;
  }
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > cap) {
      reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
"#
)]
extern "C" {
    /// The body's bytes, or `null` as soon as more than `cap` bytes arrived (or were
    /// declared); the rest of the stream is cancelled, never read.
    #[wasm_bindgen(js_name = read_capped)]
    fn read_capped_js(request: &Request, cap: f64) -> Promise;
}

/// The whole body of `req` when it is at most `cap` bytes.
///
/// # Errors
/// A stream that fails while being read (the client went away).
#[allow(clippy::cast_precision_loss)]
pub async fn read_capped(req: &Request, cap: usize) -> worker::Result<Result<Vec<u8>, TooLarge>> {
    // Caps are a few hundred KiB: exact as f64.
    let read: JsValue = JsFuture::from(read_capped_js(req, cap as f64)).await?;
    if read.is_null() {
        return Ok(Err(TooLarge(cap)));
    }
    Ok(Ok(Uint8Array::new(&read).to_vec()))
}
