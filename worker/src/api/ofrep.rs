//! OpenFeature remote evaluation (docs/contracts.md §9): `POST {base}/ofrep/v1/evaluate/flags`
//! (bulk) and `.../flags/{key}` (one flag), answered from the snapshot in service.
//!
//! Flags and experiments share one key space: a flag evaluates by its rules, an experiment to
//! its variant's payload. A single evaluation is an exposure of the experiment that decided it
//! (under the caller's binding, §8); a bulk evaluation records none. Bulk answers carry an
//! `ETag` over the snapshot version and the context, and `If-None-Match` gets a 304.

use std::collections::BTreeSet;

use cleave_core::exposure::Source;
use cleave_core::flags::{bulk_etag, is_client_key, FlagOutcome};
use cleave_core::snapshot::OfrepAccess;
use cleave_core::{Assignment, Engine, Subject};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use worker::web_sys::{Headers, Request, Response, ResponseInit};
use worker::worker_sys::Context;
use worker::{Env, Result};

use crate::config::Config;
use crate::decision::{self, Ask, Caller, Mode};
use crate::ofrep_request::{context_of, is_flag_key, none_match, OfrepContext, OfrepPath};
use crate::request_context::enrich;
use crate::request_url::RequestUrl;
use crate::snapshot_store;

/// Answers an OFREP call, with CORS headers for an allowed origin.
pub async fn evaluate(
    call: OfrepPath<'_>,
    req: &Request,
    env: &Env,
    ctx: &Context,
    config: &Config,
    url: &RequestUrl,
) -> Result<Response> {
    let environment = call.environment.unwrap_or(&config.environment);
    if !cleave_core::keys::is_valid_key(environment) {
        return failure(400, call.key, "INVALID_CONTEXT", "not an environment name");
    }
    let now = crate::now_ms();
    let served = snapshot_store::current(env, config, environment, now).await;
    let Some(engine) = decision::engine(&served, environment, Mode::Api, req) else {
        let reason = served.failure.as_deref().unwrap_or("not loaded");
        let details = format!("no snapshot for environment {environment:?}: {reason}");
        return answer(503, &json!({ "errorDetails": details }), None);
    };
    crate::identity_sources::verify_request(Some(engine), req, config).await;
    let access = &engine.snapshot().ofrep;
    let headers = req.headers();
    let origin = headers.get("origin").ok().flatten();
    let allowed = origin.filter(|o| access.allowed_origins.iter().any(|a| a == o));
    let method = req.method();
    if method == "OPTIONS" {
        return match &allowed {
            Some(origin) => preflight(origin),
            None => answer(
                403,
                &json!({"errorDetails": "this origin may not call OFREP here (the environment's allowed origins)"}),
                None,
            ),
        };
    }
    let response = if method != "POST" {
        failure(405, call.key, "GENERAL", "use POST for OFREP evaluation")
    } else if !presents_key(req, config, access) {
        answer(
            401,
            &json!({"errorDetails": "missing or unknown client key (X-API-Key or Authorization: Bearer)"}),
            None,
        )
    } else {
        let body =
            crate::body::read_capped(req, crate::decide_request::limits::BODY_BYTES, ctx).await?;
        match body.map(|body| context_of(&body)) {
            Err(_) => failure(
                413,
                call.key,
                "INVALID_CONTEXT",
                "request body is too large",
            ),
            Ok(Err(problem)) => failure(400, call.key, problem.code(), problem.details()),
            Ok(Ok(context)) => evaluate_with(
                call.key,
                engine,
                &context,
                req,
                ctx,
                config,
                url,
                now,
                environment,
            ),
        }
    }?;
    if let Some(origin) = &allowed {
        allow_origin(&response.headers(), origin)?;
    }
    Ok(response)
}

/// The evaluation itself, with the context read.
#[allow(clippy::too_many_arguments)]
fn evaluate_with(
    key: Option<&str>,
    engine: &Engine,
    context: &OfrepContext,
    req: &Request,
    ctx: &Context,
    config: &Config,
    url: &RequestUrl,
    now: u64,
    environment: &str,
) -> Result<Response> {
    let mut attributes = context.attributes.clone();
    let enriched = match enrich(
        engine,
        req,
        url,
        &mut attributes,
        true,
        config.ingest_url.is_some(),
    ) {
        Ok(enriched) => enriched,
        Err(e) => return failure(400, key, "INVALID_CONTEXT", &e.to_string()),
    };
    let subject = Subject {
        bot: enriched.bot,
        ..Subject::new(&context.units, &attributes, crate::signed_ms(now))
    };
    match key {
        Some(key) => single(key, engine, &subject, req, ctx, config, environment),
        None => bulk(engine, &subject, context, req, environment),
    }
}

/// Whether the caller may evaluate: always when the environment asks for no client key;
/// else with one of its keys (`X-API-Key`, or `Authorization: Bearer`), or the server token.
fn presents_key(req: &Request, config: &Config, access: &OfrepAccess) -> bool {
    if access.client_key_hashes.is_empty() {
        return true;
    }
    if crate::auth::request_presents(req, config.server_token.as_deref()) {
        return true;
    }
    let headers = req.headers();
    let api_key = headers.get("x-api-key").ok().flatten();
    let authorization = headers.get("authorization").ok().flatten();
    let bearer = crate::auth::bearer(authorization.as_deref());
    api_key
        .as_deref()
        .into_iter()
        .chain(bearer)
        .any(|k| is_client_key(access, k))
}

/// The answer to an allowed origin's preflight: POST with the headers the OFREP providers
/// send, cached by the browser for ten minutes.
fn preflight(origin: &str) -> Result<Response> {
    let headers = Headers::new()?;
    allow_origin(&headers, origin)?;
    headers.set("access-control-allow-methods", "POST")?;
    headers.set(
        "access-control-allow-headers",
        "content-type, if-none-match, x-api-key, authorization",
    )?;
    headers.set("access-control-max-age", "600")?;
    let init = ResponseInit::new();
    init.set_status(204);
    init.set_headers(&headers);
    Ok(Response::new_with_opt_str_and_init(None, &init)?)
}

/// Lets `origin`'s pages read the answer, its `ETag` included.
fn allow_origin(headers: &Headers, origin: &str) -> Result<()> {
    headers.set("access-control-allow-origin", origin)?;
    headers.set("access-control-expose-headers", "etag")?;
    headers.append("vary", "origin")?;
    Ok(())
}

/// One flag (or experiment), recording the exposure of the experiment that decided it.
fn single(
    key: &str,
    engine: &Engine,
    subject: &Subject<'_>,
    req: &Request,
    ctx: &Context,
    config: &Config,
    environment: &str,
) -> Result<Response> {
    let not_found = || {
        failure(
            404,
            Some(key),
            "FLAG_NOT_FOUND",
            &format!("no flag or experiment {key:?} in {environment}"),
        )
    };
    if !is_flag_key(key) {
        return not_found();
    }
    let (result, decided) = if engine.flag(key).is_some() {
        match engine.evaluate_flag(subject, key) {
            Some(outcome) => flag_result(&outcome),
            None => return not_found(),
        }
    } else if engine.experiment(key).is_some() {
        experiment_result(engine, subject, key, None)
    } else {
        return not_found();
    };
    if result.get("errorCode").is_some() {
        return answer(400, &result, None);
    }
    if let Some(assignment) = decided {
        let source = decision::collected(config, Some(Source::Api));
        if source.is_some() {
            let identities = crate::identity_sources::of_request(Some(engine), req, config);
            let caller = Caller::of(req, config, Some(engine), &identities);
            let ask = Ask {
                environment,
                mode: Mode::Api,
                source,
                binding: caller.binding(Some(engine)),
            };
            decision::exposures(&ask, subject, &[assignment]).record(config, ctx);
        }
    }
    answer(200, &result, None)
}

/// Every flag and every running experiment, with an `ETag`; a 304 when the client has it.
fn bulk(
    engine: &Engine,
    subject: &Subject<'_>,
    context: &OfrepContext,
    req: &Request,
    environment: &str,
) -> Result<Response> {
    let version = engine.snapshot().version;
    let etag = bulk_etag(environment, version, &context.canonical);
    let sent = req.headers().get("if-none-match").ok().flatten();
    if sent.as_deref().is_some_and(|h| none_match(h, &etag)) {
        return not_modified(&etag);
    }
    // One assignment pass serves the flags and the experiments; keyed, so the list comes out
    // in key order.
    let assigned = engine.assign(subject);
    let mut results = Map::new();
    for outcome in engine.evaluate_flags_given(subject, None, Some(&assigned)) {
        results.insert(outcome.flag().key.clone(), flag_result(&outcome).0);
    }
    let running = engine
        .snapshot()
        .experiments
        .iter()
        .filter(|e| e.status == cleave_core::snapshot::Status::Running);
    for experiment in running {
        let key = &experiment.key;
        let result = experiment_result(engine, subject, key, Some(&assigned)).0;
        results.insert(key.clone(), result);
    }
    let flags: Vec<Value> = results.into_iter().map(|(_, v)| v).collect();
    let body = json!({
        "flags": flags,
        "metadata": {"environment": environment, "version": version},
    });
    answer(200, &body, Some(&etag))
}

/// A flag's OFREP result, and the experiment assignment that decided it.
fn flag_result<'e>(outcome: &FlagOutcome<'e>) -> (Value, Option<Assignment<'e>>) {
    match outcome {
        FlagOutcome::Value(v) => {
            let mut result = success(&v.flag.key, v.reason.as_str(), &v.variant.key);
            result.insert("value".into(), raw(v.variant.value.as_raw()));
            if let Some(a) = &v.assignment {
                let metadata = json!({"experiment": a.experiment.key});
                result.insert("metadata".into(), metadata);
            }
            (Value::Object(result), v.assignment)
        }
        FlagOutcome::TargetingKeyMissing(flag) => (
            error_result(
                Some(&flag.key),
                "TARGETING_KEY_MISSING",
                &format!(
                    "flag {:?} rolls out by the targetingKey; the context has none",
                    flag.key
                ),
            ),
            None,
        ),
    }
}

/// An experiment's OFREP result: its variant's payload. A unit it does not enrol gets no
/// value (OFREP's code default), so the application's own default applies. `assigned` are
/// the subject's assignments, `None` to make them for this experiment alone.
fn experiment_result<'e>(
    engine: &'e Engine,
    subject: &Subject<'_>,
    key: &str,
    assigned: Option<&[Assignment<'e>]>,
) -> (Value, Option<Assignment<'e>>) {
    let Some(experiment) = engine
        .experiment(key)
        .filter(|e| e.status == cleave_core::snapshot::Status::Running)
    else {
        return (Value::Object(code_default(key, "DISABLED")), None);
    };
    let find = |list: &[Assignment<'e>]| list.iter().find(|a| a.experiment.key == key).copied();
    let assignment = match assigned {
        Some(list) => find(list),
        None => {
            let mut only = BTreeSet::new();
            only.insert(key.to_owned());
            find(&engine.assign(&Subject {
                only: Some(&only),
                ..*subject
            }))
        }
    };
    let Some(a) = assignment else {
        if !subject.units.contains_key(&experiment.unit) {
            let details =
                format!("experiment {key:?} assigns by the targetingKey; the context has none");
            return (
                error_result(Some(key), "TARGETING_KEY_MISSING", &details),
                None,
            );
        }
        return (Value::Object(code_default(key, "SPLIT")), None);
    };
    let mut result = success(key, "SPLIT", &a.variant.key);
    let payload = a.variant.payload.as_raw();
    if payload.get() != "null" {
        result.insert("value".into(), raw(payload));
    }
    result.insert("metadata".into(), json!({"experiment": key}));
    (Value::Object(result), Some(a))
}

fn success(key: &str, reason: &str, variant: &str) -> Map<String, Value> {
    let mut result = Map::new();
    result.insert("key".into(), Value::from(key));
    result.insert("reason".into(), Value::from(reason));
    result.insert("variant".into(), Value::from(variant));
    result
}

/// A result without a value: the caller's code default applies.
fn code_default(key: &str, reason: &str) -> Map<String, Value> {
    let mut result = Map::new();
    result.insert("key".into(), Value::from(key));
    result.insert("reason".into(), Value::from(reason));
    result
}

fn raw(value: &RawValue) -> Value {
    serde_json::from_slice(value.get().as_bytes()).unwrap_or(Value::Null)
}

fn error_result(key: Option<&str>, code: &str, details: &str) -> Value {
    let mut result = Map::new();
    if let Some(key) = key {
        result.insert("key".into(), Value::from(key));
    }
    result.insert("errorCode".into(), Value::from(code));
    result.insert("errorDetails".into(), Value::from(details));
    Value::Object(result)
}

/// A refused call: a single evaluation names its flag, a bulk one does not.
fn failure(status: u16, key: Option<&str>, code: &str, details: &str) -> Result<Response> {
    answer(status, &error_result(key, code, details), None)
}

fn answer(status: u16, body: &Value, etag: Option<&str>) -> Result<Response> {
    let headers = Headers::new()?;
    headers.set("content-type", "application/json; charset=utf-8")?;
    // Evaluations are per context: no shared cache may keep them.
    headers.set("cache-control", "private, no-cache")?;
    if let Some(etag) = etag {
        headers.set("etag", etag)?;
    }
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    Ok(Response::new_with_opt_str_and_init(
        Some(&serde_json::to_string(body)?),
        &init,
    )?)
}

fn not_modified(etag: &str) -> Result<Response> {
    let headers = Headers::new()?;
    headers.set("etag", etag)?;
    headers.set("cache-control", "private, no-cache")?;
    let init = ResponseInit::new();
    init.set_status(304);
    init.set_headers(&headers);
    Ok(Response::new_with_opt_str_and_init(None, &init)?)
}
