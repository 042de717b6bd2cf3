//! One secret, one key per purpose. `CLEAVE_SIGNING_KEY` is never used as it is: HKDF-SHA256
//! (RFC 5869) derives a separate key for each thing it signs, so the key an origin holds to
//! verify assignment headers cannot mint QA force tokens or sticky records, and a signature
//! made for one purpose never verifies for another.

use hkdf::Hkdf;
use sha2::Sha256;

/// HKDF salt: fixed, so every deployment derives the same keys from the same secret.
const SALT: &[u8] = b"cleave-signing-keys";
/// HKDF `info` of the key that signs `cleave-signature` for origins.
pub const HEADERS_LABEL: &str = "cleave origin headers v1";
/// HKDF `info` of the key that signs QA force tokens.
pub const FORCE_LABEL: &str = "cleave force tokens v1";
/// HKDF `info` of the key that seals sticky records.
pub const STICKY_LABEL: &str = "cleave sticky records v1";

/// The per-purpose keys derived from one secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeys {
    /// Signs `cleave-signature` (what origins verify).
    pub headers: [u8; 32],
    /// Signs force tokens.
    pub force: [u8; 32],
    /// Seals sticky records.
    pub sticky: [u8; 32],
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys(..)")
    }
}

impl SigningKeys {
    /// Derives every purpose's key from `secret`; `None` for an empty secret (signing off).
    pub fn derive(secret: &[u8]) -> Option<Self> {
        if secret.is_empty() {
            return None;
        }
        Some(Self {
            headers: derive(secret, HEADERS_LABEL),
            force: derive(secret, FORCE_LABEL),
            sticky: derive(secret, STICKY_LABEL),
        })
    }
}

/// `HKDF-SHA256(salt = "cleave-signing-keys", ikm = secret, info = label)`, 32 bytes.
pub fn derive(secret: &[u8], label: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so expansion cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(SALT), secret).expand(label.as_bytes(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_purpose_has_its_own_key_and_none_is_the_secret() {
        let keys = SigningKeys::derive(b"one-secret").unwrap();
        assert_ne!(keys.headers, keys.force);
        assert_ne!(keys.headers, keys.sticky);
        assert_ne!(keys.force, keys.sticky);
        assert_ne!(&keys.headers[..10], b"one-secret");
        assert_eq!(SigningKeys::derive(b""), None);
        assert_ne!(SigningKeys::derive(b"other").unwrap().headers, keys.headers);
    }

    #[test]
    fn the_header_key_is_pinned() {
        // Computed independently with Node: crypto.hkdfSync("sha256", "e2e-signing-key",
        // "cleave-signing-keys", "cleave origin headers v1", 32). Origins depend on it.
        assert_eq!(
            hex::encode(derive(b"e2e-signing-key", HEADERS_LABEL)),
            HEADER_VECTOR
        );
    }

    const HEADER_VECTOR: &str = "cb9ede1190dc0bd0abfcbfef9adbe08387cd975eeefa89719126900f42511ba3";
}
