//! Log compaction (Section 7): service snapshots, InstallSnapshot and its reply.

use rand_core::RngCore;

use crate::{Apply, Bug, Command, Event, Message, NodeId, Raft, Role, Snapshot, StorageOp};

impl<C: Command> Raft<C> {
    /// Service says: my state through `index` (which it has applied) is
    /// `data`; discard the log up to `index`. Ignored if `index` is not newer
    /// than the current snapshot or has not been applied yet.
    pub fn snapshot(&mut self, index: u64, data: Vec<u8>) {
        self.land_late_writes();
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
            data: data.into(),
        };
        let installed = self.log.install_snapshot(snapshot.clone());
        debug_assert!(installed);
        self.ready.storage.push(StorageOp::Snapshot { snapshot });
        self.check_invariants();
    }

    /// Leader: the InstallSnapshot carrying our current snapshot.
    pub(crate) fn install_snapshot_message(&self) -> Message<C> {
        let snapshot = self
            .log
            .snapshot()
            .expect("sending at or below snapshot_index implies a snapshot")
            .clone();
        Message::InstallSnapshot {
            term: self.current_term,
            leader_id: self.config.id,
            snapshot,
        }
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
            // Rejected: holds nothing for the sender (which must not read the
            // snapshot's index as an acknowledgement, even if it leads again
            // in our term).
            let msg = Message::InstallSnapshotReply {
                term: self.current_term,
                request_term: term,
                last_included_index: lii,
                match_index: 0,
            };
            self.send(leader, msg);
            return;
        }
        debug_assert_ne!(self.role, Role::Leader, "two leaders in one term");
        self.become_follower(now, rng, term, Some(leader));
        self.reset_election_timer(now, rng);
        self.leader_contact = now;
        let newer = if self.config.bugs.has(Bug::InstallOlderSnapshot) {
            lii > self.log.snapshot_index()
        } else {
            lii > self.commit_index
        };
        if newer {
            debug_assert_eq!(self.last_applied, self.commit_index);
            let installed = self.log.install_snapshot(snapshot.clone());
            debug_assert!(installed);
            let write = StorageOp::Snapshot {
                snapshot: snapshot.clone(),
            };
            if self.config.bugs.has(Bug::InstalledSnapshotNotPersisted) {
                self.late_writes.push(write);
            } else {
                self.ready.storage.push(write);
            }
            if lii < self.log.last_index() && self.config.bugs.has(Bug::InstallDropsMatchingSuffix)
            {
                // Bug: the entries after the snapshot go too, although they match it.
                self.log.truncate_from(lii + 1);
                self.ready
                    .storage
                    .push(StorageOp::TruncateFrom { index: lii + 1 });
            }
            self.commit_index = lii;
            self.last_applied = lii;
            self.ready
                .events
                .push(Event::CommitAdvanced { commit_index: lii });
            self.ready.applies.push(Apply::Snapshot { snapshot });
        }
        // Installed, or already committed through lii: either way our log
        // matches the leader's through lii (committed entries are in every
        // later leader's log).
        debug_assert!(self.commit_index >= lii);
        let msg = Message::InstallSnapshotReply {
            term: self.current_term,
            request_term: term,
            last_included_index: lii,
            match_index: lii,
        };
        self.send(leader, msg);
    }

    /// InstallSnapshotReply on the leader, to a request of the current term
    /// (`handle_message` drops answers to earlier terms): it moves the
    /// follower's match index only to what the follower says it holds
    /// (`match_index`, 0 for a rejection).
    pub(crate) fn handle_install_snapshot_reply(
        &mut self,
        now: u64,
        from: NodeId,
        match_index: u64,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let last_index = self.log.last_index();
        let acked = if self.config.bugs.has(Bug::SnapshotReplyMatchesLeaderLog) {
            last_index
        } else {
            match_index
        };
        if !self.advance_match(from, acked) {
            return; // rejected, duplicate or stale
        }
        let sent = self.progress[&from].sent_index;
        self.maybe_commit();
        if sent < last_index {
            self.send_from(now, from, sent + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::testing::{cfg, make_leader, storage_with, Cluster};
    use crate::{Apply, Entry, Message, Raft, Snapshot, Storage, StorageOp};

    fn snap(i: u64, t: u64) -> Snapshot {
        Snapshot {
            last_included_index: i,
            last_included_term: t,
            data: vec![i as u8; 4].into(),
        }
    }

    fn install(term: u64, s: Snapshot) -> Message<u64> {
        Message::InstallSnapshot {
            term,
            leader_id: 0,
            snapshot: s,
        }
    }

    #[test]
    fn service_snapshot_discards_prefix_and_is_guarded() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut l = make_leader(1, &Storage::default(), &mut rng);
        for k in 0..10 {
            l.start(1, &mut rng, k);
        }
        l.take_ready();
        assert_eq!(l.last_applied(), 10);
        l.snapshot(11, vec![1]); // not applied yet: ignored
        assert_eq!(l.snapshot_index(), 0);
        l.snapshot(6, vec![6]);
        assert_eq!(
            (l.snapshot_index(), l.first_index(), l.last_index()),
            (6, 7, 10)
        );
        assert!(l.entry(6).is_none());
        assert_eq!(l.log().len(), 4);
        assert_eq!(
            l.take_ready().storage,
            vec![StorageOp::Snapshot {
                snapshot: Snapshot {
                    last_included_index: 6,
                    last_included_term: 1,
                    data: vec![6].into()
                }
            }]
        );
        l.snapshot(6, vec![9]); // not newer: ignored
        l.snapshot(3, vec![9]);
        assert!(!l.has_ready());
        assert_eq!(*l.log().snapshot().unwrap().data, vec![6]);
    }

    #[test]
    fn restart_with_snapshot_applies_it_first() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut s = storage_with(3, &[1, 2, 3, 3]);
        s.apply(&StorageOp::Snapshot {
            snapshot: snap(2, 2),
        });
        let mut r: Raft<u64> = Raft::new(cfg(1, 3), &s, 0, &mut rng);
        assert_eq!(
            (r.commit_index(), r.last_applied(), r.snapshot_index()),
            (2, 2, 2)
        );
        assert_eq!(
            (r.first_index(), r.last_index(), r.term_at(2)),
            (3, 4, Some(2))
        );
        let rd = r.take_ready();
        assert_eq!(
            rd.applies,
            vec![Apply::Snapshot {
                snapshot: snap(2, 2)
            }]
        );
    }

    #[test]
    fn follower_installs_newer_snapshot_and_ignores_older() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut f: Raft<u64> = Raft::new(cfg(1, 3), &Storage::default(), 0, &mut rng);
        let entries = (1..=5)
            .map(|i| Entry {
                index: i,
                term: 1,
                command: i,
            })
            .collect();
        f.handle_message(
            1,
            &mut rng,
            0,
            Message::AppendEntries {
                term: 1,
                leader_id: 0,
                prev_log_index: 0,
                prev_log_term: 0,
                entries,
                leader_commit: 5,
            },
        );
        f.take_ready();
        assert_eq!(f.commit_index(), 5);
        // Older than what is committed: acknowledged, not applied.
        f.handle_message(2, &mut rng, 0, install(1, snap(3, 1)));
        let rd = f.take_ready();
        assert!(rd.applies.is_empty() && rd.storage.is_empty());
        assert_eq!(
            rd.messages,
            vec![(
                0,
                Message::InstallSnapshotReply {
                    term: 1,
                    request_term: 1,
                    last_included_index: 3,
                    match_index: 3,
                }
            )]
        );
        assert_eq!(
            (f.commit_index(), f.last_applied(), f.last_index()),
            (5, 5, 5)
        );
        // Newer: installed, the log beyond it is gone (it did not cover index 8).
        f.handle_message(3, &mut rng, 0, install(1, snap(8, 1)));
        let rd = f.take_ready();
        assert_eq!(
            rd.applies,
            vec![Apply::Snapshot {
                snapshot: snap(8, 1)
            }]
        );
        assert_eq!(
            rd.storage,
            vec![StorageOp::Snapshot {
                snapshot: snap(8, 1)
            }]
        );
        assert_eq!(
            (
                f.commit_index(),
                f.last_applied(),
                f.last_index(),
                f.first_index()
            ),
            (8, 8, 8, 9)
        );
        // A duplicate of it changes nothing.
        f.handle_message(4, &mut rng, 0, install(1, snap(8, 1)));
        let rd = f.take_ready();
        assert!(rd.applies.is_empty() && rd.storage.is_empty());
        // An AppendEntries overlapping the snapshot appends only what follows it.
        let entries = (6..=10)
            .map(|i| Entry {
                index: i,
                term: 1,
                command: i,
            })
            .collect();
        f.handle_message(
            5,
            &mut rng,
            0,
            Message::AppendEntries {
                term: 1,
                leader_id: 0,
                prev_log_index: 5,
                prev_log_term: 1,
                entries,
                leader_commit: 10,
            },
        );
        let rd = f.take_ready();
        assert_eq!(f.last_index(), 10);
        assert_eq!(rd.applies.len(), 2);
        assert!(matches!(
            rd.messages[0].1,
            Message::AppendEntriesReply {
                success: true,
                match_index: 10,
                ..
            }
        ));
    }

    #[test]
    fn snapshot_keeps_matching_suffix_on_follower() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut f: Raft<u64> = Raft::new(cfg(1, 3), &storage_with(2, &[1, 1, 2, 2]), 0, &mut rng);
        f.handle_message(1, &mut rng, 0, install(2, snap(3, 2)));
        assert_eq!(
            (f.snapshot_index(), f.last_index(), f.commit_index()),
            (3, 4, 3)
        );
        assert_eq!(f.entry(4).unwrap().command, 400);
    }

    #[test]
    fn leader_sends_snapshot_to_lagging_follower_and_advances_on_reply() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut l = make_leader(3, &Storage::default(), &mut rng);
        let term = l.current_term();
        for k in 0..6 {
            l.start(1, &mut rng, k);
        }
        l.handle_message(
            2,
            &mut rng,
            2,
            Message::AppendEntriesReply {
                term,
                request_term: term,
                success: true,
                match_index: 6,
                conflict_term: None,
                conflict_index: 0,
            },
        );
        assert_eq!(l.commit_index(), 6);
        l.snapshot(4, vec![4]);
        l.take_ready();
        // Follower 1 is far behind (next_index 1): its heartbeat becomes an InstallSnapshot.
        assert_eq!(l.next_index(1), Some(1));
        let t = l.next_deadline();
        l.tick(t, &mut rng);
        let rd = l.take_ready();
        assert_eq!(rd.messages.len(), 2);
        assert!(
            matches!(&rd.messages[0], (1, Message::InstallSnapshot { snapshot, .. }) if snapshot.last_included_index == 4)
        );
        assert!(matches!(
            &rd.messages[1],
            (
                2,
                Message::AppendEntries {
                    prev_log_index: 6,
                    ..
                }
            )
        ));
        l.handle_message(
            4,
            &mut rng,
            1,
            Message::InstallSnapshotReply {
                term,
                request_term: term,
                last_included_index: 4,
                match_index: 4,
            },
        );
        assert_eq!((l.match_index(1), l.next_index(1)), (Some(4), Some(5)));
        let rd = l.take_ready();
        assert!(
            matches!(&rd.messages[0], (1, Message::AppendEntries { prev_log_index: 4, entries, .. }) if entries.len() == 2)
        );
        // A stale duplicate reply does not move progress.
        l.handle_message(
            5,
            &mut rng,
            1,
            Message::InstallSnapshotReply {
                term,
                request_term: term,
                last_included_index: 2,
                match_index: 2,
            },
        );
        assert_eq!((l.match_index(1), l.next_index(1)), (Some(4), Some(5)));
    }

    #[test]
    fn cluster_catches_up_crashed_follower_via_snapshot() {
        for seed in 0..5 {
            let mut c = Cluster::new(3, 100 + seed);
            c.snapshot_every = Some(10);
            c.one(1, 3);
            let leader = c.leaders()[0];
            let lagger = (leader + 1) % 3;
            c.crash(lagger);
            for k in 2..=50 {
                c.one(k, 2);
            }
            assert!(c.nodes[leader].snapshot_index() >= 40);
            assert!(c.nodes[leader].log().len() < 15, "prefix discarded");
            c.restart(lagger);
            let idx = c.one(51, 3);
            c.run_for(1_000_000);
            assert!(c.sent.get("InstallSnapshot").copied().unwrap_or(0) > 0);
            assert!(c.nodes[lagger].snapshot_index() >= 40);
            assert_eq!(c.nodes[lagger].last_applied(), idx);
            assert_eq!(c.services[lagger], c.services[leader]);
        }
    }
}
