//! Deterministic bucketing (docs/contracts.md §2, normative).
//!
//! `d = sha256(utf8(seed) ++ ":" ++ utf8(unit))`; the variant bucket is the first eight bytes of
//! the digest read big-endian modulo 10 000 and the traffic gate the next eight. Integers only,
//! so native and wasm32 builds agree bit for bit.

use sha2::{Digest as _, Sha256};

mod lanes;

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
        bucket: reduce(big_endian(head)),
        gate: reduce(big_endian(rest.split_at(8).0)),
    }
}

/// Whether [`draw_all`] hashes several pairs at once: where wasm SIMD is enabled, which makes
/// a draw about half as dear. Elsewhere a pair at a time is faster (natively `sha2` uses the
/// CPU's SHA instructions).
const BATCHED: bool = cfg!(all(target_arch = "wasm32", target_feature = "simd128"));

/// The draw of every `(seed, unit)` pair, in order: the same numbers [`draw`] gives each.
pub fn draw_all(pairs: &[(&str, &str)]) -> Vec<Draw> {
    if !BATCHED {
        return pairs.iter().map(|(seed, unit)| draw(seed, unit)).collect();
    }
    draw_batched(pairs)
}

/// [`draw_all`], [`lanes::WIDTH`] digests at a time.
fn draw_batched(pairs: &[(&str, &str)]) -> Vec<Draw> {
    let mut out = Vec::with_capacity(pairs.len());
    for group in pairs.chunks(lanes::WIDTH) {
        let parts: [[&[u8]; 3]; lanes::WIDTH] = std::array::from_fn(|i| match group.get(i) {
            Some((seed, unit)) => [seed.as_bytes(), b":", unit.as_bytes()],
            None => [&[][..]; 3],
        });
        let heads = lanes::digest_heads(std::array::from_fn(|i| &parts[i][..]));
        for (pair, head) in group.iter().zip(heads) {
            out.push(match head {
                Some([a, b, c, d]) => Draw {
                    bucket: reduce(words(a, b)),
                    gate: reduce(words(c, d)),
                },
                // Too long for one block: the general path.
                None => draw(pair.0, pair.1),
            });
        }
    }
    out
}

/// Up to eight bytes read big-endian.
fn big_endian(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// Two 32-bit digest words, the high one first, as one u64: the same number as their eight
/// bytes read big-endian.
fn words(high: u32, low: u32) -> u64 {
    (u64::from(high) << 32) | u64::from(low)
}

/// `value` modulo [`BUCKETS`].
fn reduce(value: u64) -> u16 {
    // The remainder is below 10 000, so it always fits in a u16.
    u16::try_from(value % u64::from(BUCKETS)).unwrap_or(0)
}

/// The seed a layer hashes with: `"layer:" ++ salt`.
pub fn layer_seed(layer_salt: &str) -> String {
    format!("layer:{layer_salt}")
}

#[cfg(test)]
mod draw_all_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn batched_draws_are_the_draws_one_at_a_time(
            pairs in proptest::collection::vec(("[a-z:._-]{0,40}", "\\PC{0,40}"), 0..11),
        ) {
            let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(s, u)| (s.as_str(), u.as_str())).collect();
            let one_by_one: Vec<Draw> = borrowed.iter().map(|(s, u)| draw(s, u)).collect();
            prop_assert_eq!(draw_batched(&borrowed), one_by_one.clone());
            prop_assert_eq!(draw_all(&borrowed), one_by_one);
        }
    }
}
