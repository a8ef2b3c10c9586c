//! Tracing only records a run: the same seed gives the same verdict, the same violation (at
//! the same event number) and the same counters with and without a trace, so the event a
//! fuzz report names is the one its saved trace shows.

use scenarios::run::run_scenario;
use scenarios::scenario::Scenario;
use std::path::Path;

fn same_with_and_without_trace(file: &str, seed: u64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let plain = run_scenario(&sc, seed, file, None).unwrap().result;
    let traced = run_scenario(&sc, seed, file, Some(Box::new(std::io::sink())))
        .unwrap()
        .result;
    assert_eq!(plain.verdict, traced.verdict, "{file} seed {seed}");
    assert_eq!(plain.violation, traced.violation, "{file} seed {seed}");
    assert_eq!(plain.end_time, traced.end_time, "{file} seed {seed}");
    assert_eq!(plain.stats, traced.stats, "{file} seed {seed}");
}

#[test]
fn a_failing_kv_run_names_the_same_event_with_and_without_a_trace() {
    // The harness writes notes before the violation here, which once took event numbers only
    // when traced.
    let file = "buggy/kv-stale-reads.json";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let seed = (1..=20)
        .find(|&s| {
            run_scenario(&sc, s, file, None)
                .unwrap()
                .result
                .violation
                .is_some()
        })
        .expect("the stale-reads bug is caught on some seed of 1..=20");
    same_with_and_without_trace(file, seed);
}

#[test]
fn passing_runs_count_the_same_events_with_and_without_a_trace() {
    same_with_and_without_trace("raft/figure8.json", 3);
    same_with_and_without_trace("kv/unreliable-one-key.json", 3);
}
