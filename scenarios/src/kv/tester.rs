//! The 6.824 KV tester's steps (GenericTest clients, single operations, appends and size
//! checks) and the end-of-run linearizability check, over [`KvActor`] nodes.

use super::node::{KvActor, KvInput, KvObs};
use crate::steps::spec::{describe, Expr, KvOpKind, Step};
use crate::steps::{Env, Flow, System};
use kv::model::{KvModel, KvOutput};
use kv::Op;
use rand::Rng;
use sim::linearizability::{check_with, Budget, CheckOptions, Operation, Verdict};
use sim::network::ms_to_us;
use sim::{Failure, NodeId, Time, World};
use std::collections::BTreeMap;

/// Search steps the end-of-run linearizability check may take: deterministic, so a run's
/// verdict never depends on the machine. Running out gives "unknown", noted in the trace.
pub const LINEARIZABILITY_STEPS: u64 = 500_000;

/// One client of the GenericTest loop.
#[derive(Clone, Debug, Default)]
struct ClientLoop {
    key: String,
    /// What the client's key should hold (without random keys).
    last: String,
    next: u64,
    /// Compare the loop's Gets with `last` (its own key, no random keys).
    expect: bool,
    /// The client's outstanding operation is one of this loop's: compare it when it
    /// completes, even after `kv_clients_stop`.
    in_flight: bool,
    /// A new round started while that operation was outstanding: start over after it.
    restart: bool,
}

impl ClientLoop {
    /// A new round of client `c`'s loop: its key, emptied by the first operation.
    fn round(c: usize, random_keys: bool) -> Self {
        ClientLoop {
            key: c.to_string(),
            expect: !random_keys,
            ..ClientLoop::default()
        }
    }
}

/// One client operation: client node, call time, op, and (return time, Get result) once done.
type Call = (NodeId, Time, Op, Option<(Time, Option<String>)>);

/// State of a KV step that waits.
pub enum KvState {
    Waiting {
        t0: Time,
    },
    /// kv_check_appends: keys still to read, the one being read (by which client), since when.
    Reading {
        t0: Time,
        keys: Vec<String>,
        current: Option<(String, usize)>,
    },
    /// kv_leader's round.
    LeaderRound(u32),
}

/// The KV tester.
pub struct KvTester {
    servers: usize,
    clients: usize,
    looping: bool,
    random_keys: bool,
    loops: Vec<ClientLoop>,
    /// Client operations: (client node, call time, op, return time and result).
    history: Vec<Call>,
    open: BTreeMap<NodeId, usize>,
    /// The last completed result per client (for kv_wait / kv_op expectations).
    results: BTreeMap<NodeId, Option<String>>,
    /// Appends completed since `kv_clients_start`: key → client → values in order.
    appended: BTreeMap<String, BTreeMap<usize, Vec<String>>>,
    check_linearizability: bool,
}

impl KvTester {
    /// A tester for `servers` servers and `clients` clients (nodes after the servers).
    pub fn new(servers: usize, clients: usize, check_linearizability: bool) -> Self {
        KvTester {
            servers,
            clients,
            looping: false,
            random_keys: false,
            loops: vec![ClientLoop::default(); clients],
            history: Vec::new(),
            open: BTreeMap::new(),
            results: BTreeMap::new(),
            appended: BTreeMap::new(),
            check_linearizability,
        }
    }

    fn busy(&self, world: &World<KvActor>, node: NodeId) -> bool {
        world.node(node).is_some_and(KvActor::busy)
    }

    /// The GenericTest client's next operation.
    fn next_op(&mut self, world: &mut World<KvActor>, c: usize) -> Op {
        let n = self.clients;
        let lp = &mut self.loops[c];
        let x: u32 = world.rng().random_range(0..1000);
        if self.random_keys {
            let key = world.rng().random_range(0..n).to_string();
            if x < 500 {
                lp.next += 1;
                Op::append(key, format!("x {c} {} y", lp.next - 1))
            } else if x < 550 {
                Op::put(
                    key,
                    format!("{c}-{}", world.rng().random_range(0..1_000_000u32)),
                )
            } else {
                Op::get(key)
            }
        } else if x < 500 {
            lp.next += 1;
            Op::append(lp.key.clone(), format!("x {c} {} y", lp.next - 1))
        } else {
            Op::get(lp.key.clone())
        }
    }

    fn invoke(&mut self, world: &mut World<KvActor>, c: usize, op: Op) -> Result<(), Failure> {
        match world.input(self.servers + c, KvInput::Invoke(op)) {
            Some(Some(_)) => Ok(()),
            _ => Err(Failure::new(
                "scenario",
                vec![self.servers + c],
                format!("client {c} is busy or down"),
            )),
        }
    }

    fn client(
        &self,
        env: &mut Env<'_>,
        world: &mut World<KvActor>,
        e: &Expr,
    ) -> Result<usize, Failure> {
        let c = env.eval(world, e)?;
        usize::try_from(c)
            .ok()
            .filter(|c| *c < self.clients)
            .ok_or_else(|| {
                Failure::new(
                    "scenario",
                    vec![],
                    format!(
                        "client {c} does not exist (the scenario has {})",
                        self.clients
                    ),
                )
            })
    }
}

/// `{$name}` in a template becomes the variable's value.
fn fill(env: &mut Env<'_>, world: &mut World<KvActor>, template: &str) -> Result<String, Failure> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{$") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map(|e| start + e).ok_or_else(|| {
            Failure::new("scenario", vec![], format!("unclosed {{$ in {template:?}"))
        })?;
        let v = env.eval(world, &Expr::Name(rest[start + 1..end].to_string()))?;
        out.push_str(&v.to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Each client's appends to `key` appear in `value` exactly once, in its order.
fn check_appends(
    key: &str,
    value: &str,
    by_client: &BTreeMap<usize, Vec<String>>,
    servers: usize,
) -> Result<(), Failure> {
    for (c, appends) in by_client {
        let mut from = 0;
        for a in appends {
            let hits = value.matches(a.as_str()).count();
            if hits != 1 {
                return Err(Failure::new(
                    "appends exactly once",
                    vec![servers + c],
                    format!(
                        "client {c}'s append {a:?} appears {hits} times in key {key:?} = {value:?}"
                    ),
                ));
            }
            let at = value.find(a.as_str()).expect("counted once");
            if at < from {
                return Err(Failure::new(
                    "appends in order",
                    vec![servers + c],
                    format!("client {c}'s append {a:?} is out of order in key {key:?} = {value:?}"),
                ));
            }
            from = at;
        }
    }
    Ok(())
}

fn fail(property: &str, detail: String) -> Flow {
    Flow::Fail(Failure::new(property, vec![], detail))
}

impl System<KvActor> for KvTester {
    type State = KvState;

    fn exec(
        &mut self,
        world: &mut World<KvActor>,
        env: &mut Env<'_>,
        step: &Step,
        state: &mut Option<KvState>,
    ) -> Flow {
        macro_rules! tryf {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(f) => return Flow::Fail(f),
                }
            };
        }
        let now = world.now();
        match step {
            Step::KvClientsStart(start) => {
                self.looping = true;
                self.appended.clear();
                self.random_keys = start.random_keys;
                for c in 0..self.clients {
                    if self.busy(world, self.servers + c) {
                        // Still finishing an earlier op: compare it, then start the round.
                        self.loops[c].restart = true;
                        continue;
                    }
                    self.loops[c] = ClientLoop::round(c, self.random_keys);
                    let key = self.loops[c].key.clone();
                    tryf!(self.invoke(world, c, Op::put(key, "")));
                    self.loops[c].in_flight = true;
                }
                Flow::Next
            }
            Step::KvClientsStop {} => {
                self.looping = false;
                Flow::Next
            }
            Step::KvClientsWait(w) => {
                let t0 = match state {
                    Some(KvState::Waiting { t0 }) => *t0,
                    _ => {
                        *state = Some(KvState::Waiting { t0: now });
                        now
                    }
                };
                let busy: Vec<usize> = (0..self.clients)
                    .filter(|&c| self.busy(world, self.servers + c))
                    .collect();
                if busy.is_empty() {
                    return Flow::Next;
                }
                if now - t0 >= ms_to_us(w.within_ms) {
                    return fail(
                        "liveness",
                        format!(
                            "clients {busy:?} did not complete their operations within {} ms",
                            w.within_ms
                        ),
                    );
                }
                Flow::Wait(10_000)
            }
            Step::KvCheckAppends(w) => {
                if state.is_none() {
                    let keys: Vec<String> = self.appended.keys().cloned().collect();
                    *state = Some(KvState::Reading {
                        t0: now,
                        keys,
                        current: None,
                    });
                }
                let Some(KvState::Reading { t0, keys, current }) = state else {
                    unreachable!()
                };
                if now - *t0 >= ms_to_us(w.within_ms) {
                    return fail(
                        "liveness",
                        format!("the final Gets did not complete within {} ms", w.within_ms),
                    );
                }
                loop {
                    if let Some((key, c)) = current.clone() {
                        if self.busy(world, self.servers + c) {
                            return Flow::Wait(10_000);
                        }
                        let value = self
                            .results
                            .get(&(self.servers + c))
                            .cloned()
                            .flatten()
                            .unwrap_or_default();
                        if let Err(f) =
                            check_appends(&key, &value, &self.appended[&key], self.servers)
                        {
                            return Flow::Fail(f);
                        }
                        *current = None;
                    }
                    let Some(key) = keys.pop() else {
                        let n = self.appended.len();
                        world.note(|| format!("appends to {n} keys present once each, in order"));
                        return Flow::Next;
                    };
                    let reader = *self.appended[&key]
                        .keys()
                        .next()
                        .expect("a key has appends");
                    if self.busy(world, self.servers + reader) {
                        return fail("scenario", format!("kv_check_appends: client {reader} is still busy (stop and wait for the clients first)"));
                    }
                    tryf!(self.invoke(world, reader, Op::get(key.clone())));
                    *current = Some((key, reader));
                }
            }
            Step::KvLeader(store) => {
                let round = match state {
                    Some(KvState::LeaderRound(r)) => r,
                    _ => {
                        *state = Some(KvState::LeaderRound(0));
                        return Flow::Wait(world.rng().random_range(450_000..550_000));
                    }
                };
                let mut best: Option<(u64, NodeId)> = None;
                for i in 0..self.servers {
                    let Some(server) = world.node(i).and_then(KvActor::server) else {
                        continue;
                    };
                    if !world.isolated(i) && server.raft().is_leader() {
                        let t = server.raft().current_term();
                        if best.is_none_or(|(bt, _)| t > bt) {
                            best = Some((t, i));
                        }
                    }
                }
                if let Some((_, l)) = best {
                    if let Some(name) = &store.store {
                        env.vars.insert(name.clone(), l as i64);
                    }
                    return Flow::Next;
                }
                *round += 1;
                if *round >= 10 {
                    return fail(
                        "one leader",
                        "expected a KV leader, got none after 10 rounds".into(),
                    );
                }
                Flow::Wait(world.rng().random_range(450_000..550_000))
            }
            Step::KvOp(op) => {
                let c = tryf!(self.client(env, world, &op.client));
                if state.is_none() {
                    let key = tryf!(fill(env, world, &op.key));
                    let value = tryf!(fill(env, world, &op.value));
                    let kv_op = match op.op {
                        KvOpKind::Get => Op::get(key),
                        KvOpKind::Put => Op::put(key, value),
                        KvOpKind::Append => Op::append(key, value),
                    };
                    tryf!(self.invoke(world, c, kv_op));
                    if !op.wait {
                        return Flow::Next;
                    }
                    *state = Some(KvState::Waiting { t0: now });
                }
                let Some(KvState::Waiting { t0 }) = state else {
                    unreachable!()
                };
                self.wait_for(world, env, c, *t0, op.within_ms, op.expect.as_deref())
            }
            Step::KvWait(w) => {
                let c = tryf!(self.client(env, world, &w.client));
                let t0 = match state {
                    Some(KvState::Waiting { t0 }) => *t0,
                    _ => {
                        *state = Some(KvState::Waiting { t0: now });
                        now
                    }
                };
                self.wait_for(world, env, c, t0, w.within_ms, w.expect.as_deref())
            }
            Step::KvExpectPending { client } => {
                let c = tryf!(self.client(env, world, client));
                if !self.busy(world, self.servers + c) {
                    return Flow::Fail(Failure::new("no progress in minority", vec![self.servers + c], format!("client {c}'s operation completed although it can reach only a minority")));
                }
                Flow::Next
            }
            Step::KvCheckReplicas(w) => {
                let t0 = match state {
                    Some(KvState::Waiting { t0 }) => *t0,
                    _ => {
                        *state = Some(KvState::Waiting { t0: now });
                        now
                    }
                };
                super::replicas::check_step(world, self.servers, now - t0, w.within_ms)
            }
            Step::KvCheckSize(sz) => {
                for i in 0..self.servers {
                    let d = world.durable(i).recovered();
                    let raft_state = d.raft_state_size() as u64;
                    let snap = d.snapshot_size() as u64;
                    if let Some(max) = sz.max_raft_state {
                        if raft_state > max {
                            return Flow::Fail(Failure::new("persisted size", vec![i], format!("s{i} persists {raft_state} bytes of Raft state, more than {max}")));
                        }
                    }
                    if let Some(max) = sz.max_snapshot {
                        if snap > max {
                            return Flow::Fail(Failure::new(
                                "snapshot size",
                                vec![i],
                                format!("s{i}'s snapshot is {snap} bytes, more than {max}"),
                            ));
                        }
                    }
                }
                Flow::Next
            }
            other => fail(
                "scenario",
                format!("step {} is not a KV step", describe(other)),
            ),
        }
    }

    fn observe(
        &mut self,
        world: &mut World<KvActor>,
        node: NodeId,
        obs: &KvObs,
    ) -> Result<(), Failure> {
        match obs {
            // A halted server (it lost synced state) serves nothing from what its disk kept.
            KvObs::Log(_) | KvObs::Boot { .. } if !world.node(node).is_some_and(|n| n.halted()) => {
                crate::raft::durable::check_durable_term(node, &world.durable(node).recovered())?;
            }
            // The history feeds only the linearizability check: without it, keeping every
            // call (and every Get's whole value) made a long run's memory grow with its square.
            KvObs::Invoke { op, .. } if self.check_linearizability => {
                self.open.insert(node, self.history.len());
                self.history.push((node, world.now(), op.clone(), None));
            }
            KvObs::Invoke { .. } => {}
            KvObs::Complete { op, result, .. } => {
                if let Some(i) = self.open.remove(&node) {
                    self.history[i].3 = Some((world.now(), result.clone()));
                }
                self.results.insert(node, result.clone());
                let c = node - self.servers;
                let lp = &mut self.loops[c];
                // Every loop operation is compared, also the one that completes after
                // kv_clients_stop (6.824's client goroutine checks its last Get too).
                if std::mem::take(&mut lp.in_flight) && lp.expect {
                    match op {
                        Op::Get { key } if *key == lp.key => {
                            let got = result.clone().unwrap_or_default();
                            if got != lp.last {
                                return Err(Failure::new(
                                    "get returns the latest value",
                                    vec![node],
                                    format!(
                                        "client {c} read {key:?} = {got:?}, expected {:?}",
                                        lp.last
                                    ),
                                ));
                            }
                        }
                        Op::Append { key, value } if *key == lp.key => lp.last.push_str(value),
                        _ => {}
                    }
                }
                if let Op::Append { key, value } = op {
                    self.appended
                        .entry(key.clone())
                        .or_default()
                        .entry(c)
                        .or_default()
                        .push(value.clone());
                }
                if self.looping {
                    let next = if self.loops[c].restart {
                        self.loops[c] = ClientLoop::round(c, self.random_keys);
                        Op::put(self.loops[c].key.clone(), "")
                    } else {
                        self.next_op(world, c)
                    };
                    self.invoke(world, c, next)?;
                    self.loops[c].in_flight = true;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, world: &mut World<KvActor>) -> Result<(), Failure> {
        if !self.check_linearizability || self.history.is_empty() {
            return Ok(());
        }
        let ops: Vec<Operation<kv::model::KvInput, KvOutput>> = self
            .history
            .iter()
            .map(|(node, call, op, ret)| Operation {
                client: *node as u64,
                input: op.to_model_input(),
                output: match ret {
                    None => KvOutput::Unknown,
                    Some((_, Some(v))) => KvOutput::Value(v.clone()),
                    Some((_, None)) => KvOutput::Done,
                },
                call: *call,
                ret: ret.as_ref().map(|(t, _)| *t),
            })
            .collect();
        let report = check_with(
            &KvModel,
            &ops,
            &mut Budget::unlimited().max_steps(LINEARIZABILITY_STEPS),
            CheckOptions::default(),
        );
        match report.verdict {
            Verdict::Linearizable => {
                world.note(|| {
                    format!(
                        "linearizable: {} operations in {} partitions ({} search steps)",
                        report.operations, report.partitions, report.steps
                    )
                });
                Ok(())
            }
            Verdict::Unknown => {
                // Not a pass (6.824 counts it as one, with a warning): the run's verdict is
                // "unknown" unless something else failed.
                let keys: Vec<String> = report
                    .summaries
                    .iter()
                    .filter(|s| s.verdict == Verdict::Unknown)
                    .map(|s| {
                        let key = s.key.as_deref().unwrap_or("");
                        format!("key {key:?} ({} operations)", s.operations)
                    })
                    .collect();
                world.inconclusive(
                    "linearizability",
                    format!(
                        "after {} search steps (the budget is {LINEARIZABILITY_STEPS}), {} of {} operations undecided: {}",
                        report.steps,
                        report.summaries.iter().filter(|s| s.verdict == Verdict::Unknown).map(|s| s.operations).sum::<usize>(),
                        report.operations,
                        keys.join(", ")
                    ),
                );
                Ok(())
            }
            Verdict::NotLinearizable => {
                let json = serde_json::to_string(&report).unwrap_or_default();
                world.note(|| format!("linearizability report: {json}"));
                let first = report.failures.first();
                let key = first.and_then(|f| f.key.clone()).unwrap_or_default();
                Err(Failure::new(
                    "linearizability",
                    vec![],
                    format!("the history of key {key:?} is not linearizable ({} operations on it); run `sim view` on the trace for the intervals", first.map_or(0, |f| f.ops.len())),
                ))
            }
        }
    }
}

impl KvTester {
    fn wait_for(
        &mut self,
        world: &mut World<KvActor>,
        env: &mut Env<'_>,
        c: usize,
        t0: Time,
        within_ms: f64,
        expect: Option<&str>,
    ) -> Flow {
        let node = self.servers + c;
        if self.busy(world, node) {
            if world.now() - t0 >= ms_to_us(within_ms) {
                return Flow::Fail(Failure::new(
                    "progress",
                    vec![node],
                    format!("client {c}'s operation did not complete within {within_ms} ms"),
                ));
            }
            return Flow::Wait(10_000);
        }
        if let Some(expect) = expect {
            let expect = match fill(env, world, expect) {
                Ok(e) => e,
                Err(f) => return Flow::Fail(f),
            };
            let got = self
                .results
                .get(&node)
                .cloned()
                .flatten()
                .unwrap_or_default();
            if got != expect {
                return Flow::Fail(Failure::new(
                    "get returns the latest value",
                    vec![node],
                    format!("client {c} read {got:?}, expected {expect:?}"),
                ));
            }
        }
        Flow::Next
    }
}
