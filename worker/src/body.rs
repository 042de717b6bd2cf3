//! Request bodies read as a stream under a byte cap: a body is refused (413) the moment it
//! crosses the cap, whether or not it declared a `Content-Length`, so an oversized chunked
//! upload never sits whole in the isolate's memory.

use worker::js_sys::{Promise, Uint8Array};
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{Request, Response};
use worker::worker_sys::Context;

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
export async function read_capped(request, cap, ctx) {
  const declared = Number(request.headers.get("content-length"));
  // Left unread rather than cancelled: the runtime then closes or drains the connection
  // itself, and a kept-alive connection stays usable for the client's next request.
  if (declared > cap) return null;
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > cap) {
      // The answer goes out now; what the client still sends is read and dropped (never
      // kept) until it stops, so the connection ends cleanly and the 413 is not lost to a reset.
      ctx.waitUntil(drain(reader));
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
async function drain(reader) {
  try {
    for (;;) if ((await reader.read()).done) return;
  } catch {
    // the client went away
  }
}
"#
)]
extern "C" {
    /// The body's bytes, or `null` as soon as more than `cap` bytes arrived (or were
    /// declared); the rest of the stream is never read.
    #[wasm_bindgen(js_name = read_capped)]
    fn read_capped_js(request: &Request, cap: f64, ctx: &Context) -> Promise;
}

/// The whole body of `req` when it is at most `cap` bytes.
///
/// # Errors
/// A stream that fails while being read (the client went away).
#[allow(clippy::cast_precision_loss)]
pub async fn read_capped(
    req: &Request,
    cap: usize,
    ctx: &Context,
) -> worker::Result<Result<Vec<u8>, TooLarge>> {
    // Caps are a few hundred KiB: exact as f64.
    let read: JsValue = JsFuture::from(read_capped_js(req, cap as f64, ctx)).await?;
    if read.is_null() {
        return Ok(Err(TooLarge(cap)));
    }
    Ok(Ok(Uint8Array::new(&read).to_vec()))
}
