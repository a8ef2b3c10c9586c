//! Storage at the fsync boundary: a node's durable state as a small simulated disk.
//!
//! Two models. The lab's Persister (no [`DiskConfig`], the default) makes every write durable
//! the moment the node makes it, and ignores syncs: the lab scenarios run on it, and their
//! traces do not change. A realistic disk ([`DiskConfig`]) keeps, per node:
//! - the *synced* state: what survives any crash ([`crate::World::durable`]);
//! - syncs in flight: the writes each [`crate::Ctx::sync`] covers, durable together when the
//!   sync completes, after a latency drawn from the disk's stream (FIFO: a sync never
//!   completes before an earlier one);
//! - open writes, made since the last sync.
//!
//! A message a node sends while one of its syncs is in flight leaves only when that sync
//! completes (it is delivered that much later; a crash before then drops it, cause
//! `unsynced`): a node's messages never overtake its own disk, like a server loop that calls
//! fsync before it sends. On a crash, every write not yet synced is lost except a random
//! prefix of them (the disk may have written some before the power went), and the first lost
//! one may be torn ([`crate::Durable::torn`]): a state the node's checksums must detect.
//! Faults act on the disk at rest: `corrupt` damages one block ([`crate::Durable::corrupt`]),
//! `lose_disk` replaces the disk with an empty one (the node crashes first if it is up).
//!
//! Everything is traced as `disk` records (a sync completing, what a crash kept, the damage a
//! corruption wrote), so a replay rebuilds the exact durable state each restart starts from.

use crate::engine::World;
use crate::node::{Durable, Node, NodeId, Time};
use crate::queue::Event;
use crate::trace::Record;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A realistic disk's settings (absent: the lab's Persister, every write synced at once).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskConfig {
    /// Each sync completes after a latency drawn uniformly from `[lo, hi]` µs (`[0, 0]`: at
    /// the same instant, right after the step).
    pub latency_us: (Time, Time),
    /// The probability that a crash which loses writes tears the first one it loses (when
    /// that write can tear).
    pub torn: f64,
}

/// What happened on a node's disk, as the trace records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DiskEvent {
    /// A sync completed: the oldest `writes` unsynced writes are durable.
    Synced { writes: usize },
    /// A crash: of the `kept + lost` unsynced writes the first `kept` reached the disk, and
    /// `torn`, if present, is the write that stands for what was left of the next one.
    Crash {
        kept: usize,
        lost: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        torn: Option<Value>,
    },
    /// A block was damaged at rest: this write was applied to the synced state.
    Corrupt { write: Value },
}

/// One sync in flight.
struct Batch<W> {
    no: u64,
    writes: Vec<W>,
    done_at: Time,
    /// Messages sent behind this sync (they leave when it completes).
    gated: Vec<u64>,
}

/// One node's disk, beyond its synced state (which stays in the node's slot).
struct NodeDisk<D: Durable> {
    /// The synced state plus every write a sync covers: what will be durable once the syncs
    /// in flight complete. A reply vouches for this state (the reply leaves after them).
    projected: D,
    batches: VecDeque<Batch<D::Write>>,
    open: Vec<D::Write>,
    next_batch: u64,
}

/// The disks of a run with a realistic disk model.
pub(crate) struct Disks<D: Durable> {
    cfg: DiskConfig,
    pub(crate) rng: ChaCha8Rng,
    nodes: Vec<NodeDisk<D>>,
    /// Messages waiting for a sync of their sender: id → (sender, batch).
    gated: BTreeMap<u64, (NodeId, u64)>,
    /// Messages whose sync a crash abandoned: never delivered.
    doomed: BTreeSet<u64>,
}

/// What a delivery must do about its sender's disk.
pub(crate) enum Gate {
    /// Nothing is pending: deliver.
    Open,
    /// The sender's sync is still in flight (a held message released early): wait until then.
    Wait(Time),
    /// The sender crashed before its sync completed: the message never left.
    Doomed,
}

impl<D: Durable> Disks<D> {
    pub(crate) fn new(cfg: DiskConfig, rng: ChaCha8Rng, nodes: usize) -> Self {
        Disks {
            cfg,
            rng,
            nodes: (0..nodes)
                .map(|_| NodeDisk {
                    projected: D::default(),
                    batches: VecDeque::new(),
                    open: Vec::new(),
                    next_batch: 1,
                })
                .collect(),
            gated: BTreeMap::new(),
            doomed: BTreeSet::new(),
        }
    }

    /// The state a reply of `node` sent now vouches for.
    pub(crate) fn projected(&self, node: NodeId) -> &D {
        &self.nodes[node].projected
    }

    /// How many writes of `node` no sync covers yet.
    pub(crate) fn open_len(&self, node: NodeId) -> usize {
        self.nodes[node].open.len()
    }

    /// A write of `node`, not yet covered by a sync.
    pub(crate) fn write(&mut self, node: NodeId, write: D::Write) {
        self.nodes[node].open.push(write);
    }

    /// A sync of `node` at `now`: returns its batch number and completion time.
    fn sync(&mut self, node: NodeId, now: Time) -> (u64, Time) {
        let (lo, hi) = self.cfg.latency_us;
        let latency = if hi > lo {
            self.rng.random_range(lo..=hi)
        } else {
            lo
        };
        let disk = &mut self.nodes[node];
        let done_at = disk
            .batches
            .back()
            .map_or(now + latency, |b| b.done_at.max(now + latency));
        let writes = std::mem::take(&mut disk.open);
        for w in &writes {
            disk.projected.apply(w);
        }
        let no = disk.next_batch;
        disk.next_batch += 1;
        disk.batches.push_back(Batch {
            no,
            writes,
            done_at,
            gated: Vec::new(),
        });
        (no, done_at)
    }

    /// A message `id` that `node` sends now: the extra delay before it leaves (0 if no sync of
    /// the node is in flight).
    pub(crate) fn gate_send(&mut self, node: NodeId, id: u64, now: Time) -> Time {
        let Some(last) = self.nodes[node].batches.back_mut() else {
            return 0;
        };
        last.gated.push(id);
        self.gated.insert(id, (node, last.no));
        last.done_at - now
    }

    /// What a delivery of message `id` must do.
    pub(crate) fn gate_delivery(&self, id: u64) -> Gate {
        if self.doomed.contains(&id) {
            return Gate::Doomed;
        }
        match self.gated.get(&id) {
            None => Gate::Open,
            Some(&(node, no)) => {
                let done_at = self.nodes[node]
                    .batches
                    .iter()
                    .find(|b| b.no == no)
                    .expect("a gated message's sync is in flight")
                    .done_at;
                Gate::Wait(done_at)
            }
        }
    }
}

impl<N: Node> World<N> {
    /// Routes a `sync` output of `id` (a no-op with the Persister).
    pub(crate) fn disk_sync(&mut self, id: NodeId) {
        let now = self.now;
        let Some(disks) = &mut self.disks else {
            return;
        };
        let (batch, done_at) = disks.sync(id, now);
        self.push(done_at, Event::Sync { node: id, batch });
    }

    /// A sync of `node` completes (if a crash did not abandon it): its writes become durable.
    pub(crate) fn sync_done(&mut self, node: NodeId, batch: u64) {
        let Some(disks) = &mut self.disks else {
            return;
        };
        let disk = &mut disks.nodes[node];
        if disk.batches.front().is_none_or(|b| b.no != batch) {
            return; // abandoned by a crash
        }
        let b = disk.batches.pop_front().expect("checked");
        for id in &b.gated {
            disks.gated.remove(id);
        }
        let writes = b.writes.len();
        for w in &b.writes {
            self.slots[node].durable.apply(w);
        }
        let n = self.next_event_no();
        self.stats.syncs += 1;
        if writes > 0 && !self.persisted.contains(&node) {
            self.persisted.push(node);
        }
        let t = self.now;
        self.trace(|| Record::Disk {
            n,
            t,
            node,
            disk: DiskEvent::Synced { writes },
        });
    }

    /// A crash of `node` with a realistic disk: every unsynced write is lost but a random
    /// prefix, the first lost one possibly torn; the syncs in flight and the messages behind
    /// them are abandoned. Without `keep` (the disk is lost anyway) nothing is kept and
    /// nothing traced: the fault's record says it all.
    pub(crate) fn disk_crash(&mut self, node: NodeId, keep: bool) {
        let Some(disks) = &mut self.disks else {
            return;
        };
        let disk = &mut disks.nodes[node];
        let mut pending: Vec<<N::Durable as Durable>::Write> = Vec::new();
        for b in disk.batches.drain(..) {
            for id in b.gated {
                disks.gated.remove(&id);
                disks.doomed.insert(id);
            }
            pending.extend(b.writes);
        }
        pending.append(&mut disk.open);
        if pending.is_empty() || !keep {
            return;
        }
        let kept = disks.rng.random_range(0..=pending.len());
        let durable = &mut self.slots[node].durable;
        for w in &pending[..kept] {
            durable.apply(w);
        }
        let mut torn = None;
        if kept < pending.len() && disks.cfg.torn > 0.0 && disks.rng.random_bool(disks.cfg.torn) {
            torn = durable.torn(&pending[kept], &mut disks.rng);
            if let Some(w) = &torn {
                durable.apply(w);
            }
        }
        disk.projected = durable.clone();
        self.stats.writes_lost += (pending.len() - kept) as u64;
        if (kept > 0 || torn.is_some()) && !self.persisted.contains(&node) {
            self.persisted.push(node);
        }
        let n = self.next_event_no();
        let t = self.now;
        let lost = pending.len() - kept;
        self.trace(|| Record::Disk {
            n,
            t,
            node,
            disk: DiskEvent::Crash {
                kept,
                lost,
                torn: torn
                    .as_ref()
                    .map(|w| serde_json::to_value(w).expect("a write serializes")),
            },
        });
    }

    /// A corrupt block on `node`'s disk (realistic disk only; false if nothing changed).
    pub(crate) fn disk_corrupt(&mut self, node: NodeId) -> bool {
        let Some(disks) = &mut self.disks else {
            return false;
        };
        let durable = &mut self.slots[node].durable;
        let Some(w) = durable.corrupt(&mut disks.rng) else {
            return false;
        };
        durable.apply(&w);
        let disk = &mut disks.nodes[node];
        // What the node will read back, and what later syncs build on.
        disk.projected.apply(&w);
        let n = self.next_event_no();
        let t = self.now;
        self.trace(|| Record::Disk {
            n,
            t,
            node,
            disk: DiskEvent::Corrupt {
                write: serde_json::to_value(&w).expect("a write serializes"),
            },
        });
        true
    }

    /// `node`'s disk is replaced by an empty one (the node is down: the caller crashed it).
    pub(crate) fn disk_lose(&mut self, node: NodeId) {
        self.slots[node].durable = N::Durable::replaced();
        if let Some(disks) = &mut self.disks {
            disks.nodes[node].projected = N::Durable::replaced();
        }
    }

    /// The state the replies of a step of `id` vouch for, checked at its end: the synced
    /// state with the Persister; with a realistic disk, every write the node made (the
    /// engine fails a step whose reply left while a write was not covered by a sync, so the
    /// writes made after a sync are those made after the step's replies: none they depend on).
    pub(crate) fn vouched(&self, id: NodeId) -> std::borrow::Cow<'_, N::Durable> {
        use std::borrow::Cow;
        match &self.disks {
            None => Cow::Borrowed(&self.slots[id].durable),
            Some(d) if d.nodes[id].open.is_empty() => Cow::Borrowed(d.projected(id)),
            Some(d) => {
                let mut state = d.projected(id).clone();
                for w in &d.nodes[id].open {
                    state.apply(w);
                }
                Cow::Owned(state)
            }
        }
    }
}
