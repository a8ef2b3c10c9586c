//! Trace regressions.
//!
//! 1. Every scenario file (`scenarios/*/*.json`) is run with seed 1 and the text timeline of
//!    its trace is compared with an insta snapshot in `traces/snapshots/`. A change in the
//!    behaviour of any system (an election happening elsewhere, a commit moving, a different
//!    verdict) shows up as a readable diff of that timeline.
//! 2. A few full JSON Lines traces are kept in `traces/full/`: each must replay without
//!    divergence, and re-running its scenario from the trace's header with its seed must give
//!    the same bytes (determinism across builds and machines).
//!
//! To accept an intended change: `cargo insta review`, or
//! `INSTA_UPDATE=always cargo test -p scenarios --test integration trace_snapshots`, then commit
//! `traces/snapshots/`.

use crate::common::root;
use scenarios::run::{replay_trace, run_scenario};
use scenarios::scenario::Scenario;
use sim::trace::{Trace, TraceReader};
use std::cell::RefCell;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// An in-memory trace sink the test can read back after the run drops its writer.
#[derive(Clone, Default)]
struct SharedBuf(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `sc` with `seed` and returns the trace text. `source` is what the header records.
fn trace_text(sc: &Scenario, seed: u64, source: &str) -> String {
    let buf = SharedBuf::default();
    run_scenario(sc, seed, source, Some(Box::new(buf.clone())))
        .unwrap_or_else(|e| panic!("{source}: seed {seed}: the run failed to complete: {e}"));
    let bytes = buf.0.borrow().clone();
    String::from_utf8(bytes).expect("the trace is UTF-8")
}

/// Workspace-relative paths (with `/`) of every scenario file in a subfolder of `scenarios/`,
/// sorted.
fn scenario_files() -> Vec<String> {
    let base = root().join("scenarios");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&base).expect("scenarios/ is readable") {
        let dir = dir.expect("a directory entry");
        if !dir.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let folder = dir.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(dir.path()).expect("a scenario folder is readable") {
            let name = f.expect("a directory entry").file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".json") {
                files.push(format!("scenarios/{folder}/{name}"));
            }
        }
    }
    files.sort();
    files
}

/// `scenarios/raft/figure8.json` -> `raft__figure8`.
fn snapshot_name(rel: &str) -> String {
    let rest = rel.strip_prefix("scenarios/").unwrap_or(rel);
    let rest = rest.strip_suffix(".json").unwrap_or(rest);
    rest.replace('/', "__")
}

/// The digest of `rel` (a workspace-relative scenario path) with seed 1. The trace streams
/// through a pipe to a second thread that digests it as the run writes it: some runs have
/// millions of events (a gigabyte of trace), which then never sit in memory or on disk, and
/// the digest of one run overlaps its simulation.
fn digest(rel: &str) -> String {
    let sc = Scenario::load(&root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let (reader, writer) = std::io::pipe().expect("a pipe");
    let digest = std::thread::scope(|s| {
        let digester = s.spawn(move || scenarios::digest::digest(std::io::BufReader::new(reader)));
        // The run owns the writer and drops it when it ends: the digest then reads the end.
        run_scenario(&sc, 1, rel, Some(Box::new(std::io::BufWriter::new(writer))))
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        digester.join().expect("the digest does not panic")
    })
    .unwrap_or_else(|e| panic!("{rel}: {e}"));
    // The digest must not depend on where the checkout lives.
    let here = root().display().to_string();
    assert!(
        !digest.contains(&here),
        "{rel}: the digest contains the absolute path {here}"
    );
    digest
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// Compares the digest of `rel` with its snapshot; if it differs, says why.
fn timeline_differs(rel: &str, settings: &insta::Settings) -> Option<String> {
    let name = snapshot_name(rel);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let d = digest(rel);
        let mut settings = settings.clone();
        settings.set_description(rel);
        settings.bind(|| insta::assert_snapshot!(name.as_str(), d));
    }));
    let p = outcome.err()?;
    let snap = root()
        .join("traces")
        .join("snapshots")
        .join(format!("{name}.snap"));
    Some(if !snap.exists() {
        "no committed snapshot (a new scenario?)".to_string()
    } else {
        let msg = panic_message(p.as_ref());
        match msg.lines().next() {
            Some(l) if l.starts_with("snapshot assertion") => {
                "the timeline changed (diff above)".to_string()
            }
            Some(l) => l.to_string(),
            None => "failed".to_string(),
        }
    })
}

#[test]
fn scenario_timelines_match_snapshots() {
    let files = scenario_files();
    assert!(
        files.len() >= 5,
        "expected the scenario files under scenarios/*/, found {files:?}"
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("traces").join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);

    // Two workers take files one at a time (one large run takes most of the time), each run
    // with its digest on a thread of its own.
    let next = AtomicUsize::new(0);
    let mut changed: Vec<(String, String)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut changed = Vec::new();
                    while let Some(rel) = files.get(next.fetch_add(1, Ordering::SeqCst)) {
                        if let Some(why) = timeline_differs(rel, &settings) {
                            changed.push((rel.clone(), why));
                        }
                    }
                    changed
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker does not panic"))
            .collect()
    });
    changed.sort();
    if !changed.is_empty() {
        let list: Vec<String> = changed
            .iter()
            .map(|(f, m)| format!("  {f} (traces/snapshots/{}.snap): {m}", snapshot_name(f)))
            .collect();
        panic!(
            "the seed-1 timeline of {} of {} scenario files differs from its snapshot:\n{}\n\n\
             If the change is a bug, fix it. If it is intended, review the diffs with\n  \
             cargo insta review\n\
             or accept them all with\n  \
             cargo insta accept\n  \
             INSTA_UPDATE=always cargo test -p scenarios --test integration trace_snapshots\n\
             then commit traces/snapshots/. (With CI=true insta never writes snapshots, so a \
             scenario without a committed snapshot fails there.)",
            changed.len(),
            files.len(),
            list.join("\n")
        );
    }
}

/// The full traces kept in `traces/full/`, as (file, scenario, seed).
const FULL: &[(&str, &str, u64)] = &[
    (
        "traces/full/pingpong-basic-seed-1.jsonl",
        "scenarios/pingpong/basic.json",
        1,
    ),
    (
        "traces/full/raft-initial-election-seed-1.jsonl",
        "scenarios/raft/initial-election.json",
        1,
    ),
    (
        "traces/full/raft-figure8-seed-7.jsonl",
        "scenarios/raft/figure8.json",
        7,
    ),
    // A realistic disk: syncs, crashes that keep part of the unsynced writes, torn writes.
    (
        "traces/full/raft-swarm-disk-seed-6.jsonl",
        "scenarios/fuzz/raft-swarm-disk.json",
        6,
    ),
    // A lost disk, and the server that halts instead of voting as a fresh one.
    (
        "traces/full/raft-disk-lost-seed-1.jsonl",
        "scenarios/raft/disk-lost.json",
        1,
    ),
];

const REGENERATE: &str =
    "If the change is intended, regenerate it from the workspace root with\n  \
     cargo run --release --bin sim -- run --seed SEED SCENARIO --trace FILE\n\
     and commit it with the snapshots it goes with.";

#[test]
fn full_traces_replay_and_rerun_byte_identical() {
    let mut problems = Vec::new();
    for &(file, scenario, seed) in FULL {
        let text = std::fs::read_to_string(root().join(file))
            .unwrap_or_else(|e| panic!("{file}: cannot read: {e}"));
        let trace = Trace::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let (h_seed, h_scenario, h_source, _) = trace.header();
        assert_eq!(h_seed, seed, "{file}: the header's seed");
        assert_eq!(h_source, scenario, "{file}: the header's source");

        // 1. The nodes of this build, fed the recorded inputs, give the recorded outputs.
        let mut reader =
            TraceReader::new(text.as_bytes()).unwrap_or_else(|e| panic!("{file}: {e}"));
        match replay_trace(&mut reader) {
            Err(e) => problems.push(format!("{file}: cannot replay: {e}")),
            Ok(Err(d)) => problems.push(format!("{file}: the replay diverged: {d:?}")),
            Ok(Ok(_)) => {}
        }

        // 2. Re-running the scenario recorded in the header gives the same bytes.
        let sc: Scenario = serde_json::from_value(h_scenario.clone())
            .unwrap_or_else(|e| panic!("{file}: the header's scenario: {e}"));
        let again = trace_text(&sc, seed, h_source);
        if again != text {
            let at = text
                .lines()
                .zip(again.lines())
                .position(|(a, b)| a != b)
                .map_or_else(
                    || {
                        format!(
                            "lengths differ ({} vs {} lines)",
                            text.lines().count(),
                            again.lines().count()
                        )
                    },
                    |i| format!("first difference at line {}", i + 1),
                );
            problems.push(format!(
                "{file}: re-running {scenario} with seed {seed} from the header gives a \
                 different trace: {at}"
            ));
        }

        // 3. The scenario file still describes the same run (the header is its normal form).
        let current =
            Scenario::load(&root().join(scenario)).unwrap_or_else(|e| panic!("{scenario}: {e}"));
        if serde_json::to_value(&current).unwrap() != *h_scenario {
            problems.push(format!(
                "{file}: {scenario} has changed since the trace was recorded"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\n{REGENERATE}",
        problems.join("\n")
    );
}
