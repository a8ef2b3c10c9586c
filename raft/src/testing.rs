//! Test-only cluster harness: N `Raft<u64>` nodes, virtual time, a seeded
//! ChaCha rng, and a lossy/reordering/duplicating network. It checks safety
//! on every step: applies in order without gaps or repeats, agreement of
//! applied commands across nodes, at most one leader per term, and durable
//! storage mirroring the in-memory state.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Apply, Config, Event, Message, NodeId, Raft, Storage};

/// Configuration of node `id` in a cluster of `n` nodes `0..n`.
pub(crate) fn cfg(id: NodeId, n: usize) -> Config {
    Config::new(id, (0..n).collect())
}

/// The mock service on one node: the index it has applied through and a
/// running hash of the commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Service {
    pub applied: u64,
    pub hash: u64,
}

impl Service {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.applied.to_le_bytes().to_vec();
        v.extend_from_slice(&self.hash.to_le_bytes());
        v
    }
    fn decode(data: &[u8]) -> Self {
        Service {
            applied: u64::from_le_bytes(data[..8].try_into().unwrap()),
            hash: u64::from_le_bytes(data[8..16].try_into().unwrap()),
        }
    }
}

pub(crate) struct Cluster {
    pub nodes: Vec<Raft<u64>>,
    pub storages: Vec<Storage<u64>>,
    pub services: Vec<Service>,
    pub now: u64,
    pub rng: ChaCha8Rng,
    queue: BTreeMap<(u64, u64), (NodeId, NodeId, Message<u64>)>,
    seq: u64,
    pub up: Vec<bool>,
    /// Nodes talk only within the same group.
    pub group: Vec<u32>,
    pub drop_rate: f64,
    pub dup_rate: f64,
    pub min_delay: u64,
    pub max_delay: u64,
    /// `(probability, min, max)`: a message is delayed a further `min..=max` µs with this
    /// probability (requests and replies alike).
    pub long_delay: Option<(f64, u64, u64)>,
    /// If set, each service snapshots whenever its applied index is a multiple.
    pub snapshot_every: Option<u64>,
    /// Service hash after each committed index, first seen on any node.
    pub committed: BTreeMap<u64, (u64, u64)>,
    pub leaders_by_term: BTreeMap<u64, NodeId>,
    pub sent: BTreeMap<&'static str, usize>,
    /// Highest match index each leader (node, term) has recorded for each peer.
    matches: BTreeMap<(NodeId, u64, NodeId), u64>,
    /// One-way links that are cut: `(from, to)`.
    pub cut: Vec<(NodeId, NodeId)>,
    /// ReadIndex reads confirmed, by node, in order.
    pub reads: Vec<(NodeId, crate::ReadState)>,
    /// Each node's configuration (a restart reuses it).
    configs: Vec<Config>,
}

impl Cluster {
    pub fn new(n: usize, seed: u64) -> Self {
        Cluster::with_config(n, seed, |_| {})
    }

    /// A cluster whose nodes' configurations `edit` adjusts (PreVote on, say).
    pub fn with_config(n: usize, seed: u64, edit: impl Fn(&mut Config)) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let storages = vec![Storage::default(); n];
        let configs: Vec<Config> = (0..n)
            .map(|i| {
                let mut c = cfg(i, n);
                edit(&mut c);
                c
            })
            .collect();
        let nodes = (0..n)
            .map(|i| Raft::new(configs[i].clone(), &storages[i], 0, &mut rng))
            .collect();
        let mut c = Cluster {
            nodes,
            storages,
            services: vec![Service::default(); n],
            now: 0,
            rng,
            queue: BTreeMap::new(),
            seq: 0,
            up: vec![true; n],
            group: vec![0; n],
            drop_rate: 0.0,
            dup_rate: 0.0,
            min_delay: 1_000,
            max_delay: 5_000,
            long_delay: None,
            snapshot_every: None,
            committed: BTreeMap::new(),
            leaders_by_term: BTreeMap::new(),
            sent: BTreeMap::new(),
            matches: BTreeMap::new(),
            cut: Vec::new(),
            reads: Vec::new(),
            configs,
        };
        for i in 0..n {
            c.process(i);
        }
        c
    }

    pub fn total_sent(&self) -> usize {
        self.sent.values().sum()
    }

    /// Requests only (replies excluded), like counting RPCs.
    pub fn rpcs_sent(&self) -> usize {
        self.sent
            .iter()
            .filter(|(k, _)| !k.ends_with("Reply"))
            .map(|(_, v)| v)
            .sum()
    }

    fn linked(&self, a: NodeId, b: NodeId) -> bool {
        self.up[a] && self.up[b] && self.group[a] == self.group[b] && !self.cut.contains(&(a, b))
    }

    /// Drain node `i`'s Ready (repeatedly, since the service may snapshot).
    pub fn process(&mut self, i: NodeId) {
        while self.nodes[i].has_ready() {
            let rd = self.nodes[i].take_ready();
            for op in &rd.storage {
                self.storages[i].apply(op);
            }
            for (to, msg) in rd.messages {
                *self.sent.entry(msg.kind()).or_default() += 1;
                self.enqueue(i, to, msg);
            }
            for a in rd.applies {
                self.apply(i, a);
            }
            self.reads.extend(rd.reads.into_iter().map(|r| (i, r)));
            for e in rd.events {
                if let Event::BecameLeader { term } = e {
                    let prev = self.leaders_by_term.insert(term, i);
                    assert!(prev.is_none(), "two leaders in term {term}");
                }
            }
        }
        self.check_storage(i);
        self.check_progress(i);
    }

    /// If node `i` leads: its match indexes never decrease within its term, and a peer in
    /// the same term holds at least that much of the leader's log.
    fn check_progress(&mut self, i: NodeId) {
        let l = &self.nodes[i];
        if !l.is_leader() {
            return;
        }
        let term = l.current_term();
        for (&peer, pr) in &l.progress {
            let m = pr.match_index;
            let before = self.matches.insert((i, term, peer), m).unwrap_or(0);
            assert!(
                m >= before,
                "leader {i} of term {term}: match_index({peer}) went from {before} to {m}"
            );
            let f = &self.nodes[peer];
            if f.current_term() == term {
                assert!(
                    m <= f.last_index(),
                    "leader {i} of term {term}: match_index({peer}) = {m} but s{peer} holds {}",
                    f.last_index()
                );
                if let (Some(a), Some(b)) = (f.term_at(m), l.term_at(m)) {
                    assert_eq!(a, b, "leader {i}: s{peer} does not match at {m}");
                }
            }
        }
    }

    fn enqueue(&mut self, from: NodeId, to: NodeId, msg: Message<u64>) {
        if !self.linked(from, to) || self.rng.random_bool(self.drop_rate) {
            return;
        }
        let copies = if self.rng.random_bool(self.dup_rate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = self.rng.random_range(self.min_delay..=self.max_delay);
            if let Some((p, lo, hi)) = self.long_delay {
                if self.rng.random_bool(p) {
                    delay += self.rng.random_range(lo..=hi);
                }
            }
            self.seq += 1;
            self.queue
                .insert((self.now + delay, self.seq), (from, to, msg.clone()));
        }
    }

    fn apply(&mut self, i: NodeId, a: Apply<u64>) {
        let svc = &mut self.services[i];
        match a {
            Apply::Command { index, command, .. } => {
                assert_eq!(index, svc.applied + 1, "node {i}: gap or repeat in applies");
                svc.applied = index;
                svc.hash = svc.hash.wrapping_mul(1_000_003).wrapping_add(command);
            }
            Apply::Snapshot { snapshot } => {
                let s = Service::decode(&snapshot.data);
                assert_eq!(s.applied, snapshot.last_included_index);
                assert!(
                    s.applied > svc.applied,
                    "node {i}: snapshot moves applies backwards"
                );
                *svc = s;
            }
        }
        let svc = *svc;
        let seen = *self.committed.entry(svc.applied).or_insert((svc.hash, 0));
        assert_eq!(
            seen.0, svc.hash,
            "node {i}: state diverged at {}",
            svc.applied
        );
        if let Some(k) = self.snapshot_every {
            if svc.applied.is_multiple_of(k) {
                self.nodes[i].snapshot(svc.applied, svc.encode());
            }
        }
    }

    /// Durable state equals the node's in-memory persistent state.
    pub fn check_storage(&self, i: NodeId) {
        let (n, s) = (&self.nodes[i], &self.storages[i]);
        assert_eq!(s.current_term, n.current_term());
        assert_eq!(s.voted_for, n.voted_for());
        assert_eq!(s.snapshot.as_ref(), n.log().snapshot());
        assert!(
            s.entries.iter().eq(n.log().iter()),
            "node {i}: storage log differs"
        );
    }

    /// Process the next event no later than `until`; false if none.
    pub fn step(&mut self, until: u64) -> bool {
        let next_msg = self.queue.keys().next().map(|k| k.0);
        let next_tick = (0..self.nodes.len())
            .filter(|i| self.up[*i])
            .map(|i| self.nodes[i].next_deadline())
            .min();
        let t = match (next_msg, next_tick) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(u64::MAX),
        };
        if t > until {
            self.now = until;
            return false;
        }
        self.now = self.now.max(t);
        if next_msg == Some(t) {
            let (_, (from, to, msg)) = self.queue.pop_first().unwrap();
            if self.linked(from, to) {
                let now = self.now;
                self.nodes[to].handle_message(now, &mut self.rng, from, msg);
                self.process(to);
            }
        } else {
            for i in 0..self.nodes.len() {
                if self.up[i] && self.nodes[i].next_deadline() <= self.now {
                    let now = self.now;
                    self.nodes[i].tick(now, &mut self.rng);
                    self.process(i);
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
    pub fn run_until(&mut self, duration: u64, pred: impl Fn(&Cluster) -> bool) -> bool {
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

    pub fn leaders(&self) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|i| self.up[*i] && self.nodes[*i].is_leader())
            .collect()
    }

    pub fn start(&mut self, i: NodeId, cmd: u64) -> Option<(u64, u64)> {
        let now = self.now;
        let r = self.nodes[i].start(now, &mut self.rng, cmd);
        self.process(i);
        r
    }

    /// Like the lab's `one()`: submit via whichever node leads, until `cmd`
    /// is applied at its index on at least `expected` nodes. Returns the index.
    pub fn one(&mut self, cmd: u64, expected: usize) -> u64 {
        let deadline = self.now + 10_000_000;
        let n = self.nodes.len();
        let mut first = 0;
        while self.now < deadline {
            first = (first + 1) % n;
            for i in (0..n).map(|k| (first + k) % n) {
                if !self.up[i] {
                    continue;
                }
                if let Some((index, _)) = self.start(i, cmd) {
                    let ok = self.run_until(2_000_000, |c| {
                        let n = (0..c.nodes.len())
                            .filter(|j| {
                                c.nodes[*j].last_applied() >= index
                                    && c.nodes[*j].term_at(index).is_none_or(|_| {
                                        c.nodes[*j].entry(index).is_none_or(|e| e.command == cmd)
                                    })
                            })
                            .count();
                        n >= expected
                    });
                    if ok && self.committed_cmd(index) == Some(cmd) {
                        return index;
                    }
                    break;
                }
            }
            self.run_for(50_000);
        }
        panic!("one({cmd}) failed to reach agreement");
    }

    /// The command committed at `index`, as seen in any node's log.
    pub fn committed_cmd(&self, index: u64) -> Option<u64> {
        self.nodes
            .iter()
            .filter(|n| n.commit_index() >= index)
            .find_map(|n| n.entry(index).map(|e| e.command))
    }

    pub fn crash(&mut self, i: NodeId) {
        self.up[i] = false;
    }

    /// Restart node `i` from its durable storage; its service starts empty.
    pub fn restart(&mut self, i: NodeId) {
        let now = self.now;
        let config = self.configs[i].clone();
        self.nodes[i] = Raft::new(config, &self.storages[i], now, &mut self.rng);
        self.services[i] = Service::default();
        self.up[i] = true;
        self.process(i);
    }
}

/// Node 0 of an `n`-node cluster, restarted from `storage`, made leader of
/// the next term by timing out and receiving votes from a majority. Its
/// Ready is drained.
pub(crate) fn make_leader(n: usize, storage: &Storage<u64>, rng: &mut ChaCha8Rng) -> Raft<u64> {
    make_leader_with(cfg(0, n), storage, rng)
}

/// [`make_leader`] for node `config.id` with this configuration (its bugs, say); the
/// votes come from the other members of `config.peers`.
pub(crate) fn make_leader_with(
    config: Config,
    storage: &Storage<u64>,
    rng: &mut ChaCha8Rng,
) -> Raft<u64> {
    let others: Vec<NodeId> = config
        .peers
        .iter()
        .copied()
        .filter(|p| *p != config.id)
        .collect();
    let mut r = Raft::new(config, storage, 0, rng);
    let t = r.next_deadline();
    r.tick(t, rng);
    let term = r.current_term();
    for peer in others {
        if r.is_leader() {
            break;
        }
        r.handle_message(
            t,
            rng,
            peer,
            Message::RequestVoteReply {
                term,
                request_term: term,
                vote_granted: true,
            },
        );
    }
    assert!(r.is_leader());
    r.take_ready();
    r
}

/// A storage holding `current_term` and entries with the given terms (commands = index * 100).
pub(crate) fn storage_with(current_term: u64, terms: &[u64]) -> Storage<u64> {
    let mut s = Storage::default();
    s.apply(&crate::StorageOp::HardState {
        current_term,
        voted_for: None,
    });
    let entries = terms
        .iter()
        .enumerate()
        .map(|(i, t)| crate::Entry {
            index: i as u64 + 1,
            term: *t,
            command: (i as u64 + 1) * 100,
        })
        .collect();
    s.apply(&crate::StorageOp::Append { entries });
    s
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::Cluster;

    #[test]
    fn message_counts_failure_free() {
        for seed in 0..5 {
            let mut c = Cluster::new(3, 300 + seed);
            assert!(c.run_until(5_000_000, |c| c.leaders().len() == 1));
            c.run_for(50_000);
            assert!(
                c.total_sent() <= 30,
                "election used {} messages",
                c.total_sent()
            );

            let rpcs0 = c.rpcs_sent();
            let total0 = c.total_sent();
            for k in 0..10 {
                c.one(k, 3);
            }
            let rpcs = c.rpcs_sent() - rpcs0;
            assert!(rpcs <= (10 + 1 + 3) * 3, "10 commands used {rpcs} requests");
            assert!(c.total_sent() - total0 <= 2 * (10 + 1 + 3) * 3);

            let total0 = c.total_sent();
            c.run_for(1_000_000);
            let idle = c.total_sent() - total0;
            assert!(idle <= 3 * 20, "idle second used {idle} messages");
            assert!(idle >= 2 * 9, "leader must keep heartbeating");
        }
    }

    /// Random faults: drops, duplicates, reordering, partitions, crashes and
    /// restarts, with snapshots. The harness asserts on every step that
    /// applies are in order without gaps or repeats, that all nodes apply the
    /// same commands, that each term has at most one leader, and that durable
    /// storage mirrors the node's state. After healing, the cluster must agree.
    /// `RAFT_SEED` / `RAFT_FUZZ_SEEDS` select the seed range (default 0..40).
    #[test]
    fn randomized_faults_keep_safety_and_recover() {
        let seeds: u64 = std::env::var("RAFT_FUZZ_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(40);
        for seed in std::env::var("RAFT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)..seeds
        {
            let n = if seed % 2 == 0 { 3 } else { 5 };
            let mut c = Cluster::new(n, 1_000 + seed);
            let harsh = seed % 4 == 3;
            c.drop_rate = if harsh { 0.3 } else { 0.1 };
            c.dup_rate = if harsh { 0.3 } else { 0.1 };
            c.min_delay = 0;
            c.max_delay = if harsh { 300_000 } else { 60_000 };
            c.snapshot_every = match seed % 3 {
                0 => None,
                1 => Some(7),
                _ => Some(2),
            };
            let mut cmd = 0u64;
            for _round in 0..120 {
                // Submit a few commands wherever a leader is.
                for i in 0..n {
                    if c.up[i] && c.nodes[i].is_leader() {
                        for _ in 0..c.rng.random_range(0..4) {
                            cmd += 1;
                            c.start(i, cmd);
                        }
                    }
                }
                match c.rng.random_range(0..10) {
                    0 => {
                        let i = c.rng.random_range(0..n);
                        c.crash(i);
                    }
                    1 => {
                        for l in c.leaders() {
                            c.crash(l);
                        }
                    }
                    2 | 3 => {
                        for i in 0..n {
                            if !c.up[i] {
                                c.restart(i);
                            }
                        }
                    }
                    4 | 5 => {
                        for i in 0..n {
                            c.group[i] = c.rng.random_range(0..2);
                        }
                    }
                    6 => c.group = vec![0; n],
                    _ => {}
                }
                let d = c.rng.random_range(10_000..400_000);
                c.run_for(d);
            }
            // Heal everything; the cluster must converge.
            c.group = vec![0; n];
            c.drop_rate = 0.0;
            c.dup_rate = 0.0;
            c.max_delay = 5_000;
            for i in 0..n {
                if !c.up[i] {
                    c.restart(i);
                }
            }
            let idx = c.one(1_000_000, n);
            c.run_for(2_000_000);
            for i in 0..n {
                assert_eq!(c.nodes[i].last_applied(), idx, "seed {seed} node {i}");
                assert_eq!(c.services[i], c.services[0], "seed {seed} node {i}");
                c.check_storage(i);
                let s = &c.storages[i];
                assert_eq!(s.last_index(), c.nodes[i].last_index());
                let recount: usize = 16 + s.entries.iter().map(|e| e.size_bytes()).sum::<usize>();
                assert_eq!(s.raft_state_size(), recount);
            }
            assert!(!c.leaders_by_term.is_empty());
        }
    }

    #[test]
    fn partitioned_leader_uncommitted_entries_are_replaced_after_heal() {
        for seed in 0..5 {
            let mut c = Cluster::new(5, 500 + seed);
            c.one(1, 5);
            let old = c.leaders()[0];
            let buddy = (old + 1) % 5;
            // Old leader plus one follower in the minority.
            for i in 0..5 {
                c.group[i] = u32::from(i == old || i == buddy);
            }
            for k in 0..50 {
                assert!(c.start(old, 10_000 + k).is_some());
            }
            c.run_for(2_000_000);
            assert_eq!(c.nodes[old].commit_index(), 1, "minority cannot commit");
            assert!(c.nodes[old].is_leader(), "stale leader does not know yet");
            let mut new_idx = 0;
            for k in 0..30 {
                new_idx = c.one(20_000 + k, 3);
            }
            let new_leader = c.leaders().into_iter().find(|l| *l != old).unwrap();
            assert!(c.nodes[new_leader].current_term() > c.nodes[old].current_term());
            // Heal: the old leader steps down and adopts the majority's log.
            c.group = vec![0; 5];
            let last = c.one(99, 5);
            assert_eq!(last, new_idx + 1);
            assert!(!c.nodes[old].is_leader());
            for i in 0..5 {
                assert!(c.nodes[i]
                    .log()
                    .iter()
                    .all(|e| e.command < 10_000 || e.command >= 20_000 || e.command == 99));
                assert_eq!(c.nodes[i].last_index(), last);
            }
        }
    }
}
