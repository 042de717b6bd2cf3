//! The dashboard: static files compiled into the binary and served from `/ui/`, so
//! `cleave-admin serve` is all an operator runs. The page talks to the REST API on the same
//! origin with the operator's token; the files themselves hold no data and need none.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

/// Scripts, styles and requests come only from this origin; nothing inline, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// (path under /ui/, content type, bytes)
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/app.js"),
    ),
    (
        "session.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/session.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/dom.js"),
    ),
    (
        "lists.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/lists.js"),
    ),
    (
        "experiment.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/experiment.js"),
    ),
    (
        "allocation.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/allocation.js"),
    ),
    (
        "targeting.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/targeting.js"),
    ),
    (
        "history.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/history.js"),
    ),
    (
        "results.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/results.js"),
    ),
    (
        "slices.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/slices.js"),
    ),
    (
        "holdout.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/holdout.js"),
    ),
    (
        "timeline.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/timeline.js"),
    ),
    (
        "flags.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/flags.js"),
    ),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { file("index.html") }))
        .route(
            "/ui/{file}",
            get(|Path(name): Path<String>| async move { file(&name) }),
        )
}

fn file(name: &str) -> Response {
    match FILES.iter().find(|(path, _, _)| *path == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
                // The binary is the version: revalidate so an upgrade shows at once.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such dashboard file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        for (_, _, body) in FILES {
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let Some(start) = line.find("\"./") else {
                    continue;
                };
                let rest = &line[start + 3..];
                let name = &rest[..rest.find('"').unwrap()];
                assert!(
                    FILES.iter().any(|(path, _, _)| *path == name),
                    "{name} is imported but not served"
                );
            }
        }
    }
}
