//! A 64-bit digest of the service state (the key/value map and the duplicate table) that the
//! store keeps up to date as it changes, so replicas can compare states after every apply
//! without hashing the whole state each time.
//!
//! The digest is a wrapping sum of one term per key and one per client, so it does not depend
//! on the order of changes. A value is hashed with a polynomial rolling hash, which extends by
//! an appended suffix without re-reading the value. Not cryptographic: it detects accidental
//! divergence, not an adversary.

/// The rolling-hash modulus: the Mersenne prime 2^61 - 1.
const P: u64 = (1 << 61) - 1;
/// The rolling-hash base (any number in 2..P).
const BASE: u64 = 0x0dd5_2c4e_9a1b_3f67 % P;

/// `a + small mod P` for `a < P` and `small <= 256` (a byte term): the sum is below 2P, so one
/// subtraction reduces it.
fn add_small(a: u64, small: u64) -> u64 {
    debug_assert!(a < P && small <= 256);
    let r = a + small;
    if r >= P {
        r - P
    } else {
        r
    }
}

/// `a * b mod P` for `a, b < P`. P is a Mersenne prime, so the 122-bit product reduces with a
/// shift, a mask and one conditional subtraction instead of a 128-bit division (which cost
/// more than everything else the store does).
fn mul(a: u64, b: u64) -> u64 {
    debug_assert!(a < P && b < P);
    let p = u128::from(a) * u128::from(b);
    // p = hi * 2^61 + lo and 2^61 = 1 (mod P); lo < 2^61 and hi < 2^61, so the sum < 2P.
    let r = (p as u64 & P) + (p >> 61) as u64;
    if r >= P {
        r - P
    } else {
        r
    }
}

fn pow(mut base: u64, mut exp: u64) -> u64 {
    let mut acc = 1;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul(acc, base);
        }
        base = mul(base, base);
        exp >>= 1;
    }
    acc
}

/// The polynomial hash of a string and its length: `hash(s) = Σ (s[i] + 1) · BASE^(n-1-i)`
/// mod P. Invariant: `of(a + b) == of(a).then(of(b))`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Poly {
    hash: u64,
    len: u64,
}

impl Poly {
    /// The hash of `s`.
    pub fn of(s: &str) -> Poly {
        let hash = s
            .bytes()
            .fold(0, |h, b| add_small(mul(h, BASE), u64::from(b) + 1));
        Poly {
            hash,
            len: s.len() as u64,
        }
    }

    /// The hash of `self`'s string followed by `next`'s.
    pub fn then(self, next: Poly) -> Poly {
        Poly {
            hash: (mul(self.hash, pow(BASE, next.len)) + next.hash) % P,
            len: self.len + next.len,
        }
    }
}

/// A 64-bit finalizer (splitmix64's): spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Folds `parts` into one word, order-sensitively: from the seed (the first fraction digits of
/// pi), `acc = mix(acc ^ mix(part))` for each part in turn.
fn combine(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x243f_6a88_85a3_08d3, |acc, &p| mix(acc ^ mix(p)))
}

/// The digest term of key `key` holding a value hashed `value`.
pub fn key_term(key: &str, value: Poly) -> u64 {
    let k = Poly::of(key);
    combine(&[1, k.hash, k.len, value.hash, value.len])
}

/// The digest term of a client's duplicate-table entry: its last request `seq` and, for a
/// `Get`, the hash of the value it returned.
pub fn dedup_term(client: u64, seq: u64, value: Option<Poly>) -> u64 {
    match value {
        Some(v) => combine(&[2, client, seq, 1, v.hash, v.len]),
        None => combine(&[2, client, seq, 0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_term_added_near_the_modulus_wraps_around() {
        // Hashes land this close to P about once in 2^53 bytes, so no string test reaches it.
        assert_eq!(add_small(P - 1, 1), 0);
        assert_eq!(add_small(P - 1, 256), 255);
        assert_eq!(add_small(P - 257, 256), P - 1);
        assert_eq!(add_small(5, 256), 261);
    }

    #[test]
    fn mersenne_reduction_matches_the_division() {
        let slow = |a: u64, b: u64| ((u128::from(a) * u128::from(b)) % u128::from(P)) as u64;
        let mut x = 0x1234_5678_9abc_def0_u64;
        let edges = [0, 1, 2, P - 1, P - 2, 1 << 60, (1 << 60) + 1, BASE];
        for &a in &edges {
            for &b in &edges {
                assert_eq!(mul(a, b), slow(a, b), "{a} * {b}");
            }
        }
        for _ in 0..10_000 {
            x = mix(x);
            let a = x % P;
            x = mix(x);
            let b = x % P;
            assert_eq!(mul(a, b), slow(a, b), "{a} * {b}");
        }
    }

    #[test]
    fn rolling_hash_extends_and_separates() {
        let parts = ["", "x 0 1 y", "ab", "", "ünï"];
        let mut acc = Poly::of("");
        let mut s = String::new();
        for p in parts {
            acc = acc.then(Poly::of(p));
            s.push_str(p);
            assert_eq!(acc, Poly::of(&s));
        }
        assert_ne!(Poly::of("ab"), Poly::of("ba"));
        assert_ne!(Poly::of(""), Poly::of("\0"));
        assert_ne!(key_term("a", Poly::of("b")), key_term("b", Poly::of("a")));
        assert_ne!(dedup_term(1, 2, None), dedup_term(1, 2, Some(Poly::of(""))));
        assert_ne!(dedup_term(1, 2, None), dedup_term(2, 1, None));
    }

    /// The hash is the documented polynomial over the documented modulus and base, computed
    /// here independently in 128-bit arithmetic (a different modulus or base, or bytes hashed
    /// without the `+ 1`, still extend and separate, so only the values show them).
    #[test]
    fn rolling_hash_is_the_documented_polynomial() {
        let p: u128 = (1 << 61) - 1;
        let base: u128 = 0x0dd5_2c4e_9a1b_3f67;
        let expected = |s: &str| {
            let hash = s
                .bytes()
                .fold(0u128, |h, b| (h * base + u128::from(b) + 1) % p);
            Poly {
                hash: hash as u64,
                len: s.len() as u64,
            }
        };
        for s in [
            "",
            "\0",
            "a",
            "ab",
            "ünï",
            "a much longer value, to wrap the modulus",
        ] {
            assert_eq!(Poly::of(s), expected(s), "{s:?}");
        }
        assert_eq!(Poly::of("\0").hash, 1);
        assert_eq!(Poly::of("ab").hash, 836_251_259_449_001_467);
        // The base is not degenerate: every byte counts, not only the last one.
        assert_ne!(Poly::of("ab"), Poly::of("cb"));
    }

    /// `mix` is splitmix64's finalizer: applied to splitmix64's state sequence from seed 0 it
    /// yields that generator's published first outputs.
    #[test]
    fn mix_is_splitmix64() {
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        let outputs: Vec<u64> = (1..=3).map(|i| mix(GAMMA.wrapping_mul(i))).collect();
        assert_eq!(
            outputs,
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f
            ]
        );
    }

    /// The terms are pinned, so a change to the digest's definition is a deliberate, visible
    /// one: the values were computed by a separate script from the doc comments above
    /// (polynomial hash, splitmix64 finalizer, `combine`'s seed and fold, the term layouts).
    #[test]
    fn terms_are_pinned() {
        assert_eq!(key_term("k", Poly::of("v")), 0x1a9a_e312_4c64_8669);
        assert_eq!(dedup_term(7, 3, None), 0xf599_df7a_4e23_10b6);
        assert_eq!(dedup_term(7, 3, Some(Poly::of("x"))), 0x1675_1f7e_f11a_08b6);
    }
}
