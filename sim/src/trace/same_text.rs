//! Comparing a recorded payload with a replayed one as JSON text, without building JSON
//! values: replay's fast path.
//!
//! Both texts are compact JSON; each may hold references `{"$ref":ID}`: the recorded text into
//! the trace's blobs, the replayed text (ids from [`LOCAL`] on) into a list of the replayed
//! payload's own large strings and byte strings. [`same_text`] walks the two texts together,
//! following references on either side, and says `true` only if they spell the same JSON
//! token for token once every reference is replaced by its content (a byte string by its
//! array of numbers). Same text means same value, so `true` is always right; `false` means
//! "not the same text" (a real difference, or the same value written another way, such as
//! fields in another order or a reference it cannot follow), and the caller then compares the
//! parsed values, which decides.

use super::compact::write_str;
use super::table::{compact_ref, Blob, BlobTable};

/// Refs of the replayed side's large strings and byte strings start here, far from any id a
/// trace uses.
pub const LOCAL: u64 = 1 << 62;

/// How deep blobs may nest in blobs before the comparison gives up (and the caller decides).
const MAX_DEPTH: u32 = 256;

/// Whether `recorded` (refs into `blobs`) and `replayed` (refs into `local`) are the same
/// JSON text once references are followed. See the module's comment for what `false` means.
pub fn same_text(recorded: &[u8], replayed: &[u8], blobs: &BlobTable, local: &[Blob]) -> bool {
    if recorded == replayed && find_ref(recorded).is_none() {
        return true;
    }
    let mut c = Cmp {
        blobs,
        local,
        scratch: Vec::new(),
    };
    let (mut r, mut p) = (Cur { s: recorded, i: 0 }, Cur { s: replayed, i: 0 });
    c.seq(&mut r, &mut p, 0) && p.done()
}

/// Where the next reference starts in `text`. In valid JSON the bytes `{"$ref":` can only
/// begin an object (inside a string the quote would be escaped), so a byte search finds them.
fn find_ref(text: &[u8]) -> Option<usize> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"{\"$ref\":"));
    FINDER.find(text)
}

/// A position in a text.
struct Cur<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn done(&self) -> bool {
        self.i == self.s.len()
    }
    fn rest(&self) -> &'a [u8] {
        &self.s[self.i..]
    }
}

struct Cmp<'a> {
    blobs: &'a BlobTable,
    local: &'a [Blob],
    scratch: Vec<u8>,
}

impl<'a> Cmp<'a> {
    /// The blob of the reference at the start of `c` (recorded or replayed side) and the
    /// reference's length; None if it is not a reference this can follow.
    fn follow(&self, c: &Cur<'_>, recorded: bool) -> Option<(usize, &'a Blob)> {
        let (id, len) = compact_ref(c.rest())?;
        let blob = if recorded {
            self.blobs.get(id)?
        } else {
            self.local
                .get(usize::try_from(id.checked_sub(LOCAL)?).ok()?)?
        };
        Some((len, blob))
    }

    /// Compares the rest of `r` with what follows in `p`, moving `p` past it. Between
    /// references both texts must agree byte for byte; at a reference, what it stands for is
    /// compared instead: a value blob's text in turn, a string or byte string whole. Since the
    /// texts agree up to there, both are at the start of a value.
    fn seq(&mut self, r: &mut Cur<'_>, p: &mut Cur<'_>, depth: u32) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        loop {
            let (rr, pr) = (r.rest(), p.rest());
            let qr = find_ref(rr).unwrap_or(rr.len());
            let qp = find_ref(pr).unwrap_or(pr.len());
            let k = qr.min(qp);
            if pr.len() < k || rr[..k] != pr[..k] {
                return false;
            }
            r.i += k;
            p.i += k;
            if r.done() {
                return true;
            }
            if k == qr {
                let Some((len, blob)) = self.follow(r, true) else {
                    return false;
                };
                r.i += len;
                let same = match blob {
                    Blob::Value(v) => {
                        let mut inner = Cur {
                            s: v.text().as_bytes(),
                            i: 0,
                        };
                        self.seq(&mut inner, p, depth + 1)
                    }
                    _ if k == qp => match self.follow(p, false) {
                        Some((plen, other)) => {
                            p.i += plen;
                            match (blob, other) {
                                (Blob::Str(a), Blob::Str(b)) => a == b,
                                (Blob::Bytes(a), Blob::Bytes(b)) => a == b,
                                _ => false,
                            }
                        }
                        None => false,
                    },
                    _ => self.blob_vs_text(blob, p),
                };
                if !same {
                    return false;
                }
            } else {
                let Some((len, blob)) = self.follow(p, false) else {
                    return false;
                };
                p.i += len;
                if !self.blob_vs_text(blob, r) {
                    return false;
                }
            }
        }
    }

    /// A string or byte string blob against the value written at `c`: the same text as the
    /// blob's content written inline?
    fn blob_vs_text(&mut self, blob: &Blob, c: &mut Cur<'_>) -> bool {
        self.scratch.clear();
        match blob {
            Blob::Str(s) => write_str(&mut self.scratch, s),
            Blob::Bytes(b) => {
                self.scratch.push(b'[');
                for (i, x) in b.iter().enumerate() {
                    if i > 0 {
                        self.scratch.push(b',');
                    }
                    self.scratch
                        .extend_from_slice(itoa::Buffer::new().format(*x).as_bytes());
                }
                self.scratch.push(b']');
            }
            Blob::Value(_) => return false,
        }
        // The written string (array) ends where the blob's text does: its closing quote
        // (bracket) is read the same way in both.
        if c.rest().starts_with(&self.scratch) {
            c.i += self.scratch.len();
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(lines: &[&str]) -> BlobTable {
        let mut t = BlobTable::default();
        for l in lines {
            t.define_text(l).unwrap();
        }
        t
    }

    #[test]
    fn references_on_either_side_are_followed() {
        let t = table(&[
            r#"{"type":"blob","ref":2,"string":"long text"}"#,
            r#"{"type":"blob","ref":1,"value":{"a":[1,2],"s":{"$ref":2}}}"#,
            r#"{"type":"blob","ref":3,"bytes":"AB"}"#,
        ]);
        let local = vec![Blob::Str("long text".into()), Blob::Bytes(b"AB".to_vec())];
        let rec = br#"{"x":{"$ref":1},"b":{"$ref":3}}"#;
        let rep = format!(
            r#"{{"x":{{"a":[1,2],"s":{{"$ref":{}}}}},"b":{{"$ref":{}}}}}"#,
            LOCAL,
            LOCAL + 1
        );
        assert!(same_text(rec, rep.as_bytes(), &t, &local));
        // Inline on the replayed side: a string as text, bytes as numbers.
        let rep = br#"{"x":{"a":[1,2],"s":"long text"},"b":[65,66]}"#;
        assert!(same_text(rec, rep, &t, &local));
    }

    #[test]
    fn any_difference_is_not_the_same_text() {
        let t = table(&[r#"{"type":"blob","ref":1,"value":{"a":[1,2],"s":"x\"y"}}"#]);
        let rec = br#"{"x":{"$ref":1},"n":5}"#;
        assert!(same_text(
            rec,
            br#"{"x":{"a":[1,2],"s":"x\"y"},"n":5}"#,
            &t,
            &[]
        ));
        for rep in [
            &br#"{"x":{"a":[1,2],"s":"x\"z"},"n":5}"#[..],
            br#"{"x":{"a":[1,2,3],"s":"x\"y"},"n":5}"#,
            br#"{"x":{"a":[1,2],"s":"x\"y"},"n":50}"#,
            br#"{"x":{"a":[1,2],"s":"x\"y"},"m":5}"#,
            br#"{"x":{"a":[1,2],"s":"x\"y"}}"#,
            br#"{"x":{"a":[1,2],"s":"x\"y"},"n":5,"o":1}"#,
            br#"{"x":{"a":[1],"s":"x\"y"},"n":5}"#,
            br#"{"x":{"$ref":1},"n":5}"#,
        ] {
            assert!(
                !same_text(rec, rep, &t, &[]),
                "{}",
                String::from_utf8_lossy(rep)
            );
        }
        // A reference to a blob that is not there is never the same.
        assert!(!same_text(br#"{"$ref":9}"#, br#"{"$ref":9}"#, &t, &[]));
    }
}
