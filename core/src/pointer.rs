//! The `snapshot:{env}:current` pointer and the rules for following it.
//!
//! A signed pointer carries an Ed25519 signature over the environment, the version, the
//! rollback marker and the exact body bytes ([`signed_message`]), so a worker holding the
//! public key uses a body only if the admin holding the private key published it for this
//! environment at this version. Core defines what is signed and when a pointer may be
//! followed; the signature arithmetic itself happens where the keys live (the admin signs,
//! the worker verifies with the platform's WebCrypto).
//!
//! A signed pointer also expires, as The Update Framework's timestamp metadata does: it carries
//! `expires_at` and a second signature over it ([`signed_expiry_message`]), and the admin
//! re-signs the current pointer well before then. A KV writer without the private key can
//! write back an old signed pointer, but not one that is still fresh after its window, so
//! rolling back or freezing an environment lasts at most that window.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Domain separation: a signature over a snapshot can never pass for any other signed thing.
const CONTEXT: &[u8] = b"cleave-snapshot:v1\n";
/// The same for a binary sidecar, so a body's signature never passes for a sidecar's.
const BINARY_CONTEXT: &[u8] = b"cleave-snapshot-binary:v1\n";
/// The same for a pointer's expiry.
const EXPIRY_CONTEXT: &[u8] = b"cleave-pointer-expiry:v1\n";

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_BYTES: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;

/// The pointer `{"version": N}` (docs/contracts.md §3), with the optional fields cleave-admin writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    pub version: u64,
    /// Digest of the compiled content (what "unchanged" publishes compare).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Set by `cleave-admin rollback`: the version the environment was rolled back from. A
    /// worker holding a version newer than `version` follows this pointer only when it holds
    /// at most `rollback_from`, so replaying an old rollback cannot undo later publishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_from: Option<u64>,
    /// base64url (unpadded) Ed25519 signature over [`signed_message`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The binary sidecar of this version (`snapshot:{env}:v{N}.bin`), when one was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<BinarySidecar>,
    /// When this pointer stops being followed (RFC 3339, UTC), on signed pointers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// base64url Ed25519 signature over [`signed_expiry_message`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_signature: Option<String>,
}

/// A pointer's description of the version's binary sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinarySidecar {
    /// [`crate::snapshot::BINARY_FORMAT`] of the sidecar; a worker reading another format
    /// uses the JSON body.
    pub format: u32,
    /// base64url Ed25519 signature over [`signed_binary_message`], when the body is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// Why a worker refuses to follow a pointer (before or after reading the body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "v{offered} is older than v{held} in service and the pointer carries no rollback marker"
    )]
    Downgrade { offered: u64, held: u64 },
    #[error("v{offered} is a rollback from v{from}, older than v{held} in service (a replayed rollback)")]
    StaleRollback { offered: u64, from: u64, held: u64 },
    #[error("v{0} is not signed and CLEAVE_SNAPSHOT_PUBLIC_KEY requires a signature")]
    Unsigned(u64),
    #[error("v{0} has a malformed signature (expected {SIGNATURE_BYTES} bytes, base64url)")]
    MalformedSignature(u64),
    #[error(
        "v{0} signature does not verify against CLEAVE_SNAPSHOT_PUBLIC_KEY for this environment"
    )]
    BadSignature(u64),
    #[error("v{0} pointer carries no signed expiry (expires_at, expiry_signature)")]
    NoExpiry(u64),
    #[error("v{0} pointer has an unreadable expires_at")]
    MalformedExpiry(u64),
    #[error("v{version} pointer expired at {at}: the admin has not re-signed it (a replayed or frozen pointer, or the admin is down)")]
    Expired { version: u64, at: String },
}

impl Pointer {
    /// May a worker that verifies signatures and holds version `held` move to this pointer?
    /// Only forward, or back with a rollback marker that covers what it holds.
    ///
    /// # Errors
    /// [`Refusal::Downgrade`] or [`Refusal::StaleRollback`].
    pub fn may_replace(&self, held: Option<u64>) -> Result<(), Refusal> {
        let Some(held) = held else { return Ok(()) };
        if self.version >= held {
            return Ok(());
        }
        match self.rollback_from {
            None => Err(Refusal::Downgrade {
                offered: self.version,
                held,
            }),
            Some(from) if from < held => Err(Refusal::StaleRollback {
                offered: self.version,
                from,
                held,
            }),
            Some(_) => Ok(()),
        }
    }

    /// The raw signature bytes.
    ///
    /// # Errors
    /// [`Refusal::Unsigned`] or [`Refusal::MalformedSignature`].
    pub fn signature_bytes(&self) -> Result<[u8; SIGNATURE_BYTES], Refusal> {
        self.signature_of(self.signature.as_deref())
    }

    /// The raw bytes of the binary sidecar's signature.
    ///
    /// # Errors
    /// [`Refusal::Unsigned`] or [`Refusal::MalformedSignature`].
    pub fn binary_signature_bytes(&self) -> Result<[u8; SIGNATURE_BYTES], Refusal> {
        let text = self.binary.as_ref().and_then(|b| b.signature.as_deref());
        self.signature_of(text)
    }

    /// The raw bytes of the expiry signature.
    ///
    /// # Errors
    /// [`Refusal::NoExpiry`] or [`Refusal::MalformedSignature`].
    pub fn expiry_signature_bytes(&self) -> Result<[u8; SIGNATURE_BYTES], Refusal> {
        match self.expiry_signature.as_deref() {
            None => Err(Refusal::NoExpiry(self.version)),
            text => self.signature_of(text),
        }
    }

    /// The expiry as epoch ms.
    ///
    /// # Errors
    /// [`Refusal::NoExpiry`] or [`Refusal::MalformedExpiry`].
    pub fn expires_ms(&self) -> Result<i64, Refusal> {
        let text = self
            .expires_at
            .as_deref()
            .ok_or(Refusal::NoExpiry(self.version))?;
        crate::time::parse_rfc3339_ms(text).ok_or(Refusal::MalformedExpiry(self.version))
    }

    /// Whether the pointer is still fresh at `now_ms` (its expiry signature checked apart).
    ///
    /// # Errors
    /// [`Refusal::NoExpiry`], [`Refusal::MalformedExpiry`] or [`Refusal::Expired`].
    pub fn check_fresh(&self, now_ms: i64) -> Result<(), Refusal> {
        if now_ms >= self.expires_ms()? {
            return Err(Refusal::Expired {
                version: self.version,
                at: self.expires_at.clone().unwrap_or_default(),
            });
        }
        Ok(())
    }

    fn signature_of(&self, text: Option<&str>) -> Result<[u8; SIGNATURE_BYTES], Refusal> {
        let text = text.ok_or(Refusal::Unsigned(self.version))?;
        decode_fixed(text).ok_or(Refusal::MalformedSignature(self.version))
    }
}

/// The bytes an Ed25519 snapshot signature covers:
/// `"cleave-snapshot:v1\n" ++ env ++ "\n" ++ version ++ "\n" ++ rollback_from (or "") ++ "\n" ++ body`.
pub fn signed_message(env: &str, version: u64, rollback_from: Option<u64>, body: &[u8]) -> Vec<u8> {
    message(CONTEXT, env, version, rollback_from, body)
}

/// The bytes a binary sidecar's signature covers: as [`signed_message`], with the context
/// `"cleave-snapshot-binary:v1\n"` and the sidecar's bytes as the body.
pub fn signed_binary_message(
    env: &str,
    version: u64,
    rollback_from: Option<u64>,
    sidecar: &[u8],
) -> Vec<u8> {
    message(BINARY_CONTEXT, env, version, rollback_from, sidecar)
}

fn message(
    context: &[u8],
    env: &str,
    version: u64,
    rollback_from: Option<u64>,
    body: &[u8],
) -> Vec<u8> {
    let rollback = rollback_from.map(|v| v.to_string()).unwrap_or_default();
    let header = format!("{env}\n{version}\n{rollback}\n");
    let mut message = Vec::with_capacity(context.len() + header.len() + body.len());
    message.extend_from_slice(context);
    message.extend_from_slice(header.as_bytes());
    message.extend_from_slice(body);
    message
}

/// The bytes a pointer's expiry signature covers:
/// `"cleave-pointer-expiry:v1\n" ++ env ++ "\n" ++ version ++ "\n" ++ rollback_from (or "") ++
/// "\n" ++ expires_at ++ "\n" ++ body signature (or "")`. Naming the body's signature ties the
/// expiry to that exact signed body, so the admin can re-sign the expiry without the body.
pub fn signed_expiry_message(env: &str, pointer: &Pointer) -> Vec<u8> {
    let rollback = pointer
        .rollback_from
        .map(|v| v.to_string())
        .unwrap_or_default();
    let text = format!(
        "{env}\n{}\n{rollback}\n{}\n{}",
        pointer.version,
        pointer.expires_at.as_deref().unwrap_or(""),
        pointer.signature.as_deref().unwrap_or("")
    );
    let mut message = EXPIRY_CONTEXT.to_vec();
    message.extend_from_slice(text.as_bytes());
    message
}

/// Parses a public key as printed by `cleave-admin keygen` (base64url, 32 bytes).
pub fn parse_public_key(text: &str) -> Option<[u8; PUBLIC_KEY_BYTES]> {
    decode_fixed(text)
}

/// Encodes key or signature bytes the way pointers and keys are written.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pointer(version: u64, rollback_from: Option<u64>) -> Pointer {
        Pointer {
            version,
            sha256: None,
            rollback_from,
            signature: None,
            binary: None,
            expires_at: None,
            expiry_signature: None,
        }
    }

    #[test]
    fn only_forward_unless_a_marker_covers_what_is_held() {
        assert_eq!(pointer(3, None).may_replace(None), Ok(()));
        assert_eq!(pointer(7, None).may_replace(Some(7)), Ok(()));
        assert_eq!(pointer(8, None).may_replace(Some(7)), Ok(()));
        assert_eq!(
            pointer(5, None).may_replace(Some(7)),
            Err(Refusal::Downgrade {
                offered: 5,
                held: 7
            })
        );
        assert_eq!(pointer(5, Some(7)).may_replace(Some(7)), Ok(()));
        assert_eq!(pointer(5, Some(9)).may_replace(Some(7)), Ok(()));
        assert_eq!(
            pointer(5, Some(6)).may_replace(Some(7)),
            Err(Refusal::StaleRollback {
                offered: 5,
                from: 6,
                held: 7
            })
        );
    }

    #[test]
    fn the_message_binds_environment_version_marker_and_body() {
        let base = signed_message("prod", 7, None, b"{}");
        assert_eq!(base, b"cleave-snapshot:v1\nprod\n7\n\n{}".to_vec());
        assert_ne!(base, signed_message("prod2", 7, None, b"{}"));
        assert_ne!(base, signed_message("prod", 70, None, b"{}"));
        assert_ne!(base, signed_message("prod", 7, Some(9), b"{}"));
        assert_ne!(base, signed_message("prod", 7, None, b"{} "));
        assert_eq!(
            signed_binary_message("prod", 7, None, b"{}"),
            b"cleave-snapshot-binary:v1\nprod\n7\n\n{}".to_vec()
        );
    }

    #[test]
    fn signatures_and_keys_must_have_their_exact_length() {
        let mut p = pointer(2, None);
        assert_eq!(p.signature_bytes(), Err(Refusal::Unsigned(2)));
        p.signature = Some(encode(&[7u8; 63]));
        assert_eq!(p.signature_bytes(), Err(Refusal::MalformedSignature(2)));
        p.signature = Some("not base64!".to_owned());
        assert_eq!(p.signature_bytes(), Err(Refusal::MalformedSignature(2)));
        p.signature = Some(encode(&[7u8; 64]));
        assert_eq!(p.signature_bytes().unwrap(), [7u8; 64]);
        assert_eq!(parse_public_key(&encode(&[1u8; 32])), Some([1u8; 32]));
        assert_eq!(parse_public_key(&encode(&[1u8; 33])), None);
    }

    #[test]
    fn a_pointer_is_fresh_until_its_expiry_and_the_expiry_message_binds_everything() {
        let mut p = pointer(4, None);
        assert_eq!(p.check_fresh(0), Err(Refusal::NoExpiry(4)));
        assert_eq!(p.expiry_signature_bytes(), Err(Refusal::NoExpiry(4)));
        p.expires_at = Some("soon".to_owned());
        assert_eq!(p.check_fresh(0), Err(Refusal::MalformedExpiry(4)));
        p.expires_at = Some("1970-01-01T00:00:02Z".to_owned());
        assert_eq!(p.check_fresh(1_999), Ok(()));
        assert!(matches!(
            p.check_fresh(2_000),
            Err(Refusal::Expired { version: 4, .. })
        ));
        p.signature = Some("SIG".to_owned());
        let base = signed_expiry_message("prod", &p);
        assert_eq!(
            base,
            b"cleave-pointer-expiry:v1\nprod\n4\n\n1970-01-01T00:00:02Z\nSIG".to_vec()
        );
        assert_ne!(base, signed_expiry_message("staging", &p));
        let mut later = p.clone();
        later.expires_at = Some("1970-01-01T00:00:03Z".to_owned());
        assert_ne!(base, signed_expiry_message("prod", &later));
        let mut other_body = p.clone();
        other_body.signature = Some("SIG2".to_owned());
        assert_ne!(base, signed_expiry_message("prod", &other_body));
        let mut marked = p.clone();
        marked.rollback_from = Some(9);
        assert_ne!(base, signed_expiry_message("prod", &marked));
    }

    #[test]
    fn plain_design_pointers_still_parse() {
        let p: Pointer = serde_json::from_str(r#"{"version": 4, "extra": true}"#).unwrap();
        assert_eq!(p, pointer(4, None));
    }
}
