//! A server's durable Raft log as the safety checker mirrors it from the server's writes.

/// The log of one server: a snapshot point, then `(term, entry)` pairs. An entry is a 64-bit
/// identity of the command (the Raft tester's value, a hash of a KV command).
#[derive(Clone, Debug, Default)]
pub(super) struct MirrorLog {
    pub(super) snap_index: u64,
    pub(super) snap_term: u64,
    /// `(term, entry)` of indices `snap_index + 1 ..`.
    pub(super) entries: Vec<(u64, u64)>,
}

/// What a log can tell about one index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Held {
    /// The index is past the end of the log.
    Missing,
    /// Compacted into the snapshot: only the term of the snapshot's last index is known.
    Compacted { term: Option<u64> },
    /// `(term, entry)` in the log.
    Entry(u64, u64),
}

impl MirrorLog {
    pub(super) fn last_index(&self) -> u64 {
        self.snap_index + self.entries.len() as u64
    }

    /// The term at `index` (0 before the log starts), if known.
    pub(super) fn term_at(&self, index: u64) -> Option<u64> {
        match self.held(index) {
            Held::Entry(t, _) => Some(t),
            Held::Compacted { term } => term,
            Held::Missing => None,
        }
    }

    /// What the log holds at `index`.
    pub(super) fn held(&self, index: u64) -> Held {
        if index == 0 {
            return Held::Compacted { term: Some(0) };
        }
        if index <= self.snap_index {
            let term = (index == self.snap_index).then_some(self.snap_term);
            return Held::Compacted { term };
        }
        let i = (index - self.snap_index - 1) as usize;
        self.entries
            .get(i)
            .map_or(Held::Missing, |&(t, e)| Held::Entry(t, e))
    }

    /// Does the log hold entry `(term, entry)` at `index`, as far as it can tell? A compacted
    /// index counts as held when its known term agrees (State Machine Safety checks the
    /// snapshot's contents where the service reports them).
    pub(super) fn holds(&self, index: u64, term: u64, entry: u64) -> bool {
        match self.held(index) {
            Held::Entry(t, e) => t == term && e == entry,
            Held::Compacted { term: known } => known.is_none_or(|t| t == term),
            Held::Missing => false,
        }
    }

    /// Drop entries from `from` on.
    pub(super) fn truncate(&mut self, from: u64) {
        let keep = from.saturating_sub(self.snap_index + 1) as usize;
        self.entries.truncate(keep);
    }

    /// The log now starts after a snapshot through `index` of `term`: entries the snapshot
    /// covers go, and so does the rest unless the log held `index` with `term` (Figure 13).
    pub(super) fn snapshot(&mut self, index: u64, term: u64) {
        if index <= self.snap_index {
            return;
        }
        if self.term_at(index) == Some(term) {
            let drop = (index - self.snap_index) as usize;
            self.entries.drain(..drop.min(self.entries.len()));
        } else {
            self.entries.clear();
        }
        self.snap_index = index;
        self.snap_term = term;
    }
}
