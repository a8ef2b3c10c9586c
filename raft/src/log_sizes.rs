//! Byte accounting of the durable Raft state, so [`Raft::persisted_size`] costs only the
//! entries changed since it was last brought up to date, not a walk of the whole log.

use std::collections::VecDeque;

use crate::{Command, Raft, RaftLog, Storage};

/// Running byte counts of the log entries, lazily reconciled with the log.
///
/// Invariant: `cum[k]` is the byte count of entries `first..=first + k`
/// measured from the origin where `base` is the count just before `first`; the
/// entries it describes were, when recorded, the log's entries at those
/// indices with the recorded terms. By the Log Matching Property an entry still
/// in the log with the same index and term is the same entry, with the same
/// prefix, so reconciling only compares terms from the back.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogSizes {
    first: u64,
    base: usize,
    /// (term, cumulative bytes) per recorded entry.
    cum: VecDeque<(u64, usize)>,
}

/// How the recorded sizes relate to the current log.
struct SizeView {
    /// Recorded entries now covered by the snapshot (a prefix of `cum`).
    lo: usize,
    /// Recorded entries still valid: positions `lo..hi`.
    hi: usize,
    /// First log index not described by a valid record.
    next: u64,
}

impl LogSizes {
    fn view<C: Command>(&self, log: &RaftLog<C>) -> SizeView {
        let snap = log.snapshot_index();
        let len = self.cum.len();
        let lo = ((snap + 1).saturating_sub(self.first) as usize).min(len);
        let mut hi = len;
        while hi > lo && log.term_at(self.first + hi as u64 - 1) != Some(self.cum[hi - 1].0) {
            hi -= 1;
        }
        let next = if hi > lo {
            self.first + hi as u64
        } else {
            snap + 1
        };
        SizeView { lo, hi, next }
    }

    fn cum_before(&self, pos: usize) -> usize {
        if pos == 0 {
            self.base
        } else {
            self.cum[pos - 1].1
        }
    }

    /// Bytes of the log entries; cost O(changes since the last `sync`).
    pub(crate) fn log_bytes<C: Command>(&self, log: &RaftLog<C>) -> usize {
        let v = self.view(log);
        let recorded = self.cum_before(v.hi) - self.cum_before(v.lo);
        let fresh: usize = (v.next..=log.last_index())
            .map(|i| log.entry(i).map_or(0, crate::Entry::size_bytes))
            .sum();
        recorded + fresh
    }

    /// Bring the records up to date with `log` (amortized O(1) per entry).
    pub(crate) fn sync<C: Command>(&mut self, log: &RaftLog<C>) {
        let v = self.view(log);
        self.base = self.cum_before(v.lo);
        self.cum.truncate(v.hi);
        self.cum.drain(..v.lo);
        self.first = v.next - self.cum.len() as u64;
        if self.cum.is_empty() {
            self.base = 0;
        }
        let mut total = self.cum_before(self.cum.len());
        for i in v.next..=log.last_index() {
            let e = log
                .entry(i)
                .expect("entry after the snapshot is in the log");
            total += e.size_bytes();
            self.cum.push_back((e.term, total));
        }
        debug_assert_eq!(self.first, log.snapshot_index() + 1);
        debug_assert_eq!(self.first + self.cum.len() as u64, log.last_index() + 1);
    }
}

impl<C: Command> Raft<C> {
    /// Bytes of the durable Raft state (term, vote and the log after the
    /// snapshot), exactly what [`Storage::raft_state_size`] reports once every
    /// [`StorageOp`] this node has emitted is applied (6.824's
    /// `RaftStateSize()`). Cheap: O(entries changed since the last
    /// [`take_ready`](Raft::take_ready)).
    pub fn persisted_size(&self) -> usize {
        Storage::<u64>::default().raft_state_size() + self.sizes.log_bytes(&self.log)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::testing::{cfg, Cluster};
    use crate::Raft;

    /// `persisted_size` tracks a Storage that applied every op, through
    /// appends, conflicting-suffix truncations (partitions), snapshots,
    /// InstallSnapshot and restarts; also when read before `take_ready`.
    #[test]
    fn persisted_size_matches_storage() {
        use rand::Rng;
        let mut c = Cluster::new(5, 77);
        c.snapshot_every = Some(7);
        c.drop_rate = 0.05;
        let mut cmd = 0;
        for round in 0..60 {
            if round % 10 == 3 {
                let g: Vec<u32> = (0..5).map(|_| c.rng.random_range(0..2)).collect();
                c.group = g;
            } else if round % 10 == 7 {
                c.group = vec![0; 5];
            }
            if round % 15 == 11 {
                c.crash(round % 5);
            } else if round % 15 == 13 {
                c.restart((round - 2) % 5);
            }
            for i in 0..5 {
                if c.up[i] && c.nodes[i].is_leader() {
                    for _ in 0..3 {
                        cmd += 1;
                        let now = c.now;
                        c.nodes[i].start(now, &mut c.rng, cmd);
                        // Before the Ready is drained: counts what was emitted.
                        let mut s = c.storages[i].clone();
                        let expected = c.nodes[i].clone().take_ready();
                        for op in &expected.storage {
                            s.apply(op);
                        }
                        assert_eq!(c.nodes[i].persisted_size(), s.raft_state_size());
                        c.process(i);
                    }
                }
            }
            let until = c.now + 150_000;
            while c.step(until) {
                for i in 0..5 {
                    assert_eq!(
                        c.nodes[i].persisted_size(),
                        c.storages[i].raft_state_size(),
                        "node {i} at {}",
                        c.now
                    );
                }
            }
        }
        assert!(c.nodes.iter().any(|n| n.snapshot_index() > 0));
    }

    /// A follower whose conflicting suffix is replaced, then snapshotted.
    #[test]
    fn persisted_size_after_truncation_and_snapshot() {
        use crate::testing::storage_with;
        use crate::{Entry, Message, StorageOp};
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut s = storage_with(2, &[1, 1, 2, 2, 2]);
        let mut r: Raft<u64> = Raft::new(cfg(1, 3), &s, 0, &mut rng);
        assert_eq!(r.persisted_size(), s.raft_state_size());
        let entries = (3..=4)
            .map(|index| Entry {
                index,
                term: 3,
                command: 123_456_789 * index,
            })
            .collect();
        let ae = Message::AppendEntries {
            term: 3,
            leader_id: 0,
            prev_log_index: 2,
            prev_log_term: 1,
            entries,
            leader_commit: 3,
        };
        r.handle_message(10, &mut rng, 0, ae);
        let rd = r.take_ready();
        assert!(rd.storage.contains(&StorageOp::TruncateFrom { index: 3 }));
        rd.storage.iter().for_each(|op| s.apply(op));
        assert_eq!(s.entries.len(), 4);
        assert_eq!(r.persisted_size(), s.raft_state_size());
        r.snapshot(2, vec![0; 50]);
        r.take_ready().storage.iter().for_each(|op| s.apply(op));
        assert_eq!(r.persisted_size(), s.raft_state_size());
        r.snapshot(3, vec![0; 50]);
        // Not drained yet: still counts the emitted op.
        let pending = r.clone().take_ready();
        pending.storage.iter().for_each(|op| s.apply(op));
        assert_eq!(r.persisted_size(), s.raft_state_size());
        assert_eq!(s.entries.len(), 1);
    }

    /// Once a Ready is drained the records describe exactly the log after the snapshot, so
    /// the next `persisted_size` only looks at entries changed since (the cost promise).
    #[test]
    fn records_cover_the_log_after_take_ready() {
        use crate::testing::storage_with;
        let covered = |r: &Raft<u64>| {
            let sizes = &r.sizes;
            (sizes.first, sizes.cum.len()) == (r.log().first_index(), r.log().len())
        };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let s = storage_with(2, &[1, 1, 2]);
        let mut r: Raft<u64> = Raft::new(cfg(0, 1), &s, 0, &mut rng);
        assert!(covered(&r));
        let now = r.next_deadline();
        r.tick(now, &mut rng);
        r.start(now, &mut rng, 99);
        r.take_ready();
        assert_eq!(r.log().len(), 4);
        assert!(covered(&r));
        r.snapshot(2, vec![0; 10]);
        r.take_ready();
        assert!(covered(&r));
    }
}
