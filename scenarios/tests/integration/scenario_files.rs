//! Every scenario file of every system passes on its folder's first seeds (DETSIM_SEEDS
//! overrides the count): its verdict is "ok". An "unknown" verdict (a check that could not
//! decide) is not a pass. A failure prints the command that reproduces it.
//!
//! The counts keep `cargo test --workspace` within its few minutes on 2 cores: 200 seeds of
//! every Raft lab scenario (cheap), 60 of every fuzz profile and 25 of every KV lab scenario
//! (each KV run checks its history for linearizability). Longer campaigns over later seeds
//! run with `sim fuzz`, as CI does (`.ci/run`).

use scenarios::run::run_scenario;
use scenarios::scenario::Scenario;
use sim::Verdict;
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

/// Runs every file of `dir` on every seed, on two threads, and lists every run whose verdict
/// is not ok (violations and unknowns).
fn all_pass(dir: &str, default_seeds: u64) {
    let files = files(dir);
    assert!(!files.is_empty(), "no scenario files in {dir}");
    let n = seeds(default_seeds);
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
                        for seed in 1..=n {
                            let r = run_scenario(&sc, seed, &rel, None).unwrap().result;
                            let what = match (&r.verdict, &r.violation) {
                                (Verdict::Ok, _) => continue,
                                (_, Some(v)) => v.to_string(),
                                (_, None) => format!("UNKNOWN (not a pass): {}", r.unknown.iter().map(|u| u.to_string()).collect::<Vec<_>>().join("; ")),
                            };
                            failures.push(format!("{what}\n    reproduce: cargo run --release --bin sim -- run --seed {seed} {rel} --trace seed-{seed}.jsonl"));
                            break;
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
    all_pass("raft", 200);
}

#[test]
fn kv_scenarios_pass_on_every_seed() {
    all_pass("kv", 25);
}

#[test]
fn fuzz_profiles_pass_on_every_seed() {
    all_pass("fuzz", 60);
}

/// Each deliberately broken system is caught: some seed in 1..=60 fails with an expected
/// property, and every failure is one of the properties that bug can break.
#[test]
fn injected_bugs_are_caught() {
    let cases: [(&str, &[&str]); 5] = [
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
