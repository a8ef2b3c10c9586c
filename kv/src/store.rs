//! The replicated state machine: the key/value map and the duplicate table.

use std::collections::BTreeMap;
use std::io::Write as _;

use serde::{Deserialize, Serialize};

use crate::bugs::{Bug, Bugs};
use crate::command::{ClientId, KvCommand, Op};
use crate::digest::{self, Poly};

/// The last request a client had executed, and its result.
/// Invariant: `value` is `Some` iff that request was a `Get`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executed {
    /// The client's highest executed request number.
    pub seq: u64,
    /// The `Get` result of that request.
    pub value: Option<String>,
}

/// Outcome of applying one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The `Get` result (`Some` exactly for a `Get`).
    pub value: Option<String>,
    /// The request had already executed (a write was skipped).
    pub duplicate: bool,
}

/// Key/value map plus the at-most-once table, and a digest of both kept up to date.
/// Invariants: for every client, `dedup[client].seq` is the highest seq of that client ever
/// executed, and a `Put`/`Append` with `seq <= dedup[client].seq` never changes `data`;
/// `digest()` equals [`KvStore::from_parts`] of the same map and table's digest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStore {
    data: BTreeMap<String, String>,
    dedup: BTreeMap<ClientId, Executed>,
    /// Per key of `data`: its value's rolling hash and JSON encoding, kept as the value
    /// changes so a snapshot copies them instead of hashing and escaping the whole map.
    values: BTreeMap<String, ValueCache>,
    /// The digest term of every entry of `dedup`.
    dedup_terms: BTreeMap<ClientId, u64>,
    /// Wrapping sum of the key terms and the duplicate-table terms.
    digest: u64,
}

/// What the store keeps beside one value. Invariant: `hash == Poly::of(value)` and `json` is
/// the value's JSON string body (escaped, without the quotes), exactly as `serde_json` writes
/// it. Escaping is character by character, so an append extends `json` by the suffix's own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ValueCache {
    hash: Poly,
    json: String,
}

/// Appends the JSON string body of `s` (`serde_json`'s quoted string without its quotes) to
/// `out`: `"` and `\\` escaped with a backslash, control characters as `\\b \\t \\n \\f \\r`
/// or `\\u00xx` (lowercase hex), everything else as is. Written here rather than through
/// `serde_json`, which needs a fresh quoted string per call; tests hold the two equal.
fn push_json_body(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    if !s.bytes().any(needs) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 0xf)] as char);
            }
            c => out.push(c),
        }
    }
}

/// Appends `s` as a JSON string, quotes included, to `out`.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let mut body = String::new();
    let bytes = if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        push_json_body(&mut body, s);
        body.as_bytes()
    } else {
        s.as_bytes()
    };
    out.push(b'"');
    out.extend_from_slice(bytes);
    out.push(b'"');
}

/// The JSON string body of `s`.
fn json_body(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_json_body(&mut out, s);
    out
}

impl KvStore {
    /// A store holding `data` and `dedup` (a restored snapshot).
    pub fn from_parts(
        data: BTreeMap<String, String>,
        dedup: BTreeMap<ClientId, Executed>,
    ) -> KvStore {
        let mut s = KvStore::default();
        for (key, value) in data {
            s.put(key, value);
        }
        for (client, done) in dedup {
            let hash = done.value.as_deref().map(Poly::of);
            s.record(client, done, hash);
        }
        s
    }

    /// The key/value map.
    pub fn data(&self) -> &BTreeMap<String, String> {
        &self.data
    }

    /// The duplicate table: each client's last executed request.
    pub fn dedup(&self) -> &BTreeMap<ClientId, Executed> {
        &self.dedup
    }

    /// A digest of the whole state (map and duplicate table): equal states, equal digests.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The value of `key` as a `Get` sees it (`""` when missing).
    pub fn read(&self, key: &str) -> String {
        self.data.get(key).cloned().unwrap_or_default()
    }

    /// True if `client` already executed request `seq` (or a later one).
    pub fn executed(&self, client: ClientId, seq: u64) -> bool {
        self.executed_with(client, seq, Bugs::NONE)
    }

    /// [`KvStore::executed`], as the `DedupIgnoresClient` and `DedupEqualSeqOnly` bugs get it wrong.
    fn executed_with(&self, client: ClientId, seq: u64, bugs: Bugs) -> bool {
        if bugs.has(Bug::DedupIgnoresClient) {
            return self.dedup.values().any(|e| e.seq >= seq);
        }
        self.dedup.get(&client).is_some_and(|e| {
            if bugs.has(Bug::DedupEqualSeqOnly) {
                e.seq == seq
            } else {
                e.seq >= seq
            }
        })
    }

    /// Execute `cmd` unless it is a duplicate. A duplicate `Get` is re-read
    /// from the current state (its log position is inside the client's call).
    pub fn apply(&mut self, cmd: &KvCommand) -> Outcome {
        let out = self.apply_with(cmd, Bugs::NONE, true);
        debug_assert!(self.executed(cmd.client, cmd.seq));
        out
    }

    /// [`KvStore::apply`] with the server's deliberate bugs of the at-most-once rule; the
    /// duplicate table is left alone unless `record` (the `FollowerSkipsDedup` bug).
    pub(crate) fn apply_with(&mut self, cmd: &KvCommand, bugs: Bugs, record: bool) -> Outcome {
        let duplicate =
            !bugs.has(Bug::DedupAtSubmitOnly) && self.executed_with(cmd.client, cmd.seq, bugs);
        let value = match &cmd.op {
            Op::Get { key } => Some(self.read(key)),
            Op::Put { .. } | Op::Append { .. } if duplicate => None,
            Op::Put { key, value } => {
                self.put(key.clone(), value.clone());
                None
            }
            Op::Append { key, value } => {
                self.append(key, value);
                None
            }
        };
        if !duplicate && record {
            let hash = match &cmd.op {
                Op::Get { key } => Some(self.values.get(key).map(|v| v.hash).unwrap_or_default()),
                _ => None,
            };
            let done = Executed {
                seq: cmd.seq,
                value: value.clone(),
            };
            self.record(cmd.client, done, hash);
        }
        Outcome { value, duplicate }
    }

    fn put(&mut self, key: String, value: String) {
        let cache = self.cache_mut(&key);
        let old = std::mem::replace(
            cache,
            ValueCache {
                hash: Poly::of(&value),
                json: json_body(&value),
            },
        );
        let new = cache.hash;
        self.rehash(&key, old.hash, new);
        self.data.insert(key, value);
    }

    fn append(&mut self, key: &str, suffix: &str) {
        let cache = self.cache_mut(key);
        let old = cache.hash;
        cache.hash = old.then(Poly::of(suffix));
        push_json_body(&mut cache.json, suffix);
        let new = cache.hash;
        self.rehash(key, old, new);
        self.data
            .entry(key.to_string())
            .or_default()
            .push_str(suffix);
    }

    /// The cache entry of `key`, the empty value's (hash and body both empty) if it is new.
    fn cache_mut(&mut self, key: &str) -> &mut ValueCache {
        if !self.values.contains_key(key) {
            self.values.insert(key.to_string(), ValueCache::default());
        }
        self.values.get_mut(key).expect("just inserted")
    }

    /// Swap the key's digest term for its value's hash going from `old` to `new`; a key seen
    /// for the first time has no term yet (its `old` is the empty value's, unused).
    fn rehash(&mut self, key: &str, old: Poly, new: Poly) {
        if self.data.contains_key(key) {
            self.digest = self.digest.wrapping_sub(digest::key_term(key, old));
        }
        self.digest = self.digest.wrapping_add(digest::key_term(key, new));
    }

    /// The store as [`crate::snapshot`] encodes it: `{"data":{..},"dedup":{..}}` byte for byte
    /// as `serde_json` writes the map and table (`"dedup":null` without `with_dedup`), built
    /// from the cached value bodies.
    pub(crate) fn encode_json(&self, with_dedup: bool) -> Vec<u8> {
        let body: usize = self.values.values().map(|v| v.json.len()).sum::<usize>()
            + self
                .dedup
                .values()
                .filter_map(|d| d.value.as_ref())
                .map(String::len)
                .sum::<usize>();
        let mut out =
            Vec::with_capacity(body + 24 * self.values.len() + 40 * self.dedup.len() + 32);
        out.extend_from_slice(b"{\"data\":{");
        for (i, (key, v)) in self.values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(&mut out, key);
            out.extend_from_slice(b":\"");
            out.extend_from_slice(v.json.as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b"},\"dedup\":");
        if with_dedup {
            out.push(b'{');
            for (i, (client, done)) in self.dedup.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing to a Vec cannot fail.
                let _ = write!(out, "\"{client}\":{{\"seq\":{},\"value\":", done.seq);
                match &done.value {
                    None => out.extend_from_slice(b"null"),
                    Some(v) => push_json_str(&mut out, v),
                }
                out.push(b'}');
            }
            out.push(b'}');
        } else {
            out.extend_from_slice(b"null");
        }
        out.push(b'}');
        out
    }

    /// Record `client`'s last executed request; `hash` is the hash of its `Get` result.
    fn record(&mut self, client: ClientId, done: Executed, hash: Option<Poly>) {
        debug_assert_eq!(hash.is_some(), done.value.is_some());
        let term = digest::dedup_term(client, done.seq, hash);
        if let Some(old) = self.dedup_terms.insert(client, term) {
            self.digest = self.digest.wrapping_sub(old);
        }
        self.digest = self.digest.wrapping_add(term);
        self.dedup.insert(client, done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(client: ClientId, seq: u64, op: Op) -> KvCommand {
        KvCommand { client, seq, op }
    }

    #[test]
    fn semantics_and_at_most_once() {
        let mut s = KvStore::default();
        assert_eq!(s.apply(&cmd(1, 1, Op::get("a"))).value.as_deref(), Some(""));
        s.apply(&cmd(1, 2, Op::append("a", "x")));
        let dup = s.apply(&cmd(1, 2, Op::append("a", "x")));
        assert!(dup.duplicate);
        assert_eq!(s.read("a"), "x");
        s.apply(&cmd(2, 1, Op::append("a", "y")));
        // An old request of client 1 is never executed again.
        assert!(s.apply(&cmd(1, 1, Op::put("a", "z"))).duplicate);
        assert_eq!(s.read("a"), "xy");
        s.apply(&cmd(1, 3, Op::put("a", "z")));
        assert_eq!(s.read("a"), "z");
        let g = s.apply(&cmd(2, 2, Op::get("a")));
        assert_eq!(g.value.as_deref(), Some("z"));
        assert_eq!(s.dedup()[&2].value.as_deref(), Some("z"));
        assert_eq!(s.dedup()[&1].value, None);
    }

    #[test]
    fn executed_means_this_client_reached_that_seq() {
        let mut s = KvStore::default();
        assert!(!s.executed(1, 1));
        s.apply(&cmd(1, 2, Op::put("a", "x")));
        assert!(s.executed(1, 1) && s.executed(1, 2));
        assert!(!s.executed(1, 3));
        assert!(!s.executed(2, 1), "another client's seqs are its own");
    }

    #[test]
    fn the_digest_tells_maps_apart_with_the_same_duplicate_table() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let of = |pairs: &[(&str, &str)]| KvStore::from_parts(map(pairs), BTreeMap::new()).digest();
        let digests = [
            of(&[]),
            of(&[("a", "")]),
            of(&[("a", "1")]),
            of(&[("a", "2")]),
            of(&[("b", "1")]),
            of(&[("a", "1"), ("b", "1")]),
        ];
        for (i, d) in digests.iter().enumerate() {
            for e in &digests[i + 1..] {
                assert_ne!(d, e, "{digests:?}");
            }
        }
        // A put that changes a value moves the digest to the new map's.
        let mut s = KvStore::from_parts(map(&[("a", "1")]), BTreeMap::new());
        s.put("a".to_string(), "2".to_string());
        assert_eq!(s.digest(), of(&[("a", "2")]));
    }

    #[test]
    fn the_digest_follows_every_change_and_tells_states_apart() {
        let mut s = KvStore::default();
        let ops = [
            (1, 1, Op::put("a", "1")),
            (1, 2, Op::append("a", "x 1 2 y")),
            (2, 1, Op::append("b", "q")),
            (2, 1, Op::append("b", "q")),
            (1, 3, Op::get("a")),
            (3, 1, Op::get("missing")),
            (2, 2, Op::put("a", "")),
            (1, 2, Op::put("a", "late")),
            (2, 3, Op::append("a", "r")),
        ];
        let mut seen = vec![s.digest()];
        for (client, seq, op) in ops {
            s.apply(&KvCommand { client, seq, op });
            let fresh = KvStore::from_parts(s.data().clone(), s.dedup().clone());
            assert_eq!(s.digest(), fresh.digest());
            assert_eq!(s, fresh);
            seen.push(s.digest());
        }
        // Every op changed the digest but the two duplicate writes.
        seen.dedup();
        assert_eq!(seen.len(), 8);
        // The same map with another duplicate table differs.
        let mut t = s.clone();
        t.apply_with(
            &KvCommand {
                client: 4,
                seq: 1,
                op: Op::get("a"),
            },
            Bugs::NONE,
            true,
        );
        let mut u = s.clone();
        u.apply_with(
            &KvCommand {
                client: 4,
                seq: 1,
                op: Op::get("a"),
            },
            Bugs::NONE,
            false,
        );
        assert_eq!(t.data(), u.data());
        assert_ne!(t.digest(), u.digest());
        assert_eq!(u.digest(), s.digest());
    }
}
