//! Worker-owned endpoints under `/_cleave/` (docs/contracts.md §5).

use std::collections::{BTreeMap, BTreeSet};

use cleave_core::exposure::Source;
use cleave_core::flags::FlagOutcome;
use cleave_core::routing::RequestRoute;
use cleave_core::sticky::Sticky;
use cleave_core::targeting::is_reserved;
use cleave_core::{order, Attributes, Explanation, Subject, Units};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use worker::web_sys::{Request, Response};
use worker::worker_sys::Context;
use worker::{Env, Result};

use crate::request_url::RequestUrl;
use crate::signed_ms;

mod events;
mod ofrep;
mod pointer;
mod status;

use events::{events, not_collecting};
use status::{context, health};

use crate::config::Config;
use crate::decide_request::{self, BadRequest, DecideRequest};
use crate::decision::{self, Ask, Caller, Decided, Mode};
use crate::envelope::{self, SnapshotMeta};
use crate::request_context::{enrich, verify_force};
use crate::snapshot_store::{self, Served};

const DECIDE: &str = "/_cleave/v1/decide";
const EVENTS: &str = "/_cleave/v1/events";
const EXPOSURES: &str = "/_cleave/v1/exposures";
const POINTER: &str = "/_cleave/v1/pointer";

/// Answers a GET decide without waiting when the isolate holds its snapshot (a due refresh
/// runs beside it); `None` sends the request down the asynchronous path.
pub fn answer_now(
    req: &Request,
    env: &Env,
    config: &Config,
    ctx: &Context,
    url: &RequestUrl,
    now: u64,
) -> Option<Result<Response>> {
    // A limited decide waits for the limiter, so it takes the asynchronous path.
    if url.path() != DECIDE || req.method() != "GET" || config.rate_limit.is_some() {
        return None;
    }
    let parsed = decide_request::parse_query(url.query().unwrap_or(""));
    let environment = match &parsed {
        Ok(request) => request
            .environment
            .as_deref()
            .unwrap_or(&config.environment),
        // Request errors need no snapshot.
        Err(BadRequest(message)) => return Some(envelope::error(400, message)),
    };
    let served = snapshot_store::fresh(env, ctx, config, environment, now)?;
    // A token whose signature has no verdict yet is verified on the asynchronous path.
    if let Some(engine) = &served.engine {
        if !crate::identity_sources::ready(engine, req, config) {
            return None;
        }
    }
    Some(decide_with(
        parsed,
        Purpose::Decide,
        req,
        config,
        ctx,
        url,
        &served,
        now,
    ))
}

/// Routes a request whose path starts with `/_cleave/`.
pub async fn handle(
    req: Request,
    env: &Env,
    ctx: &Context,
    config: &Config,
    url: &RequestUrl,
) -> Result<Response> {
    let path = url.path();
    let method = req.method();
    let ofrep = crate::ofrep_request::ofrep_path(path);
    let limited = matches!(path, DECIDE | EVENTS | EXPOSURES) || ofrep.is_some();
    if let (true, Some(key)) = (limited, &config.rate_limit) {
        if !crate::rate_limit::allows(env, key, &req).await {
            let what = match path {
                DECIDE => "decide calls",
                EVENTS => "event posts",
                EXPOSURES => "exposure confirmations",
                _ => "flag evaluations",
            };
            return envelope::error(
                429,
                &format!("too many {what} from this client; retry later"),
            );
        }
    }
    if let Some(call) = ofrep {
        return ofrep::evaluate(call, &req, env, ctx, config, url).await;
    }
    match path {
        DECIDE => match method.as_str() {
            "GET" => {
                let parsed = decide_request::parse_query(url.query().unwrap_or(""));
                decide(parsed, Purpose::Decide, &req, env, ctx, config, url).await
            }
            "POST" => {
                let body =
                    match crate::body::read_capped(&req, decide_request::limits::BODY_BYTES, ctx)
                        .await?
                    {
                        Ok(body) => body,
                        Err(too_large) => return too_large.answer(),
                    };
                let parsed = decide_request::parse_json(&body);
                decide(parsed, Purpose::Decide, &req, env, ctx, config, url).await
            }
            _ => envelope::error(405, "use GET or POST for /_cleave/v1/decide"),
        },
        EXPOSURES => match method.as_str() {
            "POST" => {
                if config.ingest_url.is_none() {
                    return not_collecting();
                }
                let body =
                    match crate::body::read_capped(&req, decide_request::limits::BODY_BYTES, ctx)
                        .await?
                    {
                        Ok(body) => body,
                        Err(too_large) => return too_large.answer(),
                    };
                let parsed =
                    decide_request::parse_json(&body).and_then(decide_request::naming_experiments);
                decide(parsed, Purpose::Confirm, &req, env, ctx, config, url).await
            }
            _ => envelope::error(405, "use POST for /_cleave/v1/exposures"),
        },
        EVENTS => match method.as_str() {
            "POST" => events(&req, env, ctx, config, url).await,
            _ => envelope::error(405, "use POST for /_cleave/v1/events"),
        },
        "/_cleave/health" => health(env, config, url).await,
        POINTER => match method.as_str() {
            "PUT" => pointer::push(&req, env, ctx, config, url).await,
            _ => envelope::error(405, "use PUT for /_cleave/v1/pointer"),
        },
        "/_cleave/v1/snapshot" | "/_cleave/v1/context" => {
            if !authorized(&req, config) {
                return unauthorized();
            }
            if path == "/_cleave/v1/context" {
                return context(&req, env, config, url).await;
            }
            let environment = environment_param(url, config);
            let served = serve(env, config, &environment).await;
            match &served.engine {
                Some(engine) => {
                    envelope::ok(engine.snapshot(), Some(SnapshotMeta::introspection(engine)))
                }
                None => no_snapshot(&environment, &served),
            }
        }
        _ => match path.strip_prefix("/_cleave/v1/experiments/") {
            Some(key) => {
                if !authorized(&req, config) {
                    return unauthorized();
                }
                let environment = environment_param(url, config);
                let served = serve(env, config, &environment).await;
                let Some(engine) = &served.engine else {
                    return no_snapshot(&environment, &served);
                };
                match engine.experiment(key) {
                    Some(exp) => envelope::ok(exp, Some(SnapshotMeta::introspection(engine))),
                    None => {
                        envelope::error(404, &format!("no experiment {key:?} in {environment}"))
                    }
                }
            }
            None => envelope::error(404, &format!("no such endpoint: {path}")),
        },
    }
}

#[derive(Serialize)]
struct Decision<'a> {
    units: &'a Units,
    environment: &'a str,
    /// The request attributes as converted by the context schema.
    context: Map<String, Value>,
    assignments: BTreeMap<&'a str, &'a RawValue>,
    /// Every flag's value, when the snapshot has flags.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    flags: BTreeMap<&'a str, FlagView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explain: Option<BTreeMap<&'a str, Explanation<'a>>>,
    /// The visitor's sticky record to send back next time, when there is one to keep.
    #[serde(skip_serializing_if = "Option::is_none")]
    sticky: Option<String>,
    /// Why the sticky token sent was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    sticky_ignored: Option<String>,
}

/// One flag's value in a decision: `null` when the flag could not be evaluated (a rollout
/// without the unit it hashes on).
#[derive(Serialize)]
struct FlagView<'a> {
    value: Option<&'a RawValue>,
    variant: Option<&'a str>,
    reason: &'static str,
}

impl<'a> FlagView<'a> {
    fn of(outcome: &FlagOutcome<'a>) -> Self {
        match outcome {
            FlagOutcome::Value(v) => Self {
                value: Some(v.variant.value.as_raw()),
                variant: Some(&v.variant.key),
                reason: v.reason.as_str(),
            },
            FlagOutcome::TargetingKeyMissing(_) => Self {
                value: None,
                variant: None,
                reason: "TARGETING_KEY_MISSING",
            },
        }
    }
}

/// Request attributes as the decision saw them: schema attributes typed, the rest as text.
/// Edge attributes and the parts derived from a `user_agent` attribute are left out.
fn echo(attributes: &Attributes, typed: Map<String, Value>) -> Map<String, Value> {
    let derived = |name: &str| {
        name.rsplit_once('.')
            .is_some_and(|(base, _)| typed.get(base).is_some_and(Value::is_object))
    };
    let mut out = order::object_of(
        attributes
            .iter()
            .filter(|(k, _)| !is_reserved(k) && !derived(k))
            .map(|(k, v)| (k.clone(), Value::String(v.clone()))),
    );
    out.extend(typed);
    out
}

/// What a decision is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// `/_cleave/v1/decide`: assignments, exposures as `expose` and the filter say.
    Decide,
    /// `/_cleave/v1/exposures`: the named experiments were rendered; record what the engine
    /// assigns them.
    Confirm,
}

#[derive(Serialize)]
struct Confirmation<'a> {
    units: &'a Units,
    environment: &'a str,
    /// The variant each named experiment assigns, as recorded.
    exposed: BTreeMap<&'a str, &'a str>,
    /// Named experiments the units are not enrolled in: nothing to record.
    not_assigned: Vec<&'a str>,
    /// Experiments whose exposure was recorded: those whose unit the caller may speak for.
    recorded: BTreeSet<&'a str>,
}

async fn decide(
    parsed: std::result::Result<DecideRequest, BadRequest>,
    purpose: Purpose,
    req: &Request,
    env: &Env,
    ctx: &Context,
    config: &Config,
    url: &RequestUrl,
) -> Result<Response> {
    // Request errors come before snapshot availability.
    let environment = match &parsed {
        Ok(request) => request
            .environment
            .clone()
            .unwrap_or_else(|| config.environment.clone()),
        Err(BadRequest(message)) => return envelope::error(400, message),
    };
    let now = crate::now_ms();
    let served = snapshot_store::current(env, config, &environment, now).await;
    crate::identity_sources::verify_request(served.engine.as_deref(), req, config).await;
    decide_with(parsed, purpose, req, config, ctx, url, &served, now)
}

/// A decision with the snapshot in hand.
#[allow(clippy::too_many_arguments)]
fn decide_with(
    parsed: std::result::Result<DecideRequest, BadRequest>,
    purpose: Purpose,
    req: &Request,
    config: &Config,
    ctx: &Context,
    url: &RequestUrl,
    served: &Served,
    now: u64,
) -> Result<Response> {
    let mut request = match parsed {
        Ok(r) => r,
        Err(BadRequest(message)) => return envelope::error(400, &message),
    };
    if request.explain && !authorized(req, config) {
        return unauthorized();
    }
    let environment = request
        .environment
        .as_deref()
        .unwrap_or(&config.environment);
    let forced = match request.force.as_deref() {
        Some(token) => match verify_force(config, environment, token, signed_ms(now)) {
            Ok(forced) => Some(forced),
            Err(e) => return envelope::error(400, &format!("invalid force token: {e}")),
        },
        None => None,
    };
    let Some(engine) = decision::engine(served, environment, Mode::Api, req) else {
        // Without a snapshot there are no identity sources either.
        if let Err(BadRequest(message)) = decide_request::check_identifier(&request) {
            return envelope::error(400, &message);
        }
        return no_snapshot(environment, served);
    };
    // Ids the request carries under the environment's identity sources fill the unit types
    // the caller did not name.
    let identities = crate::identity_sources::of_request(Some(engine), req, config);
    for i in &identities {
        request
            .units
            .entry(i.unit.clone())
            .or_insert_with(|| i.id.clone());
    }
    if let Err(BadRequest(message)) = decide_request::check_identifier(&request) {
        return envelope::error(400, &message);
    }
    let source = match purpose {
        Purpose::Confirm => Some(Source::Confirmed),
        Purpose::Decide => request
            .expose
            .records(request.experiments.is_some())
            .then_some(Source::Api),
    };
    let source = decision::collected(config, source);
    let mut attributes = std::mem::take(&mut request.attributes);
    let context = match enrich(engine, req, url, &mut attributes, true, source.is_some()) {
        Ok(context) => context,
        Err(e) => return envelope::error(400, &e.to_string()),
    };
    // `url=` asks about a page: its experiments apply, and `url.*` describe it.
    let page = request.url.as_ref().map(|page| RequestRoute {
        host: page.host.as_deref().or(url.host_str()).unwrap_or(""),
        path: &page.path,
    });
    if let Some(page) = page.filter(|_| engine.uses_edge_attributes()) {
        attributes.insert("url.path".to_owned(), page.path.to_owned());
        attributes.insert("url.host".to_owned(), page.host.to_owned());
    }
    let key = config
        .signing_keys
        .as_ref()
        .map_or(&[][..], |k| &k.sticky[..]);
    // An unreadable sticky token is not the caller's fault (a rotated key, a cookie from an
    // old deployment): it is ignored and replaced, never refused.
    let (sticky, sticky_ignored) = match request.sticky.as_deref() {
        Some(token) => match Sticky::open(key, token) {
            Ok(record) => (Some(record), None),
            Err(e) => (None, Some(e.to_string())),
        },
        None => (None, None),
    };
    let subject = Subject {
        units: &request.units,
        attributes: &attributes,
        now_ms: signed_ms(now),
        only: request.experiments.as_ref(),
        forced: forced.as_ref(),
        bot: context.bot,
        sticky: sticky.as_ref(),
        route: page,
    };
    // Who the caller is only matters when something will be recorded; reading its headers
    // crosses into JavaScript.
    let caller = match source {
        Some(_) => Caller::of(req, config, Some(engine), &identities),
        None => Caller::Bound(Vec::new()),
    };
    let ask = Ask {
        environment,
        mode: Mode::Api,
        source,
        binding: caller.binding(Some(engine)),
    };
    let Decided {
        assignments: decided,
        exposures,
    } = decision::assign(engine, served, &ask, &subject, now);
    if purpose == Purpose::Confirm {
        let named = request.experiments.as_ref();
        let exposed: BTreeMap<&str, &str> = order::map_of(
            decided
                .iter()
                .map(|a| (a.experiment.key.as_str(), a.variant.key.as_str())),
        );
        let recorded: BTreeSet<&str> = exposures.experiments();
        let confirmation = Confirmation {
            units: &request.units,
            environment,
            not_assigned: named
                .into_iter()
                .flatten()
                .map(String::as_str)
                .filter(|k| !exposed.contains_key(k))
                .collect(),
            exposed,
            recorded,
        };
        let answer = envelope::ok(&confirmation, Some(SnapshotMeta::of(engine)));
        exposures.record(config, ctx);
        return answer;
    }
    exposures.record(config, ctx);
    let sticky = if key.is_empty() {
        None
    } else {
        let mut record = sticky.clone().unwrap_or_default();
        record.record(|k| engine.experiment(k).is_some(), &request.units, &decided);
        record.seal(key).ok().flatten()
    };
    let assignments =
        order::try_map_of(decided.iter().map(|a| {
            Ok::<_, serde_json::Error>((a.experiment.key.as_str(), served.views.get(a)?))
        }))?;
    let explain = request.explain.then(|| {
        order::map_of(
            engine
                .explain(&subject)
                .into_iter()
                .map(|(e, why)| (e.key.as_str(), why)),
        )
    });
    // The assignments cover every experiment unless the call filtered them.
    let all_assigned = request.experiments.is_none().then_some(&decided[..]);
    let flags = order::map_of(
        engine
            .evaluate_flags_given(&subject, None, all_assigned)
            .iter()
            .map(|outcome| (outcome.flag().key.as_str(), FlagView::of(outcome))),
    );
    let decision = Decision {
        units: &request.units,
        environment,
        context: echo(&attributes, context.typed),
        assignments,
        flags,
        explain,
        sticky,
        sticky_ignored,
    };
    envelope::ok(&decision, Some(SnapshotMeta::of(engine)))
}

async fn serve(env: &Env, config: &Config, environment: &str) -> Served {
    snapshot_store::current(env, config, environment, crate::now_ms()).await
}

fn no_snapshot(environment: &str, served: &Served) -> Result<Response> {
    let reason = served.failure.as_deref().unwrap_or("not loaded");
    envelope::error(
        503,
        &format!("no snapshot for environment {environment:?}: {reason}"),
    )
}

/// `env=` when it names a valid environment, else `CLEAVE_ENV`.
fn environment_param(url: &RequestUrl, config: &Config) -> String {
    url.query_pairs()
        .find(|(k, _)| k == "env")
        .map(|(_, v)| v.into_owned())
        .filter(|v| cleave_core::keys::is_valid_key(v))
        .unwrap_or_else(|| config.environment.clone())
}

/// Whether the request carries `Authorization: Bearer <CLEAVE_ADMIN_TOKEN>`.
fn authorized(req: &Request, config: &Config) -> bool {
    crate::auth::request_presents(req, config.admin_token.as_deref())
}

fn unauthorized() -> Result<Response> {
    envelope::error(
        401,
        "missing or wrong bearer token (Authorization: Bearer <CLEAVE_ADMIN_TOKEN>)",
    )
}
