//! Leader election (Section 5.2) with the election restriction (Section 5.4.1).

use std::collections::BTreeMap;

use rand_core::RngCore;

use crate::raft::Progress;
use crate::{Bug, Command, Event, Message, NodeId, Raft, Role};

impl<C: Command> Raft<C> {
    /// Election timeout: start a new term, vote for ourselves (persisted in
    /// this Ready) and ask every peer for its vote.
    pub(crate) fn campaign(&mut self, now: u64, rng: &mut dyn RngCore) {
        self.pre_votes = None;
        self.current_term += 1;
        self.voted_for = if self.config.bugs.has(Bug::CandidateForgetsSelfVote) {
            None
        } else {
            Some(self.config.id)
        };
        if !self.config.bugs.has(Bug::CampaignNotPersisted) {
            self.persist_hard_state();
        }
        self.role = Role::Candidate;
        self.leader_id = None;
        self.votes = vec![self.config.id];
        self.reset_election_timer(now, rng);
        self.ready.events.push(Event::BecameCandidate {
            term: self.current_term,
        });
        if self.votes.len() >= self.config.quorum() {
            self.become_leader(now);
            return;
        }
        let msg = Message::RequestVote {
            term: self.current_term,
            candidate_id: self.config.id,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        for peer in self.others() {
            self.send(peer, msg.clone());
        }
    }

    /// RequestVote receiver (Figure 2). `term <= current_term` here: a newer
    /// term was adopted by the dispatcher.
    pub(crate) fn handle_request_vote(
        &mut self,
        now: u64,
        rng: &mut dyn RngCore,
        candidate: NodeId,
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
    ) {
        let up_to_date = if self.config.bugs.has(Bug::UpToDateByLength) {
            last_log_index >= self.log.last_index()
        } else {
            self.log.is_up_to_date(last_log_index, last_log_term)
        };
        let grant = term == self.current_term
            && self.voted_for.is_none_or(|v| v == candidate)
            && (up_to_date || self.config.bugs.has(Bug::NoElectionRestriction));
        if grant {
            debug_assert_eq!(self.role, Role::Follower);
            if self.voted_for != Some(candidate) {
                self.voted_for = Some(candidate);
                // Durable before the reply: same Ready, storage goes first.
                if !self.config.bugs.has(Bug::VoteNotPersisted) {
                    self.persist_hard_state();
                }
            }
            self.reset_election_timer(now, rng);
        }
        self.send(
            candidate,
            Message::RequestVoteReply {
                term: self.current_term,
                request_term: term,
                vote_granted: grant,
            },
        );
    }

    /// RequestVoteReply to this election's request (`handle_message` drops
    /// answers to earlier terms): count the vote; a majority makes us leader.
    /// Duplicate replies are harmless.
    pub(crate) fn handle_request_vote_reply(&mut self, now: u64, from: NodeId, granted: bool) {
        if self.role != Role::Candidate || !granted {
            return;
        }
        if !self.votes.contains(&from) || self.config.bugs.has(Bug::VotesNotDeduplicated) {
            self.votes.push(from);
        }
        if self.votes.len() >= self.config.quorum() {
            self.become_leader(now);
        }
    }

    /// Won the election: initialise per-follower progress and assert
    /// leadership right away with an AppendEntries round.
    pub(crate) fn become_leader(&mut self, now: u64) {
        debug_assert_eq!(self.role, Role::Candidate);
        self.role = Role::Leader;
        self.leader_id = Some(self.config.id);
        self.votes.clear();
        self.pre_votes = None;
        let next_index = self.log.last_index() + 1;
        let match_index = if self.config.bugs.has(Bug::MatchIndexStartsAtLast) {
            next_index - 1
        } else {
            0
        };
        self.progress = self
            .others()
            .into_iter()
            .map(|p| {
                let pr = Progress {
                    next_index,
                    match_index,
                    sent_index: next_index - 1,
                    heartbeat_due: now,
                    resent_from: None,
                    recent_active: false,
                    read_acked: 0,
                };
                (p, pr)
            })
            .collect::<BTreeMap<_, _>>();
        self.quorum_check_due = self.quorum_check_after(now);
        self.lease_become_leader(now);
        self.ready.events.push(Event::BecameLeader {
            term: self.current_term,
        });
        for peer in self.others() {
            self.send_append(now, peer);
        }
        // A single-node cluster commits on its own.
        self.maybe_commit();
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{cfg, Cluster};
    use crate::{Message, Raft, Role, Storage, StorageOp};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn elects_exactly_one_leader_3_and_5() {
        for n in [3, 5] {
            for seed in 0..10 {
                let mut c = Cluster::new(n, seed);
                c.run_for(2_000_000);
                let leaders = c.leaders();
                assert_eq!(leaders.len(), 1, "n={n} seed={seed}");
                let term = c.nodes[leaders[0]].current_term();
                for node in &c.nodes {
                    assert_eq!(node.current_term(), term);
                    assert_eq!(node.leader_hint(), Some(leaders[0]));
                }
            }
        }
    }

    #[test]
    fn single_node_elects_itself_and_commits() {
        let mut c = Cluster::new(1, 3);
        c.run_for(1_000_000);
        assert_eq!(c.leaders(), vec![0]);
        assert_eq!(c.nodes[0].next_deadline(), u64::MAX);
        let (idx, _) = c.start(0, 42).unwrap();
        assert_eq!(c.nodes[0].commit_index(), idx);
    }

    #[test]
    fn vote_is_persisted_in_same_ready_as_grant() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut r: Raft<u64> = Raft::new(cfg(1, 3), &Storage::default(), 0, &mut rng);
        let rv = Message::RequestVote {
            term: 5,
            candidate_id: 2,
            last_log_index: 0,
            last_log_term: 0,
        };
        r.handle_message(10, &mut rng, 2, rv);
        let ready = r.take_ready();
        assert!(ready.storage.contains(&StorageOp::HardState {
            current_term: 5,
            voted_for: Some(2)
        }));
        assert_eq!(
            ready.messages,
            vec![(
                2,
                Message::RequestVoteReply {
                    term: 5,
                    request_term: 5,
                    vote_granted: true
                }
            )]
        );
        // A different candidate in the same term is refused; no storage write.
        let rv0 = Message::RequestVote {
            term: 5,
            candidate_id: 0,
            last_log_index: 9,
            last_log_term: 9,
        };
        r.handle_message(20, &mut rng, 0, rv0);
        let ready = r.take_ready();
        assert!(ready.storage.is_empty());
        assert_eq!(
            ready.messages,
            vec![(
                0,
                Message::RequestVoteReply {
                    term: 5,
                    request_term: 5,
                    vote_granted: false
                }
            )]
        );
    }

    #[test]
    fn election_restriction_refuses_stale_log() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut s = Storage::<u64>::default();
        s.apply(&StorageOp::HardState {
            current_term: 3,
            voted_for: None,
        });
        s.apply(&StorageOp::Append {
            entries: vec![crate::Entry {
                index: 1,
                term: 3,
                command: 1,
            }],
        });
        let mut r: Raft<u64> = Raft::new(cfg(0, 3), &s, 0, &mut rng);
        // Higher term but older last term: term adopted, vote refused.
        r.handle_message(
            1,
            &mut rng,
            1,
            Message::RequestVote {
                term: 4,
                candidate_id: 1,
                last_log_index: 5,
                last_log_term: 2,
            },
        );
        assert_eq!(r.current_term(), 4);
        assert_eq!(r.voted_for(), None);
        let ready = r.take_ready();
        assert!(matches!(
            ready.messages[0].1,
            Message::RequestVoteReply {
                vote_granted: false,
                ..
            }
        ));
        // Same last term, shorter log: refused. Same log: granted.
        let ask = |idx| Message::RequestVote {
            term: 4,
            candidate_id: 2,
            last_log_index: idx,
            last_log_term: 3,
        };
        r.handle_message(2, &mut rng, 2, ask(0));
        assert_eq!(r.voted_for(), None);
        r.handle_message(3, &mut rng, 2, ask(1));
        assert_eq!(r.voted_for(), Some(2));
    }

    #[test]
    fn stale_term_rejected_newer_term_steps_down() {
        let mut c = Cluster::new(3, 7);
        c.run_for(2_000_000);
        let l = c.leaders()[0];
        let term = c.nodes[l].current_term();
        let f = (l + 1) % 3;
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let now = c.now;
        // A stale AppendEntries from an old term is refused with our term.
        c.nodes[f].take_ready();
        c.nodes[f].handle_message(
            now,
            &mut rng,
            (l + 2) % 3,
            Message::AppendEntries {
                term: term - 1,
                leader_id: (l + 2) % 3,
                prev_log_index: 0,
                prev_log_term: 0,
                entries: vec![],
                leader_commit: 0,
            },
        );
        let ready = c.nodes[f].take_ready();
        assert_eq!(c.nodes[f].current_term(), term);
        assert!(matches!(
            ready.messages[0].1,
            Message::AppendEntriesReply { success: false, term: t, .. } if t == term
        ));
        // A stale vote request is refused too.
        c.nodes[f].handle_message(
            now,
            &mut rng,
            (l + 2) % 3,
            Message::RequestVote {
                term: term - 1,
                candidate_id: (l + 2) % 3,
                last_log_index: 100,
                last_log_term: 100,
            },
        );
        assert!(matches!(
            c.nodes[f].take_ready().messages[0].1,
            Message::RequestVoteReply {
                vote_granted: false,
                ..
            }
        ));
        // The leader steps down on any reply with a newer term.
        c.nodes[l].handle_message(
            now,
            &mut rng,
            f,
            Message::InstallSnapshotReply {
                term: term + 1,
                request_term: term,
                last_included_index: 0,
                match_index: 0,
            },
        );
        assert_eq!(c.nodes[l].role(), Role::Follower);
        assert_eq!(c.nodes[l].current_term(), term + 1);
        assert_eq!(c.nodes[l].voted_for(), None);
        assert!(c.nodes[l].next_deadline() > now);
    }
}
