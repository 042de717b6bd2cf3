//! Deterministic bucketing (docs/contracts.md §2, normative).
//!
//! `d = sha256(utf8(seed) ++ ":" ++ utf8(unit))`; the variant bucket is the first eight bytes of
//! the digest read big-endian modulo 10 000 and the traffic gate the next eight. Integers only,
//! so native and wasm32 builds agree bit for bit.

use sha2::{Digest as _, Sha256};

/// Number of buckets in the bucket space: buckets are `0..BUCKETS`.
pub const BUCKETS: u16 = 10_000;

/// Both numbers drawn from one SHA-256 of `(seed, unit)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    /// Selects the variant (and, for `layer:` seeds, the layer slot).
    pub bucket: u16,
    /// Compared against the experiment's traffic; independent bits of the same digest.
    pub gate: u16,
}

/// Hashes `seed ++ ":" ++ unit` and returns its bucket and gate.
///
/// ```
/// let d = cleave_core::bucket::draw("checkout-button-color", "user-123");
/// assert_eq!((d.bucket, d.gate), (5574, 8780));
/// ```
pub fn draw(seed: &str, unit: &str) -> Draw {
    let mut hasher = Sha256::new();
    hasher.update(seed.as_bytes());
    hasher.update(b":");
    hasher.update(unit.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    let (head, rest) = digest.split_at(8);
    Draw {
        bucket: reduce(head),
        gate: reduce(rest.split_at(8).0),
    }
}

/// Reads up to eight bytes big-endian and reduces them modulo [`BUCKETS`].
fn reduce(bytes: &[u8]) -> u16 {
    let value = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    // The remainder is below 10 000, so it always fits in a u16.
    u16::try_from(value % u64::from(BUCKETS)).unwrap_or(0)
}

/// The seed a layer hashes with: `"layer:" ++ salt`.
pub fn layer_seed(layer_salt: &str) -> String {
    format!("layer:{layer_salt}")
}
