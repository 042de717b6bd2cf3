//! Signed tokens: `base64url(body) "." base64url(HMAC-SHA256(key, context ++ body))`, both
//! parts unpadded URL-safe base64 so a token is safe in a query parameter and a cookie. Each
//! kind of token has its own context string, so one kind can never pass for another.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Compares two secrets in time that depends only on their lengths, so a caller probing a
/// bearer token learns nothing from how fast it is refused.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a token could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SealError {
    NoKey,
    Malformed,
    BadSignature,
}

/// Signs `body` under `context`.
pub(crate) fn seal(key: &[u8], context: &[u8], body: &str) -> Result<String, SealError> {
    let signature = mac(key, context, body.as_bytes())?.finalize().into_bytes();
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(body),
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// Checks the signature and returns the body. Nothing of an unauthenticated body is
/// interpreted, not even as UTF-8.
pub(crate) fn open(key: &[u8], context: &[u8], token: &str) -> Result<String, SealError> {
    let (body, signature) = token.trim().split_once('.').ok_or(SealError::Malformed)?;
    let body = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| SealError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| SealError::Malformed)?;
    mac(key, context, &body)?
        .verify_slice(&signature)
        .map_err(|_| SealError::BadSignature)?;
    String::from_utf8(body).map_err(|_| SealError::Malformed)
}

fn mac(key: &[u8], context: &[u8], body: &[u8]) -> Result<Hmac<Sha256>, SealError> {
    if key.is_empty() {
        return Err(SealError::NoKey);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| SealError::NoKey)?;
    mac.update(context);
    mac.update(body);
    Ok(mac)
}
