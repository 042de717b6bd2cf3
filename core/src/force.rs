//! QA force tokens: "put me in these variants in this environment until this time", signed
//! with the force key derived from `CLEAVE_SIGNING_KEY` ([`crate::signing_keys`]) so nobody
//! can pick their own variant by editing a cookie, and an origin holding the header key
//! cannot mint one.
//!
//! Format: `base64url(body) "." base64url(HMAC-SHA256(key, "cleave-force:v2\n" ++ body))`,
//! body `"<env>:<issued epoch ms>:<expires epoch ms>:<exp>=<variant>,<exp>=<variant>..."`.
//! Both parts are unpadded URL-safe base64, so the token is safe in a query parameter and a
//! cookie. A token is good in its own environment only, and only when its whole lifetime
//! (issued to expires) is within the verifier's maximum, so a leaked token dies on its own.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::keys::is_valid_key;
use crate::seal::{open, seal, SealError};

/// Experiment key -> variant key.
pub type Forced = BTreeMap<String, String>;

/// Domain separation: a force signature can never be mistaken for a header signature.
const CONTEXT: &[u8] = b"cleave-force:v2\n";

/// Longest lifetime a token may have unless configured otherwise: 7 days.
pub const DEFAULT_MAX_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

/// Clock difference between minting and verifying machines that is tolerated.
const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

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
    #[error("force token is for environment {0:?}, not this one")]
    WrongEnvironment(String),
    #[error("force token lives longer than the allowed {0} ms")]
    TooLong(i64),
    #[error("force token is issued in the future")]
    NotYetValid,
}

/// What a token says, once its signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub environment: String,
    pub issued_ms: i64,
    pub expires_ms: i64,
    pub forced: Forced,
}

/// Mints a token forcing `forced` in `environment` from `issued_ms` until `expires_ms`.
///
/// # Errors
/// [`ForceError::Malformed`] when a key or the environment is not a valid key, the list is
/// empty or the token would expire before it is issued.
pub fn mint(key: &[u8], claims: &Claims) -> Result<String, ForceError> {
    let Claims {
        environment,
        issued_ms,
        expires_ms,
        forced,
    } = claims;
    if forced.is_empty()
        || !is_valid_key(environment)
        || expires_ms <= issued_ms
        || !forced
            .iter()
            .all(|(e, v)| is_valid_key(e) && is_valid_key(v))
    {
        return Err(ForceError::Malformed);
    }
    let pairs: Vec<String> = forced.iter().map(|(e, v)| format!("{e}={v}")).collect();
    let body = format!("{environment}:{issued_ms}:{expires_ms}:{}", pairs.join(","));
    Ok(seal(key, CONTEXT, &body)?)
}

/// Checks a token's signature, environment, lifetime and expiry and returns what it forces.
///
/// # Errors
/// Which check failed.
pub fn verify(
    key: &[u8],
    token: &str,
    environment: &str,
    now_ms: i64,
    max_lifetime_ms: i64,
) -> Result<Forced, ForceError> {
    let claims = read(key, token)?;
    if claims.environment != environment {
        return Err(ForceError::WrongEnvironment(claims.environment));
    }
    if claims.expires_ms.saturating_sub(claims.issued_ms) > max_lifetime_ms {
        return Err(ForceError::TooLong(max_lifetime_ms));
    }
    if claims.issued_ms > now_ms.saturating_add(CLOCK_SKEW_MS) {
        return Err(ForceError::NotYetValid);
    }
    if now_ms >= claims.expires_ms {
        return Err(ForceError::Expired);
    }
    Ok(claims.forced)
}

/// The claims of a correctly signed token, before any check of time or environment.
///
/// # Errors
/// A bad signature or a malformed body.
pub fn read(key: &[u8], token: &str) -> Result<Claims, ForceError> {
    let body = open(key, CONTEXT, token)?;
    let mut fields = body.splitn(4, ':');
    let (Some(environment), Some(issued), Some(expires), Some(pairs)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(ForceError::Malformed);
    };
    let number = |text: &str| text.parse::<i64>().map_err(|_| ForceError::Malformed);
    let forced: Forced = crate::order::try_map_of(pairs.split(',').map(|pair| {
        let (e, v) = pair.split_once('=').ok_or(ForceError::Malformed)?;
        (is_valid_key(e) && is_valid_key(v))
            .then(|| (e.to_owned(), v.to_owned()))
            .ok_or(ForceError::Malformed)
    }))?;
    if !is_valid_key(environment) {
        return Err(ForceError::Malformed);
    }
    Ok(Claims {
        environment: environment.to_owned(),
        issued_ms: number(issued)?,
        expires_ms: number(expires)?,
        forced,
    })
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
    #![allow(clippy::unwrap_used)]
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::*;

    const KEY: &[u8] = b"qa-signing-key";
    const DAY: i64 = 24 * 3600 * 1000;

    fn claims(issued_ms: i64, expires_ms: i64) -> Claims {
        Claims {
            environment: "prod".to_owned(),
            issued_ms,
            expires_ms,
            forced: [("checkout".to_owned(), "treatment".to_owned())].into(),
        }
    }

    fn check(token: &str, now: i64) -> Result<Forced, ForceError> {
        verify(KEY, token, "prod", now, DEFAULT_MAX_LIFETIME_MS)
    }

    #[test]
    fn a_minted_token_verifies_in_its_environment_until_it_expires() {
        let token = mint(KEY, &claims(1_000, 2_000)).unwrap();
        assert_eq!(check(&token, 1_999), Ok(claims(0, 0).forced));
        assert_eq!(check(&token, 2_000), Err(ForceError::Expired));
        assert_eq!(
            verify(KEY, &token, "staging", 1_500, DEFAULT_MAX_LIFETIME_MS),
            Err(ForceError::WrongEnvironment("prod".to_owned()))
        );
        assert_eq!(read(KEY, &token), Ok(claims(1_000, 2_000)));
    }

    #[test]
    fn a_token_living_longer_than_the_maximum_is_refused_even_before_it_expires() {
        let long = mint(KEY, &claims(0, 8 * DAY)).unwrap();
        assert_eq!(
            check(&long, DAY),
            Err(ForceError::TooLong(DEFAULT_MAX_LIFETIME_MS))
        );
        let week = mint(KEY, &claims(0, 7 * DAY)).unwrap();
        assert!(check(&week, DAY).is_ok());
        assert_eq!(
            verify(KEY, &week, "prod", DAY, DAY),
            Err(ForceError::TooLong(DAY))
        );
        let future = mint(KEY, &claims(DAY, 2 * DAY)).unwrap();
        assert_eq!(check(&future, 0), Err(ForceError::NotYetValid));
    }

    #[test]
    fn every_failure_mode_is_refused() {
        let token = mint(KEY, &claims(0, 2_000)).unwrap();
        let (body, sig) = token.split_once('.').unwrap();
        assert_eq!(
            verify(b"other", &token, "prod", 0, DAY),
            Err(ForceError::BadSignature)
        );
        assert_eq!(verify(b"", &token, "prod", 0, DAY), Err(ForceError::NoKey));
        assert_eq!(check(body, 0), Err(ForceError::Malformed));
        assert_eq!(check(&format!("{body}."), 0), Err(ForceError::BadSignature));
        // tampered body: another environment, variant or expiry
        for forged in [
            "staging:0:2000:checkout=treatment",
            "prod:0:2000:checkout=control",
            "prod:0:9999999:checkout=treatment",
        ] {
            let t = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(forged));
            assert_eq!(check(&t, 0), Err(ForceError::BadSignature), "{forged}");
        }
        let mut bad = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bad[0] ^= 1;
        let t = format!("{body}.{}", URL_SAFE_NO_PAD.encode(bad));
        assert_eq!(check(&t, 0), Err(ForceError::BadSignature));
        assert_eq!(check("!!.!!", 0), Err(ForceError::Malformed));
        assert_eq!(check("checkout=treatment", 0), Err(ForceError::Malformed));
    }

    #[test]
    fn a_version_1_token_does_not_verify() {
        let v1 = seal(
            KEY,
            b"cleave-force:v1\n",
            "9999999999999:checkout=treatment",
        )
        .unwrap();
        assert_eq!(check(&v1, 0), Err(ForceError::BadSignature));
    }

    #[test]
    fn a_signed_but_malformed_body_is_refused() {
        let sign = |body: &str| seal(KEY, CONTEXT, body).unwrap();
        for body in [
            "prod:0:soon:a=b",
            "prod:0:5000",
            "prod:0:5000:a",
            "prod:0:5000:A=b",
            "prod:0:5000:",
            "Prod:0:5000:a=b",
            "5000:a=b",
        ] {
            assert_eq!(check(&sign(body), 0), Err(ForceError::Malformed), "{body}");
        }
    }

    #[test]
    fn minting_refuses_bad_keys_and_backwards_lifetimes() {
        let mut empty = claims(0, 1);
        empty.forced.clear();
        assert_eq!(mint(KEY, &empty), Err(ForceError::Malformed));
        let mut bad = claims(0, 1);
        bad.forced = [("Bad Key".to_owned(), "x".to_owned())].into();
        assert_eq!(mint(KEY, &bad), Err(ForceError::Malformed));
        assert_eq!(mint(KEY, &claims(5, 5)), Err(ForceError::Malformed));
        let mut env = claims(0, 1);
        env.environment = "Prod env".to_owned();
        assert_eq!(mint(KEY, &env), Err(ForceError::Malformed));
    }
}
