//! `sim fuzz` and `sim merge` as a user runs them: results independent of --jobs, shards that
//! merge into the single-run report, failing runs saved with commands that reproduce them.

use crate::common::{sim, tmp};
use std::path::Path;

/// The report without the wall-clock field, the only one allowed to differ.
fn content(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("wall_ms");
            v.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const FILES: [&str; 4] = [
    "scenarios/raft/initial-election.json",
    "scenarios/raft/figure8.json",
    "scenarios/pingpong/basic.json",
    // Per-node clocks: drift drawn per seed and per server, jumps drawn as faults.
    "scenarios/raft/clock-drift.json",
];

#[test]
fn jobs_do_not_change_the_report_and_shards_merge_to_it() {
    let (r1, r2) = (tmp("j1.jsonl"), tmp("j2.jsonl"));
    for (jobs, report) in [("1", &r1), ("2", &r2)] {
        let mut args = vec!["fuzz"];
        args.extend(FILES);
        args.extend([
            "--seeds",
            "1..30",
            "--jobs",
            jobs,
            "--report",
            report.to_str().unwrap(),
        ]);
        let o = sim(&args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    let single = content(&r1);
    assert_eq!(single.lines().count(), 120);
    assert_eq!(single, content(&r2));
    let mut shards = Vec::new();
    for i in 1..=3 {
        let p = tmp(&format!("shard-{i}.jsonl"));
        let shard = format!("{i}/3");
        let mut args = vec!["fuzz"];
        args.extend(FILES);
        args.extend([
            "--seeds",
            "1..30",
            "--jobs",
            "2",
            "--shard",
            &shard,
            "--report",
            p.to_str().unwrap(),
        ]);
        assert_eq!(sim(&args).status.code(), Some(0));
        shards.push(p);
    }
    let merged = tmp("merged.jsonl");
    let mut args = vec!["merge", "-o", merged.to_str().unwrap()];
    args.extend(shards.iter().map(|p| p.to_str().unwrap()));
    assert_eq!(sim(&args).status.code(), Some(0));
    assert_eq!(content(&merged), single);
    // Merging a shard twice is an error, not a silent duplicate.
    let o = sim(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[0].to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_failing_run_is_saved_and_reproduced_by_the_printed_commands() {
    let out = tmp("failures");
    let o = sim(&[
        "fuzz",
        "scenarios/pingpong/buggy.json",
        "--seeds",
        "1..5",
        "--out",
        out.to_str().unwrap(),
        "--until-failure",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        stdout.contains("FAILED    scenarios/pingpong/buggy.json seed 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 runs"),
        "--until-failure stops at the first failure: {stdout}"
    );
    let trace = out.join("buggy-seed-1.jsonl");
    assert!(trace.exists());
    let replay_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("replay:"))
        .unwrap();
    let cmd: Vec<&str> = replay_line.split_whitespace().skip(2).collect();
    let o = sim(&cmd);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let run_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("reproduce:"))
        .unwrap();
    let cmd: Vec<&str> = run_line.split_whitespace().skip(2).collect();
    let o = sim(&cmd);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("pong count violated"));
}

#[test]
fn bad_fuzz_arguments_exit_2() {
    for args in [
        vec!["fuzz", "scenarios/pingpong/basic.json", "--seeds", "9..1"],
        vec!["fuzz", "scenarios/pingpong/basic.json", "--shard", "4/3"],
        vec!["fuzz", "missing.json"],
    ] {
        let o = sim(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// A real protocol bug (votes without the election restriction) is found by fuzzing, saved,
/// and shrunk to a smaller scenario that still fails the same way, with a shorter trace.
///
/// The scenario is `scenarios/buggy/raft-no-election-restriction.json` with its clients'
/// endless loop cut to 200 rounds, more than they get through before the bug shows: the
/// first failing seed fails exactly as with the file (checked here), but the shrinker's
/// candidates that drop the loop's waits end at once instead of spinning into the harness's
/// million-step guard (25 s of CPU each in the test build: nearly all of this test's time).
#[test]
fn an_injected_raft_bug_is_found_and_shrunk() {
    let file = "scenarios/buggy/raft-no-election-restriction.json";
    let text = std::fs::read_to_string(crate::common::root().join(file)).unwrap();
    let mut bounded: serde_json::Value = serde_json::from_str(&text).unwrap();
    let client_loop = &mut bounded["steps"][0]["spawn"]["steps"][0]["loop"];
    assert!(
        client_loop.is_object() && client_loop["times"].is_null(),
        "{file}: its first step spawns clients that loop until stopped: {client_loop}"
    );
    client_loop["times"] = 200.into();
    let bounded_file = tmp("raft-no-election-restriction.json");
    std::fs::write(&bounded_file, bounded.to_string()).unwrap();
    let out = tmp("shrink");
    let o = sim(&[
        "fuzz",
        bounded_file.to_str().unwrap(),
        "--seeds",
        "1..20",
        "--out",
        out.to_str().unwrap(),
        "--until-failure",
        "--shrink",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    // The same failure, to the event, as the scenario file's own run with that seed.
    let (seed, failure) = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FAILED    ")?.split_once(": "))
        .expect("the failure is reported");
    let seed = seed.rsplit(' ').next().unwrap();
    let o = sim(&["run", "--seed", seed, file]);
    let run = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        run.lines()
            .any(|l| l == format!("result    VIOLATION: {failure}")),
        "{file} seed {seed} does not fail as the bounded copy did ({failure}):\n{run}"
    );
    let before_line = stdout
        .lines()
        .find(|l| l.starts_with("before"))
        .expect("shrink reports sizes");
    let after_line = stdout
        .lines()
        .find(|l| l.starts_with("after"))
        .expect("shrink reports sizes");
    let number = |line: &str, what: &str| -> u64 {
        let words: Vec<&str> = line.split_whitespace().collect();
        let i = words
            .iter()
            .position(|w| w.trim_end_matches(',') == what)
            .unwrap();
        words[i - 1].parse().unwrap()
    };
    let (faults_before, faults_after) = (
        number(before_line, "scheduled"),
        number(after_line, "scheduled"),
    );
    assert!(
        faults_after * 4 <= faults_before,
        "faults {faults_before} -> {faults_after}: {stdout}"
    );
    assert!(
        number(after_line, "events") <= number(before_line, "events"),
        "{stdout}"
    );
    // The shrunk scenario is an ordinary scenario file that fails the same way.
    let min = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".min.json"))
        .unwrap();
    let o = sim(&["run", "--seed", "1", min.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let seed = min
        .file_name()
        .unwrap()
        .to_string_lossy()
        .split("-seed-")
        .nth(1)
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let o = sim(&["run", "--seed", &seed, min.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("leader completeness"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Unknown runs are their own outcome in fuzz reports, summaries and exit codes: 3 when some
/// run is unknown and none failed, 1 as soon as one failed; `sim merge` agrees.
#[test]
fn unknown_runs_are_reported_and_exit_3_unless_something_failed() {
    let text = std::fs::read_to_string(crate::common::root().join("scenarios/pingpong/basic.json"))
        .unwrap()
        .replace(
            "\"pingpong\": {\"interval_ms\": 20}",
            "\"pingpong\": {\"interval_ms\": 20, \"check_budget\": 3}",
        );
    let undecided = tmp("undecided.json");
    std::fs::write(&undecided, text).unwrap();
    let u = undecided.to_str().unwrap();
    let report = tmp("unknown.jsonl");
    let o = sim(&[
        "fuzz",
        u,
        "scenarios/pingpong/basic.json",
        "--seeds",
        "1..3",
        "--report",
        report.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("0 failed, 3 unknown"), "{stdout}");
    assert!(stdout.contains("UNKNOWN   "), "{stdout}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let unknown: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["verdict"] == "unknown").collect();
    assert_eq!(unknown.len(), 3, "{lines:?}");
    assert!(unknown.iter().all(|l| l["property"] == "pong count"));
    assert!(unknown.iter().all(|l| l["file"] == u));
    assert_eq!(lines.iter().filter(|l| l["verdict"] == "ok").count(), 3);
    let o = sim(&[
        "merge",
        report.to_str().unwrap(),
        "-o",
        tmp("m.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    // A violation wins over unknown.
    let o = sim(&[
        "fuzz",
        u,
        "scenarios/pingpong/buggy.json",
        "--seeds",
        "1..2",
    ]);
    assert_eq!(o.status.code(), Some(1));
}

/// A node that panics does not kill the campaign: every run is reported as violation/panic,
/// its trace saved with the commands that reproduce it, shrink works on it, and its replay
/// reproduces the panic.
#[test]
fn a_panicking_system_is_fuzzed_saved_shrunk_and_replayed() {
    let out = tmp("panics");
    let report = tmp("panics.jsonl");
    let o = sim(&[
        "fuzz",
        "scenarios/pingpong/panic.json",
        "scenarios/pingpong/basic.json",
        "--seeds",
        "1..4",
        "--jobs",
        "2",
        "--report",
        report.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--shrink",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("8 runs"), "{stdout}");
    assert!(stdout.contains("4 failed"), "{stdout}");
    for seed in 1..=4 {
        assert!(
            stdout.contains(&format!(
                "FAILED    scenarios/pingpong/panic.json seed {seed}: panic at"
            )),
            "{stdout}"
        );
        assert!(out.join(format!("panic-seed-{seed}.jsonl")).exists());
        assert!(out.join(format!("panic-seed-{seed}.min.json")).exists());
    }
    assert!(
        stdout.contains("still fails panic at sim/src/example.rs:"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&report).unwrap();
    let panics = text
        .lines()
        .filter(|l| l.contains("\"verdict\":\"violation\",\"property\":\"panic\""))
        .count();
    assert_eq!(panics, 4, "{text}");
    let o = sim(&["replay", out.join("panic-seed-3.jsonl").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("the recorded panic reproduces"));
    let o = sim(&[
        "run",
        "--seed",
        "1",
        out.join("panic-seed-1.min.json").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
}
