//! The operator's endpoints: `GET /_cleave/health` (what is in service and how fresh) and
//! `GET /_cleave/v1/context` (what the worker derives from a request).

use serde_json::json;
use worker::web_sys::{Request, Response};
use worker::{Env, Result};

use super::{environment_param, serve};
use crate::config::Config;
use crate::decide_request::{self, BadRequest};
use crate::edge::add_edge_attributes;
use crate::envelope::{self, SnapshotMeta};
use crate::request_context::{add_user_agent, enrich, user_agent_of};
use crate::request_url::RequestUrl;
use crate::snapshot_store;

pub async fn health(env: &Env, config: &Config, url: &RequestUrl) -> Result<Response> {
    let environment = environment_param(url, config);
    let now = crate::now_ms();
    let served = snapshot_store::current(env, config, &environment, now).await;
    let checked_ms_ago = served.checked_at_ms.map(|at| now.saturating_sub(at));
    let Some(engine) = &served.engine else {
        let data = json!({
            "environment": environment, "status": "none", "version": null, "stale": true,
            "reason": served.failure.as_deref(), "checked_ms_ago": checked_ms_ago,
        });
        return envelope::with_status(503, &data, Some("no snapshot in service"));
    };
    let snapshot = engine.snapshot();
    let data = json!({
        "environment": environment,
        // At a glance: "ok" (the latest refresh succeeded) or "stale" (serving an older good
        // version; `reason` says why); "none" above means nothing to serve.
        "status": if served.failure.is_some() { "stale" } else { "ok" },
        "version": snapshot.version,
        "published_at": snapshot.published_at,
        "age_ms": served.age_ms(now),
        "wasm_memory_bytes": wasm_memory_bytes(),
        "stale": served.failure.is_some(),
        "reason": served.failure.as_deref(),
        "checked_ms_ago": checked_ms_ago,
        // `binary` (the sidecar the pointer names) or `json` (the body); a sidecar that was
        // offered but not used says why in `sidecar_problem`.
        "loaded_from": served.source.encoding,
        "sidecar_problem": served.source.sidecar_problem.as_deref(),
        // `object` (the environment's SnapshotPointer, fresh everywhere) or `kv`; when the
        // object could not be used, `pointer_problem` says why.
        "pointer_from": served.pointer_from,
        "pointer_problem": served.pointer_problem.as_deref(),
    });
    envelope::ok(&data, Some(SnapshotMeta::of(engine)))
}

/// The context schema in service and what the worker derives from this request with it:
/// units, request, schema and edge attributes (all of them, needed or not).
pub async fn context(
    req: &Request,
    env: &Env,
    config: &Config,
    url: &RequestUrl,
) -> Result<Response> {
    let mut parsed = match decide_request::parse_query(url.query().unwrap_or("")) {
        Ok(r) => r,
        Err(BadRequest(message)) => return envelope::error(400, &message),
    };
    let environment = environment_param(url, config);
    let served = serve(env, config, &environment).await;
    let mut schema_error = None;
    let schema = served.engine.as_ref().map(|engine| {
        if let Err(e) = enrich(engine, req, url, &mut parsed.attributes, true, false) {
            schema_error = Some(e.to_string());
        }
        &engine.snapshot().context_schema
    });
    // All edge attributes, whether or not the snapshot needs them.
    add_edge_attributes(req, url, &mut parsed.attributes);
    add_user_agent(user_agent_of(req), &mut parsed.attributes);
    let meta = served
        .engine
        .as_ref()
        .map(|e| SnapshotMeta::introspection(e));
    envelope::ok(
        &json!({
            "environment": environment,
            "units": parsed.units,
            "attributes": parsed.attributes,
            "schema": schema,
            "schema_error": schema_error,
        }),
        meta,
    )
}

/// Size of this isolate's wasm linear memory: it only grows, so a leak shows as growth here.
fn wasm_memory_bytes() -> Option<usize> {
    #[cfg(target_arch = "wasm32")]
    {
        Some(core::arch::wasm32::memory_size(0) * 65_536)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        None
    }
}
