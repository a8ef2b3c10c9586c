//! Log compaction (Section 7): service snapshots, InstallSnapshot and its reply.

use rand_core::RngCore;

use crate::{Apply, Command, Event, Message, NodeId, Raft, Role, Snapshot, StorageOp};

impl<C: Command> Raft<C> {
    /// Service says: my state through `index` (which it has applied) is
    /// `data`; discard the log up to `index`. Ignored if `index` is not newer
    /// than the current snapshot or has not been applied yet.
    pub fn snapshot(&mut self, index: u64, data: Vec<u8>) {
        if index <= self.log.snapshot_index() || index > self.last_applied {
            return;
        }
        let term = self
            .log
            .term_at(index)
            .expect("applied entry after the snapshot is in the log");
        let snapshot = Snapshot {
            last_included_index: index,
            last_included_term: term,
            data,
        };
        let installed = self.log.install_snapshot(snapshot.clone());
        debug_assert!(installed);
        self.ready.storage.push(StorageOp::Snapshot { snapshot });
        self.check_invariants();
    }

    /// Leader: send our snapshot to `peer` (its `next_index` fell into it).
    pub(crate) fn send_install_snapshot(&mut self, peer: NodeId) {
        let snapshot = self
            .log
            .snapshot()
            .expect("next_index <= snapshot_index implies a snapshot")
            .clone();
        let msg = Message::InstallSnapshot {
            term: self.current_term,
            leader_id: self.config.id,
            snapshot,
        };
        self.send(peer, msg);
    }

    /// InstallSnapshot receiver. A snapshot not beyond our commit index is
    /// acknowledged but not installed, so commit and apply never go backwards.
    pub(crate) fn handle_install_snapshot(
        &mut self,
        now: u64,
        rng: &mut dyn RngCore,
        leader: NodeId,
        term: u64,
        snapshot: Snapshot,
    ) {
        let lii = snapshot.last_included_index;
        if term < self.current_term {
            let msg = Message::InstallSnapshotReply {
                term: self.current_term,
                last_included_index: lii,
            };
            self.send(leader, msg);
            return;
        }
        debug_assert_ne!(self.role, Role::Leader, "two leaders in one term");
        self.become_follower(now, rng, term, Some(leader));
        self.reset_election_timer(now, rng);
        if lii > self.commit_index {
            debug_assert_eq!(self.last_applied, self.commit_index);
            let installed = self.log.install_snapshot(snapshot.clone());
            debug_assert!(installed);
            self.ready.storage.push(StorageOp::Snapshot {
                snapshot: snapshot.clone(),
            });
            self.commit_index = lii;
            self.last_applied = lii;
            self.ready.events.push(Event::CommitAdvanced { commit_index: lii });
            self.ready.applies.push(Apply::Snapshot { snapshot });
        }
        let msg = Message::InstallSnapshotReply {
            term: self.current_term,
            last_included_index: lii,
        };
        self.send(leader, msg);
    }

    /// InstallSnapshotReply on the leader: the follower holds everything
    /// through `last_included_index`.
    pub(crate) fn handle_install_snapshot_reply(
        &mut self,
        now: u64,
        from: NodeId,
        term: u64,
        last_included_index: u64,
    ) {
        if self.role != Role::Leader || term != self.current_term {
            return;
        }
        let last_index = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        if last_included_index <= pr.match_index {
            return;
        }
        debug_assert!(last_included_index <= last_index);
        pr.match_index = last_included_index;
        pr.next_index = pr.next_index.max(last_included_index + 1);
        let more = pr.next_index <= last_index;
        self.maybe_commit();
        if more {
            self.send_append(now, from);
        }
    }
}
