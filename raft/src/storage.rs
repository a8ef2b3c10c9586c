//! Durable state: what must survive a crash, and the writes that change it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Command, NodeId};

/// Bytes charged for `current_term` plus `voted_for` in [`Storage::raft_state_size`].
const HARD_STATE_BYTES: usize = 16;
/// Bytes charged per entry on top of its command (index and term).
const ENTRY_OVERHEAD_BYTES: usize = 16;

/// One log entry. Invariant: indices start at 1 and are contiguous within a
/// log; terms never decrease along a log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry<C> {
    /// Position in the log (1-based; 0 is the sentinel with term 0).
    pub index: u64,
    /// Term of the leader that created the entry.
    pub term: u64,
    /// The state-machine command.
    pub command: C,
}

impl<C: Command> Entry<C> {
    /// Approximate encoded size in bytes (index, term and command).
    pub fn size_bytes(&self) -> usize {
        ENTRY_OVERHEAD_BYTES + self.command.size_bytes()
    }
}

/// A service snapshot: the state machine after applying every entry through
/// `last_included_index` (whose term is `last_included_term`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Index of the last entry the snapshot covers.
    pub last_included_index: u64,
    /// Term of that entry.
    pub last_included_term: u64,
    /// Opaque service state. Serialized as a byte string (`serialize_bytes`): JSON writes
    /// the same array of numbers, and a serializer that knows bytes (the trace writer) takes
    /// them whole instead of one element at a time. Shared, never copied: the log, every
    /// InstallSnapshot and the durable copy hold the same bytes (snapshots are immutable).
    #[serde(serialize_with = "as_bytes")]
    pub data: Arc<Vec<u8>>,
}

/// Serializes a byte vector as a byte string.
fn as_bytes<S: serde::Serializer>(data: &Arc<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(data)
}

/// Durable state, exactly what must survive a crash: `current_term`,
/// `voted_for`, the log after the snapshot, and the snapshot.
///
/// Invariant: `entries` are contiguous and start right after the snapshot
/// (index 1 without one); `log_bytes` equals the sum of the entries' sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Storage<C> {
    /// Latest term this node has seen.
    pub current_term: u64,
    /// Candidate that received this node's vote in `current_term`, if any.
    pub voted_for: Option<NodeId>,
    /// The latest snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Log entries after the snapshot.
    pub entries: Vec<Entry<C>>,
    /// Running byte count of `entries` (kept so `raft_state_size` is O(1)).
    #[serde(default)]
    log_bytes: usize,
}

// Written by hand: a derive would demand `C: Default`, which commands need not be.
impl<C> Default for Storage<C> {
    fn default() -> Self {
        Storage {
            current_term: 0,
            voted_for: None,
            snapshot: None,
            entries: Vec::new(),
            log_bytes: 0,
        }
    }
}

/// One durable write. The caller applies these to its [`Storage`], in order,
/// before any message of the same [`Ready`](crate::Ready) is sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StorageOp<C> {
    /// Overwrite `current_term` and `voted_for`.
    HardState {
        /// New current term.
        current_term: u64,
        /// New vote (for `current_term`).
        voted_for: Option<NodeId>,
    },
    /// Delete entries with index >= `index`.
    TruncateFrom {
        /// First index to delete.
        index: u64,
    },
    /// Append entries; contiguous, starting right after the current last entry.
    Append {
        /// The new entries.
        entries: Vec<Entry<C>>,
    },
    /// Store the snapshot; drop log entries with index <= last_included_index,
    /// but keep later ones if the entry at last_included_index has
    /// last_included_term; otherwise drop the whole log. Ignored if not newer
    /// than the stored snapshot.
    Snapshot {
        /// The snapshot to store.
        snapshot: Snapshot,
    },
}

impl<C: Command> StorageOp<C> {
    /// Approximate number of bytes this write puts on disk.
    pub fn size_bytes(&self) -> usize {
        match self {
            StorageOp::HardState { .. } => HARD_STATE_BYTES,
            StorageOp::TruncateFrom { .. } => 8,
            StorageOp::Append { entries } => entries.iter().map(Entry::size_bytes).sum(),
            StorageOp::Snapshot { snapshot } => 16 + snapshot.data.len(),
        }
    }
}

impl<C: Command> Storage<C> {
    /// Index of the snapshot's last entry, 0 without a snapshot.
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.last_included_index)
    }

    /// Index of the last stored entry (the snapshot index if the log is empty).
    pub fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot_index(), |e| e.index)
    }

    /// Apply one durable write.
    pub fn apply(&mut self, op: &StorageOp<C>) {
        match op {
            StorageOp::HardState {
                current_term,
                voted_for,
            } => {
                debug_assert!(*current_term >= self.current_term, "term went backwards");
                self.current_term = *current_term;
                self.voted_for = *voted_for;
            }
            StorageOp::TruncateFrom { index } => {
                let first = self.snapshot_index() + 1;
                debug_assert!(*index >= first, "truncating into the snapshot");
                let keep = index.saturating_sub(first) as usize;
                if keep < self.entries.len() {
                    let removed: usize = self.entries[keep..].iter().map(Entry::size_bytes).sum();
                    self.entries.truncate(keep);
                    self.log_bytes -= removed;
                }
            }
            StorageOp::Append { entries } => {
                for e in entries {
                    debug_assert_eq!(e.index, self.last_index() + 1, "non-contiguous append");
                    self.log_bytes += e.size_bytes();
                    self.entries.push(e.clone());
                }
            }
            StorageOp::Snapshot { snapshot } => {
                let old = self.snapshot_index();
                let lii = snapshot.last_included_index;
                if lii <= old && self.snapshot.is_some() {
                    return;
                }
                let first = old + 1;
                let pos = lii.checked_sub(first).map(|p| p as usize);
                let keeps_suffix = pos
                    .and_then(|p| self.entries.get(p))
                    .is_some_and(|e| e.term == snapshot.last_included_term);
                if keeps_suffix {
                    let cut = pos.unwrap_or(0) + 1;
                    let removed: usize = self.entries[..cut].iter().map(Entry::size_bytes).sum();
                    self.entries.drain(..cut);
                    self.log_bytes -= removed;
                } else {
                    self.entries.clear();
                    self.log_bytes = 0;
                }
                self.snapshot = Some(snapshot.clone());
            }
        }
        debug_assert!(self
            .entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.index == self.snapshot_index() + 1 + i as u64));
    }

    /// Bytes of term + vote + log (what the lab calls RaftStateSize). O(1).
    pub fn raft_state_size(&self) -> usize {
        HARD_STATE_BYTES + self.log_bytes
    }

    /// Bytes of snapshot data.
    pub fn snapshot_size(&self) -> usize {
        self.snapshot.as_ref().map_or(0, |s| s.data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64, term: u64) -> Entry<u64> {
        Entry {
            index,
            term,
            command: index * 10,
        }
    }

    /// What a write says it puts on disk agrees with what the storage counts for it: an
    /// append is its entries' sizes (the same sum `log_bytes` grows by), a snapshot its data
    /// plus its two indexes, a hard state and a truncation their fixed records.
    #[test]
    fn a_write_s_size_is_what_the_storage_counts_for_it() {
        let mut s = Storage::<u64>::default();
        let entries = vec![e(1, 1), e(2, 1), e(3, 2)];
        let append = StorageOp::Append {
            entries: entries.clone(),
        };
        let before = s.log_bytes;
        s.apply(&append);
        assert_eq!(append.size_bytes(), s.log_bytes - before);
        assert_eq!(
            append.size_bytes(),
            3 * (ENTRY_OVERHEAD_BYTES + 8),
            "three u64 commands"
        );
        let hard = StorageOp::<u64>::HardState {
            current_term: 2,
            voted_for: Some(1),
        };
        assert_eq!(hard.size_bytes(), HARD_STATE_BYTES);
        assert_eq!(StorageOp::<u64>::TruncateFrom { index: 2 }.size_bytes(), 8);
        let snap = StorageOp::<u64>::Snapshot {
            snapshot: Snapshot {
                last_included_index: 3,
                last_included_term: 2,
                data: vec![0u8; 100].into(),
            },
        };
        assert_eq!(snap.size_bytes(), 116);
    }

    fn recount(s: &Storage<u64>) -> usize {
        HARD_STATE_BYTES + s.entries.iter().map(Entry::size_bytes).sum::<usize>()
    }

    #[test]
    fn append_truncate_and_sizes() {
        let mut s = Storage::<u64>::default();
        assert_eq!(s.raft_state_size(), HARD_STATE_BYTES);
        s.apply(&StorageOp::HardState {
            current_term: 3,
            voted_for: Some(2),
        });
        assert_eq!((s.current_term, s.voted_for), (3, Some(2)));
        s.apply(&StorageOp::Append {
            entries: vec![e(1, 1), e(2, 1), e(3, 2)],
        });
        assert_eq!(s.last_index(), 3);
        assert_eq!(s.raft_state_size(), recount(&s));
        s.apply(&StorageOp::TruncateFrom { index: 2 });
        assert_eq!(s.entries, vec![e(1, 1)]);
        assert_eq!(s.raft_state_size(), recount(&s));
        // Truncating past the end is a no-op.
        s.apply(&StorageOp::TruncateFrom { index: 9 });
        assert_eq!(s.entries.len(), 1);
    }

    #[test]
    fn snapshot_keeps_matching_suffix_only() {
        let mut s = Storage::<u64>::default();
        s.apply(&StorageOp::Append {
            entries: vec![e(1, 1), e(2, 1), e(3, 2), e(4, 2)],
        });
        let snap = |i, t| Snapshot {
            last_included_index: i,
            last_included_term: t,
            data: vec![1, 2, 3].into(),
        };
        s.apply(&StorageOp::Snapshot {
            snapshot: snap(2, 1),
        });
        assert_eq!(s.entries, vec![e(3, 2), e(4, 2)]);
        assert_eq!(s.snapshot_size(), 3);
        assert_eq!(s.raft_state_size(), recount(&s));
        // Older snapshot ignored.
        s.apply(&StorageOp::Snapshot {
            snapshot: snap(1, 1),
        });
        assert_eq!(s.snapshot_index(), 2);
        // Mismatching term drops the whole log.
        s.apply(&StorageOp::Snapshot {
            snapshot: snap(3, 7),
        });
        assert!(s.entries.is_empty());
        assert_eq!(s.last_index(), 3);
        assert_eq!(s.raft_state_size(), HARD_STATE_BYTES);
        // Snapshot beyond the log drops everything.
        s.apply(&StorageOp::Append {
            entries: vec![e(4, 7)],
        });
        s.apply(&StorageOp::Snapshot {
            snapshot: snap(10, 8),
        });
        assert!(s.entries.is_empty());
        assert_eq!(s.last_index(), 10);
    }
}
