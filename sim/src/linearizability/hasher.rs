//! A small deterministic hasher for the search's memo tables.

use std::hash::{BuildHasher, Hasher};

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
    use std::hash::Hash;

    #[test]
    fn equal_values_hash_equal_and_bytes_count() {
        let a: &[u64] = &[1, 2, 3];
        let b: Vec<u64> = vec![1, 2, 3];
        assert_eq!(BuildMixHasher.hash_one(a), BuildMixHasher.hash_one(&b[..]));
        assert_ne!(BuildMixHasher.hash_one(a), BuildMixHasher.hash_one(&b[..2]));
        // A short tail is not confused with zero padding.
        let h = |bytes: &[u8]| {
            let mut m = MixHasher::default();
            m.write(bytes);
            m.finish()
        };
        assert_ne!(h(b"ab"), h(b"ab\0"));
        let mut m = MixHasher::default();
        "x".hash(&mut m);
        assert_eq!(m.finish(), BuildMixHasher.hash_one("x"));
    }
}
