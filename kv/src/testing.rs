//! Test-only harness: `n` [`KvServer`]s (nodes `0..n`) and clerks (nodes
//! `n..`), a deterministic lossy/duplicating/partitionable network, virtual
//! time and a seeded ChaCha rng. On every step it checks that durable
//! storage mirrors `persisted_size`, and that all servers apply the same
//! request at each index. It records a history for the linearizability checker.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::linearizability::{check, Operation, Verdict};

use crate::model::{KvModel, KvOperation, KvOutput};
use crate::{Bugs, Clerk, ClientId, KvCommand, KvMessage, KvServer, Op, ReadMode, ServerEvent};

/// Decides whether to drop a message (from, to, msg).
pub(crate) type DropFilter = Box<dyn FnMut(usize, usize, &KvMessage) -> bool>;

pub(crate) struct World {
    pub n: usize,
    pub servers: Vec<Option<KvServer>>,
    pub storages: Vec<raft::Storage<KvCommand>>,
    pub clerks: Vec<Clerk>,
    timers: Vec<Option<u64>>,
    /// Per clerk: the last completed (seq, value).
    pub completed: Vec<Option<(u64, Option<String>)>>,
    pub now: u64,
    pub rng: ChaCha8Rng,
    queue: BTreeMap<(u64, u64), (usize, usize, KvMessage)>,
    seq: u64,
    /// Per node (servers then clerks): nodes talk only within a group.
    pub group: Vec<u32>,
    pub drop_rate: f64,
    pub dup_rate: f64,
    pub min_delay: u64,
    pub max_delay: u64,
    pub drop_filter: Option<DropFilter>,
    pub maxraftstate: Option<usize>,
    pub bugs: Bugs,
    /// How (re)started servers answer `Get`s.
    pub read_mode: ReadMode,
    /// Raft bugs of (re)started servers.
    pub raft_bugs: raft::Bugs,
    /// The drift bound of lease reads (with `ReadMode::Lease`).
    pub max_drift_ppm: u64,
    /// LeadershipCheck messages the servers sent (ReadIndex and lease rounds).
    pub leadership_checks: u64,
    /// Every server event, with the server it came from.
    pub events: Vec<(usize, ServerEvent)>,
    /// (client, seq) applied at each index, first seen on any server.
    applied_at: BTreeMap<u64, (ClientId, u64)>,
    pub max_persisted: usize,
    history: Vec<KvOperation>,
    /// Per clerk: index in `history` of its outstanding operation.
    open: Vec<Option<usize>>,
}

pub(crate) const RETRY_TIMEOUT: u64 = 200_000;

impl World {
    pub fn new(n: usize, clerks: usize, maxraftstate: Option<usize>, seed: u64) -> Self {
        let mut w = World {
            n,
            servers: Vec::new(),
            storages: vec![raft::Storage::default(); n],
            clerks: (0..clerks)
                .map(|k| Clerk::new(Self::client_id(k), (0..n).collect(), RETRY_TIMEOUT))
                .collect(),
            timers: vec![None; clerks],
            completed: vec![None; clerks],
            now: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            queue: BTreeMap::new(),
            seq: 0,
            group: vec![0; n + clerks],
            drop_rate: 0.0,
            dup_rate: 0.0,
            min_delay: 1_000,
            max_delay: 5_000,
            drop_filter: None,
            maxraftstate,
            bugs: Bugs::NONE,
            read_mode: ReadMode::Log,
            raft_bugs: raft::Bugs::NONE,
            max_drift_ppm: 0,
            leadership_checks: 0,
            events: Vec::new(),
            applied_at: BTreeMap::new(),
            max_persisted: 0,
            history: Vec::new(),
            open: vec![None; clerks],
        };
        for i in 0..n {
            w.servers.push(None);
            w.restart(i);
        }
        w
    }

    pub fn client_id(k: usize) -> ClientId {
        100 + k as ClientId
    }

    /// Network node of clerk `k`.
    pub fn clerk_node(&self, k: usize) -> usize {
        self.n + k
    }

    fn up(&self, node: usize) -> bool {
        node >= self.n || self.servers[node].is_some()
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        self.up(a) && self.up(b) && self.group[a] == self.group[b]
    }

    pub fn server(&self, i: usize) -> &KvServer {
        self.servers[i].as_ref().expect("server is up")
    }

    pub fn crash(&mut self, i: usize) {
        self.servers[i] = None;
    }

    /// (Re)start server `i` from its durable storage.
    pub fn restart(&mut self, i: usize) {
        let mut cfg = raft::Config::new(i, (0..self.n).collect());
        cfg.bugs = self.raft_bugs;
        cfg.lease_reads = self.read_mode == ReadMode::Lease;
        cfg.max_drift_ppm = self.max_drift_ppm;
        let now = self.now;
        let mut s = KvServer::new(
            cfg,
            &self.storages[i],
            self.maxraftstate,
            now,
            &mut self.rng,
        );
        s.set_bugs(self.bugs);
        s.set_read_mode(self.read_mode);
        self.servers[i] = Some(s);
        self.process_server(i);
    }

    /// Restart every server with ReadIndex reads and these Raft bugs (durable state is kept).
    pub fn read_by_index(&mut self, raft_bugs: raft::Bugs) {
        self.read_mode = ReadMode::ReadIndex;
        self.raft_bugs = raft_bugs;
        for i in 0..self.n {
            self.restart(i);
        }
    }

    /// Restart every server with lease reads (drift bound `max_drift_ppm`) and these Raft
    /// bugs (durable state is kept).
    pub fn read_by_lease(&mut self, raft_bugs: raft::Bugs, max_drift_ppm: u64) {
        self.read_mode = ReadMode::Lease;
        self.max_drift_ppm = max_drift_ppm;
        self.raft_bugs = raft_bugs;
        for i in 0..self.n {
            self.restart(i);
        }
    }

    /// Switch `bugs` on in every server (also restarted ones) and clerk.
    pub fn set_bugs(&mut self, bugs: Bugs) {
        self.bugs = bugs;
        for s in self.servers.iter_mut().flatten() {
            s.set_bugs(bugs);
        }
        for c in &mut self.clerks {
            c.set_bugs(bugs);
        }
    }

    /// Put servers and clerks in the listed groups (others go to group 0).
    pub fn partition(&mut self, groups: &[&[usize]]) {
        self.group.iter_mut().for_each(|g| *g = 0);
        for (gi, members) in groups.iter().enumerate() {
            for m in *members {
                self.group[*m] = gi as u32 + 1;
            }
        }
    }

    pub fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = 0);
    }

    pub fn leaders(&self) -> Vec<usize> {
        (0..self.n)
            .filter(|i| {
                self.servers[*i]
                    .as_ref()
                    .is_some_and(|s| s.raft().is_leader())
            })
            .collect()
    }

    /// Put a message on the wire (subject to links, drops and duplication).
    pub fn send(&mut self, from: usize, to: usize, msg: KvMessage) {
        if !self.linked(from, to) || self.rng.random_bool(self.drop_rate) {
            return;
        }
        if let Some(f) = &mut self.drop_filter {
            if f(from, to, &msg) {
                return;
            }
        }
        let copies = if self.rng.random_bool(self.dup_rate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.random_range(self.min_delay..=self.max_delay);
            self.seq += 1;
            self.queue
                .insert((self.now + delay, self.seq), (from, to, msg.clone()));
        }
    }

    fn process_server(&mut self, i: usize) {
        let Some(s) = self.servers[i].as_mut() else {
            return;
        };
        let rd = s.take_ready();
        let persisted = s.raft().persisted_size();
        for op in &rd.storage {
            self.storages[i].apply(op);
        }
        assert_eq!(persisted, self.storages[i].raft_state_size(), "server {i}");
        self.max_persisted = self.max_persisted.max(persisted);
        for (to, m) in rd.messages {
            if matches!(m, KvMessage::Raft(raft::Message::LeadershipCheck { .. })) {
                self.leadership_checks += 1;
            }
            self.send(i, to, m);
        }
        for e in rd.events {
            if let ServerEvent::Applied {
                index, client, seq, ..
            } = &e
            {
                let first = *self.applied_at.entry(*index).or_insert((*client, *seq));
                assert_eq!(
                    first,
                    (*client, *seq),
                    "server {i}: divergent apply at {index}"
                );
            }
            self.events.push((i, e));
        }
    }

    fn process_clerk(&mut self, k: usize) {
        let rd = self.clerks[k].take_ready();
        let node = self.clerk_node(k);
        for (to, m) in rd.messages {
            self.send(node, to, m);
        }
        if let Some(t) = rd.timer {
            self.timers[k] = Some(t);
        }
        if let Some((seq, value)) = rd.completed {
            if let Some(h) = self.open[k].take() {
                self.history[h].ret = Some(self.now);
                self.history[h].output = value.clone().map_or(KvOutput::Done, KvOutput::Value);
            }
            self.completed[k] = Some((seq, value));
        }
    }

    /// Clerk `k` starts `op`.
    pub fn invoke(&mut self, k: usize, op: Op) -> u64 {
        self.open[k] = Some(self.history.len());
        self.history.push(Operation {
            client: k as u64,
            input: op.to_model_input(),
            output: KvOutput::Unknown,
            call: self.now,
            ret: None,
        });
        let seq = self.clerks[k].invoke(self.now, op);
        self.process_clerk(k);
        seq
    }

    /// Process the next event no later than `until`; false if none.
    pub fn step(&mut self, until: u64) -> bool {
        let next_msg = self.queue.keys().next().map(|k| k.0);
        let next_server = (0..self.n)
            .filter_map(|i| self.servers[i].as_ref().map(KvServer::next_deadline))
            .min();
        let next_timer = self.timers.iter().flatten().min().copied();
        let t = [next_msg, next_server, next_timer]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(u64::MAX);
        if t > until {
            self.now = self.now.max(until);
            return false;
        }
        self.now = self.now.max(t);
        let now = self.now;
        if next_msg == Some(t) {
            let (_, (from, to, msg)) = self.queue.pop_first().expect("a message");
            if !self.linked(from, to) {
                return true;
            }
            if to < self.n {
                let s = self.servers[to].as_mut().expect("linked means up");
                s.handle_message(now, &mut self.rng, from, msg);
                self.process_server(to);
            } else if let KvMessage::Reply(r) = msg {
                let k = to - self.n;
                self.clerks[k].handle_reply(now, from, r);
                self.process_clerk(k);
            }
        } else if next_server == Some(t) {
            for i in 0..self.n {
                if let Some(s) = self.servers[i].as_mut() {
                    if s.next_deadline() <= now {
                        s.tick(now, &mut self.rng);
                        self.process_server(i);
                    }
                }
            }
        } else {
            for k in 0..self.clerks.len() {
                if self.timers[k].is_some_and(|d| d <= now) {
                    self.timers[k] = None;
                    self.clerks[k].on_timeout(now);
                    self.process_clerk(k);
                }
            }
        }
        true
    }

    pub fn run_for(&mut self, duration: u64) {
        let until = self.now + duration;
        while self.step(until) {}
    }

    /// Run until `pred` holds or `duration` passes; returns whether it held.
    pub fn run_until(&mut self, duration: u64, pred: impl Fn(&World) -> bool) -> bool {
        let until = self.now + duration;
        loop {
            if pred(self) {
                return true;
            }
            if !self.step(until) {
                return pred(self);
            }
        }
    }

    /// Run clerk `k`'s `op` to completion (at most `limit` µs); its `Get` value.
    pub fn try_op(&mut self, k: usize, op: Op, limit: u64) -> Option<Option<String>> {
        let seq = self.invoke(k, op);
        let done = self.run_until(limit, |w| !w.clerks[k].busy());
        done.then(|| {
            let (s, v) = self.completed[k].clone().expect("completed");
            assert_eq!(s, seq);
            v
        })
    }

    /// Like `try_op`, but the operation must complete within 10 s.
    pub fn op(&mut self, k: usize, op: Op) -> Option<String> {
        let desc = format!("{op:?}");
        self.try_op(k, op, 10_000_000)
            .unwrap_or_else(|| panic!("clerk {k}: {desc} did not complete"))
    }

    /// Number of non-duplicate applies of (client, seq) on server `i`.
    pub fn executions(&self, i: usize, client: ClientId, seq: u64) -> usize {
        self.events
            .iter()
            .filter(|(s, e)| {
                *s == i
                    && matches!(e, ServerEvent::Applied { client: c, seq: q, duplicate: false, .. }
                        if *c == client && *q == seq)
            })
            .count()
    }

    pub fn count_events(&self, f: impl Fn(&ServerEvent) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    /// Whether the history so far is linearizable (the search must decide).
    pub fn linearizable(&self) -> bool {
        let report = check(&KvModel, &self.history);
        assert_ne!(report.verdict, Verdict::Unknown, "{report}");
        report.verdict == Verdict::Linearizable
    }

    pub fn assert_linearizable(&self) {
        let report = check(&KvModel, &self.history);
        assert_eq!(report.verdict, Verdict::Linearizable, "{report}");
    }

    pub fn history_len(&self) -> usize {
        self.history.len()
    }
}
