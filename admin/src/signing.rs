//! Ed25519 signatures over published snapshots (the message is `cleave_core::pointer`'s).
//!
//! The private key is a base64url 32-byte seed, from `CLEAVE_SNAPSHOT_SIGNING_KEY` or the file
//! `CLEAVE_SNAPSHOT_SIGNING_KEY_FILE` names; `cleave-admin keygen` writes one. Workers verify
//! with the matching public key in `CLEAVE_SNAPSHOT_PUBLIC_KEY`.
//!
//! Every signed pointer expires `validity` after it was signed (`CLEAVE_POINTER_VALIDITY`,
//! default one day); `serve` re-signs the current pointers well before that, and
//! `cleave-admin resign-pointers` does it from cron.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use cleave_core::pointer::{self, BinarySidecar, Pointer};
use cleave_core::snapshot::BINARY_FORMAT;
use ed25519_dalek::{Signer as _, SigningKey};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How long a signed pointer stays valid when not configured otherwise.
pub const DEFAULT_POINTER_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// The key snapshots are signed with. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SnapshotSigner {
    key: SigningKey,
    /// How long a pointer it signs stays valid.
    validity: Duration,
}

impl fmt::Debug for SnapshotSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnapshotSigner(public key {})", self.public_key())
    }
}

impl SnapshotSigner {
    /// A fresh random key.
    ///
    /// # Errors
    /// When the system has no randomness to give.
    pub fn generate() -> Result<Self, String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no randomness for a key: {e}"))?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
            validity: DEFAULT_POINTER_VALIDITY,
        })
    }

    /// Reads a key as `keygen` writes it.
    ///
    /// # Errors
    /// A message naming `source` when the text is not a base64url 32-byte seed.
    pub fn parse(text: &str, source: &str) -> Result<Self, String> {
        pointer::parse_public_key(text)
            .map(|seed| Self {
                key: SigningKey::from_bytes(&seed),
                validity: DEFAULT_POINTER_VALIDITY,
            })
            .ok_or_else(|| format!("{source} is not a base64url-encoded 32-byte Ed25519 seed"))
    }

    /// The key from the environment's configuration, if one is set.
    ///
    /// # Errors
    /// When both or neither form is readable, or the key is malformed.
    pub fn configured(inline: Option<&str>, file: Option<&Path>) -> Result<Option<Self>, String> {
        match (inline, file) {
            (Some(_), Some(_)) => Err(
                "set CLEAVE_SNAPSHOT_SIGNING_KEY or CLEAVE_SNAPSHOT_SIGNING_KEY_FILE, not both"
                    .to_owned(),
            ),
            (Some(text), None) => Self::parse(text, "CLEAVE_SNAPSHOT_SIGNING_KEY").map(Some),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("signing key file {}: {e}", path.display()))?;
                Self::parse(&text, &format!("signing key file {}", path.display())).map(Some)
            }
            (None, None) => Ok(None),
        }
    }

    /// The private seed, for writing a key file.
    pub fn seed_text(&self) -> String {
        pointer::encode(self.key.as_bytes())
    }

    /// The value of the worker's `CLEAVE_SNAPSHOT_PUBLIC_KEY`.
    pub fn public_key(&self) -> String {
        pointer::encode(self.key.verifying_key().as_bytes())
    }

    fn sign(&self, message: &[u8]) -> String {
        pointer::encode(&self.key.sign(message).to_bytes())
    }

    /// The same key with another pointer validity.
    #[must_use]
    pub fn with_validity(mut self, validity: Duration) -> Self {
        self.validity = validity;
        self
    }

    /// How long a pointer this key signs stays valid.
    pub fn validity(&self) -> Duration {
        self.validity
    }

    /// Sets `pointer`'s expiry to `validity` after `now` and signs it.
    pub fn stamp_expiry(&self, env: &str, pointer: &mut Pointer, now: OffsetDateTime) {
        let expires = (now + self.validity).replace_nanosecond(0).unwrap_or(now);
        pointer.expires_at = expires.format(&Rfc3339).ok();
        pointer.expiry_signature = Some(self.sign(&pointer::signed_expiry_message(env, pointer)));
    }
}

/// The pointer to `version` of `env` whose body is `body` (and binary sidecar `sidecar`, when
/// one was written), each signed when a key is configured.
pub fn pointer_to(
    signer: Option<&SnapshotSigner>,
    env: &str,
    version: u64,
    sha256: &str,
    rollback_from: Option<u64>,
    body: &str,
    sidecar: Option<&[u8]>,
) -> Pointer {
    let body_message = || pointer::signed_message(env, version, rollback_from, body.as_bytes());
    let mut pointer = Pointer {
        version,
        sha256: Some(sha256.to_owned()),
        rollback_from,
        signature: signer.map(|s| s.sign(&body_message())),
        binary: sidecar.map(|bytes| BinarySidecar {
            format: BINARY_FORMAT,
            signature: signer.map(|s| {
                s.sign(&pointer::signed_binary_message(
                    env,
                    version,
                    rollback_from,
                    bytes,
                ))
            }),
        }),
        expires_at: None,
        expiry_signature: None,
    };
    if let Some(signer) = signer {
        signer.stamp_expiry(env, &mut pointer, OffsetDateTime::now_utc());
    }
    pointer
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn a_signed_pointer_verifies_only_for_its_own_body_environment_and_marker() {
        let signer = SnapshotSigner::generate().unwrap();
        let public =
            VerifyingKey::from_bytes(&pointer::parse_public_key(&signer.public_key()).unwrap())
                .unwrap();
        let p = pointer_to(
            Some(&signer),
            "prod",
            4,
            "abc",
            Some(6),
            "{\"a\":1}",
            Some(b"CLVB"),
        );
        let signature = Signature::from_bytes(&p.signature_bytes().unwrap());
        let verifies = |env: &str, version, from, body: &str| {
            let message = pointer::signed_message(env, version, from, body.as_bytes());
            public.verify(&message, &signature).is_ok()
        };
        assert!(verifies("prod", 4, Some(6), "{\"a\":1}"));
        assert!(!verifies("staging", 4, Some(6), "{\"a\":1}"));
        assert!(!verifies("prod", 5, Some(6), "{\"a\":1}"));
        assert!(!verifies("prod", 4, None, "{\"a\":1}"));
        assert!(!verifies("prod", 4, Some(6), "{\"a\":2}"));
        // The sidecar has its own signature, which a body's can never stand in for.
        let sidecar = Signature::from_bytes(&p.binary_signature_bytes().unwrap());
        let message = pointer::signed_binary_message("prod", 4, Some(6), b"CLVB");
        assert!(public.verify(&message, &sidecar).is_ok());
        let as_body = pointer::signed_message("prod", 4, Some(6), b"CLVB");
        assert!(public.verify(&as_body, &sidecar).is_err());
        assert_eq!(p.binary.as_ref().unwrap().format, BINARY_FORMAT);
        // The expiry is signed over the pointer, and re-stamping moves it.
        let expiry = Signature::from_bytes(&p.expiry_signature_bytes().unwrap());
        let message = pointer::signed_expiry_message("prod", &p);
        assert!(public.verify(&message, &expiry).is_ok());
        assert!(public
            .verify(&pointer::signed_expiry_message("staging", &p), &expiry)
            .is_err());
        let expires = p.expires_ms().unwrap();
        let now = OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let day = 24 * 3600 * 1000;
        assert!((expires - now - day).abs() < 5_000, "{expires} vs {now}");
        let mut later = p.clone();
        signer
            .clone()
            .with_validity(Duration::from_secs(60))
            .stamp_expiry("prod", &mut later, OffsetDateTime::now_utc());
        assert!(later.expires_ms().unwrap() < expires);
        assert_eq!(later.signature, p.signature);
    }

    #[test]
    fn keys_round_trip_and_never_print() {
        let signer = SnapshotSigner::generate().unwrap();
        let again = SnapshotSigner::parse(&signer.seed_text(), "test").unwrap();
        assert_eq!(again.public_key(), signer.public_key());
        assert!(!format!("{signer:?}").contains(&signer.seed_text()));
        assert!(SnapshotSigner::parse("short", "the key").is_err());
        let unsigned = pointer_to(None, "prod", 1, "x", None, "{}", Some(b"CLVB"));
        assert!(unsigned.signature.is_none());
        assert!(unsigned.expires_at.is_none() && unsigned.expiry_signature.is_none());
        assert_eq!(unsigned.binary.unwrap().signature, None);
    }
}
