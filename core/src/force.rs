//! QA force tokens: "put me in these variants until this time", signed with
//! `CLEAVE_SIGNING_KEY` so nobody can pick their own variant by editing a cookie.
//!
//! Format: `base64url(body) "." base64url(HMAC-SHA256(key, "cleave-force:v1\n" ++ body))`,
//! body `"<expires epoch ms>:<exp>=<variant>,<exp>=<variant>..."`. Both parts are unpadded
//! URL-safe base64, so the token is safe in a query parameter and a cookie.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::keys::is_valid_key;
use crate::seal::{open, seal, SealError};

/// Experiment key -> variant key.
pub type Forced = BTreeMap<String, String>;

/// Domain separation: a force signature can never be mistaken for a header signature.
const CONTEXT: &[u8] = b"cleave-force:v1\n";

/// Why a force token is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ForceError {
    #[error("force tokens are disabled: CLEAVE_SIGNING_KEY is not set")]
    NoKey,
    #[error("force token is malformed")]
    Malformed,
    #[error("force token signature does not match")]
    BadSignature,
    #[error("force token expired")]
    Expired,
}

/// Mints a token forcing `forced` until `expires_ms`.
///
/// # Errors
/// [`ForceError::Malformed`] when a key is not a valid experiment or variant key, or the list
/// is empty.
pub fn mint(key: &[u8], forced: &Forced, expires_ms: i64) -> Result<String, ForceError> {
    if forced.is_empty()
        || !forced
            .iter()
            .all(|(e, v)| is_valid_key(e) && is_valid_key(v))
    {
        return Err(ForceError::Malformed);
    }
    let pairs: Vec<String> = forced.iter().map(|(e, v)| format!("{e}={v}")).collect();
    let body = format!("{expires_ms}:{}", pairs.join(","));
    Ok(seal(key, CONTEXT, &body)?)
}

/// Checks a token's signature and expiry and returns what it forces.
///
/// # Errors
/// Which check failed.
pub fn verify(key: &[u8], token: &str, now_ms: i64) -> Result<Forced, ForceError> {
    let body = open(key, CONTEXT, token)?;
    let (expires, pairs) = body.split_once(':').ok_or(ForceError::Malformed)?;
    let expires: i64 = expires.parse().map_err(|_| ForceError::Malformed)?;
    if now_ms >= expires {
        return Err(ForceError::Expired);
    }
    pairs
        .split(',')
        .map(|pair| {
            let (e, v) = pair.split_once('=').ok_or(ForceError::Malformed)?;
            (is_valid_key(e) && is_valid_key(v))
                .then(|| (e.to_owned(), v.to_owned()))
                .ok_or(ForceError::Malformed)
        })
        .collect()
}

impl From<SealError> for ForceError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::NoKey => Self::NoKey,
            SealError::Malformed => Self::Malformed,
            SealError::BadSignature => Self::BadSignature,
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::*;

    const KEY: &[u8] = b"qa-signing-key";

    fn forced() -> Forced {
        [("checkout".to_owned(), "treatment".to_owned())].into()
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let token = mint(KEY, &forced(), 2_000).unwrap();
        assert_eq!(verify(KEY, &token, 1_999), Ok(forced()));
        assert_eq!(verify(KEY, &token, 2_000), Err(ForceError::Expired));
    }

    #[test]
    fn every_failure_mode_is_refused() {
        let token = mint(KEY, &forced(), 2_000).unwrap();
        let (body, sig) = token.split_once('.').unwrap();
        // wrong key
        assert_eq!(verify(b"other", &token, 0), Err(ForceError::BadSignature));
        // no key configured
        assert_eq!(verify(b"", &token, 0), Err(ForceError::NoKey));
        // unsigned: the body alone, or an empty signature
        assert_eq!(verify(KEY, body, 0), Err(ForceError::Malformed));
        assert_eq!(
            verify(KEY, &format!("{body}."), 0),
            Err(ForceError::BadSignature)
        );
        // tampered body: another variant, a later expiry
        for forged in ["9999999999999:checkout=treatment", "2000:checkout=control"] {
            let t = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(forged));
            assert_eq!(
                verify(KEY, &t, 0),
                Err(ForceError::BadSignature),
                "{forged}"
            );
        }
        // flipped signature byte
        let mut bad = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bad[0] ^= 1;
        let t = format!("{body}.{}", URL_SAFE_NO_PAD.encode(bad));
        assert_eq!(verify(KEY, &t, 0), Err(ForceError::BadSignature));
        // not base64, not a token
        assert_eq!(verify(KEY, "!!.!!", 0), Err(ForceError::Malformed));
        assert_eq!(
            verify(KEY, "checkout=treatment", 0),
            Err(ForceError::Malformed)
        );
    }

    #[test]
    fn a_signed_but_malformed_body_is_refused() {
        let sign = |body: &str| seal(KEY, CONTEXT, body).unwrap();
        for body in ["soon:a=b", "5000", "5000:a", "5000:A=b", "5000:"] {
            assert_eq!(
                verify(KEY, &sign(body), 0),
                Err(ForceError::Malformed),
                "{body}"
            );
        }
    }

    #[test]
    fn minting_refuses_bad_keys() {
        assert_eq!(mint(KEY, &Forced::new(), 1), Err(ForceError::Malformed));
        let bad: Forced = [("Bad Key".to_owned(), "x".to_owned())].into();
        assert_eq!(mint(KEY, &bad, 1), Err(ForceError::Malformed));
    }
}
