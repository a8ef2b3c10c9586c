//! The writer's side of blobs: which large parts it has written, under which reference ids,
//! and the `blob` and `forget` lines that tell a reader.
//!
//! Each distinct large part is written once, as a `blob` line, before the first record that
//! refers to it; a string or byte string that resembles an earlier one (the same first
//! [`FINGERPRINT`] bytes) is written as a delta against it. The cache holds at most
//! [`BUDGET`] bytes of content: beyond that it forgets the least recently used blobs (never one
//! the record being written refers to) and says so in a `forget` line, so a reader holds no
//! more than the writer. A part seen again after its blob was forgotten is written anew.

use super::compact::{write_str, Blobs};
use super::delta::{diff, Piece};
use std::collections::{BTreeMap, HashMap};

/// Bytes of content the cache (and so any reader) holds at most, besides the blobs the record
/// being written refers to.
pub const BUDGET: usize = 32 << 20;
/// Strings and byte strings from this size are written as deltas when a similar one is known.
const DELTA_MIN: usize = 256;
/// How many leading bytes say that two strings may be similar.
const FINGERPRINT: usize = 16;
/// Bookkeeping bytes charged per blob besides its content.
const OVERHEAD: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Value,
    String,
    Bytes,
}

struct Entry {
    kind: Kind,
    content: Box<[u8]>,
    tick: u64,
    hash: u64,
    fingerprint: Option<[u8; FINGERPRINT]>,
}

/// The blobs written so far and not forgotten.
pub struct BlobCache {
    next_id: u64,
    // Keyed lookups only, never iterated: what is written (and evicted, in `lru` order)
    // does not depend on hash order.
    entries: HashMap<u64, Entry>,
    by_hash: HashMap<(Kind, u64), u64>,
    /// Last use → id, oldest first.
    lru: BTreeMap<u64, u64>,
    tick: u64,
    size: usize,
    budget: usize,
    /// Blobs used at or after this tick belong to the record being written: never forgotten.
    pin_from: u64,
    /// The latest blob with a given kind and fingerprint: the base of the next delta.
    bases: HashMap<(Kind, [u8; FINGERPRINT]), u64>,
    /// `blob` and `forget` lines to write before the next record.
    pub pending: Vec<u8>,
    /// Counters, for the writer's report.
    pub stats: CacheStats,
}

/// What the cache wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub blobs: u64,
    pub deltas: u64,
    pub refs: u64,
    pub forgotten: u64,
}

impl Default for BlobCache {
    fn default() -> Self {
        BlobCache::with_budget(BUDGET)
    }
}

impl BlobCache {
    /// A cache holding at most `budget` bytes of content.
    pub fn with_budget(budget: usize) -> Self {
        BlobCache {
            next_id: 0,
            entries: HashMap::new(),
            by_hash: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            size: 0,
            budget,
            pin_from: u64::MAX,
            bases: HashMap::new(),
            pending: Vec::new(),
            stats: CacheStats::default(),
        }
    }

    /// A record starts: the blobs it refers to from now on stay until [`BlobCache::unpin`].
    pub fn pin(&mut self) {
        if self.pin_from == u64::MAX {
            self.pin_from = self.tick + 1;
        }
    }

    /// The record was written.
    pub fn unpin(&mut self) {
        self.pin_from = u64::MAX;
    }

    fn touch(&mut self, id: u64) {
        self.tick += 1;
        let e = self.entries.get_mut(&id).expect("a cached blob");
        self.lru.remove(&e.tick);
        e.tick = self.tick;
        self.lru.insert(self.tick, id);
    }

    fn lookup(&mut self, kind: Kind, content: &[u8]) -> (u64, Option<u64>) {
        let hash = content_hash(content);
        let hit = self
            .by_hash
            .get(&(kind, hash))
            .copied()
            .filter(|id| self.entries.get(id).is_some_and(|e| *e.content == *content));
        (hash, hit)
    }

    fn get(&mut self, kind: Kind, content: &[u8]) -> u64 {
        self.stats.refs += 1;
        let (hash, hit) = self.lookup(kind, content);
        if let Some(id) = hit {
            self.touch(id);
            return id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.stats.blobs += 1;
        let fingerprint = (kind != Kind::Value && content.len() >= DELTA_MIN)
            .then(|| content[..FINGERPRINT].try_into().expect("long enough"));
        self.write_blob(id, kind, content, fingerprint);
        self.entries.insert(
            id,
            Entry {
                kind,
                content: content.into(),
                tick: 0,
                hash,
                fingerprint,
            },
        );
        self.by_hash.insert((kind, hash), id);
        if let Some(f) = fingerprint {
            self.bases.insert((kind, f), id);
        }
        self.size += content.len() + OVERHEAD;
        self.touch(id);
        self.evict();
        id
    }

    fn write_blob(&mut self, id: u64, kind: Kind, content: &[u8], fp: Option<[u8; FINGERPRINT]>) {
        let out = &mut self.pending;
        out.extend_from_slice(b"{\"type\":\"blob\",\"ref\":");
        out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
        if kind == Kind::Value {
            out.extend_from_slice(b",\"value\":");
            out.extend_from_slice(content);
            out.extend_from_slice(b"}\n");
            return;
        }
        let text = std::str::from_utf8(content).ok();
        let key: &[u8] = match (kind, text) {
            (Kind::String, _) => b"\"string\":",
            (_, Some(_)) => b"\"bytes\":",
            (_, None) => b"\"base64\":",
        };
        let literal = |out: &mut Vec<u8>, piece: &[u8]| match text {
            Some(_) => write_str(out, std::str::from_utf8(piece).expect("cut at a boundary")),
            None => {
                out.push(b'"');
                super::base64::encode(piece, out);
                out.push(b'"');
            }
        };
        let base = fp
            .and_then(|f| self.bases.get(&(kind, f)).copied())
            .and_then(|b| self.entries.get(&b).map(|e| (b, e)))
            .and_then(|(b, e)| Some((b, diff(&e.content, content, text.is_some())?)));
        match base {
            Some((b, pieces)) => {
                self.stats.deltas += 1;
                out.extend_from_slice(b",\"base\":");
                out.extend_from_slice(itoa::Buffer::new().format(b).as_bytes());
                out.push(b',');
                out.extend_from_slice(key);
                out.push(b'[');
                for (i, p) in pieces.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    match *p {
                        Piece::Copy { at, len } => {
                            out.push(b'[');
                            out.extend_from_slice(itoa::Buffer::new().format(at).as_bytes());
                            out.push(b',');
                            out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
                            out.push(b']');
                        }
                        Piece::Literal { from, to } => literal(out, &content[from..to]),
                    }
                }
                out.extend_from_slice(b"]}\n");
            }
            None => {
                out.push(b',');
                out.extend_from_slice(key);
                literal(out, content);
                out.extend_from_slice(b"}\n");
            }
        }
    }

    /// Forgets the least recently used blobs while over budget (never pinned ones), in one
    /// `forget` line.
    fn evict(&mut self) {
        let mut gone = Vec::new();
        while self.size > self.budget {
            let Some((&tick, &id)) = self.lru.iter().next() else {
                break;
            };
            if tick >= self.pin_from {
                break;
            }
            self.lru.remove(&tick);
            let e = self.entries.remove(&id).expect("listed blobs are cached");
            self.size -= e.content.len() + OVERHEAD;
            if self.by_hash.get(&(e.kind, e.hash)) == Some(&id) {
                self.by_hash.remove(&(e.kind, e.hash));
            }
            if let Some(f) = e.fingerprint {
                if self.bases.get(&(e.kind, f)) == Some(&id) {
                    self.bases.remove(&(e.kind, f));
                }
            }
            gone.push(id);
        }
        if gone.is_empty() {
            return;
        }
        self.stats.forgotten += gone.len() as u64;
        self.pending
            .extend_from_slice(b"{\"type\":\"forget\",\"refs\":[");
        for (i, id) in gone.iter().enumerate() {
            if i > 0 {
                self.pending.push(b',');
            }
            self.pending
                .extend_from_slice(itoa::Buffer::new().format(*id).as_bytes());
        }
        self.pending.extend_from_slice(b"]}\n");
    }
}

impl Blobs for BlobCache {
    fn value(&mut self, text: &[u8]) -> Option<u64> {
        Some(self.get(Kind::Value, text))
    }
    fn string(&mut self, s: &str) -> Option<u64> {
        Some(self.get(Kind::String, s.as_bytes()))
    }
    fn bytes(&mut self, b: &[u8]) -> Option<u64> {
        Some(self.get(Kind::Bytes, b))
    }
}

/// A fast 64-bit hash of `bytes` (multiply-rotate over 8-byte words). Only the writer uses it,
/// to find content it has written; a match is confirmed by comparing the bytes, so a collision
/// costs a duplicate blob, never a wrong reference.
fn content_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^ (h >> 29)
}
