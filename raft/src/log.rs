//! The in-memory log with its snapshot offset. All arithmetic between log
//! indices and positions in the entry buffer lives in this file.

use std::collections::VecDeque;

use crate::{Command, Entry, Snapshot};

/// The in-memory Raft log: an optional snapshot covering indices
/// `1..=snapshot_index`, followed by the entries `first_index()..=last_index()`.
///
/// Invariant: `entries[i].index == snapshot_index + 1 + i`, terms never
/// decrease, and the first entry's term is >= `snapshot_term`. Index 0 is the
/// sentinel with term 0.
#[derive(Clone, Debug)]
pub struct RaftLog<C> {
    snapshot: Option<Snapshot>,
    snapshot_index: u64,
    snapshot_term: u64,
    entries: VecDeque<Entry<C>>,
}

impl<C: Command> Default for RaftLog<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Command> RaftLog<C> {
    /// An empty log (only the sentinel).
    pub fn new() -> Self {
        RaftLog {
            snapshot: None,
            snapshot_index: 0,
            snapshot_term: 0,
            entries: VecDeque::new(),
        }
    }

    /// A log rebuilt from durable state: `entries` must start right after the snapshot.
    pub fn restore(snapshot: Option<Snapshot>, entries: &[Entry<C>]) -> Self {
        let (snapshot_index, snapshot_term) = snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.last_included_index, s.last_included_term));
        let log = RaftLog {
            snapshot,
            snapshot_index,
            snapshot_term,
            entries: entries.iter().cloned().collect(),
        };
        log.check();
        log
    }

    fn check(&self) {
        debug_assert!(self
            .entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.index == self.snapshot_index + 1 + i as u64));
        debug_assert!(self
            .entries
            .front()
            .is_none_or(|e| e.term >= self.snapshot_term));
    }

    /// Position of `index` in `entries`, if it is stored there.
    fn pos(&self, index: u64) -> Option<usize> {
        if index <= self.snapshot_index || index > self.last_index() {
            None
        } else {
            Some((index - self.snapshot_index - 1) as usize)
        }
    }

    /// The current snapshot, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Index of the last entry covered by the snapshot (0 without one).
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    /// Term of the last entry covered by the snapshot (0 without one).
    pub fn snapshot_term(&self) -> u64 {
        self.snapshot_term
    }

    /// Index of the first entry held in memory (`snapshot_index + 1`).
    pub fn first_index(&self) -> u64 {
        self.snapshot_index + 1
    }

    /// Index of the last entry (the snapshot index when no entries follow it).
    pub fn last_index(&self) -> u64 {
        self.snapshot_index + self.entries.len() as u64
    }

    /// Term of the last entry (the snapshot term when no entries follow it).
    pub fn last_term(&self) -> u64 {
        self.entries.back().map_or(self.snapshot_term, |e| e.term)
    }

    /// Number of entries held after the snapshot.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no entries follow the snapshot.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Term of the entry at `index`: known for the snapshot index (and the
    /// sentinel 0) and for stored entries; `None` if compacted or beyond the end.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.pos(index).map(|p| self.entries[p].term)
    }

    /// The entry at `index`, if stored.
    pub fn entry(&self, index: u64) -> Option<&Entry<C>> {
        self.pos(index).map(|p| &self.entries[p])
    }

    /// Clones of up to `max` entries starting at `start` (which must be > snapshot_index).
    pub fn entries_from(&self, start: u64, max: usize) -> Vec<Entry<C>> {
        debug_assert!(start > self.snapshot_index);
        match self.pos(start) {
            None => Vec::new(),
            Some(p) => self.entries.iter().skip(p).take(max).cloned().collect(),
        }
    }

    /// All stored entries, in index order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<C>> {
        self.entries.iter()
    }

    /// True if a log ending at (`last_index`, `last_term`) is at least as
    /// up-to-date as this one (Section 5.4.1).
    pub fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// First stored index of the run of `term` that contains `index` (used by
    /// a follower for fast backup). Stops at `first_index()`.
    pub fn first_index_of_term_run(&self, index: u64) -> u64 {
        let term = self.term_at(index);
        let mut i = index;
        while i > self.first_index() && self.term_at(i - 1) == term {
            i -= 1;
        }
        i
    }

    /// Index of the last stored entry with term `term`, if any (used by a
    /// leader for fast backup).
    pub fn last_index_of_term(&self, term: u64) -> Option<u64> {
        // Terms are non-decreasing, so scan from the back and stop early.
        for e in self.entries.iter().rev() {
            if e.term == term {
                return Some(e.index);
            }
            if e.term < term {
                return None;
            }
        }
        (self.snapshot_term == term && self.snapshot_index > 0).then_some(self.snapshot_index)
    }

    /// Append one entry; it must be `last_index() + 1` and not lower the term.
    pub fn append(&mut self, entry: Entry<C>) {
        debug_assert_eq!(entry.index, self.last_index() + 1, "non-contiguous append");
        debug_assert!(entry.term >= self.last_term(), "term went backwards in log");
        self.entries.push_back(entry);
    }

    /// Delete entries with index >= `index` (which must be > snapshot_index).
    pub fn truncate_from(&mut self, index: u64) {
        debug_assert!(index > self.snapshot_index, "truncating into the snapshot");
        if let Some(p) = self.pos(index) {
            self.entries.truncate(p);
        }
    }

    /// Install `snapshot` (same semantics as `StorageOp::Snapshot`): entries
    /// after it are kept only if the log has the snapshot's last entry with
    /// the same term; otherwise the whole log is discarded. Ignored (returns
    /// false) unless newer than the current snapshot. Frees the prefix.
    pub fn install_snapshot(&mut self, snapshot: Snapshot) -> bool {
        let lii = snapshot.last_included_index;
        if lii <= self.snapshot_index && self.snapshot.is_some() {
            return false;
        }
        match self.pos(lii) {
            Some(p) if self.entries[p].term == snapshot.last_included_term => {
                self.entries.drain(..=p);
            }
            _ => self.entries.clear(),
        }
        if self.entries.capacity() > 2 * self.entries.len() + 64 {
            self.entries.shrink_to_fit();
        }
        self.snapshot_index = lii;
        self.snapshot_term = snapshot.last_included_term;
        self.snapshot = Some(snapshot);
        self.check();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with_terms(terms: &[u64]) -> RaftLog<u64> {
        let mut log = RaftLog::new();
        for (i, t) in terms.iter().enumerate() {
            log.append(Entry {
                index: i as u64 + 1,
                term: *t,
                command: i as u64,
            });
        }
        log
    }

    fn snapshot_at(index: u64, term: u64) -> Option<Snapshot> {
        Some(Snapshot {
            last_included_index: index,
            last_included_term: term,
            data: Vec::new().into(),
        })
    }

    fn entry(index: u64, term: u64) -> Entry<u64> {
        Entry {
            index,
            term,
            command: index,
        }
    }

    /// Durable state whose entries follow the snapshot, at its term or later, restores.
    #[test]
    fn restore_takes_entries_right_after_the_snapshot() {
        let log = RaftLog::restore(snapshot_at(3, 2), &[entry(4, 2), entry(5, 3)]);
        assert_eq!((log.snapshot_index(), log.snapshot_term()), (3, 2));
        assert_eq!((log.first_index(), log.last_index(), log.len()), (4, 5, 2));
        assert!(!log.is_empty());
        let bare = RaftLog::<u64>::restore(snapshot_at(3, 2), &[]);
        assert!(bare.is_empty());
        assert_eq!((bare.last_index(), bare.last_term()), (3, 2));
    }

    /// The leader's fast-backup lookup finds a term in the entries or at the snapshot's last
    /// entry, and nothing else: not a term the log skipped, nor the sentinel's term 0.
    #[test]
    fn last_index_of_term_only_finds_held_terms() {
        assert_eq!(RaftLog::<u64>::new().last_index_of_term(0), None);
        let log = RaftLog::restore(snapshot_at(3, 2), &[entry(4, 4), entry(5, 4), entry(6, 6)]);
        let found: Vec<Option<u64>> = (0..=7).map(|t| log.last_index_of_term(t)).collect();
        assert_eq!(
            found,
            [None, None, Some(3), None, Some(5), None, Some(6), None]
        );
    }

    /// A term run that continues into the snapshot stops at the first stored index: the
    /// follower cannot vouch for compacted entries one by one.
    #[test]
    fn term_runs_stop_at_the_first_stored_index() {
        let log = RaftLog::restore(snapshot_at(3, 2), &[entry(4, 2), entry(5, 2), entry(6, 3)]);
        assert_eq!(log.first_index_of_term_run(5), 4);
        assert_eq!(log.first_index_of_term_run(4), 4);
        assert_eq!(log.first_index_of_term_run(6), 6);
    }

    /// `restore` checks its precondition (debug builds): no gap after the snapshot...
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "e.index == self.snapshot_index + 1 + i")]
    fn restore_rejects_a_gap_after_the_snapshot() {
        RaftLog::restore(snapshot_at(3, 2), &[entry(5, 2)]);
    }

    /// ... and no entry older than the snapshot's last term.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "e.term >= self.snapshot_term")]
    fn restore_rejects_entries_older_than_the_snapshot() {
        RaftLog::restore(snapshot_at(3, 2), &[entry(4, 1)]);
    }

    fn snap(i: u64, t: u64) -> Snapshot {
        Snapshot {
            last_included_index: i,
            last_included_term: t,
            data: vec![].into(),
        }
    }

    #[test]
    fn sentinel_and_basic_indexing() {
        let log = log_with_terms(&[]);
        assert_eq!(
            (log.first_index(), log.last_index(), log.last_term()),
            (1, 0, 0)
        );
        assert_eq!(log.term_at(0), Some(0));
        assert_eq!(log.term_at(1), None);
        let log = log_with_terms(&[1, 1, 2]);
        assert_eq!((log.last_index(), log.last_term()), (3, 2));
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.entry(2).unwrap().command, 1);
        assert_eq!(log.entries_from(2, 10).len(), 2);
        assert_eq!(log.entries_from(2, 1).len(), 1);
        assert!(log.entries_from(4, 10).is_empty());
    }

    #[test]
    fn up_to_date_rule() {
        let log = log_with_terms(&[1, 2, 2]);
        assert!(log.is_up_to_date(3, 2));
        assert!(log.is_up_to_date(1, 3));
        assert!(!log.is_up_to_date(2, 2));
        assert!(!log.is_up_to_date(9, 1));
    }

    #[test]
    fn term_runs_for_fast_backup() {
        let log = log_with_terms(&[1, 1, 4, 4, 4, 5]);
        assert_eq!(log.first_index_of_term_run(5), 3);
        assert_eq!(log.first_index_of_term_run(2), 1);
        assert_eq!(log.last_index_of_term(4), Some(5));
        assert_eq!(log.last_index_of_term(1), Some(2));
        assert_eq!(log.last_index_of_term(3), None);
        assert_eq!(log.last_index_of_term(6), None);
    }

    #[test]
    fn truncate_and_snapshot_offsets() {
        let mut log = log_with_terms(&[1, 1, 2, 2, 3]);
        log.truncate_from(5);
        assert_eq!(log.last_index(), 4);
        assert!(log.install_snapshot(snap(2, 1)));
        assert_eq!((log.first_index(), log.last_index(), log.len()), (3, 4, 2));
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.term_at(1), None);
        assert!(log.entry(2).is_none());
        assert_eq!(log.entry(3).unwrap().index, 3);
        assert_eq!(log.first_index_of_term_run(4), 3);
        assert_eq!(log.last_index_of_term(1), Some(2));
        // Older snapshot is ignored.
        assert!(!log.install_snapshot(snap(1, 1)));
        // Conflicting snapshot drops everything.
        assert!(log.install_snapshot(snap(4, 9)));
        assert!(log.is_empty());
        assert_eq!((log.last_index(), log.last_term()), (4, 9));
        log.append(Entry {
            index: 5,
            term: 9,
            command: 0,
        });
        assert_eq!(log.entries_from(5, 5).len(), 1);
    }

    #[test]
    fn snapshot_frees_prefix_memory() {
        let mut log = log_with_terms(&vec![1; 10_000]);
        assert!(log.install_snapshot(snap(9_990, 1)));
        assert_eq!(log.len(), 10);
        assert!(log.entries.capacity() < 1_000);
        let restored = RaftLog::restore(
            log.snapshot().cloned(),
            &log.iter().cloned().collect::<Vec<_>>(),
        );
        assert_eq!(restored.last_index(), 10_000);
        assert_eq!(restored.first_index(), 9_991);
    }
}
