//! `scenarios/raft/figure8.json` must be able to form the divergent logs of the paper's
//! Figure 8: with either of the two injected protocol bugs that Figure 8 is about, it must
//! catch the bug on at least 10% of seeds (the correct build passing every seed is covered by
//! `scenario_files.rs`). On an instantaneous network it caught neither, on any seed.

use scenarios::run::run_scenario;
use scenarios::scenario::Scenario;
use std::path::Path;

const SEEDS: u64 = 100;

/// Runs figure8.json with `bug` injected on seeds 1..=SEEDS; returns the properties that failed.
fn caught(bug: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("raft/figure8.json");
    let mut sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    sc.bugs = vec![bug.to_string()];
    let seeds: Vec<u64> = (1..=SEEDS).collect();
    // Two workers, each on half of the seeds; the result does not depend on the split.
    std::thread::scope(|s| {
        let handles: Vec<_> = seeds
            .chunks(SEEDS as usize / 2)
            .map(|chunk| {
                let sc = &sc;
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|&seed| {
                            let o = run_scenario(sc, seed, "scenarios/raft/figure8.json", None)
                                .expect("runs");
                            o.result.violation.map(|v| v.failure.property)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

#[test]
fn figure8_catches_commit_of_old_term_entries() {
    let caught = caught("commit-old-terms");
    assert!(
        caught.len() as u64 * 10 >= SEEDS,
        "caught on {} of {SEEDS} seeds: {caught:?}",
        caught.len()
    );
}

#[test]
fn figure8_catches_votes_without_the_election_restriction() {
    let caught = caught("no-election-restriction");
    assert!(
        caught.len() as u64 * 10 >= SEEDS,
        "caught on {} of {SEEDS} seeds: {caught:?}",
        caught.len()
    );
}
