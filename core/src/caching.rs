//! Variant-aware caching: which origin responses the edge may keep, under which key, and
//! what downstream caches are told.
//!
//! A page on a route where experiments apply depends on the visitor's assignments. The edge
//! keeps one copy per assignment vector (the key carries a digest of exactly the assignments
//! of the experiments that apply to the route), and tells browsers and shared caches
//! downstream that the copy is private, since they cannot tell visitors apart.

use sha2::{Digest, Sha256};

use crate::engine::Engine;
use crate::routing::RequestRoute;

/// Query parameter that carries the assignment digest in a cache key.
pub const CACHE_KEY_PARAM: &str = "cleave-variants";

/// Whether an origin response may be stored at the edge: a 200 the origin marked shareable
/// (`public`, `s-maxage` or `max-age` above 0) and not `private`, `no-store` or `no-cache`,
/// without `Set-Cookie` and not `Vary: *`.
pub fn is_storable(
    status: u16,
    cache_control: Option<&str>,
    vary: Option<&str>,
    sets_cookie: bool,
) -> bool {
    if status != 200 || sets_cookie || vary.is_some_and(|v| v.split(',').any(|x| x.trim() == "*")) {
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
    /// Whether any running experiment applies to `route`: then the response depends on the
    /// visitor's assignments.
    pub fn varies(&self, route: RequestRoute<'_>) -> bool {
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
        assert!(!is_storable(200, Some("public, no-store"), None, false));
        assert!(!is_storable(404, Some("public, max-age=60"), None, false));
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
