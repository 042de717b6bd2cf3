//! Variant-aware caching: which origin responses the edge may keep, under which key, and
//! what downstream caches are told.
//!
//! A page on a route where experiments apply depends on the visitor's assignments. The edge
//! keeps one copy per assignment vector (the key carries a digest of exactly the assignments
//! of the experiments that apply to the route), and tells browsers and shared caches
//! downstream that the copy is private, since they cannot tell visitors apart.

mod passes;

use sha2::{Digest, Sha256};

pub use passes::{Passes, MAX_PASSES, PASS_MS};

use crate::engine::Engine;
use crate::routing::RequestRoute;

/// Query parameter that carries the assignment digest in a cache key.
pub const CACHE_KEY_PARAM: &str = "cleave-variants";

/// Request headers a stored response may vary on: the edge cache keeps one copy per URL and
/// assignment vector, and the platform's cache itself handles content encodings, so a
/// response that varies on anything else (a cookie, a language, `*`) is never stored.
pub const VARY_ALLOWED: &[&str] = &["accept-encoding"];

/// Cookies of cleave's own, which the cache key already accounts for (the visitor id decides
/// the assignments in the key; the others only steer the worker).
pub const OWN_COOKIES: &[&str] = &[
    "cleave_uid",
    "cleave_force",
    "cleave_hops",
    "cleave_assignments",
];

/// Whether a request may be answered from, and stored in, the shared edge cache, following
/// shared-cache rules (RFC 9111 §3.5; Varnish's builtin policy): not when it carries
/// `Authorization`, nor when it carries a cookie other than cleave's own or those the
/// deployment declared irrelevant to its pages (`ignored`, `*` for all).
pub fn request_is_cacheable(authorization: bool, cookie: Option<&str>, ignored: &[String]) -> bool {
    if authorization {
        return false;
    }
    if ignored.iter().any(|c| c == "*") {
        return true;
    }
    cookie.unwrap_or("").split(';').all(|pair| {
        let name = pair.split('=').next().unwrap_or("").trim();
        name.is_empty() || OWN_COOKIES.contains(&name) || ignored.iter().any(|c| c == name)
    })
}

/// Whether an origin response may be stored at the edge: a 200 the origin marked shareable
/// (`public`, `s-maxage` or `max-age` above 0) and not `private`, `no-store` or `no-cache`,
/// without `Set-Cookie`, and varying on nothing outside [`VARY_ALLOWED`].
pub fn is_storable(
    status: u16,
    cache_control: Option<&str>,
    vary: Option<&str>,
    sets_cookie: bool,
) -> bool {
    let vary_allowed = vary.unwrap_or("").split(',').all(|v| {
        let v = v.trim();
        v.is_empty() || VARY_ALLOWED.iter().any(|a| a.eq_ignore_ascii_case(v))
    });
    if status != 200 || sets_cookie || !vary_allowed {
        return false;
    }
    let Some(cc) = cache_control else {
        return false;
    };
    let mut shareable = false;
    for (name, value) in directives(cc) {
        match name.as_str() {
            "private" | "no-store" | "no-cache" => return false,
            "public" => shareable = true,
            "s-maxage" | "max-age"
                if value
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|s| s > 0) =>
            {
                shareable = true;
            }
            _ => {}
        }
    }
    shareable
}

/// `Cache-Control` for a varied response on its way to the visitor: the origin's directives
/// without the ones that address shared caches, plus `private`.
pub fn private_cache_control(cache_control: Option<&str>) -> String {
    let kept: Vec<String> = cache_control
        .map(directives)
        .into_iter()
        .flatten()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "public" | "private" | "s-maxage" | "proxy-revalidate"
            )
        })
        .map(|(name, value)| match value {
            Some(v) => format!("{name}={v}"),
            None => name,
        })
        .collect();
    std::iter::once("private".to_owned())
        .chain(kept)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lower-cased directive names with their values (quotes removed).
fn directives(cc: &str) -> impl Iterator<Item = (String, Option<&str>)> {
    cc.split(',').filter_map(|part| {
        let part = part.trim();
        if part.is_empty() {
            return None;
        }
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (part, None),
        };
        Some((name.to_ascii_lowercase(), value))
    })
}

/// The edge cache key of a request URL (no fragment) for a visitor whose route-scoped
/// assignments encode to `assignments` (the `cleave-assignments` value; `None` = enrolled in
/// nothing): the URL plus a digest of the assignments, so each vector has its own copy.
pub fn cache_key(url: &str, assignments: Option<&str>) -> String {
    let digest = Sha256::digest(assignments.unwrap_or("").as_bytes());
    let short = hex::encode(digest.get(..12).unwrap_or(&digest[..]));
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}{CACHE_KEY_PARAM}={short}")
}

impl Engine {
    /// Whether any running experiment applies to `route`, or the environment has flags or
    /// asks for consent: then the response depends on the visitor's assignments, flag values
    /// or consent.
    pub fn varies(&self, route: RequestRoute<'_>) -> bool {
        if !self.flags.is_empty() || self.snapshot().consent.is_some() {
            return true;
        }
        // Without route-scoped experiments, every running experiment applies everywhere.
        if !self.has_routes() {
            return !self.running.is_empty();
        }
        self.running.iter().any(|p| {
            p.routes
                .as_ref()
                .is_none_or(|m| m.applies(Some(route.host), route.path))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_explicitly_shareable_200s_are_stored() {
        assert!(is_storable(200, Some("public, max-age=60"), None, false));
        assert!(is_storable(
            200,
            Some("s-maxage=600"),
            Some("accept-encoding"),
            false
        ));
        assert!(is_storable(200, Some("max-age=60"), None, false));
        assert!(!is_storable(200, Some("max-age=0"), None, false));
        assert!(!is_storable(200, None, None, false));
        assert!(!is_storable(200, Some("public, max-age=60"), None, true));
        assert!(!is_storable(
            200,
            Some("public, max-age=60"),
            Some("*"),
            false
        ));
        assert!(!is_storable(200, Some("Private, max-age=60"), None, false));
        assert!(!is_storable(
            200,
            Some("public, max-age=60"),
            Some("Cookie"),
            false
        ));
        assert!(!is_storable(
            200,
            Some("public, max-age=60"),
            Some("Accept-Encoding, Accept-Language"),
            false
        ));
        assert!(is_storable(
            200,
            Some("public, max-age=60"),
            Some("Accept-Encoding"),
            false
        ));
        assert!(!is_storable(200, Some("public, no-cache"), None, false));
        assert!(!is_storable(200, Some("public, no-store"), None, false));
        assert!(!is_storable(404, Some("public, max-age=60"), None, false));
    }

    #[test]
    fn requests_with_credentials_or_foreign_cookies_bypass_the_shared_cache() {
        let none: &[String] = &[];
        assert!(request_is_cacheable(false, None, none));
        assert!(request_is_cacheable(
            false,
            Some("cleave_uid=u-1; cleave_hops=1"),
            none
        ));
        assert!(!request_is_cacheable(true, None, none));
        assert!(!request_is_cacheable(
            false,
            Some("cleave_uid=u-1; session=abc"),
            none
        ));
        let ignored = ["_ga".to_owned()];
        assert!(request_is_cacheable(
            false,
            Some("_ga=GA1; cleave_uid=u"),
            &ignored
        ));
        assert!(!request_is_cacheable(
            false,
            Some("_ga=GA1; session=s"),
            &ignored
        ));
        assert!(request_is_cacheable(
            false,
            Some("session=s"),
            &["*".to_owned()]
        ));
        assert!(!request_is_cacheable(true, None, &["*".to_owned()]));
    }

    #[test]
    fn downstream_copies_become_private() {
        assert_eq!(
            private_cache_control(Some("public, max-age=60, s-maxage=600")),
            "private, max-age=60"
        );
        assert_eq!(private_cache_control(None), "private");
        assert_eq!(
            private_cache_control(Some("no-cache, must-revalidate")),
            "private, no-cache, must-revalidate"
        );
    }

    #[test]
    fn keys_differ_by_assignments_only() {
        let a = cache_key("https://s.example/p?q=1", Some(r#"hero="a""#));
        let b = cache_key("https://s.example/p?q=1", Some(r#"hero="b""#));
        assert_ne!(a, b);
        assert_eq!(a, cache_key("https://s.example/p?q=1", Some(r#"hero="a""#)));
        assert!(
            a.starts_with("https://s.example/p?q=1&cleave-variants="),
            "{a}"
        );
        assert!(cache_key("https://s.example/p", None)
            .starts_with("https://s.example/p?cleave-variants="));
    }
}
