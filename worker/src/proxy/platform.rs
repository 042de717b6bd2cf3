//! The workerd calls of proxy mode, each a few lines of JavaScript reached in one crossing:
//! reading what the proxy needs of a request or a response, forwarding a request with its
//! headers changed, finishing a response, HTMLRewriter's element handlers, and a cache write
//! whose failure is swallowed after the response went out. Every header read or write from
//! Rust is a call into JavaScript with a string copied each way; a page needs dozens, so they
//! are batched here. Lists cross as one string joined with `\n`, which no header name or value
//! may contain. No rule lives here: Rust decides what to drop, add and set.

use worker::js_sys::{Function, Promise};
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::JsValue;
use worker::web_sys::{Cache, Request, Response};

#[wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    inline_js = r#"
const present = (value) => (value === null ? "" : "+" + value);
export function request_facts(req) {
  const h = req.headers;
  return [req.method, present(h.get("cookie")), present(h.get("upgrade")),
    present(h.get("connection")), h.has("authorization") ? "1" : "", [...h.keys()].join(",")].join("\n");
}
export function response_facts(res, exposed) {
  const h = res.headers;
  return [String(res.status), present(h.get(exposed)), present(h.get("content-type")),
    present(h.get("cache-control")), present(h.get("vary")), h.has("set-cookie") ? "1" : ""].join("\n");
}
export function forward(req, target, remove, set, no_store) {
  const headers = new Headers(req.headers);
  if (remove) for (const name of remove.split("\n")) headers.delete(name);
  const pairs = set.split("\n");
  for (let i = 0; i + 1 < pairs.length; i += 2) headers.set(pairs[i], pairs[i + 1]);
  const init = { method: req.method, headers, redirect: "manual" };
  if (req.method !== "GET" && req.method !== "HEAD" && req.body) init.body = req.body;
  if (no_store) init.cache = "no-store";
  return fetch(target, init);
}
export function rewrap(res, remove, append_cookies, set) {
  const out = new Response(res.body, res);
  const h = out.headers;
  if (remove) h.delete(remove);
  if (append_cookies) for (const cookie of append_cookies.split("\n")) h.append("set-cookie", cookie);
  const pairs = set.split("\n");
  for (let i = 0; i + 1 < pairs.length; i += 2) h.set(pairs[i], pairs[i + 1]);
  return out;
}
export function settle(sent, id, finish) {
  return sent.then((res) => finish(id, res, true), (e) => finish(id, e, false));
}
export function append_to_head(response, html) {
  return new HTMLRewriter()
    .on("head", { element(head) { head.append(html, { html: true }); } })
    .transform(response);
}
export function put_quietly(cache, key, response) {
  return cache.put(key, response).catch(() => {});
}
"#
)]
extern "C" {
    /// `method`, then `cookie`, `upgrade` and `connection` (each `+value`, or empty when
    /// absent), `1` when `authorization` is present, and the header names joined with `,`.
    pub fn request_facts(req: &Request) -> String;
    /// `status`, then `cleave-exposed`, `content-type`, `cache-control` and `vary` (each
    /// `+value` or empty), and `1` when `set-cookie` is present.
    pub fn response_facts(res: &Response, exposed: &str) -> String;
    /// `fetch(target)` with the request's method, body (not for GET/HEAD) and headers, minus
    /// `remove` (names), plus `set` (name, value, name, value…), not following redirects, past
    /// the platform's URL-keyed cache when `no_store`.
    #[wasm_bindgen(catch)]
    pub fn forward(
        req: &Request,
        target: &str,
        remove: &str,
        set: &str,
        no_store: bool,
    ) -> Result<Promise, JsValue>;
    /// A new response over `res`'s body, status and headers, without header `remove` (when
    /// not empty), with each of `append_cookies` appended as `set-cookie` and `set` set.
    #[wasm_bindgen(catch)]
    pub fn rewrap(
        res: &Response,
        remove: &str,
        append_cookies: &str,
        set: &str,
    ) -> Result<Response, JsValue>;
    /// `sent` settled through `finish(id, response or error, fulfilled)`.
    pub fn settle(sent: &Promise, id: u32, finish: &Function) -> Promise;
    /// `response` with `html` appended inside its `<head>`, streamed (no buffering).
    pub fn append_to_head(response: &Response, html: &str) -> Response;
    /// `cache.put(key, response)`, resolving even when the write fails.
    pub fn put_quietly(cache: &Cache, key: &str, response: &Response) -> Promise;
}

/// What proxy mode reads of a request, from one [`request_facts`] call.
#[derive(Debug, Default)]
pub struct RequestFacts {
    text: String,
}

/// What proxy mode reads of a response, from one [`response_facts`] call.
#[derive(Debug, Default)]
pub struct ResponseFacts {
    text: String,
}

/// Line `n` of a facts string.
fn line(text: &str, n: usize) -> &str {
    text.split('\n').nth(n).unwrap_or("")
}

/// Line `n` read as an optional header value (`+value`, or empty when absent).
fn header(text: &str, n: usize) -> Option<&str> {
    line(text, n).strip_prefix('+')
}

impl RequestFacts {
    pub fn of(req: &Request) -> Self {
        Self {
            text: request_facts(req),
        }
    }
    pub fn method(&self) -> &str {
        line(&self.text, 0)
    }
    pub fn cookie(&self) -> Option<&str> {
        header(&self.text, 1)
    }
    pub fn upgrade(&self) -> Option<&str> {
        header(&self.text, 2)
    }
    pub fn connection(&self) -> Option<&str> {
        header(&self.text, 3)
    }
    pub fn has_authorization(&self) -> bool {
        line(&self.text, 4) == "1"
    }
    /// Header names, lower-case.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        line(&self.text, 5).split(',').filter(|n| !n.is_empty())
    }
}

impl ResponseFacts {
    pub fn of(res: &Response) -> Self {
        Self {
            text: response_facts(res, super::EXPOSED_HEADER),
        }
    }
    pub fn status(&self) -> u16 {
        line(&self.text, 0).parse().unwrap_or(0)
    }
    pub fn exposed(&self) -> Option<&str> {
        header(&self.text, 1)
    }
    pub fn content_type(&self) -> Option<&str> {
        header(&self.text, 2)
    }
    pub fn cache_control(&self) -> Option<&str> {
        header(&self.text, 3)
    }
    pub fn vary(&self) -> Option<&str> {
        header(&self.text, 4)
    }
    pub fn sets_cookie(&self) -> bool {
        line(&self.text, 5) == "1"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn facts_tell_an_absent_header_from_an_empty_one() {
        let req = RequestFacts {
            text: "POST\n+a=1; cleave_uid=u\n\n+\n1\naccept,cookie".to_owned(),
        };
        assert_eq!(req.method(), "POST");
        assert_eq!(req.cookie(), Some("a=1; cleave_uid=u"));
        assert_eq!(req.upgrade(), None);
        assert_eq!(req.connection(), Some(""));
        assert!(req.has_authorization());
        assert_eq!(req.names().collect::<Vec<_>>(), ["accept", "cookie"]);
        let res = ResponseFacts {
            text: "200\n+\n+text/html\n\n+Accept-Encoding\n".to_owned(),
        };
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.exposed(),
            Some(""),
            "an empty cleave-exposed declares nothing"
        );
        assert_eq!(res.content_type(), Some("text/html"));
        assert_eq!(res.cache_control(), None);
        assert_eq!(res.vary(), Some("Accept-Encoding"));
        assert!(!res.sets_cookie());
    }
}
