//! What the edge reports about itself: decisions, snapshot loads and refusals, and fail-open
//! events. With a Workers Analytics Engine dataset bound as `CLEAVE_ANALYTICS`, each event is
//! one data point (queryable with SQL, sampled by the platform at volume); without one, the
//! events that need an operator's attention are logged as one JSON line each, and decisions,
//! which are too many to log, are not reported.
//!
//! Data point layout: `indexes = [environment]`, `blobs = [event, environment, detail,
//! request id]`, `doubles = [snapshot version, assignments (records, for a refusal), snapshot
//! age ms]`.

use std::borrow::Cow;
use std::cell::RefCell;

use serde_json::json;
use worker::js_sys::{Array, Function, Object, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::Env;

/// Name of the Analytics Engine binding.
pub const BINDING: &str = "CLEAVE_ANALYTICS";

thread_local! {
    /// The dataset and its `writeDataPoint`, looked up once per isolate.
    static DATASET: RefCell<Option<(JsValue, Function)>> = const { RefCell::new(None) };
}

/// Looks the dataset up; called once per isolate with the configuration.
pub fn bind(env: &Env) {
    let dataset = Reflect::get(env, &JsValue::from_str(BINDING))
        .ok()
        .filter(JsValue::is_object)
        .and_then(|d| {
            let write = Reflect::get(&d, &JsValue::from_str("writeDataPoint")).ok()?;
            Some((d, write.dyn_into::<Function>().ok()?))
        });
    DATASET.with(|cell| *cell.borrow_mut() = dataset);
}

/// Something worth counting.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A request was decided (`mode` is `api` or `proxy`).
    Decision {
        environment: &'a str,
        mode: &'a str,
        version: u64,
        assignments: usize,
        age_ms: Option<i64>,
    },
    /// A new snapshot version went into service.
    SnapshotLoaded {
        environment: &'a str,
        version: u64,
        age_ms: Option<i64>,
        /// `binary` (the sidecar) or `json`.
        encoding: &'a str,
        /// Why an offered sidecar was passed over for the JSON body.
        sidecar_problem: Option<&'a str>,
    },
    /// A refresh failed or a version was refused; `held` is still served (if any).
    SnapshotRefused {
        environment: &'a str,
        held: Option<u64>,
        reason: &'a str,
    },
    /// The admin refused an exposure or event (`kind`), which was dead-lettered.
    RecordRefused {
        environment: &'a str,
        kind: &'a str,
        reason: &'a str,
    },
    /// A request was served without a snapshot: proxied unassigned, or a 503 on the API.
    FailOpen {
        environment: &'a str,
        mode: &'a str,
        reason: &'a str,
        request_id: &'a str,
    },
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::Decision { .. } => "decision",
            Self::SnapshotLoaded { .. } => "snapshot_loaded",
            Self::SnapshotRefused { .. } => "snapshot_refused",
            Self::RecordRefused { .. } => "record_refused",
            Self::FailOpen { .. } => "fail_open",
        }
    }

    fn fields(&self) -> Fields<'_> {
        match *self {
            Self::Decision {
                environment,
                mode,
                version,
                assignments,
                age_ms,
            } => Fields {
                environment,
                detail: Cow::Borrowed(mode),
                request_id: "",
                version: Some(version),
                assignments,
                age_ms,
            },
            Self::SnapshotLoaded {
                environment,
                version,
                age_ms,
                encoding,
                sidecar_problem,
            } => Fields {
                environment,
                detail: match sidecar_problem {
                    None => Cow::Borrowed(encoding),
                    Some(problem) => Cow::Owned(format!("{encoding} ({problem})")),
                },
                request_id: "",
                version: Some(version),
                assignments: 0,
                age_ms,
            },
            Self::SnapshotRefused {
                environment,
                held,
                reason,
            } => Fields {
                environment,
                detail: Cow::Borrowed(reason),
                request_id: "",
                version: held,
                assignments: 0,
                age_ms: None,
            },
            Self::RecordRefused {
                environment,
                kind,
                reason,
            } => Fields {
                environment,
                detail: Cow::Owned(format!("{kind}: {reason}")),
                request_id: "",
                version: None,
                assignments: 1,
                age_ms: None,
            },
            Self::FailOpen {
                environment,
                mode,
                reason,
                request_id,
            } => Fields {
                environment,
                detail: Cow::Owned(format!("{mode}: {reason}")),
                request_id,
                version: None,
                assignments: 0,
                age_ms: None,
            },
        }
    }
}

/// One event, flattened into the data point's columns.
struct Fields<'a> {
    environment: &'a str,
    detail: Cow<'a, str>,
    request_id: &'a str,
    version: Option<u64>,
    assignments: usize,
    age_ms: Option<i64>,
}

/// Reports `event` to the dataset, or logs it when none is bound (decisions excepted).
pub fn report(event: Event<'_>) {
    let written = DATASET.with(|cell| {
        let cell = cell.borrow();
        let Some((dataset, write)) = cell.as_ref() else {
            return false;
        };
        // A failing write must never fail the request: analytics are best effort.
        let _ = write.call1(dataset, &data_point(&event));
        true
    });
    if !written && !matches!(event, Event::Decision { .. }) {
        log(&event);
    }
}

#[allow(clippy::cast_precision_loss)]
fn data_point(event: &Event<'_>) -> Object {
    let f = event.fields();
    let blobs = Array::of4(
        &event.name().into(),
        &f.environment.into(),
        &f.detail.as_ref().into(),
        &f.request_id.into(),
    );
    // f64 is what Analytics Engine stores; versions, counts and ages stay far below 2^53.
    let doubles = Array::of3(
        &JsValue::from_f64(f.version.unwrap_or(0) as f64),
        &JsValue::from_f64(f.assignments as f64),
        &JsValue::from_f64(f.age_ms.unwrap_or(-1) as f64),
    );
    let point = Object::new();
    let _ = Reflect::set(
        &point,
        &"indexes".into(),
        &Array::of1(&f.environment.into()),
    );
    let _ = Reflect::set(&point, &"blobs".into(), &blobs);
    let _ = Reflect::set(&point, &"doubles".into(), &doubles);
    point
}

fn log(event: &Event<'_>) {
    let f = event.fields();
    let line = json!({
        "event": event.name(), "environment": f.environment, "detail": f.detail,
        "request_id": f.request_id, "version": f.version, "age_ms": f.age_ms,
    });
    worker::console_log!("{line}");
}

/// The platform's id of this request (`cf-ray`), for log lines and data points.
pub fn request_id(req: &worker::web_sys::Request) -> String {
    req.headers()
        .get("cf-ray")
        .ok()
        .flatten()
        .unwrap_or_default()
}
