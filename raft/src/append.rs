//! The AppendEntries receiver (Figure 2; Section 5.3): the consistency check with
//! fast-backup hints, appending with truncation only at a real conflict, and the commit
//! index learnt from the leader.

use rand_core::RngCore;

use crate::{Bug, Command, Entry, Message, NodeId, Raft, Role, StorageOp};

impl<C: Command> Raft<C> {
    /// AppendEntries receiver (Figure 2). `term <= current_term` here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_append_entries(
        &mut self,
        now: u64,
        rng: &mut dyn RngCore,
        leader: NodeId,
        term: u64,
        mut prev_log_index: u64,
        mut prev_log_term: u64,
        mut entries: Vec<Entry<C>>,
        leader_commit: u64,
    ) {
        let reject = |raft: &mut Self, conflict_term, conflict_index| {
            let msg = Message::AppendEntriesReply {
                term: raft.current_term,
                request_term: term,
                success: false,
                match_index: 0,
                conflict_term,
                conflict_index,
            };
            raft.send(leader, msg);
        };
        if term < self.current_term {
            if !self.config.bugs.has(Bug::AcceptStaleAppend) {
                reject(self, None, 0);
                return;
            }
        } else {
            debug_assert_ne!(self.role, Role::Leader, "two leaders in one term");
            self.become_follower(now, rng, term, Some(leader));
            self.leader_contact = now;
        }
        if !self.config.bugs.has(Bug::HeartbeatKeepsTimer) {
            self.reset_election_timer(now, rng);
        }

        // Entries covered by our snapshot are committed, hence identical to
        // the leader's: skip them.
        let snap = self.log.snapshot_index();
        if prev_log_index < snap {
            let skip = (snap - prev_log_index).min(entries.len() as u64) as usize;
            entries.drain(..skip);
            prev_log_index = snap;
            prev_log_term = self.log.snapshot_term();
            if entries.first().is_some_and(|e| e.index != snap + 1) {
                // The message ended before our snapshot.
                entries.clear();
            }
        }

        // Consistency check with fast-backup information.
        match self.log.term_at(prev_log_index) {
            _ if entries.is_empty()
                && self.config.bugs.has(Bug::HeartbeatSkipsConsistencyCheck) =>
            {
                // Bug: a heartbeat is taken to vouch for our log up to prevLogIndex.
                prev_log_index = prev_log_index.min(self.log.last_index());
            }
            None => {
                debug_assert!(prev_log_index > self.log.last_index());
                reject(self, None, self.log.last_index() + 1);
                return;
            }
            Some(t) if t != prev_log_term && !self.config.bugs.has(Bug::PrevLogTermUnchecked) => {
                let first = self.log.first_index_of_term_run(prev_log_index);
                reject(self, Some(t), first);
                return;
            }
            Some(_) => {}
        }

        // Append, truncating only at a real conflict (never on a stale or
        // duplicated message whose entries we already hold).
        let last_new = prev_log_index + entries.len() as u64;
        let mut new_from = None;
        // Entries after the new ones that a bug keeps across a conflict.
        let mut kept = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            debug_assert_eq!(e.index, prev_log_index + 1 + i as u64);
            match self.log.term_at(e.index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    debug_assert!(e.index > self.commit_index, "truncating committed entry");
                    if self.config.bugs.has(Bug::ConflictSuffixKept) {
                        // Bug: only the entries the message carries are overwritten.
                        kept = self.log.entries_from(last_new + 1, usize::MAX);
                    }
                    self.log.truncate_from(e.index);
                    self.ready
                        .storage
                        .push(StorageOp::TruncateFrom { index: e.index });
                    new_from = Some(i);
                    break;
                }
                None => {
                    new_from = Some(i);
                    break;
                }
            }
        }
        if let Some(i) = new_from {
            let mut fresh: Vec<Entry<C>> = entries.drain(i..).collect();
            fresh.append(&mut kept);
            for e in &fresh {
                self.log.append(e.clone());
            }
            let write = StorageOp::Append { entries: fresh };
            if self.config.bugs.has(Bug::FollowerLogNotPersisted) {
                self.late_writes.push(write);
            } else {
                self.ready.storage.push(write);
            }
        } else if last_new < self.log.last_index()
            && self.config.bugs.has(Bug::TruncateMatchingSuffix)
        {
            // Bug: the log is cut after the message's entries although they all matched.
            self.log.truncate_from(last_new + 1);
            self.ready.storage.push(StorageOp::TruncateFrom {
                index: last_new + 1,
            });
        }

        let leader_commit = if self.config.bugs.has(Bug::ApplyBeforeCommit) {
            last_new // Bug: what matches is taken for committed.
        } else {
            leader_commit
        };
        if leader_commit > self.commit_index
            && !(self.config.bugs.has(Bug::HeartbeatCommitIgnored) && last_new == prev_log_index)
        {
            self.commit_to(leader_commit.min(last_new));
        }
        self.send(
            leader,
            Message::AppendEntriesReply {
                term: self.current_term,
                request_term: term,
                success: true,
                match_index: if self.config.bugs.has(Bug::AckWholeLog) {
                    self.log.last_index()
                } else {
                    last_new
                },
                conflict_term: None,
                conflict_index: 0,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::testing::{cfg, storage_with};
    use crate::{Apply, Entry, Message, Raft, Storage, StorageOp};

    fn e(index: u64, term: u64) -> Entry<u64> {
        Entry {
            index,
            term,
            command: index * 100,
        }
    }

    fn ae(
        term: u64,
        prev: u64,
        prev_term: u64,
        entries: Vec<Entry<u64>>,
        commit: u64,
    ) -> Message<u64> {
        Message::AppendEntries {
            term,
            leader_id: 0,
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries,
            leader_commit: commit,
        }
    }

    fn success(term: u64, match_index: u64) -> Message<u64> {
        Message::AppendEntriesReply {
            term,
            request_term: term,
            success: true,
            match_index,
            conflict_term: None,
            conflict_index: 0,
        }
    }

    #[test]
    fn duplicate_and_reordered_append_entries_do_not_truncate_or_reapply() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut f: Raft<u64> = Raft::new(cfg(1, 3), &Storage::default(), 0, &mut rng);
        let full = ae(2, 0, 0, vec![e(1, 2), e(2, 2), e(3, 2), e(4, 2)], 2);
        let short = ae(2, 0, 0, vec![e(1, 2), e(2, 2)], 1);
        f.handle_message(1, &mut rng, 0, full.clone());
        let rd = f.take_ready();
        assert_eq!(f.last_index(), 4);
        assert_eq!(f.commit_index(), 2);
        assert_eq!(rd.applies.len(), 2);
        // The older, shorter message arrives late: no truncation, no writes.
        f.handle_message(2, &mut rng, 0, short);
        let rd = f.take_ready();
        assert_eq!(f.last_index(), 4);
        assert!(rd.storage.is_empty(), "{:?}", rd.storage);
        assert!(rd.applies.is_empty());
        assert_eq!(rd.messages, vec![(0, success(2, 2))]);
        assert_eq!(f.commit_index(), 2, "commit never moves backwards");
        // Exact duplicate: nothing new either.
        f.handle_message(3, &mut rng, 0, full);
        let rd = f.take_ready();
        assert!(rd.storage.is_empty() && rd.applies.is_empty());
        // A heartbeat that only covers index 1 cannot commit past what it vouches for.
        f.handle_message(4, &mut rng, 0, ae(2, 1, 2, vec![], 4));
        assert_eq!(f.commit_index(), 2);
        f.handle_message(5, &mut rng, 0, ae(2, 4, 2, vec![], 4));
        let rd = f.take_ready();
        assert_eq!(f.commit_index(), 4);
        let idx: Vec<u64> = rd
            .applies
            .iter()
            .map(|a| match a {
                Apply::Command { index, .. } => *index,
                Apply::Snapshot { .. } => 0,
            })
            .collect();
        assert_eq!(idx, vec![3, 4]);
    }

    #[test]
    fn real_conflict_truncates_uncommitted_suffix() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let s = storage_with(1, &[1, 1, 1, 1]);
        let mut f: Raft<u64> = Raft::new(cfg(1, 3), &s, 0, &mut rng);
        f.handle_message(1, &mut rng, 0, ae(2, 2, 1, vec![e(3, 2)], 0));
        let rd = f.take_ready();
        assert_eq!(f.last_index(), 3);
        assert_eq!(f.term_at(3), Some(2));
        assert!(rd.storage.contains(&StorageOp::TruncateFrom { index: 3 }));
        assert!(rd.storage.contains(&StorageOp::Append {
            entries: vec![e(3, 2)]
        }));
    }
}
