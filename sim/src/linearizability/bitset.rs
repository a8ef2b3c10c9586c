//! A fixed-size bit set and a small deterministic hasher for the search's memo cache.

use std::hash::{BuildHasher, Hash, Hasher};

/// A fixed-capacity set of small integers (operation indices within one partition).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Bitset {
    words: Box<[u64]>,
}

impl Bitset {
    pub(crate) fn new(bits: usize) -> Self {
        Bitset {
            words: vec![0; bits.div_ceil(64).max(1)].into_boxed_slice(),
        }
    }

    #[inline]
    pub(crate) fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    #[inline]
    pub(crate) fn clear(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
}

impl Hash for Bitset {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for &w in self.words.iter() {
            state.write_u64(w);
        }
    }
}

/// Multiply-rotate hasher: fast, deterministic (no random seed), good enough for a memo table
/// whose keys are not attacker-controlled.
#[derive(Default, Clone, Copy)]
pub(crate) struct MixHasher {
    hash: u64,
}

const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

impl MixHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(MIX);
    }
}

impl Hasher for MixHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(c);
            self.add(u64::from_le_bytes(buf));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Final avalanche so that the low bits used for bucketing depend on every input bit.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

#[derive(Default, Clone, Copy)]
pub(crate) struct BuildMixHasher;

impl BuildHasher for BuildMixHasher {
    type Hasher = MixHasher;
    fn build_hasher(&self) -> MixHasher {
        MixHasher::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_clear_count() {
        let mut b = Bitset::new(130);
        b.set(0);
        b.set(64);
        b.set(129);
        assert!(b.contains(64) && b.contains(129) && !b.contains(1));
        assert_eq!(b.count(), 3);
        b.clear(64);
        assert!(!b.contains(64));
        assert_eq!(b.count(), 2);
        let mut c = Bitset::new(130);
        c.set(0);
        c.set(129);
        assert_eq!(b, c);
        assert_eq!(BuildMixHasher.hash_one(&b), BuildMixHasher.hash_one(&c));
    }

    #[test]
    fn empty_bitset_has_a_word() {
        let b = Bitset::new(0);
        assert_eq!(b.count(), 0);
    }
}
