//! Online Raft safety checks: the five properties of Figure 3 of the extended Raft paper
//! ("In Search of an Understandable Consensus Algorithm (Extended Version)", Ongaro and
//! Ousterhout), each stated as the paper states it, plus checks derived from Figure 2. They
//! read only the servers' observations, after every event, through [`RaftEvents`], so any
//! service built on `raft::Raft` (the Raft tester's, the KV service) feeds the same checker.
//!
//! The observations of one call into a server must come in the order Raft made them: role
//! changes, then log writes, then commit index changes, then applies (the adapters emit each
//! `Ready` in that order).

#[path = "mirror.rs"]
mod mirror;

pub use super::node::LogChange;
use mirror::MirrorLog;
use sim::{Checker, Failure, Node, NodeId, Time};
use std::collections::BTreeMap;

/// One Raft event as the safety checker reads it. An `entry` is a 64-bit identity of a
/// command (equal commands, equal identities), so services with any command type can feed it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RaftEvent<'a> {
    /// A new incarnation started with this commit index (its snapshot's last index).
    Boot { commit_index: u64 },
    /// The server changed role (`leader` or not) in `term`.
    Role { leader: bool, term: u64 },
    /// The server's commitIndex grew to `commit_index` while its currentTerm was `term`.
    Commit { commit_index: u64, term: u64 },
    /// The service applied log entry `index` (of `term`).
    Applied { index: u64, term: u64, entry: u64 },
    /// The service restored a snapshot through `index` (of `term`); `entries` lists the
    /// identities of entries `1..=index` when the service can tell them.
    Restored {
        index: u64,
        term: u64,
        entries: Option<&'a [u64]>,
    },
    /// The server's durable log changed.
    Log(&'a LogChange),
}

/// A node type whose observations include Raft events.
pub trait RaftEvents: Node {
    /// The Raft event `obs` reports, if any.
    fn raft_event(obs: &Self::Obs) -> Option<RaftEvent<'_>>;
    /// The durable `(currentTerm, votedFor)` of a server's durable state.
    fn hard_state(durable: &Self::Durable) -> (u64, Option<NodeId>);
    /// The durable log: the snapshot's last index and term, then `(term, entry)` of each
    /// entry after it. (After a crash on a realistic disk, the log the server wrote and the
    /// one it kept differ; the checker takes the kept one.)
    fn durable_log(durable: &Self::Durable) -> (u64, u64, Vec<(u64, u64)>);
}

/// A durable log as [`RaftEvents::durable_log`] gives it, entries named by `command_id`.
pub fn storage_log<C>(
    storage: &raft::Storage<C>,
    command_id: impl Fn(&C) -> u64,
) -> (u64, u64, Vec<(u64, u64)>) {
    let (snap_index, snap_term) = storage
        .snapshot
        .as_ref()
        .map_or((0, 0), |s| (s.last_included_index, s.last_included_term));
    let entries = storage
        .entries
        .iter()
        .map(|e| (e.term, command_id(&e.command)))
        .collect();
    (snap_index, snap_term, entries)
}

/// An entry known to be committed, and the earliest term it is known committed in.
#[derive(Clone, Copy, Debug)]
struct Committed {
    term: u64,
    entry: u64,
    /// A server's currentTerm when its commitIndex covered the entry (the least seen). The
    /// leader that committed it did so in this term or an earlier one: a follower learns a
    /// commitIndex from an AppendEntries or InstallSnapshot of its current term.
    in_term: u64,
}

/// Figure 3's properties and the Figure 2 rules derived below, over servers `0..servers`.
pub struct RaftSafety {
    /// Who was elected in each term.
    elected: BTreeMap<u64, NodeId>,
    /// Servers that are leader now, with their term.
    in_office: BTreeMap<NodeId, u64>,
    logs: Vec<MirrorLog>,
    /// `(index, term)` → `(entry, term of the previous entry)`, over all servers, ever.
    entries: BTreeMap<(u64, u64), (u64, u64)>,
    committed: BTreeMap<u64, Committed>,
    /// What was applied at each index: `(term if known, entry)`.
    applied_at: BTreeMap<u64, (Option<u64>, u64)>,
    commit: Vec<u64>,
    applied: Vec<u64>,
    /// Each server's durable (currentTerm, votedFor) as last seen.
    hard: Vec<(u64, Option<NodeId>)>,
    /// Every durable vote ever seen, by (server, term): a server that lost its disk is held
    /// to the votes it cast before as well.
    votes: BTreeMap<(NodeId, u64), NodeId>,
    /// Servers that crashed and have not booted again (their log is what the disk kept).
    down: Vec<bool>,
    /// Servers that lost their disk, or part of it (a corrupt block), at some point.
    lost_disk: Vec<bool>,
}

fn fail(property: &str, nodes: Vec<NodeId>, detail: String) -> Result<(), Failure> {
    Err(Failure::new(property, nodes, detail))
}

impl RaftSafety {
    /// A checker for `servers` servers (ids 0..servers); observations of others are ignored.
    pub fn new(servers: usize) -> Self {
        RaftSafety {
            elected: BTreeMap::new(),
            in_office: BTreeMap::new(),
            logs: vec![MirrorLog::default(); servers],
            entries: BTreeMap::new(),
            committed: BTreeMap::new(),
            applied_at: BTreeMap::new(),
            commit: vec![0; servers],
            applied: vec![0; servers],
            hard: vec![(0, None); servers],
            votes: BTreeMap::new(),
            down: vec![false; servers],
            lost_disk: vec![false; servers],
        }
    }

    /// Server `node` made `(term, voted_for)` durable.
    ///
    /// Figure 2: currentTerm is the "latest term server has seen (initialized to 0 on first
    /// boot, increases monotonically)", and persistent. Section 5.2: "Each server will vote for
    /// at most one candidate in a given term, on a first-come-first-served basis", and votedFor
    /// is persistent so that a crash cannot make it forget. So the durable term never goes
    /// back, and within one term the durable vote, once cast, never names another candidate.
    pub fn hard_state(
        &mut self,
        node: NodeId,
        term: u64,
        voted_for: Option<NodeId>,
    ) -> Result<(), Failure> {
        let Some(before) = self.hard.get_mut(node) else {
            return Ok(());
        };
        let (was_term, was_vote) = *before;
        *before = (term, voted_for);
        let lost_disk = self.lost_disk[node];
        if let Some(v) = voted_for {
            let earlier = *self.votes.entry((node, term)).or_insert(v);
            // A server that lost its disk forgot its votes, but the candidates it voted for
            // did not: a second vote in a term it voted in before the loss is a second vote.
            if lost_disk && earlier != v {
                return fail(
                    "one vote per term",
                    vec![node],
                    format!("s{node} voted for s{earlier} and then (after losing its disk) for s{v} in term {term}"),
                );
            }
        }
        if lost_disk && term < was_term {
            // What a lost or corrupt disk leaves may be older than what the server had made
            // durable; the votes it cast before are still held against it above.
            return Ok(());
        }
        if term < was_term {
            return fail(
                "durable term monotonic",
                vec![node],
                format!("s{node}'s durable currentTerm went back from {was_term} to {term}"),
            );
        }
        if let (true, Some(a), Some(b)) = (term == was_term, was_vote, voted_for) {
            if a != b {
                return fail(
                    "one vote per term",
                    vec![node],
                    format!("s{node} voted for s{a} and then for s{b} in term {term}"),
                );
            }
        }
        Ok(())
    }

    /// Feeds one event of server `node` (what [`Checker::on_observation`] does).
    pub fn event(&mut self, node: NodeId, event: RaftEvent<'_>) -> Result<(), Failure> {
        if node >= self.logs.len() {
            return Ok(());
        }
        match event {
            RaftEvent::Boot { commit_index } => {
                self.down[node] = false;
                self.in_office.remove(&node);
                self.commit[node] = commit_index;
                self.applied[node] = 0;
                Ok(())
            }
            RaftEvent::Role { leader: true, term } => {
                self.election_safety(node, term)?;
                self.in_office.insert(node, term);
                self.leader_completeness_at_election(node, term)
            }
            RaftEvent::Role { leader: false, .. } => {
                self.in_office.remove(&node);
                Ok(())
            }
            RaftEvent::Commit { commit_index, term } => self.commit(node, commit_index, term),
            RaftEvent::Applied { index, term, entry } => self.applied(node, index, term, entry),
            RaftEvent::Restored {
                index,
                term,
                entries,
            } => self.restored(node, index, term, entries),
            RaftEvent::Log(change) => self.log_change(node, change),
        }
    }

    /// **Election Safety**: "at most one leader can be elected in a given term" (§5.2).
    fn election_safety(&mut self, node: NodeId, term: u64) -> Result<(), Failure> {
        match self.elected.insert(term, node) {
            Some(other) if other != node => fail(
                "election safety",
                vec![other, node],
                format!("s{other} and s{node} were both elected leader in term {term}"),
            ),
            _ => Ok(()),
        }
    }

    /// **Leader Completeness**: "if a log entry is committed in a given term, then that entry
    /// will be present in the logs of the leaders for all higher-numbered terms" (§5.4).
    /// Checked when a server becomes leader of `term`: it must hold every entry committed in
    /// an earlier term. (A leader of an earlier term may be elected late, by a delayed vote,
    /// after a later term committed entries it lacks: the property says nothing of it.)
    fn leader_completeness_at_election(&self, node: NodeId, term: u64) -> Result<(), Failure> {
        let log = &self.logs[node];
        for (&index, c) in self.committed.range(log.snap_index..) {
            if c.in_term < term && !log.holds(index, c.term, c.entry) {
                return self.incomplete_leader(node, term, index, c);
            }
        }
        Ok(())
    }

    /// **Leader Completeness**, for leaders already in office when an entry is seen committed
    /// in `c.in_term`: every one of a higher term must hold it (Leader Append-Only keeps it).
    fn leader_completeness_at_commit(&self, index: u64, c: &Committed) -> Result<(), Failure> {
        for (&leader, &term) in &self.in_office {
            if term > c.in_term && !self.logs[leader].holds(index, c.term, c.entry) {
                return self.incomplete_leader(leader, term, index, c);
            }
        }
        Ok(())
    }

    fn incomplete_leader(
        &self,
        node: NodeId,
        term: u64,
        index: u64,
        c: &Committed,
    ) -> Result<(), Failure> {
        let held = self.logs[node].held(index);
        fail(
            "leader completeness",
            vec![node],
            format!(
                "s{node}, leader of term {term}, lacks entry {index} (term {}, entry {:#x}) committed in term {}; its log has {held:?}",
                c.term, c.entry, c.in_term
            ),
        )
    }

    /// Commit observations. Derived checks (Figure 2): commitIndex "increases monotonically"
    /// within an incarnation (it is volatile), and stays within the log (a follower sets it to
    /// "min(leaderCommit, index of last new entry)"). Two servers whose commitIndex covers an
    /// index hold the same entry there ("committed entries agree"): an entry a leader commits
    /// is in the logs of all later leaders (Leader Completeness), and a follower only commits
    /// entries its leader's AppendEntries made match the leader's log (Log Matching).
    fn commit(&mut self, node: NodeId, commit_index: u64, term: u64) -> Result<(), Failure> {
        let from = self.commit[node];
        if commit_index < from {
            return fail(
                "commit index monotonic",
                vec![node],
                format!("s{node}'s commitIndex went from {from} back to {commit_index}"),
            );
        }
        let last = self.logs[node].last_index();
        if commit_index > last {
            return fail(
                "commit within log",
                vec![node],
                format!("s{node}'s commitIndex {commit_index} is past its last log index {last}"),
            );
        }
        self.commit[node] = commit_index;
        for index in from + 1..=commit_index {
            let mirror::Held::Entry(t, e) = self.logs[node].held(index) else {
                continue; // compacted: committed (and recorded) by whoever snapshotted it
            };
            let c = match self.committed.get_mut(&index) {
                None => {
                    let c = Committed {
                        term: t,
                        entry: e,
                        in_term: term,
                    };
                    self.committed.insert(index, c);
                    c
                }
                Some(c) if (c.term, c.entry) != (t, e) => {
                    return fail(
                        "committed entries agree",
                        vec![node],
                        format!(
                            "s{node} committed entry {index} as (term {t}, entry {e:#x}), but it was committed before as (term {}, entry {:#x})",
                            c.term, c.entry
                        ),
                    );
                }
                Some(c) if term < c.in_term => {
                    c.in_term = term;
                    *c
                }
                Some(_) => continue,
            };
            self.leader_completeness_at_commit(index, &c)?;
        }
        Ok(())
    }

    /// Applies. **State Machine Safety**: "if a server has applied a log entry at a given
    /// index to its state machine, no other server will ever apply a different log entry for
    /// the same index" (§5.4.3). Derived from Figure 2 ("If commitIndex > lastApplied:
    /// increment lastApplied, apply log[lastApplied] to state machine"): lastApplied grows by
    /// one ("apply order"), never past commitIndex ("apply only committed"), and what is
    /// applied is the server's own log entry ("apply log entry").
    fn applied(&mut self, node: NodeId, index: u64, term: u64, entry: u64) -> Result<(), Failure> {
        let last = self.applied[node];
        if index != last + 1 {
            return fail(
                "apply order",
                vec![node],
                format!("s{node} applied index {index} right after index {last}"),
            );
        }
        let commit = self.commit[node];
        if index > commit {
            return fail(
                "apply only committed",
                vec![node],
                format!("s{node} applied index {index} above its commitIndex {commit}"),
            );
        }
        let held = self.logs[node].held(index);
        if matches!(held, mirror::Held::Entry(..) | mirror::Held::Missing)
            && held != mirror::Held::Entry(term, entry)
        {
            return fail(
                "apply log entry",
                vec![node],
                format!("s{node} applied (term {term}, entry {entry:#x}) at index {index}, but its log has {held:?}"),
            );
        }
        self.applied[node] = index;
        self.state_machine_safety(node, index, Some(term), entry)
    }

    fn state_machine_safety(
        &mut self,
        node: NodeId,
        index: u64,
        term: Option<u64>,
        entry: u64,
    ) -> Result<(), Failure> {
        match self.applied_at.get_mut(&index) {
            Some((t, e)) if *e != entry || matches!((*t, term), (Some(a), Some(b)) if a != b) => {
                fail(
                    "state machine safety",
                    vec![node],
                    format!(
                        "s{node} applied entry {entry:#x} (term {term:?}) at index {index}, but entry {e:#x} (term {t:?}) was applied there before"
                    ),
                )
            }
            Some((t, _)) => {
                *t = t.or(term);
                Ok(())
            }
            None => {
                self.applied_at.insert(index, (term, entry));
                Ok(())
            }
        }
    }

    /// A restored snapshot stands for applying entries `1..=index`: State Machine Safety for
    /// the entries the service can tell (the term of the last one at least), and lastApplied
    /// never goes back within an incarnation ("apply order").
    fn restored(
        &mut self,
        node: NodeId,
        index: u64,
        term: u64,
        entries: Option<&[u64]>,
    ) -> Result<(), Failure> {
        let last = self.applied[node];
        if index < last {
            return fail(
                "apply order",
                vec![node],
                format!("s{node} restored a snapshot through {index} after applying {last}"),
            );
        }
        if let Some(entries) = entries {
            for (i, &e) in entries.iter().enumerate() {
                let at = i as u64 + 1;
                self.state_machine_safety(node, at, (at == index).then_some(term), e)?;
            }
        } else if let Some((Some(t), _)) = self.applied_at.get(&index) {
            if *t != term {
                return fail(
                    "state machine safety",
                    vec![node],
                    format!("s{node} restored a snapshot through index {index} of term {term}, but an entry of term {t} was applied there"),
                );
            }
        }
        self.applied[node] = index;
        self.commit[node] = self.commit[node].max(index);
        Ok(())
    }

    /// Log writes. **Leader Append-Only**: "a leader never overwrites or deletes entries in
    /// its log; it only appends new entries" (§5.3). **Log Matching**: "if two logs contain
    /// an entry with the same index and term, then the logs are identical in all entries up
    /// through the given index" (§5.3), checked inductively: every `(index, term)` ever
    /// written anywhere has one entry and one previous term. Derived: a server never deletes
    /// an entry at or below its own commitIndex ("committed prefix kept"): such an entry is
    /// committed in a term no later than the server's currentTerm, so every leader the
    /// server still accepts AppendEntries from (one of its term or later) holds it (Leader
    /// Completeness, or it is the leader that committed it) and never conflicts with it.
    /// commitIndex is volatile: after a restart a server may lose entries that a majority
    /// without it committed (it does not know), so this is per incarnation.
    fn log_change(&mut self, node: NodeId, change: &LogChange) -> Result<(), Failure> {
        let leader = self.in_office.get(&node).copied();
        match change {
            LogChange::Append { entries } => {
                for &(index, term, entry) in entries {
                    self.append(node, index, term, entry)?;
                }
                Ok(())
            }
            LogChange::Truncate { from } => {
                let log = &self.logs[node];
                if *from > log.last_index() {
                    return Ok(());
                }
                if let Some(term) = leader {
                    return fail(
                        "leader append-only",
                        vec![node],
                        format!(
                            "s{node}, leader of term {term}, deleted its entries from index {from} (its last is {})",
                            log.last_index()
                        ),
                    );
                }
                let commit = self.commit[node];
                if *from <= commit {
                    return fail(
                        "committed prefix kept",
                        vec![node],
                        format!("s{node} deleted its entries from index {from}, at or below its commitIndex {commit}"),
                    );
                }
                self.logs[node].truncate(*from);
                Ok(())
            }
            LogChange::Snapshot { index, term } => {
                let log = &self.logs[node];
                if let Some(lt) = leader {
                    if *index > log.snap_index && log.term_at(*index) != Some(*term) {
                        return fail(
                            "leader append-only",
                            vec![node],
                            format!(
                                "s{node}, leader of term {lt}, replaced its log with a snapshot through index {index} (term {term}) that its log does not hold"
                            ),
                        );
                    }
                }
                self.logs[node].snapshot(*index, *term);
                Ok(())
            }
        }
    }

    fn append(&mut self, node: NodeId, index: u64, term: u64, entry: u64) -> Result<(), Failure> {
        let log = &mut self.logs[node];
        if index != log.last_index() + 1 {
            return fail(
                "log continuity",
                vec![node],
                format!(
                    "s{node} appended index {index} after its last index {}",
                    log.last_index()
                ),
            );
        }
        let prev_term = log.term_at(index - 1).unwrap_or(0);
        match self.entries.get(&(index, term)) {
            Some(&(e, pt)) if e != entry || pt != prev_term => {
                return fail(
                    "log matching",
                    vec![node],
                    format!(
                        "s{node} holds index {index} term {term} = {entry:#x} after an entry of term {prev_term}, \
                         but another log held index {index} term {term} = {e:#x} after term {pt}"
                    ),
                );
            }
            Some(_) => {}
            None => {
                self.entries.insert((index, term), (entry, prev_term));
            }
        }
        log.entries.push((term, entry));
        Ok(())
    }
}

impl<N: RaftEvents> Checker<N> for RaftSafety {
    fn name(&self) -> &'static str {
        "raft safety"
    }

    fn on_observation(&mut self, _now: Time, node: NodeId, obs: &N::Obs) -> Result<(), Failure> {
        match N::raft_event(obs) {
            Some(event) => self.event(node, event),
            None => Ok(()),
        }
    }

    fn on_persist(
        &mut self,
        _now: Time,
        node: NodeId,
        durable: &N::Durable,
    ) -> Result<(), Failure> {
        let (term, voted_for) = N::hard_state(durable);
        self.hard_state(node, term, voted_for)
    }

    fn on_disk(
        &mut self,
        _now: Time,
        node: NodeId,
        change: sim::DiskChange,
        durable: &N::Durable,
    ) -> Result<(), Failure> {
        if node >= self.logs.len() {
            return Ok(());
        }
        match change {
            sim::DiskChange::Crash => self.down[node] = true,
            sim::DiskChange::Lost => {
                self.down[node] = true;
                self.lost_disk[node] = true;
            }
            sim::DiskChange::Corrupt => self.lost_disk[node] = true,
        }
        if self.down[node] {
            // The server will boot from the log its disk kept (a realistic disk loses unsynced
            // writes; a checking reader stops at a damaged record), not from the one it wrote.
            let (snap_index, snap_term, entries) = N::durable_log(durable);
            self.logs[node] = MirrorLog {
                snap_index,
                snap_term,
                entries,
            };
        }
        // The hard state is checked by `on_persist`, which follows any change that wrote it
        // (the engine reports the changes of an event first, each with the state after all
        // of them, so a term may look lost here before the loss is reported).
        Ok(())
    }
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
