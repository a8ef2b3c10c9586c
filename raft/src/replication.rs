//! Log replication (Section 5.3), the leader's side: proposing, pipelined AppendEntries,
//! and the replies with fast backup. The receiver is in `append.rs`.

use rand_core::RngCore;

use crate::{Bug, Command, Entry, Message, NodeId, Raft, Role, StorageOp};

impl<C: Command> Raft<C> {
    /// Service proposes a command. `Some((index, term))` if this node is the
    /// leader: the entry is appended, persisted via the Ready, and sent to
    /// followers right away. `None` otherwise.
    pub fn start(&mut self, now: u64, _rng: &mut dyn RngCore, command: C) -> Option<(u64, u64)> {
        self.land_late_writes();
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
        // Pipeline the new entry to every follower that has been sent all
        // earlier ones; a lagging follower is fed by its replies instead.
        for peer in self.others() {
            if self.progress[&peer].sent_index + 1 == at.0 {
                self.send_from(now, peer, at.0);
            }
        }
        self.maybe_commit();
        self.check_invariants();
        Some(at)
    }

    /// Full (re)send to `peer` from `next_index`: everything not known to
    /// match (an empty AppendEntries is a heartbeat). Used for heartbeats,
    /// which double as the retransmission timer, and after a rejection.
    pub(crate) fn send_append(&mut self, now: u64, peer: NodeId) {
        if let Some(next) = self.progress.get(&peer).map(|p| p.next_index) {
            self.send_from(now, peer, next);
        }
    }

    /// Send `peer` up to `max_entries_per_append` entries starting at `from`
    /// (with `prev_log_index = from - 1`), or the snapshot if that part of
    /// the log is gone. Records what was sent and restarts the heartbeat timer.
    pub(crate) fn send_from(&mut self, now: u64, peer: NodeId, from: u64) {
        let interval = self.config.heartbeat_interval;
        let snapshot_index = self.log.snapshot_index();
        let msg = if from <= snapshot_index {
            self.install_snapshot_message()
        } else {
            let prev_log_index = from - 1;
            let prev_log_term = self
                .log
                .term_at(prev_log_index)
                .expect("prev_log_index is at or after the snapshot");
            let entries = self
                .log
                .entries_from(from, self.config.max_entries_per_append);
            Message::AppendEntries {
                term: self.current_term,
                leader_id: self.config.id,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit: self.commit_index,
            }
        };
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        debug_assert!(from >= pr.next_index && from <= pr.sent_index + 1);
        pr.heartbeat_due = now.saturating_add(interval);
        pr.sent_index = match &msg {
            Message::AppendEntries {
                prev_log_index,
                entries,
                ..
            } => prev_log_index + entries.len() as u64,
            _ => snapshot_index,
        };
        self.send(peer, msg);
    }

    /// AppendEntriesReply on the leader, to a request of the current term
    /// (`handle_message` drops answers to earlier terms: the replier's own
    /// term may be newer than the request's and equal ours if we lead again).
    /// Progress only moves forward on success and `next_index` only moves
    /// backward on failure (never below `match_index + 1`), so late,
    /// duplicated and reordered replies are harmless.
    pub(crate) fn handle_append_entries_reply(
        &mut self,
        now: u64,
        from: NodeId,
        success: bool,
        match_index: u64,
        conflict_term: Option<u64>,
        conflict_index: u64,
    ) {
        if self.role != Role::Leader {
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
        match backup_to {
            None => {
                let acked = if self.config.bugs.has(Bug::MatchFromSent) {
                    pr.sent_index
                } else {
                    match_index
                };
                if !self.advance_match(from, acked) {
                    return; // duplicate or stale
                }
                let sent = self.progress[&from].sent_index;
                self.maybe_commit();
                if sent < last_index {
                    // Keep the pipeline going with what has not been sent yet.
                    self.send_from(now, from, sent + 1);
                }
            }
            Some(_) if conflict_term.is_none() && conflict_index <= pr.match_index => {
                // "Your log is too short" from before it grew to match_index: stale.
            }
            Some(target) => {
                // Back up (never below what is known to match) and resend, unless a resend
                // from that very place already went out since the last progress: then this
                // rejection is a reordered or duplicated answer to an older request, and
                // resending for each such answer would flood the follower.
                let next_index = target.min(pr.next_index).max(pr.match_index + 1);
                if next_index == pr.next_index && pr.resent_from == Some(next_index) {
                    return;
                }
                pr.next_index = next_index;
                pr.resent_from = Some(next_index);
                self.send_append(now, from);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::testing::{cfg, make_leader, storage_with, Cluster};
    use crate::{Entry, Message, Raft, Storage, StorageOp};

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
    fn agreement_on_sequential_commands() {
        let mut c = Cluster::new(3, 11);
        for k in 1..=20u64 {
            let idx = c.one(1000 + k, 3);
            assert_eq!(idx, k);
        }
        c.run_for(500_000);
        for i in 0..3 {
            assert_eq!(c.nodes[i].last_applied(), 20);
            assert_eq!(c.services[i], c.services[0]);
        }
    }

    #[test]
    fn start_replicates_immediately_and_only_leader_accepts() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut l = make_leader(3, &Storage::default(), &mut rng);
        let mut f: Raft<u64> = Raft::new(cfg(1, 3), &Storage::default(), 0, &mut rng);
        assert_eq!(f.start(0, &mut rng, 5), None);
        let at = l.start(1, &mut rng, 5);
        assert_eq!(at, Some((1, l.current_term())));
        let rd = l.take_ready();
        assert_eq!(
            rd.storage,
            vec![StorageOp::Append {
                entries: vec![Entry {
                    index: 1,
                    term: l.current_term(),
                    command: 5
                }]
            }]
        );
        let targets: Vec<_> = rd.messages.iter().map(|(to, m)| (*to, m.kind())).collect();
        assert_eq!(targets, vec![(1, "AppendEntries"), (2, "AppendEntries")]);
        // Ticking again at the same instant sends no extra heartbeat.
        l.tick(1, &mut rng);
        assert!(l.take_ready().messages.is_empty());
        assert_eq!(l.next_deadline(), 1 + l.config().heartbeat_interval);
        l.tick(l.next_deadline(), &mut rng);
        assert_eq!(l.take_ready().messages.len(), 2);
    }

    #[test]
    fn stale_replies_do_not_move_progress_backwards() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut l = make_leader(3, &storage_with(1, &[1, 1]), &mut rng);
        let term = l.current_term();
        for k in 0..4 {
            l.start(10, &mut rng, k);
        }
        l.take_ready();
        assert_eq!(l.last_index(), 6);
        assert_eq!((l.next_index(1), l.match_index(1)), (Some(3), Some(0)));
        l.handle_message(20, &mut rng, 1, success(term, 6));
        assert_eq!((l.next_index(1), l.match_index(1)), (Some(7), Some(6)));
        assert_eq!(l.commit_index(), 6);
        // Late success for an older request.
        l.handle_message(21, &mut rng, 1, success(term, 3));
        assert_eq!((l.next_index(1), l.match_index(1)), (Some(7), Some(6)));
        // Late failure for an older request.
        l.handle_message(
            22,
            &mut rng,
            1,
            Message::AppendEntriesReply {
                term,
                request_term: term,
                success: false,
                match_index: 0,
                conflict_term: None,
                conflict_index: 1,
            },
        );
        assert_eq!((l.next_index(1), l.match_index(1)), (Some(7), Some(6)));
        // Replies from an older term are ignored entirely.
        l.handle_message(23, &mut rng, 2, success(term - 1, 6));
        assert_eq!(l.match_index(2), Some(0));
        assert!(l.take_ready().messages.is_empty());
        assert!(l.is_leader());
    }

    #[test]
    fn fast_backup_skips_a_term_per_round() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut l = make_leader(
            3,
            &storage_with(5, &[1, 1, 1, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5]),
            &mut rng,
        );
        let mut f: Raft<u64> = Raft::new(
            cfg(1, 3),
            &storage_with(3, &[1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3]),
            0,
            &mut rng,
        );
        // Kick off with a heartbeat to follower 1 and ping-pong until done.
        let t = l.next_deadline();
        l.tick(t, &mut rng);
        let mut to_f: Vec<_> = l
            .take_ready()
            .messages
            .into_iter()
            .filter(|(to, _)| *to == 1)
            .collect();
        let mut rejections = 0;
        let mut nexts = vec![];
        for _ in 0..10 {
            let Some((_, m)) = to_f.pop() else { break };
            f.handle_message(t, &mut rng, 0, m);
            for (_, reply) in f.take_ready().messages {
                if matches!(reply, Message::AppendEntriesReply { success: false, .. }) {
                    rejections += 1;
                }
                l.handle_message(t, &mut rng, 1, reply);
                nexts.push(l.next_index(1).unwrap());
            }
            to_f = l.take_ready().messages;
        }
        assert_eq!(nexts, vec![14, 9, 4, 16]);
        assert_eq!(rejections, 3);
        assert!(f.log().iter().eq(l.log().iter()));
        assert_eq!(l.match_index(1), Some(15));
    }

    #[test]
    fn a_conflict_in_a_term_the_leader_has_backs_up_to_just_after_its_last_entry_of_it() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        // Leader: terms [1, 1, 2, 3, 3]; the follower's entry at 5 is of term 2, which the
        // leader holds through index 3. The leader's entries after 3 cannot match, so it
        // resends from 4 (not from 3, whose entry the follower shares).
        let mut l = make_leader(3, &storage_with(3, &[1, 1, 2, 3, 3]), &mut rng);
        let term = l.current_term();
        let nack = Message::AppendEntriesReply {
            term,
            request_term: term,
            success: false,
            match_index: 0,
            conflict_term: Some(2),
            conflict_index: 3,
        };
        l.handle_message(1, &mut rng, 1, nack);
        assert_eq!(l.next_index(1), Some(4));
    }

    #[test]
    fn stale_leader_learns_newer_term_from_reply() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut l = make_leader(3, &Storage::default(), &mut rng);
        let term = l.current_term();
        l.handle_message(5, &mut rng, 2, success(term + 3, 0));
        assert!(!l.is_leader());
        assert_eq!(l.current_term(), term + 3);
        let rd = l.take_ready();
        assert_eq!(
            rd.storage,
            vec![StorageOp::HardState {
                current_term: term + 3,
                voted_for: None
            }]
        );
    }

    #[test]
    fn reordered_rejections_cause_one_resend_not_one_each() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut l = make_leader(3, &Storage::default(), &mut rng);
        let mut f: Raft<u64> = Raft::new(cfg(1, 3), &Storage::default(), 0, &mut rng);
        let mut to_f = vec![];
        for k in 0..4 {
            l.start(10, &mut rng, k);
            for (to, m) in l.take_ready().messages {
                if to == 1 {
                    to_f.push(m);
                }
            }
        }
        // The follower sees entries 2, 3 and 4 before entry 1: three "log too short" replies.
        let mut rejections = vec![];
        for m in to_f.drain(1..) {
            f.handle_message(11, &mut rng, 0, m);
            rejections.extend(f.take_ready().messages.into_iter().map(|(_, r)| r));
        }
        assert_eq!(rejections.len(), 3);
        let mut resends = 0;
        for r in rejections {
            assert!(matches!(
                r,
                Message::AppendEntriesReply { success: false, .. }
            ));
            l.handle_message(12, &mut rng, 1, r);
            resends += l.take_ready().messages.len();
        }
        assert_eq!(resends, 1, "one resend answers every stale rejection");
        assert_eq!(l.next_index(1), Some(1));
    }

    #[test]
    fn pipelines_new_entries_without_resending_in_flight_ones() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mut l = make_leader(3, &Storage::default(), &mut rng);
        let mut f: Raft<u64> = Raft::new(cfg(1, 3), &Storage::default(), 0, &mut rng);
        let term = l.current_term();
        let mut to_f = vec![];
        for k in 0..3 {
            l.start(10, &mut rng, k);
            for (to, m) in l.take_ready().messages {
                if let Message::AppendEntries {
                    prev_log_index,
                    entries,
                    ..
                } = &m
                {
                    assert_eq!(entries.len(), 1, "only the new entry is sent");
                    assert_eq!(*prev_log_index, k);
                }
                if to == 1 {
                    to_f.push(m);
                }
            }
        }
        // Deliver the second one first: rejected (gap), the leader resends
        // from next_index; then the rest arrive, the third after the resend.
        let second = to_f.remove(1);
        f.handle_message(11, &mut rng, 0, second);
        let replies = f.take_ready().messages;
        assert!(matches!(
            replies[0].1,
            Message::AppendEntriesReply {
                success: false,
                conflict_index: 1,
                ..
            }
        ));
        l.handle_message(12, &mut rng, 1, replies[0].1.clone());
        let resend = l.take_ready().messages;
        assert!(
            matches!(&resend[0], (1, Message::AppendEntries { prev_log_index: 0, entries, .. }) if entries.len() == 3)
        );
        let mut extra_sends = 0;
        let third = to_f.pop().unwrap();
        let first = to_f.pop().unwrap();
        let order = [first, resend[0].1.clone(), third];
        for m in order {
            f.handle_message(13, &mut rng, 0, m);
            for (_, r) in f.take_ready().messages {
                l.handle_message(14, &mut rng, 1, r);
                extra_sends += l.take_ready().messages.len();
            }
        }
        assert_eq!(extra_sends, 0, "nothing left to send once all is acked");
        assert_eq!(
            (l.match_index(1), l.next_index(1), l.commit_index()),
            (Some(3), Some(4), 3)
        );
        assert!(f.log().iter().eq(l.log().iter()));
        assert_eq!(term, l.current_term());
    }

    #[test]
    fn lagging_follower_is_fed_in_batches_by_its_replies() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut l = make_leader(3, &storage_with(1, &[1; 20]), &mut rng);
        l.config.max_entries_per_append = 8;
        let mut f: Raft<u64> = Raft::new(cfg(1, 3), &Storage::default(), 0, &mut rng);
        let t = l.next_deadline();
        l.tick(t, &mut rng);
        let mut inbox: Vec<_> = l
            .take_ready()
            .messages
            .into_iter()
            .filter(|(to, _)| *to == 1)
            .collect();
        let mut rounds = 0;
        while let Some((_, m)) = inbox.pop() {
            rounds += 1;
            // A proposal meanwhile must not duplicate the batch in flight.
            if rounds == 3 {
                l.start(t, &mut rng, 99);
                assert!(l.take_ready().messages.iter().all(|(to, _)| *to != 1));
            }
            f.handle_message(t, &mut rng, 0, m);
            for (_, r) in f.take_ready().messages {
                l.handle_message(t, &mut rng, 1, r);
            }
            inbox = l
                .take_ready()
                .messages
                .into_iter()
                .filter(|(to, _)| *to == 1)
                .collect();
            assert!(inbox.len() <= 1);
        }
        // 1 heartbeat + 1 rejection resend... then batches of 8 for 21 entries.
        assert!(rounds <= 6, "rounds = {rounds}");
        assert_eq!(f.last_index(), 21);
        assert_eq!(l.match_index(1), Some(21));
    }
}
