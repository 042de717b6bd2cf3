//! Who may call what: every route and method with the role it needs, in one table that a
//! router layer enforces before any handler runs. A route or method missing from the table
//! needs a publisher token, so a new handler is never open by accident; `HEAD` needs what
//! `GET` needs.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use crate::access::Role;
use crate::error::AdminError;

/// What a request must present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A viewer token, or nothing where reads are open.
    Read,
    /// A token of at least this role.
    Role(Role),
    /// An `ingest` (or `publisher`) token: the edge delivering exposures and events.
    Ingest,
}

/// Every route the REST API serves, with each method and what it needs.
pub const ROUTES: &[(&str, &str, Need)] = &[
    ("/environments", "GET", Need::Read),
    ("/environments", "POST", Need::Role(Role::Editor)),
    ("/environments/{id}", "GET", Need::Read),
    ("/environments/{id}/holdout", "GET", Need::Read),
    (
        "/environments/{id}/publish",
        "POST",
        Need::Role(Role::Publisher),
    ),
    (
        "/environments/{id}/rollback",
        "POST",
        Need::Role(Role::Publisher),
    ),
    ("/environments/{id}/plan", "GET", Need::Read),
    (
        "/environments/{id}/settings",
        "PUT",
        Need::Role(Role::Editor),
    ),
    ("/environments/{id}/pending", "GET", Need::Read),
    ("/environments/{id}/snapshots", "GET", Need::Read),
    ("/environments/{id}/snapshots/{version}", "GET", Need::Read),
    (
        "/environments/{id}/snapshots/{version}/diff",
        "GET",
        Need::Read,
    ),
    ("/environments/{id}/flags", "GET", Need::Read),
    ("/environments/{id}/flags", "POST", Need::Role(Role::Editor)),
    ("/flags/{id}", "GET", Need::Read),
    ("/flags/{id}", "PATCH", Need::Role(Role::Editor)),
    ("/flags/{id}", "DELETE", Need::Role(Role::Editor)),
    // It publishes at once.
    ("/flags/{id}/kill", "PUT", Need::Role(Role::Publisher)),
    ("/flags/{id}/promote", "POST", Need::Role(Role::Editor)),
    (
        "/experiments/{id}/promote",
        "POST",
        Need::Role(Role::Editor),
    ),
    ("/targeting/operators", "GET", Need::Read),
    ("/sample-size", "GET", Need::Read),
    ("/audiences", "GET", Need::Read),
    ("/audiences", "POST", Need::Role(Role::Editor)),
    ("/audiences/{id}", "GET", Need::Read),
    ("/audiences/{id}", "PATCH", Need::Role(Role::Editor)),
    ("/audiences/{id}", "DELETE", Need::Role(Role::Editor)),
    ("/experiments", "GET", Need::Read),
    ("/experiments", "POST", Need::Role(Role::Editor)),
    ("/experiments/{id}", "GET", Need::Read),
    ("/experiments/{id}", "PATCH", Need::Role(Role::Editor)),
    ("/experiments/{id}", "DELETE", Need::Role(Role::Editor)),
    (
        "/experiments/{id}/variants",
        "POST",
        Need::Role(Role::Editor),
    ),
    (
        "/experiments/{id}/variants/{variant}",
        "PATCH",
        Need::Role(Role::Editor),
    ),
    (
        "/experiments/{id}/variants/{variant}",
        "DELETE",
        Need::Role(Role::Editor),
    ),
    (
        "/experiments/{id}/allocations",
        "PUT",
        Need::Role(Role::Editor),
    ),
    (
        "/experiments/{id}/status",
        "PATCH",
        Need::Role(Role::Publisher),
    ),
    ("/experiments/{id}/plan", "GET", Need::Read),
    ("/experiments/{id}/metrics", "GET", Need::Read),
    ("/experiments/{id}/metrics", "PUT", Need::Role(Role::Editor)),
    ("/experiments/{id}/results", "GET", Need::Read),
    ("/experiments/{id}/timeline", "GET", Need::Read),
    ("/experiments/{id}/slices", "GET", Need::Read),
    ("/experiments/{id}/decision", "GET", Need::Read),
    (
        "/experiments/{id}/decision",
        "PUT",
        Need::Role(Role::Editor),
    ),
    ("/experiments/{id}/phases", "GET", Need::Read),
    ("/experiments/{id}/phases", "POST", Need::Role(Role::Editor)),
    ("/metric-definitions", "GET", Need::Read),
    ("/metric-definitions", "POST", Need::Role(Role::Editor)),
    ("/guardrails/check", "POST", Need::Role(Role::Publisher)),
    ("/ingest", "POST", Need::Ingest),
    ("/audit", "GET", Need::Read),
    ("/metrics", "GET", Need::Read),
    ("/session", "GET", Need::Read),
];

/// What `method` on the route `route` (its template, e.g. `/experiments/{id}`) needs.
pub fn need(route: &str, method: &Method) -> Need {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .find(|(r, m, _)| *r == route && *m == method)
        .map_or(Need::Role(Role::Publisher), |(_, _, need)| *need)
}

/// Who is acting, as the audit log records it; set by [`authorize`] for every handler.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| AdminError::Internal("route served outside the access layer".to_owned()))
    }
}

/// The router layer: checks the request's token against its route's [`Need`], then hands
/// the handler its [`Actor`].
pub async fn authorize(
    State(s): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, AdminError> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let headers = request.headers();
    let actor = match need(&route, request.method()) {
        Need::Read => s.access.check(headers, Role::Viewer)?,
        Need::Role(role) => s.access.check(headers, role)?,
        Need::Ingest => s.access.check_ingest(headers)?,
    };
    request.extensions_mut().insert(Actor(actor));
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_needs_what_get_needs_and_unknown_pairs_need_a_publisher() {
        assert_eq!(need("/audit", &Method::HEAD), Need::Read);
        assert_eq!(
            need("/experiments/{id}", &Method::PATCH),
            Need::Role(Role::Editor)
        );
        assert_eq!(need("/audit", &Method::DELETE), Need::Role(Role::Publisher));
        assert_eq!(need("", &Method::GET), Need::Role(Role::Publisher));
    }
}
