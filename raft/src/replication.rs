//! Log replication (Sections 5.3, 5.4.2): proposing, AppendEntries and its
//! reply with fast backup, and the leader's commit rule.

use rand_core::RngCore;

use crate::{Command, Entry, Message, NodeId, Raft, Role, StorageOp};

impl<C: Command> Raft<C> {
    /// Service proposes a command. `Some((index, term))` if this node is the
    /// leader: the entry is appended, persisted via the Ready, and sent to
    /// followers right away. `None` otherwise.
    pub fn start(&mut self, now: u64, _rng: &mut dyn RngCore, command: C) -> Option<(u64, u64)> {
        if self.role != Role::Leader {
            return None;
        }
        let entry = Entry {
            index: self.log.last_index() + 1,
            term: self.current_term,
            command,
        };
        let at = (entry.index, entry.term);
        self.log.append(entry.clone());
        self.ready.storage.push(StorageOp::Append {
            entries: vec![entry],
        });
        for peer in self.others() {
            self.send_append(now, peer);
        }
        self.maybe_commit();
        self.check_invariants();
        Some(at)
    }

    /// Send `peer` what it is missing from `next_index` on (an empty
    /// AppendEntries is a heartbeat), or the snapshot if that part of the log
    /// is gone. Restarts the peer's heartbeat timer.
    pub(crate) fn send_append(&mut self, now: u64, peer: NodeId) {
        let interval = self.config.heartbeat_interval;
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        pr.heartbeat_due = now.saturating_add(interval);
        let next = pr.next_index;
        if next <= self.log.snapshot_index() {
            self.send_install_snapshot(peer);
            return;
        }
        let prev_log_index = next - 1;
        let prev_log_term = self
            .log
            .term_at(prev_log_index)
            .expect("prev_log_index is at or after the snapshot");
        let entries = self.log.entries_from(next, self.config.max_entries_per_append);
        let msg = Message::AppendEntries {
            term: self.current_term,
            leader_id: self.config.id,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
        };
        self.send(peer, msg);
    }

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
                success: false,
                match_index: 0,
                conflict_term,
                conflict_index,
            };
            raft.send(leader, msg);
        };
        if term < self.current_term {
            reject(self, None, 0);
            return;
        }
        debug_assert_ne!(self.role, Role::Leader, "two leaders in one term");
        self.become_follower(now, rng, term, Some(leader));
        self.reset_election_timer(now, rng);

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
            None => {
                debug_assert!(prev_log_index > self.log.last_index());
                reject(self, None, self.log.last_index() + 1);
                return;
            }
            Some(t) if t != prev_log_term => {
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
        for (i, e) in entries.iter().enumerate() {
            debug_assert_eq!(e.index, prev_log_index + 1 + i as u64);
            match self.log.term_at(e.index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    debug_assert!(e.index > self.commit_index, "truncating committed entry");
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
            let fresh: Vec<Entry<C>> = entries.drain(i..).collect();
            for e in &fresh {
                self.log.append(e.clone());
            }
            self.ready.storage.push(StorageOp::Append { entries: fresh });
        }

        if leader_commit > self.commit_index {
            self.commit_to(leader_commit.min(last_new));
        }
        self.send(
            leader,
            Message::AppendEntriesReply {
                term: self.current_term,
                success: true,
                match_index: last_new,
                conflict_term: None,
                conflict_index: 0,
            },
        );
    }

    /// AppendEntriesReply on the leader. Only replies of the current term
    /// count; progress only moves forward on success and `next_index` only
    /// moves backward on failure (never below `match_index + 1`), so late,
    /// duplicated and reordered replies are harmless.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_append_entries_reply(
        &mut self,
        now: u64,
        from: NodeId,
        term: u64,
        success: bool,
        match_index: u64,
        conflict_term: Option<u64>,
        conflict_index: u64,
    ) {
        if self.role != Role::Leader || term != self.current_term {
            return;
        }
        let last_index = self.log.last_index();
        let backup_to = if success {
            None
        } else {
            // Skip the follower's whole conflicting term at once.
            Some(match conflict_term {
                Some(t) => match self.log.last_index_of_term(t) {
                    Some(i) => i + 1,
                    None => conflict_index,
                },
                None => conflict_index,
            })
        };
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        let send_more = match backup_to {
            None => {
                debug_assert!(match_index <= last_index);
                if match_index > pr.match_index {
                    pr.match_index = match_index;
                    pr.next_index = pr.next_index.max(match_index + 1);
                    pr.next_index <= last_index
                } else {
                    false
                }
            }
            Some(target) => {
                let new_next = target.min(pr.next_index).max(pr.match_index + 1);
                if new_next < pr.next_index {
                    pr.next_index = new_next;
                    true
                } else {
                    false
                }
            }
        };
        if success {
            self.maybe_commit();
        }
        if send_more {
            self.send_append(now, from);
        }
    }

    /// Leader: commit the highest index replicated on a majority, but only if
    /// that entry is from the current term (Section 5.4.2, Figure 8).
    pub(crate) fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let mut matched: Vec<u64> = self.progress.values().map(|p| p.match_index).collect();
        matched.push(self.log.last_index());
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matched[self.config.quorum() - 1];
        if candidate > self.commit_index && self.log.term_at(candidate) == Some(self.current_term) {
            self.commit_to(candidate);
        }
    }
}
