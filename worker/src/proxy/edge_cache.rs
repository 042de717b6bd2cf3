//! The edge cache (Cloudflare's Cache API, `caches.default`) for pages that depend on the
//! visitor's assignments: one copy per assignment vector, never one variant's page for another.

use cleave_core::caching::{cache_key, is_storable, request_is_cacheable};
use worker::js_sys::{self, Promise, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{Cache, Request, Response};
use worker::worker_sys::Context;

use super::platform::put_quietly;
use crate::config::Config;
use crate::request_url::RequestUrl;

/// A request the edge cache may answer, with its key.
pub struct Lookup {
    cache: Cache,
    key: String,
}

impl Lookup {
    /// The cache and key for a GET that shared-cache rules let the edge answer (no
    /// credentials, no cookies but cleave's own and those configured as irrelevant); `None`
    /// otherwise or when no cache is available.
    pub fn for_request(
        req: &Request,
        url: &RequestUrl,
        assignments: Option<&str>,
        config: &Config,
    ) -> Option<Self> {
        if req.method() != "GET" {
            return None;
        }
        let headers = req.headers();
        let authorization = headers.has("authorization").unwrap_or(true);
        let cookie = headers.get("cookie").ok().flatten();
        if !request_is_cacheable(
            authorization,
            cookie.as_deref(),
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
        })
    }

    /// The stored copy, if any; a failing cache counts as a miss.
    pub async fn get(&self) -> Option<Response> {
        let found = JsFuture::from(self.cache.match_with_str(&self.key))
            .await
            .ok()?;
        found.dyn_into::<Response>().ok()
    }

    /// Stores a copy of `response` after the answer went out, when the origin allows it.
    pub fn put_if_storable(&self, ctx: &Context, response: &Response) {
        let headers = response.headers();
        let get = |name: &str| headers.get(name).ok().flatten();
        let storable = is_storable(
            response.status(),
            get("cache-control").as_deref(),
            get("vary").as_deref(),
            headers.has("set-cookie").unwrap_or(true),
        );
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
