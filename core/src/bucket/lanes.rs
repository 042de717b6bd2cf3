//! SHA-256 of eight short messages at once, one message per 32-bit lane (FIPS 180-4 §6.2, the
//! single-block case). A decision hashes one short key per experiment, and these digests are
//! independent, so eight of them share every instruction: built with wasm `simd128`, each
//! operation below is two vector instructions of four lanes (two vectors, not one, so the
//! engine overlaps two independent dependency chains). The `sha2` crate hashes one message at
//! a time; the tests check every lane against it.

use std::array;

/// The longest message that fits one padded block: 64 bytes less the `0x80` marker and the
/// 8-byte length.
pub const MAX_MESSAGE: usize = 55;

/// Messages hashed at once.
pub const WIDTH: usize = 8;

/// Round constants.
const K: [u32; 64] = [
    0x428a_2f98,
    0x7137_4491,
    0xb5c0_fbcf,
    0xe9b5_dba5,
    0x3956_c25b,
    0x59f1_11f1,
    0x923f_82a4,
    0xab1c_5ed5,
    0xd807_aa98,
    0x1283_5b01,
    0x2431_85be,
    0x550c_7dc3,
    0x72be_5d74,
    0x80de_b1fe,
    0x9bdc_06a7,
    0xc19b_f174,
    0xe49b_69c1,
    0xefbe_4786,
    0x0fc1_9dc6,
    0x240c_a1cc,
    0x2de9_2c6f,
    0x4a74_84aa,
    0x5cb0_a9dc,
    0x76f9_88da,
    0x983e_5152,
    0xa831_c66d,
    0xb003_27c8,
    0xbf59_7fc7,
    0xc6e0_0bf3,
    0xd5a7_9147,
    0x06ca_6351,
    0x1429_2967,
    0x27b7_0a85,
    0x2e1b_2138,
    0x4d2c_6dfc,
    0x5338_0d13,
    0x650a_7354,
    0x766a_0abb,
    0x81c2_c92e,
    0x9272_2c85,
    0xa2bf_e8a1,
    0xa81a_664b,
    0xc24b_8b70,
    0xc76c_51a3,
    0xd192_e819,
    0xd699_0624,
    0xf40e_3585,
    0x106a_a070,
    0x19a4_c116,
    0x1e37_6c08,
    0x2748_774c,
    0x34b0_bcb5,
    0x391c_0cb3,
    0x4ed8_aa4a,
    0x5b9c_ca4f,
    0x682e_6ff3,
    0x748f_82ee,
    0x78a5_636f,
    0x84c8_7814,
    0x8cc7_0208,
    0x90be_fffa,
    0xa450_6ceb,
    0xbef9_a3f7,
    0xc671_78f2,
];

/// The initial hash value.
const H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// One 32-bit word of each of the messages.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[derive(Clone, Copy)]
struct Lanes([u32; WIDTH]);

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl Lanes {
    #[inline(always)]
    fn splat(word: u32) -> Self {
        Self([word; WIDTH])
    }
    #[inline(always)]
    fn of(words: [u32; WIDTH]) -> Self {
        Self(words)
    }
    #[inline(always)]
    fn words(self) -> [u32; WIDTH] {
        self.0
    }
    #[inline(always)]
    fn map2(self, other: Self, f: impl Fn(u32, u32) -> u32) -> Self {
        Self(array::from_fn(|i| f(self.0[i], other.0[i])))
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self.map2(other, u32::wrapping_add)
    }
    #[inline(always)]
    fn xor(self, other: Self) -> Self {
        self.map2(other, |a, b| a ^ b)
    }
    #[inline(always)]
    fn rotr(self, n: u32) -> Self {
        Self(self.0.map(|w| w.rotate_right(n)))
    }
    #[inline(always)]
    fn shr(self, n: u32) -> Self {
        Self(self.0.map(|w| w >> n))
    }
    /// `e ? f : g`, bit by bit.
    #[inline(always)]
    fn choose(e: Self, f: Self, g: Self) -> Self {
        Self(array::from_fn(|i| (e.0[i] & f.0[i]) ^ (!e.0[i] & g.0[i])))
    }
    /// The majority of each bit of `a`, `b` and `c`.
    #[inline(always)]
    fn majority(a: Self, b: Self, c: Self) -> Self {
        Self(array::from_fn(|i| {
            (a.0[i] & b.0[i]) ^ (a.0[i] & c.0[i]) ^ (b.0[i] & c.0[i])
        }))
    }
}

/// One 32-bit word of each message, four to a wasm vector register.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[derive(Clone, Copy)]
struct Lanes([std::arch::wasm32::v128; WIDTH / 4]);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Lanes {
    #[inline(always)]
    fn splat(word: u32) -> Self {
        Self([std::arch::wasm32::u32x4_splat(word); WIDTH / 4])
    }
    #[inline(always)]
    fn of(words: [u32; WIDTH]) -> Self {
        Self(array::from_fn(|v| {
            std::arch::wasm32::u32x4(
                words[4 * v],
                words[4 * v + 1],
                words[4 * v + 2],
                words[4 * v + 3],
            )
        }))
    }
    #[inline(always)]
    fn words(self) -> [u32; WIDTH] {
        use std::arch::wasm32::u32x4_extract_lane as lane;
        array::from_fn(|i| {
            let v = self.0[i / 4];
            match i % 4 {
                0 => lane::<0>(v),
                1 => lane::<1>(v),
                2 => lane::<2>(v),
                _ => lane::<3>(v),
            }
        })
    }
    #[inline(always)]
    fn zip3(a: Self, b: Self, c: Self, f: impl Fn(V128, V128, V128) -> V128) -> Self {
        Self(array::from_fn(|v| f(a.0[v], b.0[v], c.0[v])))
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        Self::zip3(self, other, other, |a, b, _| {
            std::arch::wasm32::u32x4_add(a, b)
        })
    }
    #[inline(always)]
    fn xor(self, other: Self) -> Self {
        Self::zip3(self, other, other, |a, b, _| {
            std::arch::wasm32::v128_xor(a, b)
        })
    }
    #[inline(always)]
    fn rotr(self, n: u32) -> Self {
        use std::arch::wasm32::{u32x4_shl, u32x4_shr, v128_or};
        Self(
            self.0
                .map(|v| v128_or(u32x4_shr(v, n), u32x4_shl(v, 32 - n))),
        )
    }
    #[inline(always)]
    fn shr(self, n: u32) -> Self {
        Self(self.0.map(|v| std::arch::wasm32::u32x4_shr(v, n)))
    }
    /// `e ? f : g`, bit by bit.
    #[inline(always)]
    fn choose(e: Self, f: Self, g: Self) -> Self {
        Self::zip3(e, f, g, |e, f, g| {
            std::arch::wasm32::v128_bitselect(f, g, e)
        })
    }
    /// The majority of each bit of `a`, `b` and `c`: `c` where `a ^ b` is set, else `a`.
    #[inline(always)]
    fn majority(a: Self, b: Self, c: Self) -> Self {
        use std::arch::wasm32::{v128_bitselect, v128_xor};
        Self::zip3(a, b, c, |a, b, c| v128_bitselect(c, a, v128_xor(a, b)))
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
type V128 = std::arch::wasm32::v128;

/// The first four state words (the digest's first 16 bytes, big-endian words) of
/// `sha256(message)` for each of [`WIDTH`] messages, each given as parts to concatenate, of at most [`MAX_MESSAGE`] bytes; a longer
/// one yields `None` in its lane.
pub fn digest_heads(messages: [&[&[u8]]; WIDTH]) -> [Option<[u32; 4]>; WIDTH] {
    let mut fits = [true; WIDTH];
    let mut words = [[0u32; WIDTH]; 16];
    for (lane, parts) in messages.iter().enumerate() {
        let mut block = [0u8; 64];
        let mut len = 0usize;
        for part in *parts {
            let Some(room) = block.get_mut(len..len + part.len()) else {
                len = MAX_MESSAGE + 1;
                break;
            };
            room.copy_from_slice(part);
            len += part.len();
        }
        if len > MAX_MESSAGE {
            fits[lane] = false;
            continue;
        }
        if let Some(marker) = block.get_mut(len) {
            *marker = 0x80;
        }
        let bits = (len as u64) * 8;
        if let Some(tail) = block.get_mut(56..) {
            tail.copy_from_slice(&bits.to_be_bytes());
        }
        for (t, chunk) in block.chunks_exact(4).enumerate() {
            if let (Some(word), Ok(bytes)) = (words.get_mut(t), <[u8; 4]>::try_from(chunk)) {
                if let Some(slot) = word.get_mut(lane) {
                    *slot = u32::from_be_bytes(bytes);
                }
            }
        }
    }
    let mut w = [Lanes::splat(0); 64];
    for (lanes, word) in w.iter_mut().zip(words) {
        *lanes = Lanes::of(word);
    }
    for t in 16..64 {
        let (w15, w2, w16, w7) = (w[t - 15], w[t - 2], w[t - 16], w[t - 7]);
        let s0 = w15.rotr(7).xor(w15.rotr(18)).xor(w15.shr(3));
        let s1 = w2.rotr(17).xor(w2.rotr(19)).xor(w2.shr(10));
        w[t] = w16.add(s0).add(w7).add(s1);
    }
    let mut s = H0.map(Lanes::splat);
    for (word, k) in w.iter().zip(K) {
        let [a, b, c, d, e, f, g, h] = s;
        let sum1 = e.rotr(6).xor(e.rotr(11)).xor(e.rotr(25));
        let t1 = h
            .add(sum1)
            .add(Lanes::choose(e, f, g))
            .add(Lanes::splat(k))
            .add(*word);
        let sum0 = a.rotr(2).xor(a.rotr(13)).xor(a.rotr(22));
        let t2 = sum0.add(Lanes::majority(a, b, c));
        s = [t1.add(t2), a, b, c, d.add(t1), e, f, g];
    }
    let head: [Lanes; 4] = array::from_fn(|i| s[i].add(Lanes::splat(H0[i])));
    array::from_fn(|lane| fits[lane].then(|| head.map(|word| word.words()[lane])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest as _, Sha256};

    fn reference(message: &[u8]) -> [u32; 4] {
        let digest = Sha256::digest(message);
        array::from_fn(|i| {
            let word: [u8; 4] = digest[i * 4..i * 4 + 4].try_into().unwrap();
            u32::from_be_bytes(word)
        })
    }

    #[test]
    fn every_length_that_fits_one_block_agrees_with_sha2_and_longer_ones_are_refused() {
        for len in 0..=64 {
            let message: Vec<u8> = (0u8..)
                .take(len)
                .map(|i| i.wrapping_mul(7).wrapping_add(3))
                .collect();
            let (head, tail) = message.split_at(len / 2);
            let split: [&[u8]; 2] = [head, tail];
            let whole: [&[u8]; 1] = [&message];
            let short: [&[u8]; 1] = [b"x"];
            // The message split in two and whole in alternate lanes, one-byte messages between.
            let heads = digest_heads(array::from_fn(|lane| match lane % 3 {
                0 => &split[..],
                1 => &whole[..],
                _ => &short[..],
            }));
            for (lane, head) in heads.iter().enumerate() {
                let expected = match lane % 3 {
                    2 => Some(reference(b"x")),
                    _ if len <= MAX_MESSAGE => Some(reference(&message)),
                    _ => None,
                };
                assert_eq!(*head, expected, "length {len}, lane {lane}");
            }
        }
    }

    proptest! {
        #[test]
        fn each_lane_is_the_digest_of_its_own_message(
            messages in proptest::array::uniform8(proptest::collection::vec(any::<u8>(), 0..=MAX_MESSAGE)),
        ) {
            let parts: [[&[u8]; 1]; WIDTH] = array::from_fn(|i| [&messages[i][..]]);
            let heads = digest_heads(array::from_fn(|i| &parts[i][..]));
            for (lane, message) in messages.iter().enumerate() {
                prop_assert_eq!(heads[lane], Some(reference(message)));
            }
        }
    }
}
