//! One proxied page from decision to response, on the shortest path the request allows.
//!
//! With the snapshot in memory and no edge-cache lookup to wait for, the page is decided
//! synchronously and the origin's answer is finished from a plain JavaScript `then`: no Rust
//! future, task queue or per-request closure stands between the visitor and the origin. A
//! page that must first wait (a snapshot refresh, a cache lookup) takes the async path; both
//! finish the response with the same code.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use cleave_core::headers::is_websocket_upgrade;
use worker::js_sys::Promise;
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{Request, Response};
use worker::worker_sys::Context;
use worker::Result;

use super::decision::{self, Decision};
use super::edge_cache::Lookup;
use super::finish::{assignments_cookie, assignments_script, finish, Finishing};
use super::platform::{self, RequestFacts, ResponseFacts};
use super::{added_headers, dropped_headers, redirect, Upstream, HOPS_COOKIE, MAX_REDIRECT_HOPS};
use crate::config::Config;
use crate::decision::Exposures;
use crate::envelope;
use crate::identity::{cookie_value, new_uid, uid_from_cookies};
use crate::request_url::RequestUrl;
use crate::snapshot_store::Served;

/// What a request becomes: an answer of the edge's own (a redirect, an error), or a page to
/// fetch.
pub enum Prepared {
    Answer(Result<Response>),
    Page(Box<Page>),
}

/// A page on its way to the origin, with what its response will need.
pub struct Page {
    req: Request,
    target: String,
    dropped: String,
    added: String,
    lookup: Option<Lookup>,
    /// The page was lately uncacheable: no lookup.
    passing: bool,
    now_ms: i64,
    exposures: Exposures,
    finishing: Finishing,
}

/// Decides `req` with the snapshot `served` and turns it into what to send.
pub fn prepare(
    req: Request,
    ctx: &Context,
    served: &Served,
    config: &Config,
    url: &RequestUrl,
    now: u64,
) -> Prepared {
    let Some(default_origin) = config.origin_url.as_deref().and_then(Upstream::of) else {
        return Prepared::Answer(envelope::error(
            502,
            "ORIGIN_URL is not configured or not a URL",
        ));
    };
    let facts = RequestFacts::of(&req);
    let cookie = facts.cookie();
    // Without the environment's consent signal no id is read or issued.
    let consented = crate::decision::consented(served.engine.as_deref(), &req, cookie);
    let existing = cookie
        .filter(|_| consented)
        .and_then(uid_from_cookies)
        .map(str::to_owned);
    let (uid, fresh) = match existing {
        Some(uid) => (uid, false),
        None if consented => (new_uid().unwrap_or_default(), true),
        None => (String::new(), false),
    };
    let mut decision = decision::decide(
        served,
        &req,
        url,
        decision::Visitor {
            uid: &uid,
            cookie,
            method: facts.method(),
            consented,
        },
        config,
        now,
    );
    let Decision { exposures, .. } = &mut decision;
    let exposures = std::mem::take(exposures);
    let new_uid = (fresh && !uid.is_empty()).then(|| uid.clone());
    let hops: Option<u32> = cookie
        .and_then(|c| cookie_value(c, HOPS_COOKIE))
        .map(|n| n.parse().unwrap_or(MAX_REDIRECT_HOPS));
    if let Some((location, status)) = &decision.redirect {
        let taken = hops.unwrap_or(0);
        if taken < MAX_REDIRECT_HOPS {
            // No page of the origin's to declare anything: every assignment was acted on.
            exposures.record(config, ctx);
            return Prepared::Answer(redirect(
                location,
                *status,
                taken + 1,
                new_uid.as_deref(),
                decision.sticky_cookie.as_deref(),
            ));
        }
        worker::console_warn!("cleave: redirect to {location} skipped after {taken} hops");
    }
    let origin = decision
        .origin
        .as_deref()
        .and_then(Upstream::of)
        .unwrap_or(default_origin);
    let path = decision.path.as_deref().unwrap_or(url.path());
    let websocket = is_websocket_upgrade(facts.method(), facts.upgrade());
    let lookup = if decision.varies && config.edge_cache && !websocket {
        Lookup::for_request(&facts, url, decision.variation().as_deref(), config)
    } else {
        None
    };
    let now_ms = crate::signed_ms(now);
    let passing = lookup.as_ref().is_some_and(|l| l.passes(now_ms));
    let exposed = decision.varies && served.engine.is_some();
    let finishing = Finishing {
        new_uid,
        sticky_cookie: decision.sticky_cookie.take(),
        clear_hops: hops.is_some(),
        varies: decision.varies,
        cache: match (&lookup, passing) {
            (None, _) => "bypass",
            (Some(_), true) => "pass",
            (Some(_), false) => "miss",
        },
        // A cookie of any kind waits for consent.
        cookie: (exposed && config.expose.cookie && consented)
            .then(|| assignments_cookie(&decision.pairs)),
        html: (exposed && config.expose.html)
            .then(|| assignments_script(&decision.snapshot, &decision.pairs)),
    };
    Prepared::Page(Box::new(Page {
        target: origin.url(path, url.query()),
        dropped: dropped_headers(&facts, websocket),
        added: added_headers(&uid, &decision, url, config),
        req,
        lookup,
        passing,
        now_ms,
        exposures,
        finishing,
    }))
}

impl Page {
    /// Whether the edge cache must be asked first, which only the async path can wait for.
    pub fn needs_lookup(&self) -> bool {
        self.lookup.is_some() && !self.passing
    }

    /// The request to the origin. Past the platform's own cache when the edge cache is in
    /// use: it keys by URL alone, which would cross variants.
    fn send(&self) -> std::result::Result<Promise, JsValue> {
        platform::forward(
            &self.req,
            &self.target,
            &self.dropped,
            &self.added,
            self.lookup.is_some(),
        )
    }

    /// The async path: the edge cache, then the origin.
    pub async fn fetch(mut self, ctx: &Context, config: &Config) -> Result<Response> {
        let cached = match &self.lookup {
            Some(lookup) if !self.passing => lookup.get().await,
            _ => None,
        };
        if let Some(hit) = cached {
            self.finishing.cache = "hit";
            return self.finish(hit, false, ctx, config);
        }
        let sent = match self.send() {
            Ok(sent) => sent,
            Err(e) => return not_forwarded(&e),
        };
        match JsFuture::from(sent)
            .await
            .and_then(JsCast::dyn_into::<Response>)
        {
            Ok(response) => self.finish(response, true, ctx, config),
            Err(e) => origin_unreachable(&e),
        }
    }

    /// The synchronous path: the origin's answer is finished from a JavaScript `then`. The
    /// result is the promise of the response (or, when nothing could be sent, the 502).
    pub fn fetch_then(self, ctx: Context, config: Rc<Config>) -> Result<JsValue> {
        let sent = match self.send() {
            Ok(sent) => sent,
            Err(e) => return not_forwarded(&e).map(JsValue::from),
        };
        let id = PENDING.with(|p| {
            p.borrow_mut().park(Parked {
                page: self,
                ctx,
                config,
            })
        });
        Ok(FINISH
            .with(|finish| platform::settle(&sent, id, finish.as_ref().unchecked_ref()))
            .into())
    }

    /// The origin's (`fetched`) or the cache's response, on its way to the visitor.
    fn finish(
        self,
        response: Response,
        fetched: bool,
        ctx: &Context,
        config: &Config,
    ) -> Result<Response> {
        let answer = ResponseFacts::of(&response);
        if let (Some(lookup), true) = (&self.lookup, fetched) {
            lookup.put_if_storable(ctx, &response, &answer, self.now_ms);
        }
        // What the page used, as its origin declares it (docs/contracts.md §8); a cached page
        // carries the declaration it was stored with.
        self.exposures
            .declared(answer.exposed())
            .record(config, ctx);
        if answer.status() == 101 {
            // A WebSocket handshake: the response carries the socket and is passed on as it is.
            return Ok(response);
        }
        finish(response, &answer, &self.finishing)
    }
}

/// The request to the origin could not even be built (the runtime refused a header).
fn not_forwarded(e: &JsValue) -> Result<Response> {
    worker::console_error!("cleave: request not forwarded: {e:?}");
    envelope::error(502, "request could not be forwarded to the origin")
}

fn origin_unreachable(e: &JsValue) -> Result<Response> {
    worker::console_error!("cleave: origin unreachable: {e:?}");
    envelope::error(502, "origin unreachable")
}

/// A page waiting for its origin on the synchronous path.
struct Parked {
    page: Page,
    ctx: Context,
    config: Rc<Config>,
}

/// Pages waiting for their origin, by id. A request the platform cancels never settles, so
/// the oldest entries go once there are too many.
#[derive(Default)]
struct Pending {
    next: u32,
    parked: BTreeMap<u32, Parked>,
}

/// Pages waiting at once at most, far above what one isolate serves concurrently.
const MAX_PENDING: usize = 4096;

impl Pending {
    fn park(&mut self, parked: Parked) -> u32 {
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        if self.parked.len() >= MAX_PENDING {
            self.parked.pop_first();
        }
        self.parked.insert(id, parked);
        id
    }
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
    /// Called by [`platform::settle`] with a page's id and its origin's response (or the
    /// error); made once per isolate.
    static FINISH: Closure<dyn FnMut(u32, JsValue, bool) -> JsValue> =
        Closure::new(|id: u32, outcome: JsValue, ok: bool| settled(id, outcome, ok));
}

/// A parked page's origin answered (`ok`) or failed: its response.
fn settled(id: u32, outcome: JsValue, ok: bool) -> JsValue {
    let Some(Parked { page, ctx, config }) = PENDING.with(|p| p.borrow_mut().parked.remove(&id))
    else {
        return crate::response_or_error(envelope::error(500, "internal error"));
    };
    let result = if ok {
        match outcome.dyn_into::<Response>() {
            Ok(response) => page.finish(response, true, &ctx, &config),
            Err(e) => origin_unreachable(&e),
        }
    } else {
        origin_unreachable(&outcome)
    };
    crate::response_or_error(result)
}
