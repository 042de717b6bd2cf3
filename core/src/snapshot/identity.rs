//! Identity sources (docs/contracts.md §3): where a request carries the id of a unit type
//! other than the edge's own `user` — a header, a cookie, or a claim of a JSON Web Token in
//! either, whose signature the worker checks.

use serde::{Deserialize, Serialize};

use super::AttributeSource;

/// One unit type's id on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentitySource {
    /// The unit type it identifies, e.g. `account`.
    pub unit: String,
    /// `header` or `cookie`.
    pub source: AttributeSource,
    /// The header or cookie name.
    pub name: String,
    /// When set, the value is a JWT and the id is one of its claims; the source is then
    /// verified. Without it the value is the id as the client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtCheck>,
}

impl IdentitySource {
    /// Whether a client cannot choose the id: it comes from a token whose signature is checked.
    pub fn is_verified(&self) -> bool {
        self.jwt.is_some()
    }
}

/// How a token is checked and which claim is the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtCheck {
    pub algorithm: JwtAlgorithm,
    /// The claim holding the id (a string or an integer).
    #[serde(default = "default_claim")]
    pub claim: String,
    /// HS256: the worker secret holding the shared key (a name starting `CLEAVE_JWT_`); the
    /// key itself never travels in a snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// RS256 and ES256: the issuer's public keys, as JWKs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<PublicJwk>,
    /// When set, `iss` must equal it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// When set, `aud` must be or contain it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Seconds of clock difference allowed around `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway_s: u32,
}

fn default_claim() -> String {
    "sub".to_owned()
}

fn default_leeway() -> u32 {
    60
}

/// The signature algorithms accepted; the token's own `alg` must name the configured one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
    ES256,
}

impl JwtAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
        }
    }
}

/// A public key in JWK form (RFC 7517): `RSA` with `n` and `e`, or `EC` on `P-256` with `x`
/// and `y`. Other members of a provider's JWKS (`use`, `alg`, `x5c`) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}
