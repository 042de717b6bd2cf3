//! The ids a request carries under its environment's identity sources (docs/contracts.md §8),
//! for proxy mode and the API alike. What a value means is `cleave_core::identity`'s; this
//! reads the request and runs the platform's WebCrypto for RS256 and ES256 signatures.
//!
//! Deciding stays synchronous: [`resolve`] answers from a per-isolate table of signature
//! verdicts, and a request whose token has none yet first awaits [`verify`], which fills it.

use std::cell::RefCell;
use std::collections::HashMap;

use cleave_core::identity::{claim, Claimed, PendingSignature, Proof};
use cleave_core::snapshot::{AttributeSource, JwtAlgorithm, PublicJwk};
use cleave_core::Engine;
use sha2::{Digest as _, Sha256};
use worker::js_sys::{self, Object};
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{CryptoKey, Request};

use crate::config::Config;
use crate::identity::cookie_value;

/// One id a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUnit {
    pub unit: String,
    pub id: String,
    /// From a token whose signature checked out: a client could not have chosen it.
    pub verified: bool,
}

/// A token's signature has no verdict yet: [`verify`] first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeedsVerification;

/// Verdicts kept per isolate at most; the table starts again when full.
const MAX_VERDICTS: usize = 4096;

thread_local! {
    /// Signature verdicts by digest of (snapshot version, source, token): a new snapshot (a
    /// rotated key) asks again.
    static VERDICTS: RefCell<HashMap<[u8; 32], bool>> = RefCell::new(HashMap::new());
    /// Imported public keys by digest of (algorithm, JWK).
    static KEYS: RefCell<HashMap<[u8; 32], CryptoKey>> = RefCell::new(HashMap::new());
}

/// The ids `req` (with its `Cookie` header `cookie`) carries, one per unit type, the first
/// source that gives one winning. A token that does not check out gives none.
///
/// # Errors
/// [`NeedsVerification`] when a token's signature is yet to be verified.
pub fn resolve(
    engine: &Engine,
    req: &Request,
    cookie: Option<&str>,
    config: &Config,
    now_ms: i64,
) -> Result<Vec<RequestUnit>, NeedsVerification> {
    let mut units: Vec<RequestUnit> = Vec::new();
    for (index, source, value) in values(engine, req, cookie) {
        if units.iter().any(|u| u.unit == source.unit) {
            continue;
        }
        let Ok(Claimed { id, proof }) = claim(source, &value, now_ms, |name| {
            config.jwt_secrets.get(name).cloned()
        }) else {
            continue;
        };
        let verified = match proof {
            Proof::Unverified => false,
            Proof::Verified => true,
            Proof::Signature(_) => {
                let digest = verdict_key(engine, index, &value);
                match VERDICTS.with(|v| v.borrow().get(&digest).copied()) {
                    Some(true) => true,
                    Some(false) => continue,
                    None => return Err(NeedsVerification),
                }
            }
        };
        units.push(RequestUnit {
            unit: source.unit.clone(),
            id,
            verified,
        });
    }
    Ok(units)
}

/// [`resolve`] for a request of the API, reading its `Cookie` header; a token without a
/// verdict yet gives nothing (the API verifies first, [`verify_request`]).
pub fn of_request(engine: Option<&Engine>, req: &Request, config: &Config) -> Vec<RequestUnit> {
    let Some(engine) = engine.filter(|e| !e.snapshot().identity.is_empty()) else {
        return Vec::new();
    };
    let cookie = req.headers().get("cookie").ok().flatten();
    let now_ms = crate::signed_ms(crate::now_ms());
    resolve(engine, req, cookie.as_deref(), config, now_ms).unwrap_or_default()
}

/// [`verify`] for a request of the API.
pub async fn verify_request(engine: Option<&Engine>, req: &Request, config: &Config) {
    let Some(engine) = engine.filter(|e| !e.snapshot().identity.is_empty()) else {
        return;
    };
    let cookie = req.headers().get("cookie").ok().flatten();
    let now_ms = crate::signed_ms(crate::now_ms());
    verify(engine, req, cookie.as_deref(), config, now_ms).await;
}

/// Whether [`resolve`] can answer `req` without waiting; the request's headers are read only
/// when the environment has identity sources.
pub fn ready(engine: &Engine, req: &Request, config: &Config) -> bool {
    if engine.snapshot().identity.is_empty() {
        return true;
    }
    let cookie = req.headers().get("cookie").ok().flatten();
    let now_ms = crate::signed_ms(crate::now_ms());
    resolve(engine, req, cookie.as_deref(), config, now_ms).is_ok()
}

/// Verifies the signatures of the tokens `req` carries that have no verdict yet.
pub async fn verify(
    engine: &Engine,
    req: &Request,
    cookie: Option<&str>,
    config: &Config,
    now_ms: i64,
) {
    for (index, source, value) in values(engine, req, cookie) {
        let Some(check) = &source.jwt else { continue };
        let Ok(Claimed {
            proof: Proof::Signature(pending),
            ..
        }) = claim(source, &value, now_ms, |name| {
            config.jwt_secrets.get(name).cloned()
        })
        else {
            continue;
        };
        let digest = verdict_key(engine, index, &value);
        if VERDICTS.with(|v| v.borrow().contains_key(&digest)) {
            continue;
        }
        let verdict = verify_signature(&pending, &check.keys).await;
        VERDICTS.with(|v| {
            let mut table = v.borrow_mut();
            if table.len() >= MAX_VERDICTS {
                table.clear();
            }
            table.insert(digest, verdict);
        });
    }
}

/// `(source index, source, value)` for each source whose header or cookie the request has.
fn values<'e>(
    engine: &'e Engine,
    req: &Request,
    cookie: Option<&str>,
) -> impl Iterator<Item = (usize, &'e cleave_core::snapshot::IdentitySource, String)> {
    let headers = req.headers();
    let cookie = cookie.map(str::to_owned);
    engine
        .snapshot()
        .identity
        .iter()
        .enumerate()
        .filter_map(move |(i, source)| {
            let value = match source.source {
                AttributeSource::Header => headers.get(&source.name).ok().flatten(),
                AttributeSource::Cookie => cookie
                    .as_deref()
                    .and_then(|c| cookie_value(c, &source.name))
                    .map(str::to_owned),
                AttributeSource::Query => None,
            };
            value.map(|v| (i, source, v))
        })
}

fn verdict_key(engine: &Engine, index: usize, token: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(engine.snapshot().version.to_le_bytes());
    hash.update(index.to_le_bytes());
    hash.update(token.as_bytes());
    hash.finalize().into()
}

/// Whether any of the candidate keys verifies the signature; a key the platform refuses
/// verifies nothing.
async fn verify_signature(pending: &PendingSignature<'_>, keys: &[PublicJwk]) -> bool {
    let Ok(subtle) = crate::snapshot_signature::subtle() else {
        return false;
    };
    let (import, verify) = match pending.algorithm {
        JwtAlgorithm::ES256 => (
            r#"{"name":"ECDSA","namedCurve":"P-256"}"#,
            r#"{"name":"ECDSA","hash":"SHA-256"}"#,
        ),
        JwtAlgorithm::RS256 => (
            r#"{"name":"RSASSA-PKCS1-v1_5","hash":"SHA-256"}"#,
            r#"{"name":"RSASSA-PKCS1-v1_5"}"#,
        ),
        JwtAlgorithm::HS256 => return false,
    };
    let Ok(verify) = js_sys::JSON::parse(verify).map(JsCast::unchecked_into::<Object>) else {
        return false;
    };
    for key in pending.keys.iter().filter_map(|&i| keys.get(i)) {
        let Some(key) = import_key(&subtle, key, import).await else {
            continue;
        };
        let Ok(promise) = subtle.verify_with_object_and_u8_array_and_u8_array(
            &verify,
            &key,
            &pending.signature,
            pending.signing_input.as_bytes(),
        ) else {
            continue;
        };
        if JsFuture::from(promise)
            .await
            .is_ok_and(|v| v.as_bool() == Some(true))
        {
            return true;
        }
    }
    false
}

async fn import_key(
    subtle: &worker::web_sys::SubtleCrypto,
    jwk: &PublicJwk,
    algorithm: &str,
) -> Option<CryptoKey> {
    let text = serde_json::to_string(jwk).ok()?;
    let digest: [u8; 32] = Sha256::new()
        .chain_update(algorithm)
        .chain_update(&text)
        .finalize()
        .into();
    if let Some(key) = KEYS.with(|k| k.borrow().get(&digest).cloned()) {
        return Some(key);
    }
    let data: Object = js_sys::JSON::parse(&text).ok()?.unchecked_into();
    let params: Object = js_sys::JSON::parse(algorithm).ok()?.unchecked_into();
    let usages = js_sys::Array::of1(&"verify".into());
    let promise = subtle
        .import_key_with_object("jwk", &data, &params, false, &usages)
        .ok()?;
    let key: CryptoKey = JsFuture::from(promise).await.ok()?.unchecked_into();
    KEYS.with(|k| {
        let mut keys = k.borrow_mut();
        if keys.len() >= 64 {
            keys.clear();
        }
        keys.insert(digest, key.clone());
    });
    Some(key)
}
