//! Bearer tokens: how the worker tells its operator's servers (`CLEAVE_ADMIN_TOKEN`,
//! `CLEAVE_SERVER_TOKEN`) from everyone else.

/// Whether `req` carries `Authorization: Bearer <expected>`; never when nothing is expected.
pub fn request_presents(req: &worker::web_sys::Request, expected: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return false;
    };
    let presented = req.headers().get("authorization").ok().flatten();
    bearer_matches(presented.as_deref(), expected)
}

/// Whether an `Authorization` header value is `Bearer <expected>`, compared in constant time.
pub fn bearer_matches(presented: Option<&str>, expected: &str) -> bool {
    bearer(presented)
        .is_some_and(|token| cleave_core::secrets_equal(token.as_bytes(), expected.as_bytes()))
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(presented: Option<&str>) -> Option<&str> {
    presented.and_then(|h| h.strip_prefix("Bearer "))
}
