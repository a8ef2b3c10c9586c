//! The Raft tester's `check_caught_up` step: a server that cannot catch up is caught, and a
//! healthy cluster passes.

use scenarios::run::run_scenario;
use scenarios::scenario::Scenario;

fn scenario(cut_off: bool) -> Scenario {
    let cut = if cut_off { r#"{"disconnect": 2},"# } else { "" };
    let text = format!(
        r#"{{
  "name": "test/catch-up", "system": "raft", "servers": 3, "duration_ms": 60000,
  "raft": {{"snapshot_every": 5}},
  "steps": [
    {{"one": {{"cmd": "random", "servers": 3, "retry": true}}}},
    {cut}
    {{"loop": {{"times": 12, "steps": [{{"one": {{"cmd": "random", "servers": 2, "retry": true}}}}]}}}},
    {{"check_caught_up": {{"within_ms": 2000}}}}
  ]
}}"#
    );
    Scenario::parse(&text, "test/catch-up.json").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_server_left_behind_fails_catch_up() {
    for seed in 1..=5 {
        let o = run_scenario(&scenario(true), seed, "test/catch-up.json", None).unwrap();
        let v = o
            .result
            .violation
            .expect("the cut-off server cannot catch up");
        assert_eq!(v.failure.property, "catch-up");
        assert_eq!(v.failure.nodes, vec![2]);
    }
}

#[test]
fn a_healthy_cluster_catches_up() {
    for seed in 1..=5 {
        let o = run_scenario(&scenario(false), seed, "test/catch-up.json", None).unwrap();
        assert!(o.result.violation.is_none(), "{:?}", o.result.violation);
    }
}
