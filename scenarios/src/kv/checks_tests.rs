//! The KV checks on whole runs: replica agreement (online and the final `kv_check_replicas`),
//! and the GenericTest Get check on the operation that completes after `kv_clients_stop`.
//! Each catches a deliberately broken server; the correct one passes.

use crate::kv::node::{KvActor, KvNodeConfig};
use crate::kv::tester::KvTester;
use crate::run::{run_scenario, sim_config};
use crate::scenario::Scenario;
use crate::steps::Machine;
use sim::{ms_to_us, Sim, Violation};

/// GenericTest, one round without faults on 3 servers and 3 clients; `bug` as in scenario files.
fn quiet_round(bug: Option<&str>) -> Scenario {
    let bugs = bug.map_or(String::new(), |b| format!(r#""bugs": ["{b}"],"#));
    let text = format!(
        r#"{{
        "name": "test/quiet-round", "system": "kv", "servers": 3, "clients": 3,
        "duration_ms": 120000, "network": {{"latency_ms": [1, 3]}},
        "kv": {{"maxraftstate": -1, "linearizability": false}}, {bugs}
        "steps": [
            {{"kv_clients_start": {{"random_keys": false}}}},
            {{"sleep_ms": 2000}},
            {{"kv_clients_stop": {{}}}},
            {{"kv_clients_wait": {{"within_ms": 10000}}}},
            {{"kv_check_appends": {{"within_ms": 10000}}}},
            {{"kv_check_replicas": {{"within_ms": 10000}}}}
        ]}}"#
    );
    Scenario::parse(&text, "quiet-round.json").unwrap_or_else(|e| panic!("{e}"))
}

fn violation(sc: &Scenario, seed: u64) -> Option<Violation> {
    run_scenario(sc, seed, "test", None)
        .expect("runs")
        .result
        .violation
}

#[test]
fn replica_agreement_catches_a_follower_that_skips_the_duplicate_table() {
    let correct = quiet_round(None);
    let broken = quiet_round(Some("follower-skips-dedup"));
    for seed in 1..=5 {
        assert_eq!(violation(&correct, seed).map(|v| v.to_string()), None);
        let v = violation(&broken, seed).expect("the bug is caught");
        assert_eq!(v.failure.property, "replica agreement", "{v}");
    }
}

/// The same runs without the online checkers: the final step compares the states.
#[test]
fn the_final_replica_check_catches_divergent_states_on_its_own() {
    let run = |sc: &Scenario| {
        let (cfg, _) = sim_config(sc, 1);
        let nodes = KvNodeConfig {
            servers: 3,
            election_timeout_us: (ms_to_us(300.0), ms_to_us(600.0)),
            heartbeat_us: ms_to_us(100.0),
            maxraftstate: None,
            retry_timeout_us: ms_to_us(100.0),
            pre_vote: false,
            check_quorum: false,
            read_mode: kv::ReadMode::Log,
            max_drift_ppm: 0,
            raft_bugs: raft::Bugs::NONE,
            bugs: crate::catalog::switches(&sc.bugs).unwrap().1,
        };
        let tester = KvTester::new(3, 3, false);
        let machine = Machine::new(tester, sc.steps.clone(), 3);
        let sim: Sim<KvActor, _> = Sim::new(cfg, nodes, machine);
        sim.run().0.violation
    };
    assert_eq!(run(&quiet_round(None)).map(|v| v.to_string()), None);
    let v = run(&quiet_round(Some("follower-skips-dedup"))).expect("caught");
    assert_eq!(v.failure.property, "replicas caught up", "{v}");
    assert!(v.failure.detail.contains("differs"), "{v}");
}

#[test]
fn the_final_replica_check_wants_a_healed_end() {
    let mut sc = quiet_round(None);
    let crash: crate::steps::spec::Step = serde_json::from_str(r#"{"crash": 1}"#).unwrap();
    let at = sc.steps.len() - 1;
    sc.steps.insert(at, crash);
    let v = violation(&sc, 1).expect("refused");
    assert_eq!(v.failure.property, "scenario");
    assert!(v.failure.detail.contains("s1 is down"), "{v}");
}

/// 6.824 TestPersistConcurrent's round end: clients stop, every server crashes and restarts,
/// then clients finish. A leader that answers Gets from its local state (the `stale_reads`
/// bug) answers the Get in flight across the restart before it has re-applied its log: the
/// Get check must compare that Get too.
#[test]
fn the_get_in_flight_when_clients_stop_is_compared() {
    let scenario = |bug: &str| {
        let text = format!(
            r#"{{
            "name": "test/get-across-restart", "system": "kv", "servers": 5, "clients": 5,
            "duration_ms": 120000, "network": {{"latency_ms": [1, 3]}},
            "kv": {{"maxraftstate": -1, "linearizability": false}}{bug},
            "steps": [
                {{"kv_clients_start": {{"random_keys": false}}}},
                {{"sleep_ms": 2000}},
                {{"kv_clients_stop": {{}}}},
                {{"crash": "all"}},
                {{"sleep_ms": 1000}},
                {{"restart": "all"}},
                {{"connect": "all"}},
                {{"kv_clients_wait": {{"within_ms": 60000}}}}
            ]}}"#
        );
        Scenario::parse(&text, "get-across-restart.json").unwrap_or_else(|e| panic!("{e}"))
    };
    let correct = scenario("");
    let broken = scenario(r#", "bugs": ["stale-reads"]"#);
    let mut caught = 0;
    for seed in 1..=10 {
        assert_eq!(violation(&correct, seed).map(|v| v.to_string()), None);
        if let Some(v) = violation(&broken, seed) {
            assert_eq!(v.failure.property, "get returns the latest value", "{v}");
            assert!(v.time > ms_to_us(3000.0), "after the restart: {v}");
            caught += 1;
        }
    }
    assert!(caught >= 3, "caught on {caught} of 10 seeds");
}
