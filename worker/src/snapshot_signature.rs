//! Verifies snapshot signatures with the platform's WebCrypto (Ed25519 runs natively in
//! workerd: nothing added to the bundle, and a large body is checked in native time). What is
//! signed and when a pointer may be followed is `cleave_core::pointer`'s.

use std::cell::RefCell;

use cleave_core::pointer::{self, Pointer, Refusal};
use worker::js_sys::{self, Uint8Array};
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{CryptoKey, SubtleCrypto, WorkerGlobalScope};

const ALGORITHM: &str = "Ed25519";

thread_local! {
    /// The imported public key, per isolate (vars are fixed for its lifetime).
    static KEY: RefCell<Option<(String, CryptoKey)>> = const { RefCell::new(None) };
}

/// Checks `pointer`'s signature over `body` for `env` against `public_key` (base64url).
///
/// # Errors
/// Why the snapshot is refused, in words for `/_cleave/health`.
pub async fn verify(
    public_key: &str,
    env: &str,
    pointer: &Pointer,
    body: &[u8],
) -> Result<(), String> {
    let signature = pointer.signature_bytes().map_err(|e| e.to_string())?;
    let message = pointer::signed_message(env, pointer.version, pointer.rollback_from, body);
    check(public_key, &signature, &message, pointer.version).await
}

/// Checks the signature the pointer carries for its binary sidecar `sidecar`.
///
/// # Errors
/// Why the sidecar is refused.
pub async fn verify_binary(
    public_key: &str,
    env: &str,
    pointer: &Pointer,
    sidecar: &[u8],
) -> Result<(), String> {
    let signature = pointer
        .binary_signature_bytes()
        .map_err(|e| format!("sidecar: {e}"))?;
    let message =
        pointer::signed_binary_message(env, pointer.version, pointer.rollback_from, sidecar);
    check(public_key, &signature, &message, pointer.version)
        .await
        .map_err(|e| format!("sidecar: {e}"))
}

/// Checks that `pointer` carries an expiry signed for `env` and that it has not passed.
///
/// # Errors
/// Why the pointer is refused; a pointer with no signature at all is "not signed", the more
/// telling reason, before anything about its expiry.
pub async fn verify_fresh(
    public_key: &str,
    env: &str,
    pointer: &Pointer,
    now_ms: i64,
) -> Result<(), String> {
    pointer.signature_bytes().map_err(|e| e.to_string())?;
    let signature = pointer
        .expiry_signature_bytes()
        .map_err(|e| e.to_string())?;
    pointer.expires_ms().map_err(|e| e.to_string())?;
    let message = pointer::signed_expiry_message(env, pointer);
    check(public_key, &signature, &message, pointer.version)
        .await
        .map_err(|e| format!("expiry: {e}"))?;
    pointer.check_fresh(now_ms).map_err(|e| e.to_string())
}

async fn check(
    public_key: &str,
    signature: &[u8],
    message: &[u8],
    version: u64,
) -> Result<(), String> {
    let subtle = subtle()?;
    let key = key(&subtle, public_key).await?;
    let verdict = subtle
        .verify_with_str_and_u8_array_and_u8_array(ALGORITHM, &key, signature, message)
        .map_err(|e| format!("WebCrypto verify failed: {e:?}"))?;
    let verdict = JsFuture::from(verdict)
        .await
        .map_err(|e| format!("WebCrypto verify failed: {e:?}"))?;
    if verdict.as_bool() == Some(true) {
        Ok(())
    } else {
        Err(Refusal::BadSignature(version).to_string())
    }
}

/// The platform's WebCrypto.
pub(crate) fn subtle() -> Result<SubtleCrypto, String> {
    js_sys::global()
        .unchecked_into::<WorkerGlobalScope>()
        .crypto()
        .map(|c| c.subtle())
        .map_err(|e| format!("WebCrypto unavailable: {e:?}"))
}

async fn key(subtle: &SubtleCrypto, public_key: &str) -> Result<CryptoKey, String> {
    let cached = KEY.with(|k| {
        k.borrow()
            .as_ref()
            .filter(|(text, _)| text == public_key)
            .map(|(_, key)| key.clone())
    });
    if let Some(key) = cached {
        return Ok(key);
    }
    let raw = pointer::parse_public_key(public_key).ok_or_else(|| {
        "CLEAVE_SNAPSHOT_PUBLIC_KEY is not a base64url-encoded 32-byte Ed25519 public key"
            .to_owned()
    })?;
    let usages = js_sys::Array::of1(&"verify".into());
    let imported = subtle
        .import_key_with_str(
            "raw",
            &Uint8Array::from(&raw[..]),
            ALGORITHM,
            false,
            &usages,
        )
        .map_err(|e| format!("cannot import CLEAVE_SNAPSHOT_PUBLIC_KEY: {e:?}"))?;
    let key: CryptoKey = JsFuture::from(imported)
        .await
        .map_err(|e| format!("cannot import CLEAVE_SNAPSHOT_PUBLIC_KEY: {e:?}"))?
        .unchecked_into();
    KEY.with(|k| *k.borrow_mut() = Some((public_key.to_owned(), key.clone())));
    Ok(key)
}
