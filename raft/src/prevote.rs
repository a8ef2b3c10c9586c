//! PreVote (Raft thesis §9.6) and CheckQuorum (thesis §6.2): the two rules that keep a node
//! with broken links from disrupting, or stalling, a cluster whose majority talks fine.
//!
//! PreVote: a node whose election timer fires first asks whether a majority would vote for
//! it in the next term, changing no term or vote anywhere; only if they would does it
//! campaign. A server refuses while it has heard from a leader within the minimum election
//! timeout, so a node that hears nobody (or misses only the leader's messages) neither pushes
//! terms up nor deposes a working leader when it comes back.
//!
//! CheckQuorum: a leader that has not been answered by a majority (itself included) within an
//! election timeout steps down, so a leader whose incoming links are cut stops suppressing
//! elections with heartbeats nobody can answer.

use rand_core::RngCore;

use crate::{Bug, Command, Message, NodeId, Raft, Role};

impl<C: Command> Raft<C> {
    /// Election timeout with PreVote: start a pre-vote round for `current_term + 1`. The timer
    /// restarts, so a round that gets no majority is followed by another one.
    pub(crate) fn pre_campaign(&mut self, now: u64, rng: &mut dyn RngCore) {
        if self.config.bugs.has(Bug::PrevoteBumpsTerm) {
            // Bug: the pre-vote moves to the next term, as an election would.
            self.adopt_term(self.current_term + 1);
        }
        self.pre_votes = Some(vec![self.config.id]);
        self.reset_election_timer(now, rng);
        if self.config.quorum() <= 1 {
            self.campaign(now, rng);
            return;
        }
        let msg = Message::PreVote {
            term: self.current_term + 1,
            candidate_id: self.config.id,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        for peer in self.others() {
            self.send(peer, msg.clone());
        }
    }

    /// Whether this node believes a leader of its term is alive: it leads, or it heard from
    /// the leader within the minimum election timeout.
    fn hears_leader(&self, now: u64) -> bool {
        self.role == Role::Leader
            || (self.leader_id.is_some()
                && now
                    < self
                        .leader_contact
                        .saturating_add(self.config.election_timeout_min))
    }

    /// PreVote receiver: grant if `term` (the prospective term) is newer than ours, the
    /// candidate's log is at least as up-to-date as ours (Section 5.4.1), and no leader is
    /// known to be alive. Nothing changes here: no term, no vote, no timer.
    pub(crate) fn handle_pre_vote(
        &mut self,
        now: u64,
        candidate: NodeId,
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
    ) {
        let grant = term > self.current_term
            && self.log.is_up_to_date(last_log_index, last_log_term)
            && !self.hears_leader(now);
        self.send(
            candidate,
            Message::PreVoteReply {
                term: self.current_term,
                request_term: term,
                vote_granted: grant,
            },
        );
    }

    /// PreVoteReply to this round (`handle_message` drops answers about another term): count
    /// the grant once; a majority starts the real election.
    pub(crate) fn handle_pre_vote_reply(
        &mut self,
        now: u64,
        rng: &mut dyn RngCore,
        from: NodeId,
        granted: bool,
    ) {
        let Some(votes) = self.pre_votes.as_mut() else {
            return;
        };
        if !granted {
            return;
        }
        if !votes.contains(&from) {
            votes.push(from);
        }
        if votes.len() >= self.config.quorum() {
            self.campaign(now, rng);
        }
    }

    /// Leader with CheckQuorum, once per period: step down unless a majority (this node
    /// included) answered a request of this term since the last check.
    pub(crate) fn check_quorum(&mut self, now: u64, rng: &mut dyn RngCore) {
        let active = 1 + self.progress.values().filter(|p| p.recent_active).count();
        if active < self.config.quorum() && !self.config.bugs.has(Bug::CheckQuorumNeverStepsDown) {
            let term = self.current_term;
            self.become_follower(now, rng, term, None);
            self.leader_id = None;
            return;
        }
        for pr in self.progress.values_mut() {
            pr.recent_active = false;
        }
        self.quorum_check_due = self.quorum_check_after(now);
    }

    /// When a leader checks its quorum next, for a period starting at `now`: one maximum
    /// election timeout (the upper end, so a slow but working majority is not taken for
    /// lost); never without CheckQuorum.
    pub(crate) fn quorum_check_after(&self, now: u64) -> u64 {
        if self.config.check_quorum {
            now.saturating_add(self.config.election_timeout_max.max(1))
        } else {
            u64::MAX
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::Cluster;
    use crate::{Config, Role};

    fn both(c: &mut Config) {
        c.pre_vote = true;
        c.check_quorum = true;
    }

    /// A 3-node cluster with a leader; returns (cluster, leader, term).
    fn settled(seed: u64, edit: impl Fn(&mut Config)) -> (Cluster, usize, u64) {
        let mut c = Cluster::with_config(3, seed, edit);
        c.run_for(2_000_000);
        c.one(1, 3);
        let l = c.leaders()[0];
        let term = c.nodes[l].current_term();
        (c, l, term)
    }

    #[test]
    fn an_isolated_node_keeps_its_term_and_rejoins_without_disruption() {
        for seed in 0..10 {
            let (mut c, l, term) = settled(seed, both);
            let f = (l + 1) % 3;
            c.group[f] = 1;
            c.run_for(5_000_000);
            assert_eq!(
                c.nodes[f].current_term(),
                term,
                "seed {seed}: no term pushed up"
            );
            assert_eq!(c.nodes[f].role(), Role::Follower);
            c.group[f] = 0;
            c.run_for(2_000_000);
            assert_eq!(c.leaders(), vec![l], "seed {seed}: the leader stays");
            assert!(
                c.nodes.iter().all(|n| n.current_term() == term),
                "seed {seed}"
            );
            c.one(2, 3);
        }
    }

    #[test]
    fn without_pre_vote_an_isolated_node_pushes_terms_up_and_deposes_the_leader() {
        let (mut c, l, term) = settled(1, |_| {});
        let f = (l + 1) % 3;
        c.group[f] = 1;
        c.run_for(5_000_000);
        assert!(c.nodes[f].current_term() > term + 3);
        c.group[f] = 0;
        c.run_for(2_000_000);
        assert!(c.nodes[l].current_term() > term, "the old term is gone");
    }

    #[test]
    fn a_leader_whose_incoming_links_are_cut_steps_down_and_the_majority_goes_on() {
        for seed in 0..10 {
            let (mut c, l, term) = settled(seed, both);
            c.cut = vec![((l + 1) % 3, l), ((l + 2) % 3, l)];
            let elected = c.run_until(3_000_000, |c| {
                c.leaders().iter().any(|&n| n != l) && !c.nodes[l].is_leader()
            });
            assert!(elected, "seed {seed}: a connected majority elects a leader");
            let new = c.leaders()[0];
            assert!(c.nodes[new].current_term() > term);
            c.one(2, 2);
            // The deposed leader hears nobody: its pre-votes go out but never push terms up.
            let t = c.nodes[new].current_term();
            c.run_for(3_000_000);
            assert_eq!(c.leaders(), vec![new], "seed {seed}");
            assert_eq!(
                c.nodes[l].current_term(),
                term,
                "seed {seed}: it hears no newer term"
            );
            for n in (0..3).filter(|n| *n != l) {
                assert_eq!(c.nodes[n].current_term(), t, "seed {seed}");
            }
        }
    }

    #[test]
    fn without_check_quorum_an_inbound_cut_leader_stalls_the_cluster() {
        let (mut c, l, term) = settled(2, |c| c.pre_vote = true);
        c.cut = vec![((l + 1) % 3, l), ((l + 2) % 3, l)];
        c.run_for(5_000_000);
        assert_eq!(c.leaders(), vec![l]);
        assert!(c.nodes.iter().all(|n| n.current_term() == term));
        let (index, _) = c.start(l, 9).unwrap();
        c.run_for(3_000_000);
        assert!(
            c.nodes.iter().all(|n| n.commit_index() < index),
            "nothing commits"
        );
    }

    #[test]
    fn a_leader_answered_by_a_majority_keeps_leading_under_check_quorum() {
        let (mut c, l, term) = settled(3, both);
        // One follower is gone entirely: the leader and the other one are a majority.
        c.up[(l + 1) % 3] = false;
        c.run_for(5_000_000);
        assert_eq!(c.leaders(), vec![l]);
        assert_eq!(c.nodes[l].current_term(), term);
    }
}
