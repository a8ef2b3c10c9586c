//! Encoding of the service state carried in Raft snapshots.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::KvStore;

/// What a snapshot holds. Invariant: `dedup` is `None` only when the
/// deliberate `DedupNotInSnapshot` bug is on.
#[derive(Serialize, Deserialize)]
struct Encoded {
    data: BTreeMap<String, String>,
    #[serde(default)]
    dedup: Option<BTreeMap<crate::ClientId, crate::store::Executed>>,
}

/// Serialize the store; without `with_dedup` the duplicate table is left out
/// (the `DedupNotInSnapshot` bug). The bytes are `serde_json`'s encoding of [`Encoded`]
/// (the snapshot sizes in traces depend on them), written from the store's cached value
/// encodings: a server snapshots often, and re-escaping every value each time dominated runs.
pub fn encode(store: &KvStore, with_dedup: bool) -> Vec<u8> {
    store.encode_json(with_dedup)
}

/// Rebuild a store from [`encode`]'s bytes (an empty duplicate table when it
/// was left out). Panics on bytes this crate did not produce.
pub fn decode(bytes: &[u8]) -> KvStore {
    let e: Encoded =
        serde_json::from_slice(bytes).expect("snapshot written by kv::snapshot::encode");
    KvStore::from_parts(e.data, e.dedup.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{KvCommand, Op};

    /// `serde_json`'s encoding of the store, the definition [`encode`] must match.
    fn reference(store: &KvStore, with_dedup: bool) -> Vec<u8> {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            data: &'a BTreeMap<String, String>,
            dedup: Option<&'a BTreeMap<crate::ClientId, crate::store::Executed>>,
        }
        serde_json::to_vec(&Borrowed {
            data: store.data(),
            dedup: with_dedup.then_some(store.dedup()),
        })
        .expect("the store serializes")
    }

    #[test]
    fn encoding_is_serde_jsons_byte_for_byte() {
        let mut s = KvStore::default();
        assert_eq!(encode(&s, true), reference(&s, true));
        assert_eq!(encode(&s, false), reference(&s, false));
        let tricky = [
            "x 0 1 y",
            "\"q\"",
            "back\\slash",
            "\n\t\r\u{8}\u{c}\u{1}\u{1f}",
            "ünï ✓",
            "",
            "\u{7f}/",
        ];
        let mut seq = 0;
        for (i, v) in tricky.iter().enumerate() {
            for (client, op) in [
                (1, Op::put(format!("k{i}"), *v)),
                (2, Op::append(format!("k{}", i / 2), *v)),
                (3, Op::append(format!("\"{v}\""), *v)),
                (4, Op::get(format!("k{i}"))),
            ] {
                seq += 1;
                s.apply(&KvCommand { client, seq, op });
                assert_eq!(encode(&s, true), reference(&s, true));
                assert_eq!(encode(&s, false), reference(&s, false));
                assert_eq!(decode(&encode(&s, true)), s);
            }
        }
    }

    #[test]
    fn round_trip_with_and_without_dedup() {
        let mut s = KvStore::default();
        for (seq, op) in [
            (1, Op::put("a", "1")),
            (2, Op::get("a")),
            (3, Op::append("b", "x")),
        ] {
            s.apply(&KvCommand { client: 9, seq, op });
        }
        s.apply(&KvCommand {
            client: 4,
            seq: 7,
            op: Op::get("a"),
        });
        assert_eq!(decode(&encode(&s, true)), s);
        let lossy = decode(&encode(&s, false));
        assert_eq!(lossy.data(), s.data());
        assert!(lossy.dedup().is_empty());
    }
}
