//! The key grammar shared by experiments, variants, layers and unit types (docs/contracts.md §5):
//! `[a-z][a-z0-9_.-]{0,63}`. Such keys are valid RFC 8941 keys and tokens, so they are safe to
//! place in any header without escaping.

/// Longest key allowed.
pub const MAX_KEY_LEN: usize = 64;

/// Longest salt allowed, in bytes (a salt is any text; it seeds the hash).
pub const MAX_SALT_BYTES: usize = 256;

/// Why a salt is refused, if it is.
pub fn salt_problem(salt: &str) -> Option<String> {
    (salt.is_empty() || salt.len() > MAX_SALT_BYTES)
        .then(|| format!("salt must be 1 to {MAX_SALT_BYTES} bytes"))
}

/// The grammar as every message states it.
pub const GRAMMAR: &str = "[a-z][a-z0-9_.-]{0,63}";

/// Why `key` is refused: `"Prod!" does not match [a-z][a-z0-9_.-]{0,63}`.
pub fn key_problem(key: &str) -> String {
    format!("{key:?} does not match {GRAMMAR}")
}

/// [`key_problem`] naming what the key is: `unit type "X" does not match …`.
pub fn key_message(what: &str, key: &str) -> String {
    format!("{what} {}", key_problem(key))
}

/// Whether `key` matches `[a-z][a-z0-9_.-]{0,63}`.
pub fn is_valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            bytes.len() <= MAX_KEY_LEN
                && first.is_ascii_lowercase()
                && rest.iter().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
                })
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses() {
        for good in ["a", "checkout-button-color", "x.y_z-9", &"a".repeat(64)] {
            assert!(is_valid_key(good), "{good}");
        }
        for bad in [
            "",
            "A",
            "9a",
            "-a",
            "a b",
            "a\"",
            "ä",
            &"a".repeat(65),
            "a=b",
        ] {
            assert!(!is_valid_key(bad), "{bad}");
        }
    }
}
