//! Every scenario file of every system passes on its folder's first seeds (DETSIM_SEEDS
//! overrides the count): its verdict is "ok". An "unknown" verdict (a check that could not
//! decide) is not a pass. A failure prints the command that reproduces it. The seeds must
//! also be real, different runs: not all the same, and a swarm profile's seeds crash servers,
//! cut links, lose and duplicate messages.
//!
//! A few seeds per scenario keep `cargo test --workspace` within a few minutes on 2 cores,
//! compile included: seeds 1..=20 of every Raft lab scenario, 1..=8 of every fuzz profile and
//! 1..=5 of every KV lab scenario (each KV run checks its history for linearizability). CI
//! runs the campaign over the later seeds with `sim fuzz` (`.ci/run`, and the README's "Long
//! campaigns"): Raft 21..240, KV 6..65, fuzz profiles 9..100 and 1001..2000.

use scenarios::run::run_scenario;
use scenarios::scenario::Scenario;
use sim::{RunResult, Stats, Verdict};
use std::path::{Path, PathBuf};

/// The number of seeds to run: `DETSIM_SEEDS` if set, else `default`.
fn seeds(default: u64) -> u64 {
    std::env::var("DETSIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn files(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// What the passing seeds of a file must show besides their verdicts, so that the few seeds
/// the tests run are real runs: different seeds give different runs (the seed reaches the
/// run), and a swarm profile's seeds crash servers, cut links, lose and duplicate messages.
fn not_exercised(sc: &Scenario, runs: &[RunResult]) -> Option<String> {
    let first = (runs[0].end_time, &runs[0].stats);
    if runs.len() >= 2 && runs.iter().all(|r| (r.end_time, &r.stats) == first) {
        return Some(format!(
            "its {} seeds gave the same run: the seed does not reach it",
            runs.len()
        ));
    }
    if sc.faults.swarm.is_some() {
        let total = |count: fn(&Stats) -> u64| runs.iter().map(|r| count(&r.stats)).sum::<u64>();
        for (what, n) in [
            ("crashes", total(|s| s.crashes)),
            ("losses to a partition", total(|s| s.dropped_partition)),
            ("random losses", total(|s| s.dropped_random)),
            ("duplicates", total(|s| s.duplicated)),
        ] {
            if n == 0 {
                return Some(format!(
                    "a swarm profile, yet its {} seeds had no {what}",
                    runs.len()
                ));
            }
        }
    }
    None
}

/// The check of the seeds fails where it should: on seeds that all give one run, and on a
/// swarm profile's seeds without one of the faults; real runs pass it.
#[test]
fn seeds_that_are_not_real_runs_are_caught() {
    let load = |f: &str| Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap();
    let (swarm, figure8) = (load("fuzz/raft-swarm.json"), load("raft/figure8.json"));
    let runs = |sc: &Scenario| -> Vec<RunResult> {
        (1..=3)
            .map(|seed| run_scenario(sc, seed, "test", None).unwrap().result)
            .collect()
    };
    let (swarm_runs, figure8_runs) = (runs(&swarm), runs(&figure8));
    assert_eq!(not_exercised(&swarm, &swarm_runs), None);
    assert_eq!(not_exercised(&figure8, &figure8_runs), None);
    let same = vec![figure8_runs[0].clone(); 3];
    assert!(not_exercised(&figure8, &same)
        .unwrap()
        .contains("the same run"));
    assert_eq!(
        not_exercised(&figure8, &same[..1]),
        None,
        "one seed is one run"
    );
    let mut calm = swarm_runs.clone();
    for r in &mut calm {
        r.stats.duplicated = 0;
    }
    assert!(not_exercised(&swarm, &calm)
        .unwrap()
        .contains("no duplicates"));
}

/// Runs every file of `dir` on seeds 1..=n (n is DETSIM_SEEDS, else `default_seeds`), on two
/// threads, and lists every run whose verdict is not ok (violations and unknowns), and every
/// file whose seeds were not real runs (see [`not_exercised`]).
fn all_pass(dir: &str, default_seeds: u64) {
    let files = files(dir);
    assert!(!files.is_empty(), "no scenario files in {dir}");
    let n = seeds(default_seeds);
    assert!(n >= 1, "DETSIM_SEEDS must be at least 1");
    // Two workers take files one at a time, so a slow file does not hold up a fixed half.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut failures = Vec::new();
                    while let Some(file) = files.get(next.fetch_add(1, std::sync::atomic::Ordering::SeqCst)) {
                        let rel = format!("scenarios/{dir}/{}", file.file_name().unwrap().to_string_lossy());
                        let sc = Scenario::load(file).unwrap_or_else(|e| panic!("{e}"));
                        let mut runs = Vec::new();
                        for seed in 1..=n {
                            let r = run_scenario(&sc, seed, &rel, None).unwrap().result;
                            let what = match (&r.verdict, &r.violation) {
                                (Verdict::Ok, _) => {
                                    runs.push(r);
                                    continue;
                                }
                                (_, Some(v)) => v.to_string(),
                                (_, None) => format!("UNKNOWN (not a pass): {}", r.unknown.iter().map(|u| u.to_string()).collect::<Vec<_>>().join("; ")),
                            };
                            failures.push(format!("{what}\n    reproduce: cargo run --release --bin sim -- run --seed {seed} {rel} --trace seed-{seed}.jsonl"));
                            break;
                        }
                        if runs.len() as u64 == n {
                            if let Some(problem) = not_exercised(&sc, &runs) {
                                failures.push(format!("{rel}: {problem}"));
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn raft_scenarios_pass_on_every_seed() {
    all_pass("raft", 20);
}

#[test]
fn kv_scenarios_pass_on_every_seed() {
    all_pass("kv", 5);
}

#[test]
fn fuzz_profiles_pass_on_every_seed() {
    all_pass("fuzz", 8);
}

/// Each deliberately broken system is caught: some seed in 1..=60 fails with an expected
/// property, and every failure is one of the properties that bug can break.
#[test]
fn injected_bugs_are_caught() {
    let cases: [(&str, &[&str]); 6] = [
        // Not a bug of the system: clock drift beyond the bound its leases are safe within.
        (
            "kv-lease-drift-beyond-bound.json",
            &["linearizability", "get returns the latest value"],
        ),
        ("kv-stale-reads-linearizability.json", &["linearizability"]),
        (
            "raft-commit-old-terms.json",
            &[
                "leader completeness",
                "state machine safety",
                "log matching",
                "committed prefix kept",
                "committed entries agree",
            ],
        ),
        (
            "raft-no-election-restriction.json",
            &[
                "leader completeness",
                "state machine safety",
                "log matching",
                "committed prefix kept",
                "committed entries agree",
                "durability",
            ],
        ),
        (
            "kv-stale-reads.json",
            &[
                "no progress in minority",
                "get returns the latest value",
                "linearizability",
            ],
        ),
        (
            "kv-dedup-not-in-snapshot.json",
            &[
                "replica agreement",
                "appends exactly once",
                "get returns the latest value",
                "linearizability",
            ],
        ),
    ];
    for (file, properties) in cases {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("buggy")
            .join(file);
        let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut caught = 0;
        for seed in 1..=60 {
            if let Some(v) = run_scenario(&sc, seed, file, None)
                .unwrap()
                .result
                .violation
            {
                assert!(
                    properties.contains(&v.failure.property.as_str()),
                    "{file} seed {seed}: unexpected {v}"
                );
                caught += 1;
            }
        }
        assert!(
            caught > 0,
            "{file}: the injected bug went unnoticed on seeds 1..=60"
        );
    }
}

#[test]
fn pingpong_basic_passes_and_buggy_fails() {
    let sc = Scenario::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pingpong/basic.json"
    )))
    .unwrap();
    for seed in 1..=seeds(50) {
        let r = run_scenario(&sc, seed, "basic", None).unwrap().result;
        assert_eq!(r.verdict, Verdict::Ok, "seed {seed}: {:?}", r.violation);
    }
    let sc = Scenario::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pingpong/buggy.json"
    )))
    .unwrap();
    for seed in 1..=seeds(50) {
        let v = run_scenario(&sc, seed, "buggy", None)
            .unwrap()
            .result
            .violation;
        assert_eq!(
            v.map(|v| v.failure.property),
            Some("pong count".to_string()),
            "seed {seed}"
        );
    }
    // A node that panics fails every run with a "panic" violation, and never crashes the test.
    let sc = Scenario::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pingpong/panic.json"
    )))
    .unwrap();
    for seed in 1..=seeds(50) {
        let r = run_scenario(&sc, seed, "panic", None).unwrap().result;
        assert_eq!(r.verdict, Verdict::Violation, "seed {seed}");
        let v = r.violation.unwrap();
        assert_eq!(v.failure.property, "panic", "seed {seed}");
        assert!(v.panic.unwrap().message.starts_with("deliberate panic"));
    }
}
