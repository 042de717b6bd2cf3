//! Proxy mode (DESIGN §5): forward to `ORIGIN_URL` with the unit's assignments as headers.
//!
//! Fail open: without a good snapshot the request still reaches the origin, marked
//! `cleave-snapshot: none`. Nothing here refuses a visitor because of cleave's own state.

use cleave_core::headers::{assignments_header, sign};
use cleave_core::{Attributes, Subject, Units};
use worker::js_sys;
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{
    Headers, Request, RequestInit, RequestRedirect, Response, ResponseInit, WorkerGlobalScope,
};
use worker::{Env, Result, Url};

use crate::config::Config;
use crate::envelope;
use crate::identity::{cookie_value, new_uid, set_cookie, uid_from_cookies, FORCE_COOKIE};
use crate::request_context::{enrich, verify_force};
use crate::request_url::RequestUrl;
use crate::snapshot_store;
use crate::telemetry::{self, Event};

/// Prefix of every header cleave sets; clients may not send any of them.
const OWN_HEADER_PREFIX: &str = "cleave-";

/// Forwards `req` to the origin with assignment headers.
pub async fn forward(
    req: Request,
    env: &Env,
    config: &Config,
    url: &RequestUrl,
) -> Result<Response> {
    let Some(origin) = config
        .origin_url
        .as_deref()
        .and_then(|o| Url::parse(o).ok())
    else {
        return envelope::error(502, "ORIGIN_URL is not configured or not a URL");
    };
    let target = upstream_url(&origin, url);
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

    let headers = forwarded_headers(&incoming, url)?;
    let now = crate::now_ms();
    let served = snapshot_store::current(env, config, &config.environment, now).await;
    let (snapshot_value, assignments) = match &served.engine {
        Some(engine) => {
            let units = Units::from([("user".to_owned(), uid.clone())]);
            let mut attributes = Attributes::new();
            // Lenient: a missing or malformed schema attribute only makes its conditions false.
            let bot = enrich(engine, &req, url, &mut attributes, false).is_ok_and(|c| c.bot);
            let now_ms = crate::api::signed_ms(now);
            // An invalid, tampered or expired QA cookie is ignored: the visitor is bucketed.
            let forced = cookie
                .as_deref()
                .and_then(|c| cookie_value(c, FORCE_COOKIE))
                .filter(|token| token.len() <= crate::decide_request::limits::TOKEN_BYTES)
                .and_then(|token| verify_force(config.signing_key.as_deref(), token, now_ms).ok());
            let subject = Subject {
                units: &units,
                attributes: &attributes,
                now_ms,
                only: None,
                forced: forced.as_ref(),
                bot,
                // The proxy knows one unit, the cookie id: there is no login to survive.
                sticky: None,
            };
            let decided = engine.assign(&subject);
            telemetry::report(Event::Decision {
                environment: &config.environment,
                mode: "proxy",
                version: engine.snapshot().version,
                assignments: decided.len(),
                age_ms: served.age_ms(now),
            });
            let header = assignments_header(&decided);
            (engine.snapshot().version.to_string(), header)
        }
        None => {
            telemetry::report(Event::FailOpen {
                environment: &config.environment,
                mode: "proxy",
                reason: served.failure.as_deref().unwrap_or("not loaded"),
                request_id: &crate::api::request_id(&req),
            });
            ("none".to_owned(), None)
        }
    };
    headers.set("cleave-unit", &uid)?;
    headers.set("cleave-snapshot", &snapshot_value)?;
    if let Some(value) = &assignments {
        headers.set("cleave-assignments", value)?;
    }
    if let Some(key) = &config.signing_key {
        let signature = sign(
            key.as_bytes(),
            &uid,
            &snapshot_value,
            assignments.as_deref().unwrap_or(""),
        );
        headers.set("cleave-signature", &signature)?;
    }

    let method = req.method();
    let init = RequestInit::new();
    init.set_method(&method);
    init.set_headers(&headers);
    init.set_redirect(RequestRedirect::Manual);
    if !matches!(method.as_str(), "GET" | "HEAD") {
        if let Some(body) = req.body() {
            init.set_body(&body);
        }
    }
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    let fetched = JsFuture::from(global.fetch_with_str_and_init(target.as_str(), &init)).await;
    let response: Response = match fetched.and_then(JsCast::dyn_into) {
        Ok(response) => response,
        Err(e) => {
            worker::console_error!("cleave: origin unreachable: {e:?}");
            return envelope::error(502, "origin unreachable");
        }
    };
    if !fresh || uid.is_empty() {
        // The origin's response goes back untouched: no copy of its body or headers.
        return Ok(response);
    }
    // Response headers from fetch are immutable: a new response over the same body, with the
    // origin's status and headers, takes the cookie.
    let with_cookie = Response::new_with_opt_readable_stream_and_init(
        response.body().as_ref(),
        response.unchecked_ref::<ResponseInit>(),
    )?;
    with_cookie
        .headers()
        .append("set-cookie", &set_cookie(&uid))?;
    Ok(with_cookie)
}

/// The origin URL with the request's path and query.
fn upstream_url(origin: &Url, url: &RequestUrl) -> Url {
    let mut target = origin.clone();
    let base = origin.path().trim_end_matches('/');
    target.set_path(&format!("{base}{}", url.path()));
    target.set_query(url.query());
    target
}

/// The client's headers minus any `cleave-*` (clients must not spoof assignments) and `host`
/// (the origin's own host applies), plus `x-forwarded-host`.
fn forwarded_headers(incoming: &Headers, url: &RequestUrl) -> Result<Headers> {
    // One copy in JavaScript, then only the names are read back (already lower-case).
    let headers = Headers::new_with_headers(incoming)?;
    for name in incoming.keys() {
        if let Some(name) = name?.as_string() {
            if name.starts_with(OWN_HEADER_PREFIX) || name == "host" {
                headers.delete(&name)?;
            }
        }
    }
    if let Some(host) = url.host_str() {
        headers.set("x-forwarded-host", host)?;
    }
    Ok(headers)
}
