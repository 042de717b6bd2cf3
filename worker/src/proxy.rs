//! Proxy mode (docs/contracts.md §5): forward to `ORIGIN_URL` with the unit's assignments as headers, or
//! where a variant routes the request (another allowed origin, a rewritten path, a redirect).
//!
//! Fail open: without a good snapshot the request still reaches the origin, marked
//! `cleave-snapshot: none`. Nothing here refuses a visitor because of cleave's own state.

mod decision;
mod edge_cache;
mod finish;
mod page;
mod platform;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use cleave_core::headers::{is_hop_by_hop, is_reserved_header, sign, sign_flags, sign_units};
use worker::wasm_bindgen::JsValue;
use worker::web_sys::{Headers, Request, Response, ResponseInit};
use worker::worker_sys::Context;
use worker::{Env, Result};

use crate::config::Config;
use crate::identity::set_cookie;
use crate::request_url::RequestUrl;
use crate::snapshot_store;
use decision::Decision;
use page::{prepare, Prepared};
use platform::RequestFacts;

/// Response header an origin lists the experiments its page used in; it never leaves the edge.
pub const EXPOSED_HEADER: &str = "cleave-exposed";

/// Cookie counting consecutive variant redirects, the loop guard.
pub const HOPS_COOKIE: &str = "cleave_hops";
/// Variant redirects in a row after which the visitor is served the page instead.
pub const MAX_REDIRECT_HOPS: u32 = 5;

/// The proxied request, synchronously when the snapshot is in memory and no edge-cache
/// lookup is needed: then the result is the response or the promise of one. `None` when the
/// request must wait first ([`forward`] takes it).
pub fn forward_now(
    req: Request,
    env: &Env,
    ctx: Context,
    config: &Rc<Config>,
    url: &RequestUrl,
    now: u64,
) -> std::result::Result<Result<JsValue>, Request> {
    let Some(served) = snapshot_store::fresh(env, &ctx, config, &config.environment, now) else {
        return Err(req);
    };
    // A token whose signature has no verdict yet is verified on the asynchronous path.
    if let Some(engine) = &served.engine {
        if !crate::identity_sources::ready(engine, &req, config) {
            return Err(req);
        }
    }
    match prepare(req, &ctx, &served, config, url, now) {
        Prepared::Answer(answer) => Ok(answer.map(JsValue::from)),
        Prepared::Page(page) if !page.needs_lookup() => Ok(page.fetch_then(ctx, Rc::clone(config))),
        Prepared::Page(page) => {
            let config = Rc::clone(config);
            let pending = async move { crate::respond_result(page.fetch(&ctx, &config).await) };
            Ok(Ok(crate::spawn(Box::pin(pending)).into()))
        }
    }
}

/// Forwards `req` to the origin with assignment headers, or redirects it, once the snapshot
/// is loaded.
pub async fn forward(
    req: Request,
    env: &Env,
    ctx: &Context,
    config: &Config,
    url: &RequestUrl,
) -> Result<Response> {
    let now = crate::now_ms();
    let served = snapshot_store::current(env, config, &config.environment, now).await;
    crate::identity_sources::verify_request(served.engine.as_deref(), &req, config).await;
    match prepare(req, ctx, &served, config, url, now) {
        Prepared::Answer(answer) => answer,
        Prepared::Page(page) => page.fetch(ctx, config).await,
    }
}

/// A variant's redirect, counting the hop so a chain of redirects stops.
fn redirect(
    location: &str,
    status: u16,
    hops: u32,
    new_uid: Option<&str>,
    sticky_cookie: Option<&str>,
) -> Result<Response> {
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
    if let Some(sticky) = sticky_cookie {
        headers.append("set-cookie", sticky)?;
    }
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    Ok(Response::new_with_opt_str_and_init(None, &init)?)
}

/// `cleave-unit`, `cleave-snapshot`, `cleave-assignments`, `cleave-signature`,
/// `cleave-flags`, `cleave-flags-signature`, `cleave-units`, `cleave-units-signature`, plus
/// `x-forwarded-host`, as `name\nvalue\n…` for [`platform::forward`].
fn added_headers(uid: &str, decision: &Decision, url: &RequestUrl, config: &Config) -> String {
    // A visitor without consent has no id: no `cleave-unit`.
    let mut set = if uid.is_empty() {
        format!("cleave-snapshot\n{}", decision.snapshot)
    } else {
        format!("cleave-unit\n{uid}\ncleave-snapshot\n{}", decision.snapshot)
    };
    if let Some(consent) = decision.consent {
        set.push_str("\ncleave-consent\n");
        set.push_str(consent);
    }
    if let Some(value) = &decision.assignments {
        set.push_str("\ncleave-assignments\n");
        set.push_str(value);
    }
    if let Some(keys) = &config.signing_keys {
        let signature = sign(
            &keys.headers,
            uid,
            &decision.snapshot,
            decision.assignments.as_deref().unwrap_or(""),
        );
        set.push_str("\ncleave-signature\n");
        set.push_str(&signature);
    }
    if let Some(flags) = &decision.flags {
        set.push_str("\ncleave-flags\n");
        set.push_str(flags);
        if let Some(keys) = &config.signing_keys {
            set.push_str("\ncleave-flags-signature\n");
            set.push_str(&sign_flags(&keys.headers, uid, &decision.snapshot, flags));
        }
    }
    if let Some(units) = &decision.units {
        set.push_str("\ncleave-units\n");
        set.push_str(units);
        if let Some(keys) = &config.signing_keys {
            set.push_str("\ncleave-units-signature\n");
            set.push_str(&sign_units(&keys.headers, uid, &decision.snapshot, units));
        }
    }
    if let Some(host) = url.host_str() {
        set.push_str("\nx-forwarded-host\n");
        set.push_str(host);
    }
    set
}

/// The client's headers that must not reach the origin, as `name\nname…`: any that could
/// pass for cleave's own (clients must not spoof assignments), hop-by-hop headers (a
/// WebSocket handshake keeps its upgrade) and `host` (the origin's own host applies).
fn dropped_headers(facts: &RequestFacts, websocket: bool) -> String {
    let connection = facts.connection();
    let mut drop = String::new();
    for name in facts.names() {
        if is_reserved_header(name) || is_hop_by_hop(name, connection, websocket) || name == "host"
        {
            if !drop.is_empty() {
                drop.push('\n');
            }
            drop.push_str(name);
        }
    }
    drop
}

/// An origin base URL, parsed once per isolate with the runtime's own WHATWG URL parser (JS
/// `URL`: the same answers as the `url` crate, without compiling a URL parser and its IDNA
/// tables into the bundle).
#[derive(Debug, Clone)]
struct Upstream {
    /// Scheme, credentials, host and port: the URL up to its path.
    prefix: String,
    /// The base path without its trailing `/`.
    base: String,
}

/// Origins parsed so far; bounded, since variants may name several.
const MAX_UPSTREAMS: usize = 16;

thread_local! {
    static UPSTREAMS: RefCell<BTreeMap<String, Option<Rc<Upstream>>>> = const { RefCell::new(BTreeMap::new()) };
}

impl Upstream {
    /// `text` parsed, or `None` when it is not a URL.
    fn of(text: &str) -> Option<Rc<Self>> {
        if let Some(known) = UPSTREAMS.with(|u| u.borrow().get(text).cloned()) {
            return known;
        }
        let parsed = web_sys::Url::new(text).ok().map(|url| {
            url.set_search("");
            url.set_hash("");
            let href = url.href();
            let path = url.pathname();
            Rc::new(Upstream {
                prefix: href
                    .strip_suffix(path.as_str())
                    .unwrap_or(href.as_str())
                    .to_owned(),
                base: path.trim_end_matches('/').to_owned(),
            })
        });
        UPSTREAMS.with(|u| {
            let mut map = u.borrow_mut();
            if map.len() < MAX_UPSTREAMS {
                map.insert(text.to_owned(), parsed.clone());
            }
        });
        parsed
    }

    /// The origin URL with the request's (or the rewritten) path and the request's query.
    fn url(&self, path: &str, query: Option<&str>) -> String {
        let mut out = format!("{}{}{path}", self.prefix, self.base);
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}
