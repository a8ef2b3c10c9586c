//! Runs a scenario: builds the engine configuration, wires the system's nodes, harness and
//! checkers, and collects the outcome. Also replays traces of any system.

use crate::kv::node::{KvActor, KvNodeConfig};
use crate::kv::replicas::ReplicaAgreement;
use crate::kv::tester::KvTester;
use crate::raft::checks::RaftSafety;
use crate::raft::node::{RaftNode, RaftNodeConfig};
use crate::raft::tester::RaftTester;
use crate::scenario::{ReadSetting, Scenario, SystemKind};
use crate::steps::Machine;
use serde_json::{json, Value};
use sim::example::{PingNode, PingPongConfig, PongCountChecker, PongHarness};
use sim::replay::{replay_stream, Divergence, ReplaySummary};
use sim::rng::{stream, Purpose};
use sim::trace::{Record, TraceReader, TraceSink, FORMAT_VERSION};
use sim::{ms_to_us, Checker, Harness, Node, NodeSpec, RunResult, Sim, SimConfig};
use std::io::{BufRead, Write};

/// What one run produced.
pub struct Outcome {
    pub result: RunResult,
    /// Names of the checks that ran.
    pub checks: Vec<String>,
    /// Settings the seed drew (fault schedule size, swarm settings).
    pub drawn: Value,
}

/// The node table: servers `s0..`, then clients `c0..`.
pub fn node_specs(sc: &Scenario) -> Vec<NodeSpec> {
    let servers = (0..sc.servers).map(|i| NodeSpec {
        name: format!("s{i}"),
        client: false,
        clock: Default::default(),
    });
    let clients = (0..sc.clients).map(|i| NodeSpec {
        name: format!("c{i}"),
        client: true,
        clock: Default::default(),
    });
    servers.chain(clients).collect()
}

/// The engine configuration for `sc` and `seed`, and what the seed drew.
pub fn sim_config(sc: &Scenario, seed: u64) -> (SimConfig, Value) {
    let mut faults = sc.scheduled_faults();
    let mut drawn = json!({});
    let mut reactive = None;
    if let Some(profile) = &sc.faults.random {
        let servers: Vec<usize> = (0..sc.servers).collect();
        let random = profile.draw(&servers, &mut stream(seed, Purpose::Faults));
        drawn["random_faults"] = json!(random.len());
        faults.extend(random);
    }
    if let Some(profile) = &sc.faults.swarm {
        let servers: Vec<usize> = (0..sc.servers).collect();
        let d = profile.draw_all(
            &sc.network,
            &servers,
            &mut stream(seed, Purpose::Swarm),
            &mut stream(seed, Purpose::SwarmFaults),
        );
        drawn["swarm"] = d.drawn;
        faults.extend(d.faults);
        reactive = d.reactive;
    }
    let knobs = match sc.system {
        SystemKind::Raft => sc.raft.as_ref().and_then(|r| r.swarm.as_ref()),
        SystemKind::Kv => sc.kv.as_ref().and_then(|k| k.swarm.as_ref()),
        SystemKind::Pingpong => None,
    };
    if let Some(t) = knobs.map(|k| k.draw(seed)) {
        let mut settings = json!({
            "election_timeout_ms": t.election_timeout_ms,
            "heartbeat_ms": t.heartbeat_ms,
        });
        if let Some(n) = t.snapshot_every {
            settings["snapshot_every"] = json!(n);
        }
        if let Some(n) = t.max_entries_per_append {
            settings["max_entries_per_append"] = json!(n);
        }
        drawn["settings"] = settings;
    }
    let mut nodes = node_specs(sc);
    if let Some((jumps, d)) = crate::clocks::draw(sc, seed, &mut nodes) {
        faults.extend(jumps);
        drawn["clocks"] = d;
    }
    // Stable: faults at the same time keep their order (schedule, random, swarm, clocks).
    faults.sort_by_key(|(t, _)| *t);
    if let Some(fixed) = &sc.faults.replace_schedule {
        faults = fixed
            .iter()
            .map(|sf| (ms_to_us(sf.at_ms), sf.fault.clone()))
            .collect();
        faults.sort_by_key(|(t, _)| *t);
        drawn["replaced_schedule"] = json!(faults.len());
    }
    let cfg = SimConfig {
        seed,
        nodes,
        network: sc.network.clone(),
        deadline: sc.deadline(),
        faults,
        reactive,
        branches: sc.branches.clone(),
    };
    (cfg, drawn)
}

fn raft_config(sc: &Scenario, seed: u64) -> RaftNodeConfig {
    let mut r = sc.raft.clone().unwrap_or_default();
    if let Some(t) = r.swarm.as_ref().map(|k| k.draw(seed)) {
        r.election_timeout_ms = t.election_timeout_ms;
        r.heartbeat_ms = t.heartbeat_ms;
        r.snapshot_every = t.snapshot_every.or(r.snapshot_every);
        r.max_entries_per_append = t.max_entries_per_append.unwrap_or(r.max_entries_per_append);
    }
    RaftNodeConfig {
        servers: sc.servers,
        election_timeout_us: (
            ms_to_us(r.election_timeout_ms[0]),
            ms_to_us(r.election_timeout_ms[1]),
        ),
        heartbeat_us: ms_to_us(r.heartbeat_ms),
        max_entries_per_append: r.max_entries_per_append,
        snapshot_every: r.snapshot_every,
        pre_vote: r.pre_vote,
        check_quorum: r.check_quorum,
        bugs: bug_switches(sc).0,
    }
}

/// The Raft and KV switches of the scenario's `bugs` (validated when the file was read).
fn bug_switches(sc: &Scenario) -> (raft::Bugs, kv::Bugs) {
    crate::catalog::switches(&sc.bugs).expect("bug ids are validated with the scenario")
}

fn kv_config(sc: &Scenario, seed: u64) -> KvNodeConfig {
    let mut k = sc.kv.clone().unwrap_or_default();
    if let Some(t) = k.swarm.as_ref().map(|k| k.draw(seed)) {
        k.election_timeout_ms = t.election_timeout_ms;
        k.heartbeat_ms = t.heartbeat_ms;
    }
    KvNodeConfig {
        servers: sc.servers,
        election_timeout_us: (
            ms_to_us(k.election_timeout_ms[0]),
            ms_to_us(k.election_timeout_ms[1]),
        ),
        heartbeat_us: ms_to_us(k.heartbeat_ms),
        maxraftstate: usize::try_from(k.maxraftstate).ok(),
        retry_timeout_us: ms_to_us(k.retry_timeout_ms),
        pre_vote: k.pre_vote,
        check_quorum: k.check_quorum,
        read_mode: match k.read {
            ReadSetting::Log => kv::ReadMode::Log,
            ReadSetting::ReadIndex => kv::ReadMode::ReadIndex,
            ReadSetting::Lease => kv::ReadMode::Lease,
        },
        max_drift_ppm: k.max_drift_ppm,
        raft_bugs: bug_switches(sc).0,
        bugs: bug_switches(sc).1,
    }
}

fn pingpong_config(sc: &Scenario) -> PingPongConfig {
    let pp = sc.pingpong.as_ref().expect("validated");
    PingPongConfig {
        nodes: sc.nodes(),
        interval_us: ms_to_us(pp.interval_ms),
        bug: pp.bug,
        panic_at_pong: pp.panic_at_pong,
    }
}

/// Runs `sc` with `seed`; writes a trace to `trace` if given. `source` names the file.
///
/// Never panics: the engine turns panics of nodes, harness and checkers into "panic"
/// violations, and a panic while setting the run up becomes one here too (its trace, if any,
/// then has no result record).
pub fn run_scenario(
    sc: &Scenario,
    seed: u64,
    source: &str,
    trace: Option<Box<dyn Write>>,
) -> Result<Outcome, String> {
    run_traced(sc, seed, source, trace.map(TraceSink::new))
}

/// Like [`run_scenario`], writing the trace to `sink` (e.g. a compressed one).
pub fn run_traced(
    sc: &Scenario,
    seed: u64,
    source: &str,
    trace: Option<TraceSink>,
) -> Result<Outcome, String> {
    sim::panics::catch(|| run_unguarded(sc, seed, source, trace)).unwrap_or_else(|panic| {
        let violation = sim::Violation {
            failure: sim::Failure::new("panic", vec![], format!("setting up the run {panic}")),
            time: 0,
            event: 0,
            panic: Some(panic),
        };
        Ok(Outcome {
            result: RunResult {
                seed,
                verdict: sim::Verdict::Violation,
                violation: Some(violation),
                unknown: vec![],
                also: vec![],
                end_time: 0,
                stats: Default::default(),
                marks: vec![],
                reactive_faults: vec![],
            },
            checks: vec![],
            drawn: Value::Null,
        })
    })
}

fn run_unguarded(
    sc: &Scenario,
    seed: u64,
    source: &str,
    trace: Option<TraceSink>,
) -> Result<Outcome, String> {
    match sc.system {
        SystemKind::Pingpong => execute::<PingNode, _>(
            sc,
            seed,
            source,
            trace,
            pingpong_config(sc),
            PongHarness,
            vec![Box::new(PongCountChecker::with_budget(
                sc.pingpong.as_ref().and_then(|p| p.check_budget),
            ))],
        ),
        SystemKind::Raft => {
            let max_state = sc.raft.as_ref().and_then(|r| r.max_raft_state_bytes);
            let tester = RaftTester::new(sc.servers, max_state);
            execute::<RaftNode, _>(
                sc,
                seed,
                source,
                trace,
                raft_config(sc, seed),
                Machine::new(tester, sc.steps.clone(), sc.servers),
                vec![Box::new(RaftSafety::new(sc.servers))],
            )
        }
        SystemKind::Kv => {
            let lin = sc.kv.as_ref().is_none_or(|k| k.linearizability);
            let tester = KvTester::new(sc.servers, sc.clients, lin);
            execute::<KvActor, _>(
                sc,
                seed,
                source,
                trace,
                kv_config(sc, seed),
                Machine::new(tester, sc.steps.clone(), sc.servers),
                vec![
                    Box::new(RaftSafety::new(sc.servers)),
                    Box::new(ReplicaAgreement::new(sc.servers)),
                ],
            )
        }
    }
}

fn execute<N: Node, H: Harness<N>>(
    sc: &Scenario,
    seed: u64,
    source: &str,
    trace: Option<TraceSink>,
    node_config: N::Config,
    harness: H,
    checkers: Vec<Box<dyn Checker<N>>>,
) -> Result<Outcome, String> {
    let (cfg, drawn) = sim_config(sc, seed);
    let header = Record::Header {
        format: FORMAT_VERSION,
        seed,
        scenario: serde_json::to_value(sc).expect("a scenario serializes"),
        source: source.to_string(),
        nodes: cfg.nodes.clone(),
        network: cfg.network.clone(),
        drawn: drawn.clone(),
    };
    let mut sim = Sim::new(cfg, node_config, harness);
    let mut checks: Vec<String> = checkers.iter().map(|c| c.name().to_string()).collect();
    checks.push("harness expectations".into());
    for c in checkers {
        sim.add_checker(c);
    }
    if let Some(sink) = trace {
        sim.set_trace(sink, header);
    }
    let (result, _harness, io) = sim.run();
    io.map_err(|e| format!("writing the trace failed: {e}"))?;
    Ok(Outcome {
        result,
        checks,
        drawn,
    })
}

/// Replays a trace, as it is read, with the nodes of the system its header names.
/// Outer error: the trace's scenario is unusable, or the trace cannot be read (the error names
/// the line); inner: the replay diverged.
pub fn replay_trace<R: BufRead>(
    trace: &mut TraceReader<R>,
) -> Result<Result<ReplaySummary, Box<Divergence>>, String> {
    let (seed, scenario, _, nodes) = trace.header();
    let sc: Scenario = serde_json::from_value(scenario.clone())
        .map_err(|e| format!("line 1: the header's scenario is not valid: {e}"))?;
    sc.validate()
        .map_err(|(place, problem)| format!("line 1: scenario.{place}: {problem}"))?;
    if nodes.len() != sc.nodes() {
        return Err(format!(
            "line 1: the header lists {} nodes but its scenario has {}",
            nodes.len(),
            sc.nodes()
        ));
    }
    match sc.system {
        SystemKind::Pingpong => replay_stream::<PingNode, R>(&pingpong_config(&sc), trace),
        SystemKind::Raft => replay_stream::<RaftNode, R>(&raft_config(&sc, seed), trace),
        SystemKind::Kv => replay_stream::<KvActor, R>(&kv_config(&sc, seed), trace),
    }
}
