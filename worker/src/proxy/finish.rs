//! What proxy mode adds to the origin's response on its way to the visitor: the new visitor's
//! id cookie, the end of a redirect chain, privacy for pages that depend on assignments, and
//! (when enabled) the page's assignments for front-end code.

use cleave_core::caching::private_cache_control;
use serde_json::Value;
use worker::web_sys::Response;
use worker::Result;

use super::platform::{append_to_head, rewrap, ResponseFacts};
use super::{EXPOSED_HEADER, HOPS_COOKIE};
use crate::identity::set_cookie;

/// Cookie holding the page's assignments for front-end code (`exp=variant&…`).
pub const ASSIGNMENTS_COOKIE: &str = "cleave_assignments";
/// `id` of the JSON `<script>` element holding the page's assignments.
pub const ASSIGNMENTS_ELEMENT: &str = "cleave-assignments";

/// Changes to make to the origin's response.
#[derive(Debug, Default)]
pub struct Finishing {
    /// A new visitor's id, to set as a cookie.
    pub new_uid: Option<String>,
    /// The visitor's changed sticky record, as a `Set-Cookie` value.
    pub sticky_cookie: Option<String>,
    /// The request carried a redirect hop count that this answer ends.
    pub clear_hops: bool,
    /// The page depends on assignments: downstream caches must keep it private.
    pub varies: bool,
    /// `cleave-cache` on varied pages: `hit`, `miss`, `pass` or `bypass`.
    pub cache: &'static str,
    /// The page's assignments as a readable cookie.
    pub cookie: Option<String>,
    /// The page's assignments as a JSON `<script>` in `<head>`.
    pub html: Option<String>,
}

impl Finishing {
    fn changes_nothing(&self) -> bool {
        self.new_uid.is_none()
            && self.sticky_cookie.is_none()
            && !self.clear_hops
            && !self.varies
            && self.cookie.is_none()
            && self.html.is_none()
    }
}

/// The response to send: `response` itself when nothing changes (no copy of its body or
/// headers), else a new response over the same body. `facts` are `response`'s.
pub fn finish(response: Response, facts: &ResponseFacts, f: &Finishing) -> Result<Response> {
    let declares = facts.exposed().is_some();
    if f.changes_nothing() && !declares {
        return Ok(response);
    }
    let is_html = facts
        .content_type()
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let response = match &f.html {
        Some(html) if is_html => append_to_head(&response, html),
        _ => response,
    };
    let mut cookies: Vec<String> = Vec::new();
    if let Some(uid) = &f.new_uid {
        cookies.push(set_cookie(uid));
    }
    if let Some(sticky) = &f.sticky_cookie {
        cookies.push(sticky.clone());
    }
    if f.clear_hops {
        cookies.push(format!("{HOPS_COOKIE}=; Path=/; Max-Age=0"));
    }
    if let Some(value) = &f.cookie {
        cookies.push(value.clone());
    }
    let set = if f.varies {
        format!(
            "cache-control\n{}\ncleave-cache\n{}",
            private_cache_control(facts.cache_control()),
            f.cache
        )
    } else {
        String::new()
    };
    // Response headers from fetch and the cache are immutable: a new response over the same
    // body, with the same status and headers, takes the changes. `cleave-exposed` is the
    // origin's word to the edge, not to the visitor.
    Ok(rewrap(
        &response,
        EXPOSED_HEADER,
        &cookies.join("\n"),
        &set,
    )?)
}

/// `Set-Cookie` exposing `pairs` to scripts (not HttpOnly); an empty list clears it.
pub fn assignments_cookie(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return format!("{ASSIGNMENTS_COOKIE}=; Path=/; Max-Age=0; Secure; SameSite=Lax");
    }
    // Keys are [a-z][a-z0-9_.-]: valid cookie octets and URLSearchParams-readable as they are.
    let value: Vec<String> = pairs.iter().map(|(e, v)| format!("{e}={v}")).collect();
    format!(
        "{ASSIGNMENTS_COOKIE}={}; Path=/; Secure; SameSite=Lax",
        value.join("&")
    )
}

/// `<script type="application/json">` with the snapshot version and assignments, safe to
/// place in HTML (no `<`, `>` or `&` survive unescaped) and inert under any CSP.
pub fn assignments_script(snapshot: &str, pairs: &[(String, String)]) -> String {
    let assignments = cleave_core::order::object_of(
        pairs
            .iter()
            .map(|(e, v)| (e.clone(), Value::String(v.clone()))),
    );
    let json = serde_json::json!({ "snapshot": snapshot, "assignments": assignments }).to_string();
    let escaped = json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    format!(r#"<script type="application/json" id="{ASSIGNMENTS_ELEMENT}">{escaped}</script>"#)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_script_cannot_close_itself_and_parses_back() {
        let pairs = vec![("hero".to_owned(), "</script><b>".to_owned())];
        let html = assignments_script("7", &pairs);
        assert_eq!(html.matches("</script>").count(), 1, "{html}");
        let json = html
            .trim_start_matches(r#"<script type="application/json" id="cleave-assignments">"#)
            .trim_end_matches("</script>");
        let back: Value = serde_json::from_str(json).unwrap();
        assert_eq!(back["assignments"]["hero"], "</script><b>");
        assert_eq!(back["snapshot"], "7");
    }

    #[test]
    fn the_cookie_reads_as_a_query_string_and_clears_when_empty() {
        let pairs = vec![
            ("a".to_owned(), "on".to_owned()),
            ("b.c".to_owned(), "x-1".to_owned()),
        ];
        assert!(assignments_cookie(&pairs).starts_with("cleave_assignments=a=on&b.c=x-1; Path=/;"));
        assert!(!assignments_cookie(&pairs).contains("HttpOnly"));
        assert!(assignments_cookie(&[]).contains("Max-Age=0"));
    }
}
