//! Raft's durable state on the engine's disk, as records with checksums.
//!
//! The disk holds a hard-state record in two slots written in turn (the newer one holds the
//! latest `currentTerm`/`votedFor`, the older one what came before), and one record per log
//! entry, each with a length and a checksum. Damage is modelled by what a reader of the
//! records would find, not by bytes:
//! - a **torn** record (a crash cut the write short) is incomplete: its length says more
//!   bytes than the disk holds. It can only be the last record written, and it was not
//!   synced, so nothing was promised about it: a reader drops it (and, for the hard state,
//!   falls back to the older slot).
//! - a **corrupt** record (a block damaged at rest) is complete but fails its checksum. It
//!   may hold anything that was synced and vouched for: a reader that finds one has lost
//!   part of its state.
//!
//! [`RaftDurable::raw`] is what lies on the disk (damaged records read as garbage: a reader
//! that skips its checksums, the `no-checksum` bug, gets it); [`RaftDurable::recovered`] is
//! what a reader that checks them gets: the hard state of the newest good slot, the log up
//! to the first bad record.

use raft::{Entry, NodeId, Storage, StorageOp};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sim::Durable;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A command the disk can damage: `garble` is what a damaged record of it reads as (another,
/// plausible command, so a reader that skips checksums acts on it).
pub trait Garble {
    fn garble(&self) -> Self;
}

/// How a record is damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DamageKind {
    /// Incomplete: the last write, cut short by a crash.
    Torn,
    /// Complete, but its checksum fails: damaged at rest.
    Corrupt,
}

/// One write to a server's disk: a Raft write (traced exactly as Raft's own), or one the
/// disk or the server's recovery makes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DiskWrite<C> {
    Op(StorageOp<C>),
    Disk(DiskOp<C>),
}

/// Writes Raft never makes: damage, and the mark of a server that stopped serving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DiskOp<C> {
    /// A torn Append: `whole` entries made it, `torn` is what is left of the next one.
    TornAppend {
        whole: Vec<Entry<C>>,
        torn: Entry<C>,
    },
    /// A torn hard-state write: the newer slot holds this garbage.
    TornHardState {
        current_term: u64,
        voted_for: Option<NodeId>,
    },
    /// A log entry's record damaged at rest: it reads as `entry`.
    CorruptEntry { entry: Entry<C> },
    /// The newer hard-state slot damaged at rest: it reads as this.
    CorruptHardState {
        current_term: u64,
        voted_for: Option<NodeId>,
    },
    /// The server found part of its synced state lost (a corrupt record, a replaced disk)
    /// and stopped serving: it stays out of the cluster until an operator acts.
    Halted,
}

impl<C> From<StorageOp<C>> for DiskWrite<C> {
    fn from(op: StorageOp<C>) -> Self {
        DiskWrite::Op(op)
    }
}

/// Raft's durable state on a disk of checksummed records (see the module comment).
#[derive(Clone, Debug)]
pub struct RaftDurable<C> {
    raw: Storage<C>,
    /// The older hard-state slot.
    older_hard: (u64, Option<NodeId>),
    /// The newer hard-state slot is damaged.
    hard_bad: Option<DamageKind>,
    /// Damaged log records, by index.
    bad: BTreeMap<u64, DamageKind>,
    /// The server wrote [`DiskOp::Halted`].
    halted: bool,
    /// This disk replaced a lost one: the server was started to join an existing cluster
    /// (an operator's flag, which an empty disk of a first boot does not carry).
    replaced: bool,
}

impl<C> Default for RaftDurable<C> {
    fn default() -> Self {
        RaftDurable {
            raw: Storage::default(),
            older_hard: (0, None),
            hard_bad: None,
            bad: BTreeMap::new(),
            halted: false,
            replaced: false,
        }
    }
}

/// What a server's recovery found on its disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// Torn records (unsynced writes a crash cut short): dropped, nothing lost.
    pub torn: bool,
    /// Corrupt records: synced state lost.
    pub corrupt: bool,
}

impl<C: raft::Command> RaftDurable<C> {
    /// The records as they lie on the disk, damaged ones read as garbage.
    pub fn raw(&self) -> &Storage<C> {
        &self.raw
    }

    /// What a reader that checks its records gets: the newest good hard-state slot, the log
    /// up to the first damaged record. Borrowed when nothing is damaged.
    pub fn recovered(&self) -> Cow<'_, Storage<C>> {
        if self.hard_bad.is_none() && self.bad.is_empty() {
            return Cow::Borrowed(&self.raw);
        }
        let mut s = self.raw.clone();
        if self.hard_bad.is_some() {
            (s.current_term, s.voted_for) = self.older_hard;
        }
        if let Some((&first, _)) = self.bad.first_key_value() {
            s.apply(&StorageOp::TruncateFrom { index: first });
        }
        Cow::Owned(s)
    }

    /// What damage a checking reader finds.
    pub fn found(&self) -> Found {
        let kinds = self.hard_bad.iter().chain(self.bad.values());
        let mut found = Found::default();
        for k in kinds {
            match k {
                DamageKind::Torn => found.torn = true,
                DamageKind::Corrupt => found.corrupt = true,
            }
        }
        found
    }

    /// The writes that make the disk hold what a checking reader recovered (drop the
    /// damaged records, rewrite the good hard state), so later writes build on it.
    pub fn repairs(&self) -> Vec<DiskWrite<C>> {
        let mut w = Vec::new();
        if self.hard_bad.is_some() {
            let (current_term, voted_for) = self.older_hard;
            w.push(DiskWrite::Op(StorageOp::HardState {
                current_term,
                voted_for,
            }));
        }
        if let Some((&index, _)) = self.bad.first_key_value() {
            w.push(DiskWrite::Op(StorageOp::TruncateFrom { index }));
        }
        w
    }

    /// The server stopped serving ([`DiskOp::Halted`]).
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// The disk replaced a lost one.
    pub fn is_replacement(&self) -> bool {
        self.replaced
    }

    fn set_hard(&mut self, current_term: u64, voted_for: Option<NodeId>) {
        if self.hard_bad.is_none() {
            self.older_hard = (self.raw.current_term, self.raw.voted_for);
        }
        self.raw.current_term = current_term;
        self.raw.voted_for = voted_for;
    }

    /// Forget damage marks of records that are gone (truncated, compacted).
    fn prune(&mut self) {
        let (first, last) = (self.raw.snapshot_index() + 1, self.raw.last_index());
        self.bad.retain(|i, _| (first..=last).contains(i));
    }
}

impl<C: raft::Command + Garble> Durable for RaftDurable<C> {
    type Write = DiskWrite<C>;

    fn apply(&mut self, write: &DiskWrite<C>) {
        match write {
            DiskWrite::Op(StorageOp::HardState {
                current_term,
                voted_for,
            }) => {
                self.set_hard(*current_term, *voted_for);
                self.hard_bad = None;
            }
            DiskWrite::Op(op) => {
                self.raw.apply(op);
                self.prune();
            }
            DiskWrite::Disk(DiskOp::TornAppend { whole, torn }) => {
                self.raw.apply(&StorageOp::Append {
                    entries: whole.clone(),
                });
                self.raw.apply(&StorageOp::Append {
                    entries: vec![torn.clone()],
                });
                self.bad.insert(torn.index, DamageKind::Torn);
            }
            DiskWrite::Disk(DiskOp::TornHardState {
                current_term,
                voted_for,
            }) => {
                self.set_hard(*current_term, *voted_for);
                self.hard_bad = Some(DamageKind::Torn);
            }
            DiskWrite::Disk(DiskOp::CorruptEntry { entry }) => {
                let first = self.raw.snapshot_index() + 1;
                if let Some(i) = entry.index.checked_sub(first) {
                    if let Some(e) = self.raw.entries.get_mut(i as usize) {
                        *e = entry.clone();
                        self.bad.insert(entry.index, DamageKind::Corrupt);
                    }
                }
            }
            DiskWrite::Disk(DiskOp::CorruptHardState {
                current_term,
                voted_for,
            }) => {
                // At rest: the older slot keeps what it held.
                self.raw.current_term = *current_term;
                self.raw.voted_for = *voted_for;
                self.hard_bad = Some(DamageKind::Corrupt);
            }
            DiskWrite::Disk(DiskOp::Halted) => self.halted = true,
        }
    }

    fn byte_size(&self) -> usize {
        self.raw.raft_state_size()
    }

    fn torn(&self, write: &DiskWrite<C>, rng: &mut ChaCha8Rng) -> Option<DiskWrite<C>> {
        match write {
            DiskWrite::Op(StorageOp::Append { entries }) if !entries.is_empty() => {
                let j = rng.random_range(0..entries.len());
                let mut torn = entries[j].clone();
                torn.command = torn.command.garble();
                Some(DiskWrite::Disk(DiskOp::TornAppend {
                    whole: entries[..j].to_vec(),
                    torn,
                }))
            }
            // A half-written slot reads as zeros.
            DiskWrite::Op(StorageOp::HardState { .. }) => {
                Some(DiskWrite::Disk(DiskOp::TornHardState {
                    current_term: 0,
                    voted_for: None,
                }))
            }
            // Truncations and snapshots are atomic (a snapshot is written aside and renamed).
            _ => None,
        }
    }

    fn corrupt(&self, rng: &mut ChaCha8Rng) -> Option<DiskWrite<C>> {
        let n = self.raw.entries.len();
        if n > 0 && (self.raw.current_term == 0 || rng.random_bool(0.8)) {
            let mut entry = self.raw.entries[rng.random_range(0..n)].clone();
            entry.command = entry.command.garble();
            return Some(DiskWrite::Disk(DiskOp::CorruptEntry { entry }));
        }
        (self.raw.current_term > 0).then_some(DiskWrite::Disk(DiskOp::CorruptHardState {
            current_term: 0,
            voted_for: None,
        }))
    }

    fn replaced() -> Self {
        RaftDurable {
            replaced: true,
            ..RaftDurable::default()
        }
    }
}

/// How a server starts from its disk: the state it trusts, whether it must stop serving,
/// and the writes its recovery makes (they go to disk, and are synced, in its start step).
pub struct Boot<'a, C: Clone> {
    pub storage: Cow<'a, Storage<C>>,
    /// The server lost synced state (a corrupt record, a replaced disk), or stopped serving
    /// before: it must not vote, acknowledge or answer as if it remembered, so it halts.
    pub halt: bool,
    pub writes: Vec<DiskWrite<C>>,
}

/// A server's recovery: checksums drop torn records (unsynced, so nothing is lost); a
/// corrupt record or a replaced disk is lost synced state, and the server halts rather than
/// serve from it (a halted server is a crashed one to the others: safe while a majority is
/// whole). The `no-checksum` bug trusts every record as it reads; `rejoin-votes-with-term-0`
/// starts a server with a replaced disk as a fresh one.
pub fn boot<C: raft::Command>(durable: &RaftDurable<C>, bugs: raft::Bugs) -> Boot<'_, C> {
    let rejoin_fresh = bugs.has(raft::Bug::RejoinVotesWithTerm0);
    let lost_disk = durable.is_replacement() && !rejoin_fresh;
    if bugs.has(raft::Bug::NoChecksum) {
        return Boot {
            storage: Cow::Borrowed(durable.raw()),
            halt: durable.halted() || lost_disk,
            writes: Vec::new(),
        };
    }
    let found = durable.found();
    let halt = durable.halted() || lost_disk || found.corrupt;
    let mut writes = Vec::new();
    // The mark first: a crash keeps a prefix of these writes, and a server that kept the
    // repairs must not forget that it lost state (it would serve from it).
    if halt && !durable.halted() {
        writes.push(DiskWrite::Disk(DiskOp::Halted));
    }
    writes.extend(durable.repairs());
    Boot {
        storage: durable.recovered(),
        halt,
        writes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::node::{Cmd, RaftNode};
    use raft::{Bug, Bugs, Message};
    use rand::SeedableRng;
    use sim::{Ctx, Output};

    fn entry(index: u64, term: u64, value: u64) -> Entry<Cmd> {
        Entry {
            index,
            term,
            command: Cmd { value, pad: 0 },
        }
    }

    /// Term 1 with a vote for s0, entries 1..=3 of term 1 (values 11, 12, 13).
    fn synced() -> RaftDurable<Cmd> {
        let mut d = RaftDurable::default();
        d.apply(&DiskWrite::Op(StorageOp::HardState {
            current_term: 1,
            voted_for: Some(0),
        }));
        d.apply(&DiskWrite::Op(StorageOp::Append {
            entries: (1..=3).map(|i| entry(i, 1, 10 + i)).collect(),
        }));
        d
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(3)
    }

    #[test]
    fn a_torn_append_is_dropped_by_a_checking_reader_and_read_as_data_without_checksums() {
        let mut d = synced();
        let append = DiskWrite::Op(StorageOp::Append {
            entries: vec![entry(4, 1, 14), entry(5, 1, 15)],
        });
        let torn = d.torn(&append, &mut rng()).expect("an append can tear");
        d.apply(&torn);
        let DiskWrite::Disk(DiskOp::TornAppend { whole, torn: t }) = &torn else {
            panic!("{torn:?}")
        };
        assert_eq!(
            d.found(),
            Found {
                torn: true,
                corrupt: false
            }
        );
        // The checking reader keeps the whole entries and drops the torn one.
        assert_eq!(d.recovered().last_index(), 3 + whole.len() as u64);
        let boot = boot(&d, Bugs::NONE);
        assert!(!boot.halt, "a torn write was never synced: nothing is lost");
        assert_eq!(
            boot.writes,
            vec![DiskWrite::Op(StorageOp::TruncateFrom { index: t.index })]
        );
        // Without checksums the torn entry reads as a command nobody submitted.
        let buggy = boot_raw(&d);
        assert_eq!(buggy.last_index(), t.index);
        assert_ne!(buggy.entries.last().unwrap().command.value, 10 + t.index);
        // The repair makes the disk hold what was recovered.
        let mut repaired = d.clone();
        for w in &boot.writes {
            repaired.apply(w);
        }
        assert_eq!(repaired.found(), Found::default());
        assert_eq!(repaired.raw().last_index(), 3 + whole.len() as u64);
    }

    fn boot_raw(d: &RaftDurable<Cmd>) -> Storage<Cmd> {
        let b = boot(d, Bugs::NONE.with(Bug::NoChecksum));
        assert!(!b.halt && b.writes.is_empty());
        b.storage.into_owned()
    }

    #[test]
    fn a_torn_hard_state_falls_back_to_the_older_slot() {
        let mut d = synced();
        let w = DiskWrite::Op(StorageOp::HardState {
            current_term: 2,
            voted_for: Some(1),
        });
        let torn = d.torn(&w, &mut rng()).unwrap();
        d.apply(&torn);
        let r = d.recovered();
        assert_eq!((r.current_term, r.voted_for), (1, Some(0)));
        let b = boot(&d, Bugs::NONE);
        assert!(!b.halt);
        assert_eq!(
            b.writes,
            vec![DiskWrite::Op(StorageOp::HardState {
                current_term: 1,
                voted_for: Some(0)
            })]
        );
        // Without checksums the zeroed slot is read: the term and the vote are gone.
        let raw = boot_raw(&d);
        assert_eq!((raw.current_term, raw.voted_for), (0, None));
    }

    #[test]
    fn a_corrupt_record_is_lost_synced_state_and_the_server_halts() {
        let mut d = synced();
        let mut r = rng();
        let w = loop {
            // Draw until an entry is hit (the hard state is the other target).
            let w = d.corrupt(&mut r).unwrap();
            if matches!(w, DiskWrite::Disk(DiskOp::CorruptEntry { .. })) {
                break w;
            }
        };
        d.apply(&w);
        let DiskWrite::Disk(DiskOp::CorruptEntry { entry: bad }) = &w else {
            unreachable!()
        };
        assert_eq!(
            d.found(),
            Found {
                torn: false,
                corrupt: true
            }
        );
        assert_eq!(d.recovered().last_index(), bad.index - 1);
        let b = boot(&d, Bugs::NONE);
        assert!(b.halt);
        assert_eq!(b.writes.first(), Some(&DiskWrite::Disk(DiskOp::Halted)));
        let mut after = d.clone();
        for w in &b.writes {
            after.apply(w);
        }
        assert!(
            after.halted() && boot(&after, Bugs::NONE).halt,
            "it stays halted"
        );
        assert_eq!(
            boot_raw(&d).entries[bad.index as usize - 1].command,
            bad.command
        );
    }

    #[test]
    fn a_replaced_disk_halts_the_server_unless_it_rejoins_as_new() {
        let d = <RaftDurable<Cmd> as Durable>::replaced();
        assert!(boot(&d, Bugs::NONE).halt);
        assert!(
            !boot(&RaftDurable::<Cmd>::default(), Bugs::NONE).halt,
            "a first boot"
        );
        let fresh = boot(&d, Bugs::NONE.with(Bug::RejoinVotesWithTerm0));
        assert!(!fresh.halt && fresh.writes.is_empty());
        assert_eq!(fresh.storage.current_term, 0);
    }

    #[test]
    fn raft_writes_trace_as_raft_writes_and_disk_writes_read_back() {
        let op = StorageOp::TruncateFrom { index: 4 };
        let w: DiskWrite<Cmd> = op.clone().into();
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            serde_json::to_value(&op).unwrap()
        );
        let d: DiskWrite<Cmd> = DiskWrite::Disk(DiskOp::CorruptEntry {
            entry: entry(2, 1, 99),
        });
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<DiskWrite<Cmd>>(&text).unwrap(), d);
    }

    #[test]
    fn replies_wait_for_the_sync_unless_the_bug_sends_them_first() {
        let order = |bugs: Bugs| -> Vec<&'static str> {
            let (mut r, mut out, mut next) = (rng(), Vec::<Output<RaftNode>>::new(), 0);
            let mut ctx = Ctx::detached(0, 0, &mut r, &mut out, &mut next);
            let reply = Message::<Cmd>::RequestVoteReply {
                term: 1,
                request_term: 1,
                vote_granted: true,
            };
            let request = Message::<Cmd>::RequestVote {
                term: 1,
                candidate_id: 0,
                last_log_index: 0,
                last_log_term: 0,
            };
            crate::wire::sync_then_send(
                &mut ctx,
                true,
                vec![(1, reply), (2, request)],
                bugs,
                |m| m,
            );
            out.iter()
                .map(|o| match o {
                    Output::Sync => "sync",
                    Output::Send { to: 1, .. } => "reply",
                    Output::Send { .. } => "request",
                    _ => "other",
                })
                .collect()
        };
        assert_eq!(order(Bugs::NONE), ["sync", "reply", "request"]);
        assert_eq!(
            order(Bugs::NONE.with(Bug::ReplyBeforeSync)),
            ["reply", "sync", "request"]
        );
    }
}
