//! The edge cache (Cloudflare's Cache API, `caches.default`) for pages that depend on the
//! visitor's assignments: one copy per assignment vector, never one variant's page for another.
//! Pages the origin lately sent uncacheable skip the lookup ([`Passes`]).

use std::cell::RefCell;

use cleave_core::caching::{cache_key, is_storable, request_is_cacheable, Passes};
use worker::js_sys::{self, Promise, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{Cache, Response};
use worker::worker_sys::Context;

use super::platform::{put_quietly, RequestFacts, ResponseFacts};
use crate::config::Config;
use crate::request_url::RequestUrl;

thread_local! {
    /// This isolate's uncacheable pages.
    static PASSES: RefCell<Passes> = RefCell::new(Passes::default());
}

/// A request the edge cache may answer, with its key.
pub struct Lookup {
    cache: Cache,
    key: String,
    /// The page's URL, what [`Passes`] remembers.
    page: String,
}

impl Lookup {
    /// The cache and key for a GET that shared-cache rules let the edge answer (no
    /// credentials, no cookies but cleave's own and those configured as irrelevant); `None`
    /// otherwise or when no cache is available.
    pub fn for_request(
        facts: &RequestFacts,
        url: &RequestUrl,
        assignments: Option<&str>,
        config: &Config,
    ) -> Option<Self> {
        if facts.method() != "GET" {
            return None;
        }
        if !request_is_cacheable(
            facts.has_authorization(),
            facts.cookie(),
            &config.edge_cache_ignored_cookies,
        ) {
            return None;
        }
        let caches = Reflect::get(&js_sys::global(), &JsValue::from_str("caches")).ok()?;
        let cache = Reflect::get(&caches, &JsValue::from_str("default")).ok()?;
        if cache.is_undefined() || cache.is_null() {
            return None;
        }
        Some(Self {
            cache: cache.unchecked_into(),
            key: cache_key(url.without_fragment(), assignments),
            page: url.without_fragment().to_owned(),
        })
    }

    /// Whether the page came back uncacheable lately: then it is fetched without a lookup.
    pub fn passes(&self, now_ms: i64) -> bool {
        PASSES.with(|p| p.borrow().passes(&self.page, now_ms))
    }

    /// The stored copy, if any; a failing cache counts as a miss.
    pub async fn get(&self) -> Option<Response> {
        let found = JsFuture::from(self.cache.match_with_str(&self.key))
            .await
            .ok()?;
        found.dyn_into::<Response>().ok()
    }

    /// Stores a copy of `response` after the answer went out, when the origin allows it, and
    /// remembers whether it did.
    pub fn put_if_storable(
        &self,
        ctx: &Context,
        response: &Response,
        facts: &ResponseFacts,
        now_ms: i64,
    ) {
        let storable = is_storable(
            facts.status(),
            facts.cache_control(),
            facts.vary(),
            facts.sets_cookie(),
        );
        PASSES.with(|p| p.borrow_mut().learn(&self.page, storable, now_ms));
        if !storable {
            return;
        }
        let Ok(copy) = response.clone() else {
            return;
        };
        // A failed write costs a later miss, nothing else.
        let put: Promise = put_quietly(&self.cache, &self.key, &copy);
        if let Err(e) = ctx.wait_until(&put) {
            worker::console_error!("cleave: cache write not scheduled: {e:?}");
        }
    }
}
