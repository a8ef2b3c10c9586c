//! The key/value server: a [`KvStore`] replicated through a Raft log.
//!
//! Every client operation is proposed with `raft.start` and executed when
//! applied, in log order, on every server. The leader that proposed it answers
//! the clerk once the entry it awaited is applied; it answers `WrongLeader` when
//! it is not leader, or when it learns it lost leadership (its term moved on, or
//! another entry took the awaited index). A `Get` goes through the log too,
//! unless the server reads by ReadIndex ([`ReadMode::ReadIndex`]): then the
//! leader asks Raft for a read index, waits until Raft confirmed it still leads
//! and it applied through that index, and answers from its state. A leader that
//! has not committed an entry of its term yet sends the `Get` through the log,
//! which commits one. With leases ([`ReadMode::Lease`]) a leader whose lease holds takes
//! the read index without any round of messages.

use std::collections::BTreeMap;

use rand_core::RngCore;

use crate::bugs::{Bug, Bugs};
use crate::command::{ClientId, KvCommand, Op};
use crate::messages::{ClientReply, ClientRequest, KvMessage, ServerEvent, ServerReady};
use crate::snapshot;
use crate::store::KvStore;

/// A request the leader proposed and still has to answer.
#[derive(Clone, Debug)]
struct Pending {
    /// Term in which it was proposed.
    term: u64,
    /// Node to send the reply to.
    reply_to: usize,
    client: ClientId,
    seq: u64,
    /// The request is a `Get` (its reply carries a value).
    get: bool,
}

/// How a server answers `Get`s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// Through the log, like every other operation (6.824's design).
    #[default]
    Log,
    /// By ReadIndex (Raft thesis §6.4): no log entry, a round of leadership checks instead.
    ReadIndex,
    /// By lease (thesis §6.4.1, Raft's `read_lease`): while the leader's lease holds, no
    /// message at all; otherwise as ReadIndex. Raft must run with `Config::lease_reads`.
    Lease,
}

/// A ReadIndex `Get` the leader has to answer.
#[derive(Clone, Debug)]
struct PendingRead {
    /// Term in which Raft took the read.
    term: u64,
    reply_to: usize,
    client: ClientId,
    seq: u64,
    key: String,
}

/// Snapshot when the persisted Raft state reaches this fraction of `maxraftstate`.
const SNAPSHOT_NUM: usize = 9;
const SNAPSHOT_DEN: usize = 10;

/// One key/value server. Invariants: `applied` equals the Raft node's
/// `last_applied()` between calls; `store` is the result of executing the
/// log through `applied`; every pending index is > `applied` and was
/// proposed in `raft.current_term()` while leader; so was every pending read.
#[derive(Clone, Debug)]
pub struct KvServer {
    raft: raft::Raft<KvCommand>,
    store: KvStore,
    applied: u64,
    pending: BTreeMap<u64, Pending>,
    read_mode: ReadMode,
    /// The tag of the next ReadIndex read.
    next_read: u64,
    /// ReadIndex reads Raft has not confirmed yet, by tag.
    reads: BTreeMap<u64, PendingRead>,
    /// Confirmed reads waiting until `applied` reaches their read index: (index, read).
    confirmed: Vec<(u64, PendingRead)>,
    maxraftstate: Option<usize>,
    bugs: Bugs,
    ready: ServerReady,
}

impl KvServer {
    /// A server starting fresh or restarting from durable `storage` (its
    /// snapshot, if any, is restored right away). `config` is the Raft
    /// configuration (id, peers = server ids). `maxraftstate`: `None`
    /// disables snapshots (6.824's -1).
    pub fn new(
        config: raft::Config,
        storage: &raft::Storage<KvCommand>,
        maxraftstate: Option<usize>,
        now: u64,
        rng: &mut dyn RngCore,
    ) -> Self {
        let raft = raft::Raft::new(config, storage, now, rng);
        let mut s = KvServer {
            raft,
            store: KvStore::default(),
            applied: 0,
            pending: BTreeMap::new(),
            read_mode: ReadMode::Log,
            next_read: 0,
            reads: BTreeMap::new(),
            confirmed: Vec::new(),
            maxraftstate,
            bugs: Bugs::NONE,
            ready: ServerReady::default(),
        };
        s.process(now);
        s
    }

    /// Deliver a message: Raft traffic from peer `from`, or a client request
    /// from clerk node `from` (replies go back to `from`).
    pub fn handle_message(&mut self, now: u64, rng: &mut dyn RngCore, from: usize, msg: KvMessage) {
        match msg {
            KvMessage::Raft(m) => self.raft.handle_message(now, rng, from, m),
            KvMessage::Request(req) => self.handle_request(now, rng, from, req),
            KvMessage::Reply(_) => {}
        }
        self.process(now);
    }

    /// Drive Raft timers; call when `now >= next_deadline()`.
    pub fn tick(&mut self, now: u64, rng: &mut dyn RngCore) {
        self.raft.tick(now, rng);
        self.process(now);
    }

    /// The earliest time `tick` must be called.
    pub fn next_deadline(&self) -> u64 {
        self.raft.next_deadline()
    }

    /// Drain everything produced since the last call.
    pub fn take_ready(&mut self) -> ServerReady {
        std::mem::take(&mut self.ready)
    }

    /// True if `take_ready` would return something.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The underlying Raft node.
    pub fn raft(&self) -> &raft::Raft<KvCommand> {
        &self.raft
    }

    /// The local value of `key` (tests and checkers only: not linearizable).
    pub fn get_local(&self, key: &str) -> Option<&str> {
        self.store.data().get(key).map(String::as_str)
    }

    /// The local key/value map (tests and checkers only).
    pub fn data(&self) -> &BTreeMap<String, String> {
        self.store.data()
    }

    /// The highest request number of `client` this server has executed
    /// (tests and checkers only).
    pub fn last_executed(&self, client: ClientId) -> Option<u64> {
        self.store.dedup().get(&client).map(|e| e.seq)
    }

    /// How many clients the duplicate table holds (tests, checkers and coverage only).
    pub fn dedup_len(&self) -> usize {
        self.store.dedup().len()
    }

    /// A digest of the service state (map and duplicate table) at `applied_index()`.
    pub fn state_digest(&self) -> u64 {
        self.store.digest()
    }

    /// The log index applied so far.
    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    /// How to answer `Get`s from now on ([`ReadMode::Log`] by default).
    pub fn set_read_mode(&mut self, mode: ReadMode) {
        self.read_mode = mode;
    }

    /// Switch on deliberate bugs (`Bugs::NONE`, the default, is the correct service).
    pub fn set_bugs(&mut self, bugs: Bugs) {
        self.bugs = bugs;
    }

    fn reply(&mut self, to: usize, reply: ClientReply) {
        self.ready.messages.push((to, KvMessage::Reply(reply)));
    }

    fn wrong_leader(&mut self, to: usize, seq: u64) {
        let leader_hint = self.raft.leader_hint();
        self.reply(to, ClientReply::WrongLeader { seq, leader_hint });
    }

    fn handle_request(&mut self, now: u64, rng: &mut dyn RngCore, from: usize, req: ClientRequest) {
        if !self.raft.is_leader() {
            return self.wrong_leader(from, req.seq);
        }
        if let Some(done) = self.store.dedup().get(&req.client) {
            if done.seq == req.seq {
                // Executed already (at a log position inside this call).
                let value = req
                    .op
                    .is_get()
                    .then(|| done.value.clone().unwrap_or_default());
                let seq = req.seq;
                return self.reply(from, ClientReply::Ok { seq, value });
            }
            if done.seq > req.seq {
                // The clerk has moved on: nobody waits for this answer.
                return;
            }
        }
        if self.bugs.has(Bug::StaleReads) {
            if let Op::Get { key } = &req.op {
                let value = Some(self.store.read(key));
                return self.reply(
                    from,
                    ClientReply::Ok {
                        seq: req.seq,
                        value,
                    },
                );
            }
        }
        let term = self.raft.current_term();
        let in_flight = self
            .pending
            .values()
            .any(|p| p.client == req.client && p.seq == req.seq && p.term == term)
            || self
                .reads
                .values()
                .chain(self.confirmed.iter().map(|(_, r)| r))
                .any(|r| r.client == req.client && r.seq == req.seq && r.term == term);
        if in_flight {
            // A duplicate delivery or a retry to the same leader: one entry is enough.
            return;
        }
        if let (ReadMode::ReadIndex | ReadMode::Lease, Op::Get { key }) = (self.read_mode, &req.op)
        {
            let ctx = self.next_read;
            let asked = if self.read_mode == ReadMode::Lease {
                self.raft.read_lease(ctx, now)
            } else {
                self.raft.read_index(ctx)
            };
            match asked {
                Ok(()) => {
                    self.next_read += 1;
                    let read = PendingRead {
                        term,
                        reply_to: from,
                        client: req.client,
                        seq: req.seq,
                        key: key.clone(),
                    };
                    self.reads.insert(ctx, read);
                    return;
                }
                Err(raft::ReadRefusal::NotLeader) => return self.wrong_leader(from, req.seq),
                // Through the log instead: that commits an entry of this term.
                Err(raft::ReadRefusal::NoCommitInTerm) => {}
            }
        }
        let (client, seq, get) = (req.client, req.seq, req.op.is_get());
        let cmd = KvCommand {
            client,
            seq,
            op: req.op,
        };
        match self.raft.start(now, rng, cmd) {
            Some((index, term)) => {
                debug_assert!(index > self.applied);
                if self.bugs.has(Bug::ReplyBeforeCommit) && !get {
                    // Taken for done once it is in the leader's log.
                    return self.reply(from, ClientReply::Ok { seq, value: None });
                }
                let p = Pending {
                    term,
                    reply_to: from,
                    client,
                    seq,
                    get,
                };
                let old = self.pending.insert(index, p);
                debug_assert!(old.is_none(), "two proposals at index {index}");
            }
            None => self.wrong_leader(from, seq),
        }
    }

    /// Drain Raft: forward storage writes, messages and events, apply
    /// committed entries, answer clerks, fail stale proposals, snapshot.
    fn process(&mut self, _now: u64) {
        while self.raft.has_ready() {
            let rd = self.raft.take_ready();
            // Raft's order within one Ready: role changes, log writes, commit, applies.
            let (roles, commits): (Vec<raft::Event>, Vec<raft::Event>) = rd
                .events
                .into_iter()
                .partition(|e| !matches!(e, raft::Event::CommitAdvanced { .. }));
            for e in roles {
                self.event(ServerEvent::Raft(e));
            }
            self.ready.storage.extend(rd.storage);
            self.ready.messages.extend(
                rd.messages
                    .into_iter()
                    .map(|(to, m)| (to, KvMessage::Raft(m))),
            );
            for e in commits {
                self.event(ServerEvent::Raft(e));
            }
            let applied_any = !rd.applies.is_empty();
            for a in rd.applies {
                match a {
                    raft::Apply::Command {
                        index,
                        term,
                        command,
                    } => self.apply(index, term, command),
                    raft::Apply::Snapshot { snapshot } => self.restore(snapshot),
                }
            }
            for r in rd.reads {
                if let Some(read) = self.reads.remove(&r.ctx) {
                    self.confirmed.push((r.index, read));
                }
            }
            self.answer_reads();
            self.fail_stale_proposals();
            if applied_any {
                self.maybe_snapshot(self.applied);
            }
        }
        debug_assert_eq!(self.applied, self.raft.last_applied());
        debug_assert!(self.pending.keys().next().is_none_or(|i| *i > self.applied));
    }

    /// Report `event`, after the storage writes made so far.
    fn event(&mut self, event: ServerEvent) {
        self.ready.stored_before.push(self.ready.storage.len());
        self.ready.events.push(event);
    }

    fn apply(&mut self, index: u64, term: u64, cmd: KvCommand) {
        if index <= self.applied {
            return;
        }
        debug_assert_eq!(index, self.applied + 1, "applies must be consecutive");
        if self.bugs.has(Bug::SnapshotBeforeApply) {
            // The size check as the entry arrives: a snapshot labelled `index`, taken before
            // the entry executes.
            self.maybe_snapshot(index);
        }
        let out = if self.bugs.is_empty() {
            self.store.apply(&cmd)
        } else {
            // FollowerSkipsDedup: a follower takes the duplicate table for the leader's business.
            let record = self.raft.is_leader() || !self.bugs.has(Bug::FollowerSkipsDedup);
            self.store.apply_with(&cmd, self.bugs, record)
        };
        self.applied = index;
        self.event(ServerEvent::Applied {
            index,
            term,
            client: cmd.client,
            seq: cmd.seq,
            op: cmd.op,
            duplicate: out.duplicate,
            state: self.store.digest(),
        });
        if let Some(p) = self.pending.remove(&index) {
            if p.client == cmd.client && p.seq == cmd.seq {
                debug_assert_eq!(out.value.is_some(), p.get);
                let value = out.value;
                self.reply(p.reply_to, ClientReply::Ok { seq: p.seq, value });
            } else if self.bugs.has(Bug::ReplyForOtherCommand) {
                // Whatever executed at the index answers the request, shaped as its reply.
                let value = p.get.then(|| out.value.unwrap_or_default());
                self.reply(p.reply_to, ClientReply::Ok { seq: p.seq, value });
            } else {
                // Another leader's entry took the index: we lost leadership.
                self.wrong_leader(p.reply_to, p.seq);
            }
        }
    }

    fn restore(&mut self, snap: raft::Snapshot) {
        let index = snap.last_included_index;
        if index <= self.applied {
            return;
        }
        self.store = snapshot::decode(&snap.data);
        self.applied = index;
        self.event(ServerEvent::SnapshotRestored {
            index,
            term: snap.last_included_term,
            state: self.store.digest(),
        });
        // Entries we awaited are now inside a snapshot we did not apply
        // one by one: the clerk must retry (the duplicate table answers it).
        let rest = self.pending.split_off(&(index + 1));
        let covered = std::mem::replace(&mut self.pending, rest);
        for p in covered.into_values() {
            self.wrong_leader(p.reply_to, p.seq);
        }
    }

    /// Answer every confirmed read whose read index is applied, from the state now (which
    /// holds every write committed before the read was asked, and only committed writes).
    fn answer_reads(&mut self) {
        let applied = self.applied;
        if self.confirmed.iter().all(|(index, _)| *index > applied) {
            return;
        }
        let (done, waiting) = std::mem::take(&mut self.confirmed)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.confirmed = waiting;
        for (_, r) in done {
            let value = Some(self.store.read(&r.key));
            self.reply(r.reply_to, ClientReply::Ok { seq: r.seq, value });
        }
    }

    /// Fail every proposal and read that can no longer be answered by this leader.
    fn fail_stale_proposals(&mut self) {
        let (leader, term) = (self.raft.is_leader(), self.raft.current_term());
        let current = |t: u64| leader && t == term;
        if !(self.reads.values().all(|r| current(r.term))
            && self.confirmed.iter().all(|(_, r)| current(r.term)))
        {
            // Raft drops the reads of a leadership it lost; so do we, unanswered.
            let (keep, stale): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.reads)
                .into_iter()
                .partition(|(_, r)| current(r.term));
            self.reads = keep;
            let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.confirmed)
                .into_iter()
                .partition(|(_, r)| current(r.term));
            self.confirmed = keep;
            for r in stale.into_values().chain(gone.into_iter().map(|(_, r)| r)) {
                self.wrong_leader(r.reply_to, r.seq);
            }
        }
        if self.pending.values().all(|p| leader && p.term == term) {
            return;
        }
        let all = std::mem::take(&mut self.pending);
        for (index, p) in all {
            if leader && p.term == term {
                self.pending.insert(index, p);
            } else {
                self.wrong_leader(p.reply_to, p.seq);
            }
        }
    }

    /// Snapshot the store as the state through `index` (`applied`, but for the
    /// `SnapshotBeforeApply` bug) if the persisted Raft state nears `maxraftstate`.
    fn maybe_snapshot(&mut self, index: u64) {
        let Some(max) = self.maxraftstate else { return };
        if index <= self.raft.snapshot_index()
            || self.raft.persisted_size() * SNAPSHOT_DEN < max * SNAPSHOT_NUM
        {
            return;
        }
        let data = snapshot::encode(&self.store, !self.bugs.has(Bug::DedupNotInSnapshot));
        let bytes = data.len();
        self.raft.snapshot(index, data);
        self.event(ServerEvent::SnapshotTaken { index, bytes });
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
