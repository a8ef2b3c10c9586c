//! Replica agreement for the KV service: servers that applied the same log prefix hold the
//! same service state (key/value map and duplicate table). Also the 64-bit identity of a KV
//! command that the Raft safety checker compares log entries by.

use super::node::{KvActor, KvObs};
use crate::steps::Flow;
use kv::{KvCommand, Op};
use sim::network::ms_to_us;
use sim::{Checker, Failure, NodeId, Time, World};
use std::collections::BTreeMap;

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn str(&mut self, s: &str) {
        self.bytes(&(s.len() as u64).to_le_bytes());
        self.bytes(s.as_bytes());
    }
}

/// The identity of a log entry's command: equal commands, equal identities; different ones
/// differ (up to 64-bit hash collisions).
pub fn command_id(cmd: &KvCommand) -> u64 {
    op_id(cmd.client, cmd.seq, &cmd.op)
}

/// [`command_id`] of the command `client`'s request `seq` made of `op`.
pub fn op_id(client: u64, seq: u64, op: &Op) -> u64 {
    let mut h = Fnv::new();
    h.bytes(&client.to_le_bytes());
    h.bytes(&seq.to_le_bytes());
    match op {
        Op::Get { key } => {
            h.bytes(b"g");
            h.str(key);
        }
        Op::Put { key, value } => {
            h.bytes(b"p");
            h.str(key);
            h.str(value);
        }
        Op::Append { key, value } => {
            h.bytes(b"a");
            h.str(key);
            h.str(value);
        }
    }
    h.0
}

/// **Replica agreement**: any two servers that applied log index `i` (one by one, or by
/// restoring a snapshot through `i`) hold the same service state there, duplicate table
/// included. The Raft paper's premise (§2): "State machines on a collection of servers
/// compute identical copies of the same state"; with State Machine Safety (the same entry at
/// every index) and a deterministic service, the states after each index must be equal.
/// States are compared by the digest the servers keep (`kv::KvStore::digest`).
pub struct ReplicaAgreement {
    servers: usize,
    /// Index → (first server that reached it, its state digest there).
    states: BTreeMap<u64, (NodeId, u64)>,
}

impl ReplicaAgreement {
    /// A checker for servers `0..servers` (clients are ignored).
    pub fn new(servers: usize) -> Self {
        ReplicaAgreement {
            servers,
            states: BTreeMap::new(),
        }
    }

    /// Server `node` holds state `state` after log index `index`.
    pub fn reached(&mut self, node: NodeId, index: u64, state: u64) -> Result<(), Failure> {
        if node >= self.servers {
            return Ok(());
        }
        match self.states.get(&index) {
            Some(&(first, s)) if s != state => Err(Failure::new(
                "replica agreement",
                vec![first, node],
                format!(
                    "s{node}'s service state after index {index} (digest {state:#018x}) differs from s{first}'s there ({s:#018x})"
                ),
            )),
            Some(_) => Ok(()),
            None => {
                self.states.insert(index, (node, state));
                Ok(())
            }
        }
    }
}

impl Checker<KvActor> for ReplicaAgreement {
    fn name(&self) -> &'static str {
        "replica agreement"
    }

    fn on_observation(&mut self, _now: Time, node: NodeId, obs: &KvObs) -> Result<(), Failure> {
        match obs {
            KvObs::Applied { index, state, .. } | KvObs::Restored { index, state, .. } => {
                self.reached(node, *index, *state)
            }
            _ => Ok(()),
        }
    }
}

/// For `kv_check_replicas`: `Ok(None)` when every server has caught up with the leader (the
/// up, connected server leading the highest term): applied at least through the leader's
/// commit index, with the leader's state there (a server that applied further, having learned
/// more than a new leader, was compared online when it applied). `Ok(Some(why))` while not;
/// a scenario failure when a server is down or cut off (the step is for healed ends).
pub fn lagging(world: &World<KvActor>, servers: usize) -> Result<Option<String>, Failure> {
    if let Some(i) = (0..servers).find(|&i| !world.is_up(i)) {
        return Err(scenario(format!("s{i} is down")));
    }
    for i in 0..servers {
        if let Some(j) = (0..servers).find(|&j| !world.connected(i, j)) {
            return Err(scenario(format!("s{i} cannot reach s{j}")));
        }
    }
    let live = |i: NodeId| world.node(i).and_then(KvActor::server);
    let leader = (0..servers)
        .filter_map(|i| live(i).map(|s| (i, s)))
        .filter(|(_, s)| s.raft().is_leader())
        .max_by_key(|(_, s)| s.raft().current_term());
    let Some((l, leader)) = leader else {
        return Ok(Some("no server leads".into()));
    };
    let commit = leader.raft().commit_index();
    debug_assert_eq!(
        leader.applied_index(),
        commit,
        "a server applies what it commits"
    );
    for i in 0..servers {
        let Some(s) = live(i) else { continue };
        let applied = s.applied_index();
        if applied < commit {
            return Ok(Some(format!(
                "s{i} applied through index {applied}, leader s{l} committed {commit}"
            )));
        }
        if applied == commit && s.state_digest() != leader.state_digest() {
            return Ok(Some(format!(
                "s{i}'s service state after index {applied} differs from leader s{l}'s"
            )));
        }
    }
    Ok(None)
}

/// One poll of `kv_check_replicas`, `waited` µs after it began.
pub(super) fn check_step(
    world: &mut World<KvActor>,
    servers: usize,
    waited: Time,
    within_ms: f64,
) -> Flow {
    match lagging(world, servers) {
        Err(f) => Flow::Fail(f),
        Ok(None) => {
            world.note(|| "every server caught up with the leader".into());
            Flow::Next
        }
        Ok(Some(why)) if waited >= ms_to_us(within_ms) => Flow::Fail(Failure::new(
            "replicas caught up",
            vec![],
            format!("after {within_ms} ms: {why}"),
        )),
        Ok(Some(_)) => Flow::Wait(10_000),
    }
}

fn scenario(why: String) -> Failure {
    Failure::new(
        "scenario",
        vec![],
        format!("kv_check_replicas: {why} (restart, connect and heal every server first)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_ids_tell_commands_apart() {
        let c = |client, seq, op| command_id(&KvCommand { client, seq, op });
        let a = c(1, 2, Op::append("k", "v"));
        assert_eq!(a, c(1, 2, Op::append("k", "v")));
        for other in [
            c(1, 2, Op::put("k", "v")),
            c(1, 3, Op::append("k", "v")),
            c(2, 2, Op::append("k", "v")),
            c(1, 2, Op::append("kv", "")),
            c(1, 2, Op::get("k")),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn replicas_must_agree_at_each_index() {
        let mut r = ReplicaAgreement::new(3);
        r.reached(0, 1, 10).unwrap();
        r.reached(1, 1, 10).unwrap();
        r.reached(1, 2, 20).unwrap();
        r.reached(5, 2, 99).unwrap(); // a client: ignored
        let e = r.reached(2, 2, 21).unwrap_err();
        assert_eq!(e.property, "replica agreement");
        assert_eq!(e.nodes, vec![1, 2]);
    }
}
