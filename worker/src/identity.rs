//! The proxy's anonymous unit id, carried in the `cleave_uid` cookie.

/// Cookie that carries the unit id in proxy mode.
pub const UID_COOKIE: &str = "cleave_uid";

/// About 400 days, the longest lifetime browsers honour.
const UID_MAX_AGE_S: u32 = 34_560_000;

/// Longest id accepted from a client; anything longer is replaced, not trusted.
const MAX_UID_LEN: usize = 64;

/// Cookie that carries the visitor's sticky record in proxy mode (`cleave_core::sticky`).
pub const STICKY_COOKIE: &str = "cleave_sticky";

/// Cookie that carries a QA force token in proxy mode.
pub const FORCE_COOKIE: &str = "cleave_force";

/// The `cleave_uid` value from a `Cookie` header, if present and well formed.
pub fn uid_from_cookies(cookie_header: &str) -> Option<&str> {
    cookie_value(cookie_header, UID_COOKIE).filter(|value| is_well_formed(value))
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'h>(cookie_header: &'h str, name: &str) -> Option<&'h str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
}

/// Ids are 1..=64 characters of `[A-Za-z0-9_-]`: nothing that could break a header.
fn is_well_formed(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= MAX_UID_LEN
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A fresh id from 16 random bytes, or `None` if the platform has no randomness.
pub fn new_uid() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

/// The `Set-Cookie` value that stores `uid`.
pub fn set_cookie(uid: &str) -> String {
    format!("{UID_COOKIE}={uid}; Path=/; Max-Age={UID_MAX_AGE_S}; HttpOnly; Secure; SameSite=Lax")
}

/// The `Set-Cookie` value that stores a sticky record, as long-lived as the id it belongs to.
pub fn sticky_set_cookie(token: &str) -> String {
    format!(
        "{STICKY_COOKIE}={token}; Path=/; Max-Age={UID_MAX_AGE_S}; HttpOnly; Secure; SameSite=Lax"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_uid_among_other_cookies() {
        assert_eq!(
            uid_from_cookies("a=1; cleave_uid=abc-123; b=2"),
            Some("abc-123")
        );
        assert_eq!(uid_from_cookies("cleave_uid=x"), Some("x"));
        assert_eq!(uid_from_cookies("xcleave_uid=x; a=1"), None);
        assert_eq!(uid_from_cookies(""), None);
    }

    #[test]
    fn refuses_malformed_or_oversized_ids() {
        assert_eq!(uid_from_cookies("cleave_uid="), None);
        assert_eq!(uid_from_cookies("cleave_uid=a\"b"), None);
        assert_eq!(uid_from_cookies("cleave_uid=a,b"), None);
        let long = format!("cleave_uid={}", "a".repeat(65));
        assert_eq!(uid_from_cookies(&long), None);
    }

    #[test]
    fn new_ids_are_well_formed_and_distinct() {
        let (a, b) = (new_uid().unwrap(), new_uid().unwrap());
        assert!(is_well_formed(&a) && a.len() == 32);
        assert_ne!(a, b);
        assert_eq!(
            set_cookie(&a),
            format!("cleave_uid={a}; Path=/; Max-Age=34560000; HttpOnly; Secure; SameSite=Lax")
        );
    }
}
