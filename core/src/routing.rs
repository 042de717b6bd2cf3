//! Edge request routing: where an experiment applies (`routes`) and what a variant does with
//! the request (`route`: another origin, a rewritten path, or a redirect).
//!
//! A route pattern is `[host]/path`. `*` matches any run of characters (in the path, slashes
//! included); everything else matches itself, the host case-insensitively. A pattern without
//! a host (`/checkout/*`) matches every host. Queries are never part of a match.

use std::collections::BTreeMap;

use crate::decision::Assignment;
use crate::problems::Problems;
use crate::snapshot::Experiment;
pub use crate::snapshot::{RouteAction, Routes};

/// Redirect statuses a variant may use. Permanent ones (301, 308) are refused: browsers keep
/// them forever, so visitors would be stuck in the variant after the experiment ends.
pub const REDIRECT_STATUSES: [u16; 2] = [302, 307];

/// Placeholder in a rewrite that stands for the request's own path.
pub const PATH_PLACEHOLDER: &str = "{path}";

/// The request a decision is for, as route patterns see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRoute<'a> {
    pub host: &'a str,
    pub path: &'a str,
}

/// One parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// Lower-case host glob; `None` matches any host.
    host: Option<String>,
    path: String,
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, String> {
        let slash = text.find('/').ok_or_else(|| {
            format!("route pattern {text:?} has no path (write host/path or /path)")
        })?;
        let (host, path) = text.split_at(slash);
        if host.contains(|c: char| c.is_whitespace() || c == ':' || c == '?' || c == '#') {
            return Err(format!(
                "route pattern {text:?}: the host part may hold neither a scheme, a port nor spaces"
            ));
        }
        if path.contains(['?', '#']) {
            return Err(format!(
                "route pattern {text:?}: patterns match paths only, not queries or fragments"
            ));
        }
        Ok(Self {
            host: (!host.is_empty()).then(|| host.to_ascii_lowercase()),
            path: path.to_owned(),
        })
    }

    /// `host = None` asks whether the pattern could match on some host.
    fn matches(&self, host: Option<&str>, path: &str) -> bool {
        let host_ok = match (&self.host, host) {
            (Some(pattern), Some(host)) => glob(pattern, &host.to_ascii_lowercase()),
            _ => true,
        };
        host_ok && glob(&self.path, path)
    }
}

/// `*` matches any run of bytes; everything else matches itself. Linear backtracking on the
/// last star, so no pattern can make matching expensive.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == b'*'))
}

/// An experiment's `routes`, parsed once per snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteMatcher {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl RouteMatcher {
    /// Parses `routes`, reporting each bad pattern under `path`.
    pub(crate) fn prepare(routes: &Routes, path: &str, problems: &mut Problems) -> Option<Self> {
        let before = problems.len();
        let mut parse = |list: &[String], field: &str| -> Vec<Pattern> {
            list.iter()
                .enumerate()
                .filter_map(|(i, text)| {
                    Pattern::parse(text)
                        .map_err(|e| problems.push(format!("{path}.routes.{field}[{i}]"), e))
                        .ok()
                })
                .collect()
        };
        let include = parse(&routes.include, "include");
        let exclude = parse(&routes.exclude, "exclude");
        (problems.len() == before).then_some(Self { include, exclude })
    }

    /// Whether the experiment applies to a request for `host` and `path` (`host = None`: on
    /// some host).
    pub(crate) fn applies(&self, host: Option<&str>, path: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.matches(host, path)))
            && !self.exclude.iter().any(|p| p.matches(host, path))
    }
}

/// Checks every variant's `route` of `exp` against the snapshot's `origins` and the
/// experiment's own routes (a redirect into them would loop).
pub(crate) fn check_actions(
    exp: &Experiment,
    matcher: Option<&RouteMatcher>,
    origins: &BTreeMap<String, String>,
    path: &str,
    problems: &mut Problems,
) {
    for (i, variant) in exp.variants.iter().enumerate() {
        let Some(action) = &variant.route else {
            continue;
        };
        let at = |field: &str| format!("{path}.variants[{i}].route.{field}");
        if let Some(name) = &action.origin {
            if !origins.contains_key(name) {
                problems.push(
                    at("origin"),
                    format!("origin {name:?} is not in the environment's allowed origins"),
                );
            }
        }
        if let Some(rewrite) = &action.rewrite {
            if !rewrite.starts_with('/')
                || rewrite.starts_with("//")
                || rewrite.contains(['?', '#'])
                || has_ambiguous_characters(rewrite)
            {
                problems.push(
                    at("rewrite"),
                    format!("rewrite {rewrite:?} must be a path starting with / (no query)"),
                );
            }
        }
        match &action.redirect {
            Some(target) => {
                if action.origin.is_some() || action.rewrite.is_some() {
                    problems.push(
                        at("redirect"),
                        "a redirect cannot be combined with origin or rewrite",
                    );
                }
                check_redirect(target, matcher, &|| at("redirect"), problems);
                if let Some(status) = action.status {
                    if !REDIRECT_STATUSES.contains(&status) {
                        problems.push(
                            at("status"),
                            format!("redirect status {status} is not 302 or 307"),
                        );
                    }
                }
            }
            None if action.status.is_some() => {
                problems.push(at("status"), "status is only for redirects");
            }
            None => {}
        }
    }
}

fn check_redirect(
    target: &str,
    matcher: Option<&RouteMatcher>,
    at: &dyn Fn() -> String,
    problems: &mut Problems,
) {
    let Some((host, path)) = split_target(target) else {
        problems.push(
            at(),
            format!("redirect {target:?} must be an http(s) URL or a path starting with /"),
        );
        return;
    };
    match matcher {
        Some(m) if !m.include.is_empty() => {
            if m.applies(host, path) {
                problems.push(
                    at(),
                    format!(
                        "redirect {target:?} is inside the experiment's own routes: visitors would be redirected again"
                    ),
                );
            }
        }
        _ => problems.push(
            at(),
            "an experiment with a redirect needs routes.include, and its target outside them",
        ),
    }
}

/// Whether a URL or path carries a character that browsers' WHATWG URL parsers read
/// differently from what it looks like: a backslash (`/\evil.example` is `//evil.example`), an
/// ASCII control character or whitespace (tabs and newlines are dropped, so `/<TAB>/evil` is
/// `//evil`). Such a target could send a visitor to another host, so none is accepted.
pub fn has_ambiguous_characters(target: &str) -> bool {
    target
        .chars()
        .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
}

/// `(host, path)` of a redirect target: `None` host for a same-host path. `None` for anything
/// that is not plainly an http(s) URL or a same-host path.
fn split_target(target: &str) -> Option<(Option<&str>, &str)> {
    if has_ambiguous_characters(target) {
        return None;
    }
    if target.starts_with('/') && !target.starts_with("//") {
        let path = target.split(['?', '#']).next().unwrap_or(target);
        return Some((None, path));
    }
    let rest = target
        .strip_prefix("https://")
        .or_else(|| target.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit('@').next()?.split(':').next()?;
    if host.is_empty() {
        return None;
    }
    let path = tail.split(['?', '#']).next().unwrap_or("");
    Some((Some(host), if path.is_empty() { "/" } else { path }))
}

/// Checks the snapshot's `origins`: names are keys, URLs absolute http(s) without query.
pub(crate) fn check_origins(origins: &BTreeMap<String, String>, problems: &mut Problems) {
    for (name, url) in origins {
        if !crate::keys::is_valid_key(name) {
            problems.push(
                format!("origins.{name}"),
                crate::keys::key_message("origin name", name),
            );
        }
        let ok =
            split_target(url).is_some_and(|(host, _)| host.is_some()) && !url.contains(['?', '#']);
        if !ok {
            problems.push(
                format!("origins.{name}"),
                format!("origin URL {url:?} must be an absolute http(s) URL without query"),
            );
        }
    }
}

/// What the request's assignments ask of the proxy, each kind taken from the first
/// experiment (in key order) that sets it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Routing<'a> {
    /// `(target, status)`.
    pub redirect: Option<(&'a str, u16)>,
    /// Origin name, from the snapshot's `origins`.
    pub origin: Option<&'a str>,
    pub rewrite: Option<&'a str>,
}

impl<'a> Routing<'a> {
    /// The actions of `assignments`. A request whose method is not GET or HEAD is only acted
    /// on by experiments that opted in (`route_all_methods`); bots are never redirected, so
    /// crawlers index the original pages.
    pub fn of(assignments: &[Assignment<'a>], safe_method: bool, bot: bool) -> Self {
        let mut routing = Self::default();
        for a in assignments {
            let Some(action) = &a.variant.route else {
                continue;
            };
            if !safe_method && !a.experiment.route_all_methods {
                continue;
            }
            if let Some(target) = &action.redirect {
                if routing.redirect.is_none() && !bot {
                    routing.redirect = Some((target, action.status.unwrap_or(302)));
                }
                continue;
            }
            routing.origin = routing.origin.or(action.origin.as_deref());
            routing.rewrite = routing.rewrite.or(action.rewrite.as_deref());
        }
        routing
    }
}

/// The path a rewrite sends upstream.
pub fn rewrite_path(template: &str, path: &str) -> String {
    template.replace(PATH_PLACEHOLDER, path)
}

/// The `Location` of a redirect: the target with the request's query appended to its own.
pub fn redirect_location(target: &str, query: Option<&str>) -> String {
    match query.filter(|q| !q.is_empty()) {
        None => target.to_owned(),
        Some(query) => {
            let (base, fragment) = match target.find('#') {
                Some(at) => target.split_at(at),
                None => (target, ""),
            };
            let joiner = if base.contains('?') { '&' } else { '?' };
            format!("{base}{joiner}{query}{fragment}")
        }
    }
}

#[cfg(test)]
mod tests;
