//! Identity sources (docs/contracts.md §8): the ids a request carries for unit types other than
//! the edge's own `user`. A header or cookie value is the id as the client sent it; a JWT's
//! claim counts only once its signature, `exp`, `nbf` and any `iss`/`aud` check out. Only
//! verified ids bind a caller (exposures and events are recorded for them).
//!
//! HS256 is checked here; RS256 and ES256 need the platform's WebCrypto, so [`claim`] hands
//! the worker what to verify ([`Proof::Signature`]) instead.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use thiserror::Error;

use crate::keys::is_valid_key;
use crate::problems::Problems;
use crate::snapshot::{AttributeSource, IdentitySource, JwtAlgorithm, JwtCheck, PublicJwk};

/// Longest id taken from a request, as the decide API allows.
pub const MAX_ID_BYTES: usize = 256;

/// Longest token read; session tokens are far shorter.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Prefix of the worker secrets an HS256 source may name.
pub const SECRET_PREFIX: &str = "CLEAVE_JWT_";

/// Why a request's value gives no id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    #[error("the id is empty, longer than {MAX_ID_BYTES} bytes or not printable ASCII")]
    BadId,
    #[error("the token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    #[error("the token is not a JWT (three base64url parts, JSON header and claims)")]
    Malformed,
    #[error("the token is signed with {found:?}, not {expected}")]
    Algorithm {
        found: String,
        expected: &'static str,
    },
    #[error("the token has no claim {0:?} holding a string or an integer")]
    NoClaim(String),
    #[error("the token has no exp claim")]
    NoExpiry,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's iss is not {0:?}")]
    Issuer(String),
    #[error("the token's aud does not include {0:?}")]
    Audience(String),
    #[error("no configured key has the token's kid {0:?}")]
    UnknownKey(String),
    #[error("the worker secret {0} holding the HS256 key is not set")]
    NoSecret(String),
    #[error("the token's signature does not match")]
    BadSignature,
}

/// An id a request claims for a unit type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed<'t> {
    pub id: String,
    pub proof: Proof<'t>,
}

/// What stands behind a [`Claimed`] id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof<'t> {
    /// Nothing: a plain header or cookie a client can set.
    Unverified,
    /// A token whose signature, lifetime and audience were checked (HS256).
    Verified,
    /// A token whose claims check out and whose signature the caller must still verify with
    /// one of the source's keys.
    Signature(PendingSignature<'t>),
}

/// An RS256 or ES256 signature to verify: `signature` over `signing_input` by any of the
/// source's keys at `keys` (indices into [`JwtCheck::keys`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignature<'t> {
    pub algorithm: JwtAlgorithm,
    pub keys: Vec<usize>,
    pub signing_input: &'t str,
    /// For ES256 the 64-byte `r || s` form WebCrypto verifies as is.
    pub signature: Vec<u8>,
}

/// The id `value` (the header or cookie as sent) gives under `source`. `secret` reads a worker
/// secret by name (HS256).
///
/// # Errors
/// Why the value gives no id; the caller treats the unit as absent.
pub fn claim<'t>(
    source: &IdentitySource,
    value: &'t str,
    now_ms: i64,
    secret: impl FnOnce(&str) -> Option<Vec<u8>>,
) -> Result<Claimed<'t>, IdentityError> {
    let value = value.trim();
    let Some(check) = &source.jwt else {
        return Ok(Claimed {
            id: well_formed(value)?.to_owned(),
            proof: Proof::Unverified,
        });
    };
    let token = strip_bearer(value);
    if token.len() > MAX_TOKEN_BYTES {
        return Err(IdentityError::TooLong);
    }
    let token = read(token, check, now_ms)?;
    let proof = match check.algorithm {
        JwtAlgorithm::HS256 => {
            let name = check.secret.as_deref().unwrap_or("");
            let key = secret(name).ok_or_else(|| IdentityError::NoSecret(name.to_owned()))?;
            let mut mac =
                Hmac::<Sha256>::new_from_slice(&key).map_err(|_| IdentityError::BadSignature)?;
            mac.update(token.signing_input.as_bytes());
            mac.verify_slice(&token.signature)
                .map_err(|_| IdentityError::BadSignature)?;
            Proof::Verified
        }
        algorithm => Proof::Signature(PendingSignature {
            algorithm,
            keys: candidate_keys(&check.keys, token.kid.as_deref())?,
            signing_input: token.signing_input,
            signature: token.signature,
        }),
    };
    Ok(Claimed {
        id: token.id,
        proof,
    })
}

/// `Bearer <token>` as the token; anything else as it is.
fn strip_bearer(value: &str) -> &str {
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => value,
    }
}

/// Ids travel in headers (`cleave-units`): 1..=256 bytes of printable ASCII.
fn well_formed(id: &str) -> Result<&str, IdentityError> {
    let printable = id.bytes().all(|b| (0x20..0x7f).contains(&b));
    if id.is_empty() || id.len() > MAX_ID_BYTES || !printable {
        return Err(IdentityError::BadId);
    }
    Ok(id)
}

struct Token<'t> {
    id: String,
    kid: Option<String>,
    signing_input: &'t str,
    signature: Vec<u8>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Parses `token` and checks everything but its signature.
fn read<'t>(token: &'t str, check: &JwtCheck, now_ms: i64) -> Result<Token<'t>, IdentityError> {
    let (signing_input, signature) = token.rsplit_once('.').ok_or(IdentityError::Malformed)?;
    let (header, claims) = signing_input
        .split_once('.')
        .ok_or(IdentityError::Malformed)?;
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| IdentityError::Malformed)
    };
    let header: Header =
        serde_json::from_slice(&decode(header)?).map_err(|_| IdentityError::Malformed)?;
    let expected = check.algorithm.as_str();
    if header.alg != expected {
        return Err(IdentityError::Algorithm {
            found: header.alg,
            expected,
        });
    }
    let claims: Map<String, Value> =
        serde_json::from_slice(&decode(claims)?).map_err(|_| IdentityError::Malformed)?;
    check_claims(&claims, check, now_ms)?;
    let id = match claims.get(&check.claim) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => return Err(IdentityError::NoClaim(check.claim.clone())),
    };
    well_formed(&id)?;
    Ok(Token {
        id,
        kid: header.kid,
        signing_input,
        signature: decode(signature)?,
    })
}

/// `exp` (required: a token that never expires is refused), `nbf`, `iss` and `aud`.
fn check_claims(
    claims: &Map<String, Value>,
    check: &JwtCheck,
    now_ms: i64,
) -> Result<(), IdentityError> {
    let now_s = now_ms.div_euclid(1000);
    let leeway = i64::from(check.leeway_s);
    let seconds = |name: &str| claims.get(name).and_then(Value::as_f64);
    let exp = seconds("exp").ok_or(IdentityError::NoExpiry)?;
    if (now_s - leeway) as f64 >= exp {
        return Err(IdentityError::Expired);
    }
    if seconds("nbf").is_some_and(|nbf| ((now_s + leeway) as f64) < nbf) {
        return Err(IdentityError::NotYetValid);
    }
    if let Some(issuer) = &check.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(IdentityError::Issuer(issuer.clone()));
        }
    }
    if let Some(audience) = &check.audience {
        let matches = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !matches {
            return Err(IdentityError::Audience(audience.clone()));
        }
    }
    Ok(())
}

/// The keys that may have signed a token with `kid`: the one with that kid, else (a token
/// without kid) every key.
fn candidate_keys(keys: &[PublicJwk], kid: Option<&str>) -> Result<Vec<usize>, IdentityError> {
    match kid {
        Some(kid) if keys.iter().any(|k| k.kid.is_some()) => keys
            .iter()
            .position(|k| k.kid.as_deref() == Some(kid))
            .map(|i| vec![i])
            .ok_or_else(|| IdentityError::UnknownKey(kid.to_owned())),
        _ => Ok((0..keys.len()).collect()),
    }
}

/// Checks an environment's identity sources: known unit types, header or cookie names, and for
/// tokens a secret or keys that fit the algorithm.
pub(crate) fn check_sources(sources: &[IdentitySource], problems: &mut Problems) {
    for (i, source) in sources.iter().enumerate() {
        let path = format!("identity[{i}]");
        if !is_valid_key(&source.unit) {
            problems.push(
                format!("{path}.unit"),
                crate::keys::key_message("unit type", &source.unit),
            );
        } else if source.unit == "user" {
            problems.push(
                format!("{path}.unit"),
                "`user` is the edge's own cleave_uid; name the signed-in id's unit type \
                 (e.g. account)",
            );
        }
        if source.source == AttributeSource::Query {
            problems.push(
                format!("{path}.source"),
                "an identity comes from a header or a cookie, not the query",
            );
        }
        if !crate::consent::is_token(&source.name) {
            problems.push(
                format!("{path}.name"),
                format!("{:?} is not a header or cookie name", source.name),
            );
        }
        if let Some(check) = &source.jwt {
            check_jwt(check, &format!("{path}.jwt"), problems);
        }
    }
}

fn check_jwt(check: &JwtCheck, path: &str, problems: &mut Problems) {
    if check.claim.is_empty() {
        problems.push(format!("{path}.claim"), "name the claim that holds the id");
    }
    match check.algorithm {
        JwtAlgorithm::HS256 => {
            let named = check.secret.as_deref().is_some_and(|s| {
                s.len() > SECRET_PREFIX.len()
                    && s.starts_with(SECRET_PREFIX)
                    && s.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            });
            if !named {
                problems.push(
                    format!("{path}.secret"),
                    format!(
                        "HS256 names the worker secret holding its key, {SECRET_PREFIX}<NAME> \
                         in capitals (the key itself never goes in a snapshot)"
                    ),
                );
            }
            if !check.keys.is_empty() {
                problems.push(
                    format!("{path}.keys"),
                    "HS256 uses a shared secret, not public keys",
                );
            }
        }
        algorithm => {
            if check.keys.is_empty() {
                problems.push(
                    format!("{path}.keys"),
                    format!("{} needs at least one public key", algorithm.as_str()),
                );
            }
            for (k, key) in check.keys.iter().enumerate() {
                if let Err(why) = key_fits(key, algorithm) {
                    problems.push(format!("{path}.keys[{k}]"), why);
                }
            }
        }
    }
}

/// Whether `key` is a public key `algorithm` can use.
fn key_fits(key: &PublicJwk, algorithm: JwtAlgorithm) -> Result<(), String> {
    let bytes = |field: Option<&String>, name: &str| {
        field
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .ok_or_else(|| format!("`{name}` is missing or not base64url"))
    };
    match algorithm {
        JwtAlgorithm::ES256 => {
            if key.kty != "EC" || key.crv.as_deref() != Some("P-256") {
                return Err("ES256 keys are EC keys on P-256 (kty EC, crv P-256)".to_owned());
            }
            for (field, name) in [(key.x.as_ref(), "x"), (key.y.as_ref(), "y")] {
                if bytes(field, name)?.len() != 32 {
                    return Err(format!("`{name}` is not a 32-byte P-256 coordinate"));
                }
            }
        }
        JwtAlgorithm::RS256 => {
            if key.kty != "RSA" {
                return Err("RS256 keys are RSA keys (kty RSA)".to_owned());
            }
            let modulus = bytes(key.n.as_ref(), "n")?;
            bytes(key.e.as_ref(), "e")?;
            if modulus.len() < 256 {
                return Err("RSA keys shorter than 2048 bits are refused".to_owned());
            }
        }
        JwtAlgorithm::HS256 => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
