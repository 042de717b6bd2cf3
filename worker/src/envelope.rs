//! The `{data, meta}` envelope every worker-owned endpoint answers with (docs/contracts.md §5).

use std::cell::OnceCell;

use serde::Serialize;
use serde_json::{json, Value};
use worker::web_sys::{Headers, Response, ResponseInit};
use worker::Result;

use cleave_core::Engine;

/// The snapshot fields echoed in `meta.snapshot`: version and time for everyone; who
/// published only on introspection answers, which need the admin token.
#[derive(Debug, Serialize)]
pub struct SnapshotMeta<'a> {
    pub version: u64,
    pub published_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_by: Option<&'a str>,
}

impl<'a> SnapshotMeta<'a> {
    /// What public answers (decide, health) say of the snapshot.
    pub fn of(engine: &'a Engine) -> Self {
        let s = engine.snapshot();
        Self {
            version: s.version,
            published_at: &s.published_at,
            published_by: None,
        }
    }

    /// What introspection answers say, the publisher included.
    pub fn introspection(engine: &'a Engine) -> Self {
        Self {
            published_by: Some(&engine.snapshot().published_by),
            ..Self::of(engine)
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    data: &'a T,
    meta: Meta<'a>,
}

#[derive(Serialize)]
struct Meta<'a> {
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<SnapshotMeta<'a>>,
}

/// A 200 answer with `data` and the snapshot it was computed from, serialised in one pass.
pub fn ok<T: Serialize>(data: &T, snapshot: Option<SnapshotMeta<'_>>) -> Result<Response> {
    let body = Envelope {
        data,
        meta: Meta {
            status: 200,
            snapshot,
        },
    };
    respond_text(200, &serde_json::to_string(&body)?)
}

/// An error answer: empty `data`, the status and a message that says what is wrong.
pub fn error(status: u16, message: &str) -> Result<Response> {
    respond(
        status,
        &json!({"data": {}, "meta": {"status": status, "error": message}}),
    )
}

/// A non-200 answer that still carries data (e.g. health with no snapshot).
pub fn with_status(status: u16, data: &impl Serialize, message: Option<&str>) -> Result<Response> {
    let mut meta = json!({"status": status});
    if let Some(message) = message {
        meta["error"] = Value::from(message);
    }
    respond(status, &json!({"data": data, "meta": meta}))
}

fn respond(status: u16, body: &Value) -> Result<Response> {
    respond_text(status, &serde_json::to_string(body)?)
}

thread_local! {
    /// The init of every 200: `Response` copies status and headers out of it, so one object
    /// serves every answer instead of three calls into JavaScript per answer.
    static OK_INIT: OnceCell<ResponseInit> = const { OnceCell::new() };
}

fn respond_text(status: u16, body: &str) -> Result<Response> {
    let response = if status == 200 {
        OK_INIT.with(|cell| match cell.get() {
            Some(init) => Response::new_with_opt_str_and_init(Some(body), init),
            None => {
                let init = init(200)?;
                let response = Response::new_with_opt_str_and_init(Some(body), &init);
                let _ = cell.set(init);
                response
            }
        })
    } else {
        Response::new_with_opt_str_and_init(Some(body), &init(status)?)
    };
    Ok(response?)
}

fn init(status: u16) -> std::result::Result<ResponseInit, worker::wasm_bindgen::JsValue> {
    let headers = Headers::new()?;
    headers.set("content-type", "application/json; charset=utf-8")?;
    // Decisions are per unit: no shared cache may keep them.
    headers.set("cache-control", "no-store")?;
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    Ok(init)
}
