//! Proxy mode (docs/contracts.md §5): forward to `ORIGIN_URL` with the unit's assignments as headers, or
//! where a variant routes the request (another allowed origin, a rewritten path, a redirect).
//!
//! Fail open: without a good snapshot the request still reaches the origin, marked
//! `cleave-snapshot: none`. Nothing here refuses a visitor because of cleave's own state.

mod decision;
mod edge_cache;
mod finish;
mod platform;

use cleave_core::headers::{is_hop_by_hop, is_reserved_header, is_websocket_upgrade, sign};
use worker::js_sys;
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{
    Headers, Request, RequestCache, RequestInit, RequestRedirect, Response, ResponseInit,
    WorkerGlobalScope,
};
use worker::worker_sys::Context;
use worker::{Env, Result};

use crate::config::Config;
use crate::envelope;
use crate::identity::{cookie_value, new_uid, set_cookie, uid_from_cookies};
use crate::request_url::RequestUrl;
use crate::snapshot_store;
use decision::Decision;
use edge_cache::Lookup;
use finish::{assignments_cookie, assignments_script, finish, Finishing};

/// Response header an origin lists the experiments its page used in; it never leaves the edge.
pub const EXPOSED_HEADER: &str = "cleave-exposed";

/// Cookie counting consecutive variant redirects, the loop guard.
pub const HOPS_COOKIE: &str = "cleave_hops";
/// Variant redirects in a row after which the visitor is served the page instead.
pub const MAX_REDIRECT_HOPS: u32 = 5;

/// Forwards `req` to the origin with assignment headers, or redirects it.
pub async fn forward(
    req: Request,
    env: &Env,
    ctx: &Context,
    config: &Config,
    url: &RequestUrl,
) -> Result<Response> {
    let Some(default_origin) = config.origin_url.as_deref().and_then(parse_url) else {
        return envelope::error(502, "ORIGIN_URL is not configured or not a URL");
    };
    let incoming = req.headers();
    let cookie = incoming.get("cookie").ok().flatten();
    let existing = cookie
        .as_deref()
        .and_then(uid_from_cookies)
        .map(str::to_owned);
    let (uid, fresh) = match existing {
        Some(uid) => (uid, false),
        None => (new_uid().unwrap_or_default(), true),
    };
    let now = crate::now_ms();
    let served = snapshot_store::current(env, config, &config.environment, now).await;
    let mut decision = decision::decide(
        &served,
        &req,
        url,
        decision::Visitor {
            uid: &uid,
            cookie: cookie.as_deref(),
        },
        config,
        now,
    );
    let Decision { exposures, .. } = &mut decision;
    let exposures = std::mem::take(exposures);
    let new_uid = (fresh && !uid.is_empty()).then_some(uid.as_str());
    let hops: Option<u32> = cookie
        .as_deref()
        .and_then(|c| cookie_value(c, HOPS_COOKIE))
        .map(|n| n.parse().unwrap_or(MAX_REDIRECT_HOPS));
    if let Some((location, status)) = &decision.redirect {
        let taken = hops.unwrap_or(0);
        if taken < MAX_REDIRECT_HOPS {
            // No page of the origin's to declare anything: every assignment was acted on.
            exposures.record(config, ctx);
            return redirect(location, *status, taken + 1, new_uid);
        }
        worker::console_warn!("cleave: redirect to {location} skipped after {taken} hops");
    }

    let origin = decision
        .origin
        .as_deref()
        .and_then(parse_url)
        .unwrap_or(default_origin);
    let path = decision.path.as_deref().unwrap_or(url.path());
    let target = upstream_url(&origin, path, url.query());
    let method = req.method();
    let upgrade = incoming.get("upgrade").ok().flatten();
    let websocket = is_websocket_upgrade(&method, upgrade.as_deref());
    let headers = forwarded_headers(&incoming, url, websocket)?;
    set_assignment_headers(&headers, &uid, &decision, config)?;

    let init = RequestInit::new();
    init.set_method(&method);
    init.set_headers(&headers);
    init.set_redirect(RequestRedirect::Manual);
    if !matches!(method.as_str(), "GET" | "HEAD") {
        if let Some(body) = req.body() {
            init.set_body(&body);
        }
    }
    let lookup = if decision.varies && config.edge_cache && !websocket {
        // The platform's own cache keys by URL alone, which would cross variants.
        init.set_cache(RequestCache::NoStore);
        Lookup::for_request(&req, url, decision.assignments.as_deref(), config)
    } else {
        None
    };
    let now_ms = crate::api::signed_ms(now);
    let passing = lookup.as_ref().is_some_and(|l| l.passes(now_ms));
    let cached = match &lookup {
        Some(lookup) if !passing => lookup.get().await,
        _ => None,
    };
    let cache_status = match (&lookup, &cached) {
        (None, _) => "bypass",
        (Some(_), _) if passing => "pass",
        (Some(_), Some(_)) => "hit",
        (Some(_), None) => "miss",
    };
    let response = match cached {
        Some(hit) => hit,
        None => {
            let global: WorkerGlobalScope = js_sys::global().unchecked_into();
            let fetched = JsFuture::from(global.fetch_with_str_and_init(&target, &init)).await;
            match fetched.and_then(JsCast::dyn_into::<Response>) {
                Ok(response) => {
                    if let Some(lookup) = &lookup {
                        lookup.put_if_storable(ctx, &response, now_ms);
                    }
                    response
                }
                Err(e) => {
                    worker::console_error!("cleave: origin unreachable: {e:?}");
                    return envelope::error(502, "origin unreachable");
                }
            }
        }
    };
    // What the page used, as its origin declares it (docs/contracts.md §8); a cached page carries
    // the declaration it was stored with.
    let declared = response.headers().get(EXPOSED_HEADER).ok().flatten();
    exposures.declared(declared.as_deref()).record(config, ctx);
    if response.status() == 101 {
        // A WebSocket handshake: the response carries the socket and is passed on as it is.
        return Ok(response);
    }
    let exposed = decision.varies && served.engine.is_some();
    let finishing = Finishing {
        new_uid,
        clear_hops: hops.is_some(),
        varies: decision.varies,
        cache: cache_status,
        cookie: (exposed && config.expose.cookie).then(|| assignments_cookie(&decision.pairs)),
        html: (exposed && config.expose.html)
            .then(|| assignments_script(&decision.snapshot, &decision.pairs)),
    };
    finish(response, &finishing)
}

/// A variant's redirect, counting the hop so a chain of redirects stops.
fn redirect(location: &str, status: u16, hops: u32, new_uid: Option<&str>) -> Result<Response> {
    let headers = Headers::new()?;
    headers.set("location", location)?;
    // A variant's redirect belongs to one visitor: no shared or browser cache may keep it.
    headers.set("cache-control", "private, no-store")?;
    headers.append(
        "set-cookie",
        &format!("{HOPS_COOKIE}={hops}; Path=/; Max-Age=30; HttpOnly; Secure; SameSite=Lax"),
    )?;
    if let Some(uid) = new_uid {
        headers.append("set-cookie", &set_cookie(uid))?;
    }
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    Ok(Response::new_with_opt_str_and_init(None, &init)?)
}

/// `cleave-unit`, `cleave-snapshot`, `cleave-assignments` and `cleave-signature`.
fn set_assignment_headers(
    headers: &Headers,
    uid: &str,
    decision: &Decision,
    config: &Config,
) -> Result<()> {
    headers.set("cleave-unit", uid)?;
    headers.set("cleave-snapshot", &decision.snapshot)?;
    if let Some(value) = &decision.assignments {
        headers.set("cleave-assignments", value)?;
    }
    if let Some(keys) = &config.signing_keys {
        let signature = sign(
            &keys.headers,
            uid,
            &decision.snapshot,
            decision.assignments.as_deref().unwrap_or(""),
        );
        headers.set("cleave-signature", &signature)?;
    }
    Ok(())
}

/// Parses with the runtime's own WHATWG URL parser (JS `URL`): the same answers as the
/// `url` crate, without compiling a URL parser and its IDNA tables into the bundle.
fn parse_url(text: &str) -> Option<web_sys::Url> {
    web_sys::Url::new(text).ok()
}

/// The origin URL with the request's (or the rewritten) path and the request's query.
fn upstream_url(origin: &web_sys::Url, path: &str, query: Option<&str>) -> String {
    let base = origin.pathname();
    origin.set_pathname(&format!("{}{path}", base.trim_end_matches('/')));
    origin.set_search(query.unwrap_or(""));
    origin.href()
}

/// The client's headers minus any that could pass for cleave's own (clients must not spoof
/// assignments), hop-by-hop headers (a WebSocket handshake keeps its upgrade) and `host` (the
/// origin's own host applies), plus `x-forwarded-host`.
fn forwarded_headers(incoming: &Headers, url: &RequestUrl, websocket: bool) -> Result<Headers> {
    // One copy in JavaScript, then only the names are read back (already lower-case).
    let headers = Headers::new_with_headers(incoming)?;
    let connection = incoming.get("connection")?;
    for name in incoming.keys() {
        if let Some(name) = name?.as_string() {
            if is_reserved_header(&name)
                || is_hop_by_hop(&name, connection.as_deref(), websocket)
                || name == "host"
            {
                headers.delete(&name)?;
            }
        }
    }
    if let Some(host) = url.host_str() {
        headers.set("x-forwarded-host", host)?;
    }
    Ok(headers)
}
