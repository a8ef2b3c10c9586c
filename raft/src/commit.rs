//! The commit rule (Sections 5.3, 5.4.2) and handing committed entries to
//! the service in order.

use crate::{Apply, Bug, Command, Event, Raft, Role};

impl<C: Command> Raft<C> {
    /// Leader: commit the highest index replicated on a majority, but only if
    /// that entry is from the current term (Section 5.4.2, Figure 8).
    pub(crate) fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let mut matched: Vec<u64> = self.progress.values().map(|p| p.match_index).collect();
        matched.push(self.log.last_index());
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let quorum = if self.config.bugs.has(Bug::QuorumOffByOne) {
            (self.config.peers.len() / 2).max(1)
        } else {
            self.config.quorum()
        };
        let candidate = matched[quorum - 1];
        let current = self.log.term_at(candidate) == Some(self.current_term);
        if candidate > self.commit_index && (current || self.config.bugs.has(Bug::CommitOldTerms)) {
            self.commit_to(candidate);
        }
    }

    /// Raise `commit_index` to `index` (never lowers it) and apply.
    pub(crate) fn commit_to(&mut self, index: u64) {
        if index <= self.commit_index {
            return;
        }
        debug_assert!(index <= self.log.last_index(), "commit beyond the log");
        self.commit_index = index;
        self.ready.events.push(Event::CommitAdvanced {
            commit_index: index,
        });
        self.apply_committed();
    }

    /// Hand committed but unapplied entries to the service, in order.
    pub(crate) fn apply_committed(&mut self) {
        while self.last_applied < self.commit_index {
            let index = self.last_applied + 1;
            let entry = self
                .log
                .entry(index)
                .expect("committed, unapplied entry must be in the log");
            self.ready.applies.push(Apply::Command {
                index,
                term: entry.term,
                command: entry.command.clone(),
            });
            self.last_applied = index;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::testing::{make_leader, storage_with};
    use crate::Message;

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
    fn figure8_old_term_entry_not_committed_by_counting_replicas() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        // Leader of term 4 holds an entry from term 2 at index 2.
        let mut l = make_leader(5, &storage_with(3, &[1, 2]), &mut rng);
        let term = l.current_term();
        assert_eq!(term, 4);
        l.handle_message(10, &mut rng, 1, success(term, 2));
        l.handle_message(10, &mut rng, 2, success(term, 2));
        l.handle_message(10, &mut rng, 3, success(term, 2));
        assert_eq!(
            l.commit_index(),
            0,
            "must not commit an old-term entry by counting"
        );
        let (idx, _) = l.start(11, &mut rng, 7).unwrap();
        l.handle_message(12, &mut rng, 1, success(term, idx));
        assert_eq!(l.commit_index(), 0, "only 2 of 5 hold index 3");
        l.handle_message(12, &mut rng, 2, success(term, idx));
        assert_eq!(
            l.commit_index(),
            3,
            "current-term entry commits, and everything before it"
        );
        let applied: Vec<_> = l.take_ready().applies;
        assert_eq!(applied.len(), 3);
    }
}
