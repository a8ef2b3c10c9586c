//! The Raft node: state from Figure 2, construction, dispatch, timers and
//! the helpers shared by election, replication and snapshots.

use std::collections::{BTreeMap, VecDeque};

use rand::Rng;
use rand_core::RngCore;

use crate::log_sizes::LogSizes;
use crate::{
    Apply, Bug, Command, Config, Event, Message, NodeId, RaftLog, Ready, Storage, StorageOp,
};

/// The role a node plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// Passive: answers leaders and candidates.
    Follower,
    /// Running an election for `current_term`.
    Candidate,
    /// The (at most one) leader of `current_term`.
    Leader,
}

/// Leader's view of one follower. Invariant:
/// `match_index < next_index <= sent_index + 1` and `sent_index <= last_index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Index of the next entry to send to the follower (first not known to match).
    pub next_index: u64,
    /// Highest index known to be replicated on the follower.
    pub match_index: u64,
    /// Highest index covered by what has been sent since the last full
    /// (re)send; new entries are pipelined after it without waiting for acks.
    pub sent_index: u64,
    /// Time by which the next AppendEntries (heartbeat) must be sent.
    pub heartbeat_due: u64,
    /// Where the last resend caused by a rejection started, until a success moves
    /// `match_index`: a later rejection asking for the same place is answered by that resend
    /// (it was reordered or duplicated), so it must not trigger another one.
    pub resent_from: Option<u64>,
    /// CheckQuorum: the follower answered a request of this term since the last check.
    pub recent_active: bool,
    /// The highest ReadIndex round the follower confirmed in this term.
    pub read_acked: u64,
}

/// A ReadIndex read waiting for its round of leadership checks (leader only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PendingRead {
    /// The caller's tag.
    pub ctx: u64,
    /// The commit index when the read was asked.
    pub index: u64,
    /// The read round that confirms it.
    pub seq: u64,
}

/// One Raft node as a deterministic state machine. Feed it with
/// [`handle_message`](Raft::handle_message), [`tick`](Raft::tick),
/// [`start`](Raft::start) and [`snapshot`](Raft::snapshot); drain its outputs
/// with [`take_ready`](Raft::take_ready).
///
/// Invariants: `last_applied <= commit_index <= last_index()`;
/// `snapshot_index() <= last_applied`; `commit_index` and `last_applied` never
/// decrease; at most one leader per term.
#[derive(Clone, Debug)]
pub struct Raft<C> {
    pub(crate) config: Config,
    // Persistent state (mirrored to Storage through StorageOps).
    pub(crate) current_term: u64,
    pub(crate) voted_for: Option<NodeId>,
    pub(crate) log: RaftLog<C>,
    // Volatile state.
    pub(crate) role: Role,
    pub(crate) leader_id: Option<NodeId>,
    pub(crate) commit_index: u64,
    pub(crate) last_applied: u64,
    pub(crate) election_deadline: u64,
    /// Votes received in the current election (candidate only).
    pub(crate) votes: Vec<NodeId>,
    /// Per-follower replication state (leader only).
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// PreVote: the grants of the pre-vote round under way (this node's own included);
    /// `None` when no round is under way.
    pub(crate) pre_votes: Option<Vec<NodeId>>,
    /// When this node last heard from the leader of `current_term` (while `leader_id` names
    /// another node): a PreVote is refused within `election_timeout_min` of it.
    pub(crate) leader_contact: u64,
    /// Leader with CheckQuorum: when to check that a majority answered since the last check.
    pub(crate) quorum_check_due: u64,
    /// Leader: ReadIndex reads waiting for their round, oldest first.
    pub(crate) reads: VecDeque<PendingRead>,
    /// Leader: the last ReadIndex round started (rounds only grow).
    pub(crate) read_seq: u64,
    /// Leader with lease reads: its lease and its rounds (`lease.rs`).
    pub(crate) lease: crate::lease::Lease,
    pub(crate) ready: Ready<C>,
    /// Durable writes a persistence bug lets trail the reply that vouches for them: they
    /// join the Ready only when the node next runs, so a crash in between loses them.
    /// Always empty in the correct protocol.
    pub(crate) late_writes: Vec<StorageOp<C>>,
    /// Byte accounting of the log for [`persisted_size`](Raft::persisted_size).
    pub(crate) sizes: LogSizes,
}

impl<C: Command> Raft<C> {
    /// A node starting fresh (`Storage::default()`) or restarting from durable
    /// state. If the storage holds a snapshot, the first Ready contains
    /// `Apply::Snapshot` for it so the service restores; `commit_index` and
    /// `last_applied` start at the snapshot index.
    pub fn new(config: Config, storage: &Storage<C>, now: u64, rng: &mut dyn RngCore) -> Self {
        config.validate();
        let log = RaftLog::restore(storage.snapshot.clone(), &storage.entries);
        let snap_index = log.snapshot_index();
        let mut raft = Raft {
            config,
            current_term: storage.current_term,
            voted_for: storage.voted_for,
            log,
            role: Role::Follower,
            leader_id: None,
            commit_index: snap_index,
            last_applied: snap_index,
            election_deadline: 0,
            votes: Vec::new(),
            progress: BTreeMap::new(),
            pre_votes: None,
            leader_contact: 0,
            quorum_check_due: u64::MAX,
            reads: VecDeque::new(),
            read_seq: 0,
            lease: crate::lease::Lease::none(),
            ready: Ready::default(),
            late_writes: Vec::new(),
            sizes: LogSizes::default(),
        };
        raft.sizes.sync(&raft.log);
        let restore = !raft.config.bugs.has(Bug::RestartSkipsSnapshot);
        if let Some(s) = raft.log.snapshot().filter(|_| restore) {
            let snapshot = s.clone();
            raft.ready.applies.push(Apply::Snapshot { snapshot });
        }
        raft.reset_election_timer(now, rng);
        raft.start_lease_clock(now);
        raft
    }

    /// Deliver a message from peer `from`. Messages from unknown peers or from
    /// this node itself are ignored.
    pub fn handle_message(
        &mut self,
        now: u64,
        rng: &mut dyn RngCore,
        from: NodeId,
        msg: Message<C>,
    ) {
        if from == self.config.id || !self.config.peers.contains(&from) {
            return;
        }
        self.land_late_writes();
        if self.ignores_vote_request(now, &msg) {
            return;
        }
        if msg.sender_term().is_some_and(|t| t > self.current_term) {
            if self.role == Role::Leader && self.config.bugs.has(Bug::NewerTermKeepsLeader) {
                // Bug: the newer term is adopted, and this node goes on leading in it.
                self.adopt_term(msg.term());
                self.leader_id = Some(self.config.id);
            } else {
                // Any newer term makes us a follower of that term (leader unknown yet).
                self.become_follower(now, rng, msg.term(), None);
            }
        }
        // A reply answers the request whose term it names. One that answers a request of an
        // earlier term (late, duplicated, or from before this node led again in the
        // replier's newer term) says nothing about the current term's progress or votes. A
        // PreVote asks about the next term, so its answers name that one.
        let asked = match msg {
            Message::PreVoteReply { .. } => self.current_term + 1,
            _ => self.current_term,
        };
        if msg.request_term().is_none_or(|t| t == asked)
            || self.config.bugs.has(Bug::AcceptStaleReplies)
        {
            self.dispatch(now, rng, from, msg);
        }
        self.sizes.sync(&self.log);
        self.check_invariants();
    }

    /// Hand a message to its handler (replies only if they answer a request of the current
    /// term).
    fn dispatch(&mut self, now: u64, rng: &mut dyn RngCore, from: NodeId, msg: Message<C>) {
        if msg.is_reply() && !matches!(msg, Message::PreVoteReply { .. }) {
            // CheckQuorum: an answer to a request of this term shows the link works both ways.
            if let Some(pr) = self.progress.get_mut(&from) {
                pr.recent_active = true;
            }
        }
        match msg {
            Message::RequestVote {
                term,
                candidate_id,
                last_log_index,
                last_log_term,
            } => {
                if candidate_id == from {
                    self.handle_request_vote(now, rng, from, term, last_log_index, last_log_term);
                }
            }
            Message::RequestVoteReply { vote_granted, .. } => {
                self.handle_request_vote_reply(now, from, vote_granted)
            }
            Message::AppendEntries {
                term,
                leader_id,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => {
                if leader_id == from {
                    self.handle_append_entries(
                        now,
                        rng,
                        from,
                        term,
                        prev_log_index,
                        prev_log_term,
                        entries,
                        leader_commit,
                    );
                }
            }
            Message::AppendEntriesReply {
                success,
                match_index,
                conflict_term,
                conflict_index,
                ..
            } => self.handle_append_entries_reply(
                now,
                from,
                success,
                match_index,
                conflict_term,
                conflict_index,
            ),
            Message::InstallSnapshot {
                term,
                leader_id,
                snapshot,
            } => {
                if leader_id == from {
                    self.handle_install_snapshot(now, rng, from, term, snapshot);
                }
            }
            Message::InstallSnapshotReply { match_index, .. } => {
                self.handle_install_snapshot_reply(now, from, match_index)
            }
            Message::PreVote {
                term,
                candidate_id,
                last_log_index,
                last_log_term,
            } => {
                if candidate_id == from {
                    self.handle_pre_vote(now, from, term, last_log_index, last_log_term);
                }
            }
            Message::PreVoteReply { vote_granted, .. } => {
                self.handle_pre_vote_reply(now, rng, from, vote_granted)
            }
            Message::LeadershipCheck {
                term,
                leader_id,
                read_seq,
            } => {
                if leader_id == from {
                    self.handle_leadership_check(now, rng, from, term, read_seq);
                }
            }
            Message::LeadershipCheckReply { read_seq, .. } => {
                self.handle_leadership_check_reply(from, read_seq);
                self.lease_confirm(now);
            }
        }
    }

    /// Called when `now >= next_deadline()` (calling it early is harmless):
    /// starts an election on timeout, or sends due heartbeats as leader.
    pub fn tick(&mut self, now: u64, rng: &mut dyn RngCore) {
        self.land_late_writes();
        match self.role {
            Role::Leader => {
                if self.config.check_quorum && now >= self.quorum_check_due {
                    self.check_quorum(now, rng);
                    if self.role != Role::Leader {
                        self.check_invariants();
                        return;
                    }
                }
                let due: Vec<NodeId> = self
                    .progress
                    .iter()
                    .filter(|(_, p)| p.heartbeat_due <= now)
                    .map(|(id, _)| *id)
                    .collect();
                for peer in due {
                    self.send_append(now, peer);
                    self.resend_leadership_check(peer);
                }
                self.lease_tick(now);
            }
            Role::Follower | Role::Candidate => {
                if now >= self.election_deadline {
                    if self.config.pre_vote {
                        self.pre_campaign(now, rng);
                    } else {
                        self.campaign(now, rng);
                    }
                }
            }
        }
        self.check_invariants();
    }

    /// The earliest virtual time at which `tick()` must be called next
    /// (`u64::MAX` for the leader of a single-node cluster: nothing to do).
    pub fn next_deadline(&self) -> u64 {
        match self.role {
            Role::Leader => self
                .progress
                .values()
                .map(|p| p.heartbeat_due)
                .min()
                .unwrap_or(u64::MAX)
                .min(self.quorum_check_due)
                .min(self.lease.round_due),
            Role::Follower | Role::Candidate => self.election_deadline,
        }
    }

    /// Drain everything produced since the last call.
    pub fn take_ready(&mut self) -> Ready<C> {
        self.sizes.sync(&self.log);
        std::mem::take(&mut self.ready)
    }

    /// True if `take_ready()` would return something.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    // ----- accessors -----

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }
    /// The configuration the node was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Latest term seen.
    pub fn current_term(&self) -> u64 {
        self.current_term
    }
    /// Vote cast in `current_term`.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }
    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// True if this node is the leader of `current_term`.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    /// The leader of `current_term`, if known.
    pub fn leader_hint(&self) -> Option<NodeId> {
        self.leader_id
    }
    /// Highest index known to be committed.
    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }
    /// Highest index handed to the service.
    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }
    /// First entry index after the snapshot.
    pub fn first_index(&self) -> u64 {
        self.log.first_index()
    }
    /// Index of the last log entry (or the snapshot index).
    pub fn last_index(&self) -> u64 {
        self.log.last_index()
    }
    /// Term of the last log entry (or the snapshot term).
    pub fn last_term(&self) -> u64 {
        self.log.last_term()
    }
    /// Term of the entry at `index`, if known (the snapshot index included).
    pub fn term_at(&self, index: u64) -> Option<u64> {
        self.log.term_at(index)
    }
    /// The entry at `index`, if still in the log.
    pub fn entry(&self, index: u64) -> Option<&crate::Entry<C>> {
        self.log.entry(index)
    }
    /// Index of the last entry covered by the snapshot (0 without one).
    pub fn snapshot_index(&self) -> u64 {
        self.log.snapshot_index()
    }
    /// The in-memory log.
    pub fn log(&self) -> &RaftLog<C> {
        &self.log
    }
    /// Leader only: `next_index` for `peer`.
    pub fn next_index(&self, peer: NodeId) -> Option<u64> {
        self.progress.get(&peer).map(|p| p.next_index)
    }
    /// Every server of the cluster, this one included, in id order.
    pub fn peers(&self) -> &[NodeId] {
        &self.config.peers
    }
    /// Leader only: `match_index` for `peer`.
    pub fn match_index(&self, peer: NodeId) -> Option<u64> {
        self.progress.get(&peer).map(|p| p.match_index)
    }

    // ----- shared helpers -----

    /// Every member except this node, in id order of `config.peers`.
    pub(crate) fn others(&self) -> Vec<NodeId> {
        let me = self.config.id;
        self.config
            .peers
            .iter()
            .copied()
            .filter(|p| *p != me)
            .collect()
    }

    pub(crate) fn send(&mut self, to: NodeId, msg: Message<C>) {
        self.ready.messages.push((to, msg));
    }

    /// Queue the writes a persistence bug held back in the previous call, ahead of anything
    /// this call writes (a no-op in the correct protocol).
    pub(crate) fn land_late_writes(&mut self) {
        if !self.late_writes.is_empty() {
            self.ready.storage.append(&mut self.late_writes);
        }
    }

    /// Queue the durable write of `current_term` and `voted_for`.
    pub(crate) fn persist_hard_state(&mut self) {
        self.ready.storage.push(StorageOp::HardState {
            current_term: self.current_term,
            voted_for: self.voted_for,
        });
    }

    /// Draw a fresh election timeout in [min, max) from `rng`.
    pub(crate) fn reset_election_timer(&mut self, now: u64, rng: &mut dyn RngCore) {
        let (lo, hi) = (
            self.config.election_timeout_min,
            self.config.election_timeout_max,
        );
        let timeout = if hi > lo {
            rng.random_range(lo..hi)
        } else {
            lo
        };
        self.election_deadline = now.saturating_add(timeout);
    }

    /// Move to the newer `term`: no vote cast and no leader known in it yet. Durable
    /// before anything this call sends.
    pub(crate) fn adopt_term(&mut self, term: u64) {
        debug_assert!(term > self.current_term);
        self.current_term = term;
        self.voted_for = None;
        self.leader_id = None;
        self.pre_votes = None;
        if !self.config.bugs.has(Bug::TermNotPersisted) {
            self.persist_hard_state();
        }
    }

    /// Adopt `term` (if newer, forgetting the vote) and become a follower of
    /// `leader` (if given). The election timer restarts when leaving the
    /// leader or candidate role.
    pub(crate) fn become_follower(
        &mut self,
        now: u64,
        rng: &mut dyn RngCore,
        term: u64,
        leader: Option<NodeId>,
    ) {
        debug_assert!(term >= self.current_term);
        if term > self.current_term {
            self.adopt_term(term);
        } else if self.config.bugs.has(Bug::VoteTwiceInTerm) && self.voted_for.is_some() {
            // Bug: the vote of this term is forgotten on following its leader.
            self.voted_for = None;
            self.persist_hard_state();
        }
        if leader.is_some() {
            self.leader_id = leader;
        }
        if leader.is_some() {
            // Following a leader of this term: no pre-vote round goes on.
            self.pre_votes = None;
        }
        if self.role != Role::Follower {
            self.role = Role::Follower;
            self.votes.clear();
            self.progress.clear();
            self.reads.clear();
            self.lease = crate::lease::Lease::none();
            self.quorum_check_due = u64::MAX;
            self.reset_election_timer(now, rng);
            self.ready.events.push(Event::BecameFollower { term });
        }
    }

    /// Leader: `peer`'s log is known to match ours through `index`. Match
    /// indexes only move forward (a late or duplicated acknowledgement of
    /// less is ignored) and never past our log. Returns whether it moved.
    pub(crate) fn advance_match(&mut self, peer: NodeId, index: u64) -> bool {
        let last_index = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&peer) else {
            return false;
        };
        debug_assert!(index <= last_index, "ack of {index} past our log");
        if index <= pr.match_index {
            return false;
        }
        pr.match_index = index;
        pr.resent_from = None;
        pr.next_index = pr.next_index.max(index + 1);
        pr.sent_index = pr.sent_index.max(index);
        true
    }

    pub(crate) fn check_invariants(&self) {
        debug_assert!(self.last_applied <= self.commit_index);
        debug_assert!(self.commit_index <= self.log.last_index());
        debug_assert!(self.log.snapshot_index() <= self.last_applied);
        debug_assert!(self.role == Role::Leader || self.progress.is_empty());
        debug_assert!(self.role == Role::Leader || self.reads.is_empty());
        debug_assert!(self.role != Role::Leader || self.pre_votes.is_none());
        debug_assert!(self.progress.values().all(|p| p.match_index < p.next_index
            && p.next_index <= p.sent_index + 1
            && p.sent_index <= self.log.last_index()));
    }
}
