//! Deltas between byte strings: a new string as pieces copied from an earlier one (its base)
//! and literal pieces in between. Successive snapshots of a service, or a value read again
//! after appends, differ from their predecessor in a few places, so a delta is a small fraction
//! of the string.
//!
//! The search is greedy and local, and costs little more than comparing the two strings: from
//! the end of each copied run it looks for where base and target agree again within a bounded
//! window ([`LOOK`]), and gives up (the caller then stores the string whole) when the strings
//! do not resynchronize or the delta would not be small.

/// One piece of a delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// `len` bytes of the base from `at`.
    Copy { at: usize, len: usize },
    /// The target's bytes `from..to`, written literally.
    Literal { from: usize, to: usize },
}

/// Width of the windows that resynchronize base and target.
const WINDOW: usize = 16;
/// How far ahead (bytes) a resynchronization looks.
const LOOK: usize = 4096;
/// How far into the base a resynchronization may skip (deleted or changed bytes).
const SKIP: usize = 512;
/// Copies shorter than this are written as literals (a copy costs about this much text).
const MIN_COPY: usize = 12;
/// Bytes of text a piece costs besides its literal bytes (`[12345,678],` or `"",`).
const PIECE_COST: usize = 10;

/// The delta of `target` against `base`, or `None` if it would not be much smaller than
/// `target` itself. With `utf8`, every literal piece is valid UTF-8 (cuts fall on character
/// boundaries of `target`, which must then be valid UTF-8).
pub fn diff(base: &[u8], target: &[u8], utf8: bool) -> Option<Vec<Piece>> {
    let boundary = |j: usize| !utf8 || j >= target.len() || (target[j] & 0xC0) != 0x80;
    // A delta is worth writing while its text is at most half the target's (a piece costs
    // about `PIECE_COST` bytes of text besides its literal bytes).
    let budget = target.len() / 2;
    let cost = |pieces: usize, literal: usize| literal + PIECE_COST * pieces;
    let mut pieces: Vec<Piece> = Vec::new();
    let mut literal_bytes = 0;
    let (mut i, mut j) = (0usize, 0usize);
    let mut lit_start = 0usize;
    while j < target.len() {
        // Extend the copy at (i, j) as far as the two agree.
        let mut k = common_prefix(&base[i.min(base.len())..], &target[j..]);
        while k > 0 && !boundary(j + k) {
            k -= 1;
        }
        if k >= MIN_COPY || (k > 0 && j + k == target.len()) {
            if lit_start < j {
                literal_bytes += j - lit_start;
                pieces.push(Piece::Literal {
                    from: lit_start,
                    to: j,
                });
            }
            match pieces.last_mut() {
                Some(Piece::Copy { at, len }) if *at + *len == i => *len += k,
                _ => pieces.push(Piece::Copy { at: i, len: k }),
            }
            i += k;
            j += k;
            lit_start = j;
            continue;
        }
        if cost(pieces.len(), literal_bytes) > budget {
            return None;
        }
        // Resynchronize: where do base and target agree again? If nowhere, the rest of the
        // target is a literal, but for what it shares with the end of the base.
        let Some((ni, nj)) = resync(base, i, target, j) else {
            let mut suffix = common_suffix(&base[i.min(base.len())..], &target[j..]);
            while suffix > 0 && !boundary(target.len() - suffix) {
                suffix -= 1;
            }
            let end = target.len() - suffix;
            if lit_start < end {
                literal_bytes += end - lit_start;
                pieces.push(Piece::Literal {
                    from: lit_start,
                    to: end,
                });
            }
            if suffix > 0 {
                pieces.push(Piece::Copy {
                    at: base.len() - suffix,
                    len: suffix,
                });
            }
            lit_start = target.len();
            break;
        };
        // Move the cut to a character boundary inside the agreeing window.
        let mut shift = 0;
        while !boundary(nj + shift) {
            shift += 1;
        }
        (i, j) = (ni + shift, nj + shift);
    }
    if lit_start < target.len() {
        literal_bytes += target.len() - lit_start;
        pieces.push(Piece::Literal {
            from: lit_start,
            to: target.len(),
        });
    }
    (cost(pieces.len(), literal_bytes) <= budget).then_some(pieces)
}

/// A place `(i', j')` with `i' >= i`, `j' >= j` where `WINDOW` bytes of base and target
/// agree: first an insertion into the target (the base's next bytes found ahead in the
/// target, perhaps after a few changed base bytes), then a deletion from the base.
fn resync(base: &[u8], i: usize, target: &[u8], j: usize) -> Option<(usize, usize)> {
    let t_end = (j + LOOK).min(target.len());
    let b_end = (i + LOOK).min(base.len());
    let mut s = 0;
    while s <= SKIP && i + s + WINDOW <= base.len() {
        let pat = &base[i + s..i + s + WINDOW];
        if let Some(p) = memchr::memmem::find(&target[j..t_end], pat) {
            return Some((i + s, j + p));
        }
        s += WINDOW / 2;
    }
    let mut s = 0;
    while s <= SKIP && j + s + WINDOW <= target.len() {
        let pat = &target[j + s..j + s + WINDOW];
        if let Some(p) = memchr::memmem::find(&base[i.min(b_end)..b_end], pat) {
            return Some((i + p, j + s));
        }
        s += WINDOW / 2;
    }
    // Far away in the base (a moved region)?
    if j + WINDOW <= target.len() {
        let pat = &target[j..j + WINDOW];
        if let Some(p) = memchr::memmem::find(base, pat) {
            return Some((p, j));
        }
    }
    None
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    // Compare 8 bytes at a time; the tail byte by byte.
    let mut k = 0;
    while k + 8 <= n {
        let x = u64::from_le_bytes(a[k..k + 8].try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(b[k..k + 8].try_into().expect("8 bytes"));
        if x != y {
            return k + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        k += 8;
    }
    while k < n && a[k] == b[k] {
        k += 1;
    }
    k
}

/// Rebuilds a target from its base and the pieces read from a trace (copies are checked
/// against the base's length).
pub fn apply(base: &[u8], pieces: &[DeltaPiece]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            DeltaPiece::Copy(at, len) => {
                let end = at
                    .checked_add(*len)
                    .filter(|&e| e <= base.len())
                    .ok_or_else(|| {
                        format!(
                            "a copy of {len} bytes from {at} reaches past the base's {} bytes",
                            base.len()
                        )
                    })?;
                out.extend_from_slice(&base[*at..end]);
            }
            DeltaPiece::Bytes(b) => out.extend_from_slice(b),
        }
    }
    Ok(out)
}

/// A piece of a delta as read from a trace: a copy from the base, or literal bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeltaPiece {
    Copy(usize, usize),
    Bytes(Vec<u8>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rebuild(base: &[u8], target: &[u8], pieces: &[Piece]) -> Vec<u8> {
        let read: Vec<DeltaPiece> = pieces
            .iter()
            .map(|p| match *p {
                Piece::Copy { at, len } => DeltaPiece::Copy(at, len),
                Piece::Literal { from, to } => DeltaPiece::Bytes(target[from..to].to_vec()),
            })
            .collect();
        apply(base, &read).unwrap()
    }

    /// A key/value store's snapshot: each key's value is its history of appends.
    fn store(keys: usize, appends: &[(usize, &str)]) -> Vec<u8> {
        let mut vals: Vec<String> = (0..keys)
            .map(|k| (0..30).map(|i| format!("x {k} {i} y")).collect())
            .collect();
        for (k, s) in appends {
            vals[*k].push_str(s);
        }
        let body: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(k, v)| format!("\"{k}\":\"{v}\""))
            .collect();
        format!("{{\"data\":{{{}}}}}", body.join(",")).into_bytes()
    }

    #[test]
    fn a_few_insertions_give_a_small_delta_that_rebuilds_the_target() {
        let base = store(20, &[]);
        let target = store(20, &[(3, "x 3 30 y"), (7, "x 7 30 y"), (19, "x 19 30 y")]);
        let pieces = diff(&base, &target, true).expect("a delta");
        assert_eq!(rebuild(&base, &target, &pieces), target);
        let literal: usize = pieces
            .iter()
            .map(|p| match p {
                Piece::Literal { from, to } => to - from,
                Piece::Copy { .. } => 0,
            })
            .sum();
        assert!(
            literal < target.len() / 10,
            "{literal} literal bytes of {}",
            target.len()
        );
    }

    #[test]
    fn deletions_and_appends_rebuild() {
        let target = store(20, &[]);
        let base = store(20, &[(3, "x 3 30 y"), (10, "x 10 30 y")]);
        let pieces = diff(&base, &target, true).expect("a delta");
        assert_eq!(rebuild(&base, &target, &pieces), target);
        let mut longer = base.clone();
        longer.extend_from_slice(b"and a tail");
        let pieces = diff(&base, &longer, true).expect("a delta");
        assert_eq!(rebuild(&base, &longer, &pieces), longer);
    }

    #[test]
    fn unrelated_strings_give_no_delta() {
        let base: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let target: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 241) as u8).collect();
        assert_eq!(diff(&base, &target, false), None);
    }

    #[test]
    fn literal_cuts_fall_on_character_boundaries() {
        let base = "αβγδ".repeat(200);
        let target = format!("{}ζ{}", &base[..400], &base[400..]);
        let pieces = diff(base.as_bytes(), target.as_bytes(), true).expect("a delta");
        for p in &pieces {
            if let Piece::Literal { from, to } = p {
                assert!(target.is_char_boundary(*from) && target.is_char_boundary(*to));
            }
        }
        assert_eq!(
            rebuild(base.as_bytes(), target.as_bytes(), &pieces),
            target.as_bytes()
        );
    }
}
