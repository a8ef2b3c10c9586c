//! Leader leases (Raft thesis §6.4.1): reads served from the leader's state with no message
//! at all, safe only while clocks drift within a configured bound.
//!
//! The argument, for a bound of ε (`Config::max_drift_ppm` / 1e6):
//! 1. Stickiness: a server that heard from a leader less than `election_timeout_min` ago (by
//!    its own clock) ignores RequestVote and PreVote entirely, neither adopting the term nor
//!    voting; so does one that started less than `election_timeout_min` ago (it may have heard
//!    a leader just before it crashed, and forgot). So a server that received a message the
//!    leader sent at true time T votes for nobody else before T + min / (1 + ε).
//! 2. The leader sends a round of `LeadershipCheck`s every heartbeat interval (the ReadIndex
//!    rounds, whose answers it already counts) and notes when, by its own clock, it sent
//!    each. Once a majority (itself included) answered a round sent at local time s, no other
//!    leader can be elected before s + min / (1 + ε) in true time, so the leader holds a
//!    lease until local time s + D with D = min (1 - ε) / (1 + ε) (less 2 µs for rounding):
//!    its clock, at least 1 - ε fast, reaches that before the earliest other election.
//! 3. A read asked while the lease holds, of a leader that committed an entry of its term,
//!    takes the commit index as its read index at once (ReadIndex's step 1 still applies);
//!    otherwise it falls back to a ReadIndex round.
//!
//! Drift beyond ε (or a clock jump) breaks step 2 and the lease with it: the checker's
//! linearizability check sees the stale reads that follow (see the scenarios).

use std::collections::VecDeque;

use crate::read_index::ReadRefusal;
use crate::{Bug, Command, Message, Raft, ReadState, Role};

/// Parts per million.
const PPM: u128 = 1_000_000;

/// Unanswered rounds a leader remembers.
const MAX_ROUNDS: usize = 64;

/// A leader's lease state. Empty (no lease) on any server that does not lead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lease {
    /// Rounds sent and not yet answered by a majority: (read_seq, local send time), oldest
    /// first.
    rounds: VecDeque<(u64, u64)>,
    /// Reads may be served from the leader's state while `now < until` (local time).
    until: u64,
    /// When the next round goes out (`u64::MAX` when not leading with leases).
    pub(crate) round_due: u64,
}

impl Lease {
    /// No lease, no rounds due.
    pub(crate) fn none() -> Self {
        Lease {
            rounds: VecDeque::new(),
            until: 0,
            round_due: u64::MAX,
        }
    }
}

impl<C: Command> Raft<C> {
    /// How long a confirmed round's lease lasts, by this node's clock: the minimum election
    /// timeout shortened by the drift bound (see the module doc).
    pub fn lease_duration(&self) -> u64 {
        let min = u128::from(self.config.election_timeout_min);
        if self.config.bugs.has(Bug::LeaseIgnoresDrift) {
            return self.config.election_timeout_min;
        }
        let p = u128::from(self.config.max_drift_ppm.min(999_999));
        let d = min * (PPM - p) / (PPM + p);
        (d as u64).saturating_sub(2)
    }

    /// Leases on: a server starting (or restarting) counts its start as hearing from a
    /// leader, so it refuses votes for `election_timeout_min` (it may have heard one just
    /// before it crashed).
    pub(crate) fn start_lease_clock(&mut self, now: u64) {
        self.lease = Lease::none();
        if self.config.lease_reads && !self.config.bugs.has(Bug::LeaseWithoutStickiness) {
            self.leader_contact = now;
        }
    }

    /// Leases on: whether to drop `msg` unheard, a RequestVote or PreVote that reaches this
    /// follower within `election_timeout_min` of hearing from a leader (leader stickiness).
    pub(crate) fn ignores_vote_request(&self, now: u64, msg: &Message<C>) -> bool {
        self.config.lease_reads
            && !self.config.bugs.has(Bug::LeaseWithoutStickiness)
            && matches!(msg, Message::RequestVote { .. } | Message::PreVote { .. })
            && self.role != Role::Leader
            && now
                < self
                    .leader_contact
                    .saturating_add(self.config.election_timeout_min)
    }

    /// A new leader (leases on): its first round goes out at once.
    pub(crate) fn lease_become_leader(&mut self, now: u64) {
        self.lease = Lease::none();
        if self.config.lease_reads {
            self.lease.round_due = now;
        }
    }

    /// Leader tick: send a round if one is due.
    pub(crate) fn lease_tick(&mut self, now: u64) {
        if self.role != Role::Leader || now < self.lease.round_due {
            return;
        }
        self.lease.round_due = now.saturating_add(self.config.heartbeat_interval);
        self.read_seq += 1;
        let seq = self.read_seq;
        self.note_round(seq, now);
        let msg = Message::LeadershipCheck {
            term: self.current_term,
            leader_id: self.config.id,
            read_seq: seq,
        };
        for peer in self.others() {
            self.send(peer, msg.clone());
        }
    }

    /// After an answer to a round: the newest round a majority answered starts the lease.
    pub(crate) fn lease_confirm(&mut self, now: u64) {
        if !self.config.lease_reads || self.lease.rounds.is_empty() {
            return;
        }
        let mut acked: Vec<u64> = self.progress.values().map(|p| p.read_acked).collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        // The leader answers its own rounds; a majority needs quorum - 1 followers more.
        let confirmed = match self.config.quorum() - 1 {
            0 => u64::MAX,
            k => acked.get(k - 1).copied().unwrap_or(0),
        };
        let mut start = None;
        while let Some(&(seq, sent)) = self.lease.rounds.front() {
            if seq > confirmed {
                break;
            }
            start = Some(sent);
            self.lease.rounds.pop_front();
        }
        if let Some(sent) = start {
            // From when the round left, not from when its answers came back: a follower
            // vouches for nothing before it heard the round. (Bug: from the answer.)
            let from = if self.config.bugs.has(Bug::LeaseFromAckTime) {
                now
            } else {
                sent
            };
            self.lease.until = self
                .lease
                .until
                .max(from.saturating_add(self.lease_duration()));
        }
    }

    /// Whether the lease covers a read asked now.
    pub fn holds_lease(&self, now: u64) -> bool {
        self.role == Role::Leader && now < self.lease.until
    }

    /// A read tagged `ctx` by lease: if this leader holds its lease and committed an entry of
    /// its term, the next Ready carries `ReadState { ctx, index: commit_index }` with no
    /// message sent; otherwise this is [`Raft::read_index`] (whose round also renews the
    /// lease).
    pub fn read_lease(&mut self, ctx: u64, now: u64) -> Result<(), ReadRefusal> {
        self.land_late_writes();
        let own_term_committed = self.log.term_at(self.commit_index) == Some(self.current_term);
        if self.config.lease_reads && self.holds_lease(now) && own_term_committed {
            let index = self.commit_index;
            self.ready.reads.push(ReadState { ctx, index });
            return Ok(());
        }
        let before = self.read_seq;
        self.read_index(ctx)?;
        if self.config.lease_reads && self.read_seq > before {
            self.note_round(self.read_seq, now);
        }
        Ok(())
    }

    /// Remember when round `seq` left. A leader nobody answers keeps only its latest rounds
    /// (forgetting one only forgoes a lease).
    fn note_round(&mut self, seq: u64, now: u64) {
        if self.lease.rounds.len() >= MAX_ROUNDS {
            self.lease.rounds.pop_front();
        }
        self.lease.rounds.push_back((seq, now));
    }
}
