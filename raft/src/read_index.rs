//! ReadIndex reads (Raft thesis §6.4): a read served without a log entry. The leader
//! (1) has committed an entry of its own term, so its commit index covers everything any
//! earlier leader committed; (2) takes its commit index as the read index; (3) confirms it
//! still leads with a round of `LeadershipCheck`s answered by a majority, started after the
//! read was asked; then the service (4) waits until it applied through the read index and
//! answers from its state. The protocol does (1) to (3); [`ReadState`] hands (4) over.

use rand_core::RngCore;

use crate::raft::PendingRead;
use crate::{Bug, Command, Message, NodeId, Raft, ReadState, Role};

/// Why [`Raft::read_index`] cannot take a read index now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadRefusal {
    /// This node is not the leader: ask another server.
    NotLeader,
    /// The leader has not committed an entry of its term yet, so its commit index may lag
    /// behind what an earlier leader committed. Commit something in this term first (the
    /// service may send the read through the log, which does just that).
    NoCommitInTerm,
}

impl<C: Command> Raft<C> {
    /// Ask for a ReadIndex read tagged `ctx` (the caller's, handed back). On `Ok`, a later
    /// Ready carries `ReadState { ctx, index }` once a majority confirmed this node still
    /// leads, unless it loses leadership first (then the read never comes back: the caller
    /// fails it when it sees the role or term change).
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadRefusal> {
        self.land_late_writes();
        if self.role != Role::Leader {
            return Err(ReadRefusal::NotLeader);
        }
        let own_term_committed = self.log.term_at(self.commit_index) == Some(self.current_term);
        if !own_term_committed && !self.config.bugs.has(Bug::ReadIndexBeforeOwnTermCommit) {
            return Err(ReadRefusal::NoCommitInTerm);
        }
        let index = self.commit_index;
        if self.config.quorum() <= 1 || self.config.bugs.has(Bug::ReadIndexNoHeartbeat) {
            // Alone, this node is the majority (the bug takes that for granted everywhere).
            self.ready.reads.push(ReadState { ctx, index });
            return Ok(());
        }
        self.read_seq += 1;
        let seq = self.read_seq;
        self.reads.push_back(PendingRead { ctx, index, seq });
        let msg = Message::LeadershipCheck {
            term: self.current_term,
            leader_id: self.config.id,
            read_seq: seq,
        };
        for peer in self.others() {
            self.send(peer, msg.clone());
        }
        Ok(())
    }

    /// With each heartbeat, the latest round again to a follower that has not confirmed it:
    /// a check or its answer may be lost, and a read waits for a majority. Any check of
    /// round `seq` leaves after every read of that round was asked, so a late one confirms
    /// them as well as the first.
    pub(crate) fn resend_leadership_check(&mut self, peer: NodeId) {
        let unconfirmed = self
            .progress
            .get(&peer)
            .is_some_and(|p| p.read_acked < self.read_seq);
        if self.reads.is_empty() || !unconfirmed {
            return;
        }
        let msg = Message::LeadershipCheck {
            term: self.current_term,
            leader_id: self.config.id,
            read_seq: self.read_seq,
        };
        self.send(peer, msg);
    }

    /// LeadershipCheck receiver: like a heartbeat without log information. A check of an
    /// older term is answered with ours (the sender steps down); otherwise we follow the
    /// sender in its term and confirm its round.
    pub(crate) fn handle_leadership_check(
        &mut self,
        now: u64,
        rng: &mut dyn RngCore,
        leader: NodeId,
        term: u64,
        read_seq: u64,
    ) {
        if term == self.current_term {
            debug_assert_ne!(self.role, Role::Leader, "two leaders in one term");
            self.become_follower(now, rng, term, Some(leader));
            self.reset_election_timer(now, rng);
            self.leader_contact = now;
        }
        self.send(
            leader,
            Message::LeadershipCheckReply {
                term: self.current_term,
                request_term: term,
                read_seq,
            },
        );
    }

    /// LeadershipCheckReply of this term: the follower confirmed rounds up to `read_seq`;
    /// hand over every read whose round a majority confirmed.
    pub(crate) fn handle_leadership_check_reply(&mut self, from: NodeId, read_seq: u64) {
        if self.role != Role::Leader {
            return;
        }
        if let Some(pr) = self.progress.get_mut(&from) {
            pr.read_acked = pr.read_acked.max(read_seq);
        }
        // Rounds grow along the queue, so a confirmed read confirms every one before it.
        while let Some(r) = self.reads.front().copied() {
            let acks = 1 + self
                .progress
                .values()
                .filter(|p| p.read_acked >= r.seq)
                .count();
            if acks < self.config.quorum() {
                break;
            }
            self.reads.pop_front();
            self.ready.reads.push(ReadState {
                ctx: r.ctx,
                index: r.index,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ReadRefusal;
    use crate::testing::Cluster;
    use crate::ReadState;

    #[test]
    fn a_read_is_confirmed_by_a_majority_at_the_commit_index() {
        let mut c = Cluster::new(3, 5);
        c.run_for(2_000_000);
        let index = c.one(7, 3);
        let l = c.leaders()[0];
        let f = (l + 1) % 3;
        assert_eq!(c.nodes[f].read_index(1), Err(ReadRefusal::NotLeader));
        assert_eq!(c.nodes[l].read_index(1), Ok(()));
        c.process(l);
        assert!(c.reads.is_empty(), "not before a majority answered");
        c.run_for(100_000);
        assert_eq!(c.reads, vec![(l, ReadState { ctx: 1, index })]);
    }

    #[test]
    fn a_leader_cut_off_from_the_majority_confirms_no_read() {
        let mut c = Cluster::new(3, 6);
        c.run_for(2_000_000);
        c.one(7, 3);
        let l = c.leaders()[0];
        c.group[l] = 1;
        assert_eq!(c.nodes[l].read_index(2), Ok(()));
        c.process(l);
        c.run_for(3_000_000);
        assert!(c.reads.is_empty());
    }

    #[test]
    fn a_new_leader_takes_no_read_index_before_committing_in_its_term() {
        let mut c = Cluster::new(3, 8);
        c.run_for(2_000_000);
        c.one(7, 3);
        let l = c.leaders()[0];
        c.crash(l);
        assert!(c.run_until(3_000_000, |c| !c.leaders().is_empty()));
        let new = c.leaders()[0];
        if c.nodes[new].term_at(c.nodes[new].commit_index()) != Some(c.nodes[new].current_term()) {
            assert_eq!(c.nodes[new].read_index(3), Err(ReadRefusal::NoCommitInTerm));
        }
        let index = c.one(8, 2);
        assert_eq!(c.nodes[new].read_index(4), Ok(()));
        c.process(new);
        c.run_for(200_000);
        assert_eq!(c.reads, vec![(new, ReadState { ctx: 4, index })]);
    }

    #[test]
    fn a_lost_check_is_sent_again_with_the_next_heartbeat() {
        let mut c = Cluster::new(3, 10);
        c.run_for(2_000_000);
        let index = c.one(7, 3);
        let l = c.leaders()[0];
        c.group[l] = 1;
        assert_eq!(c.nodes[l].read_index(3), Ok(()));
        c.process(l);
        c.run_for(20_000);
        c.group[l] = 0;
        c.run_for(300_000);
        assert_eq!(c.reads, vec![(l, ReadState { ctx: 3, index })]);
    }

    #[test]
    fn a_single_node_confirms_at_once() {
        let mut c = Cluster::new(1, 9);
        c.run_for(1_000_000);
        let index = c.one(5, 1);
        assert_eq!(c.nodes[0].read_index(6), Ok(()));
        c.process(0);
        assert_eq!(c.reads, vec![(0, ReadState { ctx: 6, index })]);
    }
}
