//! `sim bench speed`: the figures of the project's speed goals, each measured in a child
//! process of this binary (the hidden `--phase` option) so its CPU time and peak memory are
//! its own: every Raft and KV lab scenario on one seed, the heaviest snapshot scenario on one
//! seed, the engine against a bare heap-plus-ChaCha loop, and the peak memory of a long KV run
//! with snapshots against a short one.
//!
//! CPU time is user plus system time from `/proc/self/stat` (all threads, at the kernel's
//! 100 Hz tick): the machine is shared, so wall time says little. Times are measurements of
//! the tool, not part of a simulation.

use crate::bench::peak_kb;
use crate::run::run_traced;
use crate::scenario::Scenario;
use std::path::PathBuf;
use std::process::Command;

/// Starting figures, measured on `main` before the speed work (release build, one job, on the
/// shared 2-core machine, 2026-12-02): CPU seconds, or the engine/bare ratio.
const START_FUZZ_CPU: f64 = 3.05;
const START_RUN_CPU: f64 = 1.63;
const START_ENGINE_RATIO: &str = "0.45-0.61";
/// The goals of issue 13.
const GOAL_FUZZ_CPU: f64 = 0.5;
const GOAL_RUN_CPU: f64 = 0.15;
const GOAL_ENGINE_RATIO: f64 = 0.7;
const GOAL_MEMORY_RATIO: f64 = 2.0;

/// The scenario of the single-run row.
const HEAVY: &str = "scenarios/kv/snapshot-recover-many-clients.json";
/// Client operations completed per virtual second by [`long_kv_scenario`]'s 20 clients
/// (measured: about 2,200 on the lab's reliable network), to size a run by its ops.
const OPS_PER_SECOND: f64 = 2_000.0;

/// Arguments of `sim bench speed`.
#[derive(clap::Args, Debug)]
pub struct SpeedArgs {
    /// The folder holding `raft/` and `kv/` scenario folders.
    #[arg(long, default_value = "scenarios")]
    pub scenarios: PathBuf,
    /// Client operations of the long run of the memory row (the short run has 10,000). The
    /// goal names 1,000,000; the default is 100,000 because the lab's client loop appends to
    /// one key per client, so values, snapshots and the time to take them grow with the run
    /// (100,000 ops take about 15 CPU s, 1,000,000 far longer).
    #[arg(long, default_value_t = 100_000)]
    pub memory_ops: u64,
    /// Leave out the memory row (its long run takes the longest).
    #[arg(long)]
    pub no_memory: bool,
    /// (internal) Run one phase in this process and print `PHASE CPU_SECONDS PEAK_KB`.
    #[arg(long, hide = true)]
    pub phase: Option<String>,
    /// (internal) The phase's argument (an op count).
    #[arg(long, hide = true)]
    pub ops: Option<u64>,
}

/// Runs `sim bench speed`; returns the exit code (0 ok, 2 bad input or a failed phase).
pub fn run(a: &SpeedArgs) -> i32 {
    let r = match &a.phase {
        Some(p) => phase_here(p, a),
        None => table(a),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// What one phase measured.
#[derive(Clone, Copy, Debug)]
struct Measure {
    cpu: f64,
    peak_kb: u64,
}

fn table(a: &SpeedArgs) -> Result<(), String> {
    println!("bench speed: release figures of issue 13, CPU seconds (user+sys) of one job");
    println!(
        "  {:<58} {:>10} {:>10} {:>8}",
        "what", "now", "start", "goal"
    );
    let fuzz = phase_child("fuzz", a, None)?;
    let row = |what: &str, now: String, start: String, goal: String| {
        println!("  {what:<58} {now:>10} {start:>10} {goal:>8}");
    };
    row(
        "every Raft and KV lab scenario, seed 1 (sim fuzz --jobs 1)",
        format!("{:.2} s", fuzz.cpu),
        format!("{START_FUZZ_CPU:.2} s"),
        format!("{GOAL_FUZZ_CPU:.2} s"),
    );
    let heavy = phase_child("run", a, None)?;
    row(
        "kv/snapshot-recover-many-clients, seed 1 (sim run)",
        format!("{:.2} s", heavy.cpu),
        format!("{START_RUN_CPU:.2} s"),
        format!("{GOAL_RUN_CPU:.2} s"),
    );
    let b = sim::bench_engine::engine_vs_bare(100, 20, 5);
    row(
        "engine vs bare heap+ChaCha loop (events/s ratio, wall)",
        format!("{:.2}", b.ratio()),
        START_ENGINE_RATIO.to_string(),
        format!("{GOAL_ENGINE_RATIO:.2}"),
    );
    if !a.no_memory {
        let short = phase_child("memory", a, Some(10_000))?;
        let long = phase_child("memory", a, Some(a.memory_ops))?;
        let ratio = long.peak_kb as f64 / short.peak_kb.max(1) as f64;
        row(
            &format!(
                "peak memory, KV {} ops with snapshots / 10,000 ops",
                a.memory_ops
            ),
            format!("{ratio:.2}x"),
            "-".to_string(),
            format!("{GOAL_MEMORY_RATIO:.1}x"),
        );
        println!(
            "  (memory: {:.1} MB for 10,000 ops in {:.2} s, {:.1} MB for {} ops in {:.2} s)",
            short.peak_kb as f64 / 1024.0,
            short.cpu,
            long.peak_kb as f64 / 1024.0,
            a.memory_ops,
            long.cpu
        );
    }
    Ok(())
}

/// Runs `phase` in a child process of this binary and reads what it measured.
fn phase_child(phase: &str, a: &SpeedArgs, ops: Option<u64>) -> Result<Measure, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["bench", "speed", "--phase", phase, "--scenarios"])
        .arg(&a.scenarios);
    if let Some(n) = ops {
        cmd.arg("--ops").arg(n.to_string());
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start the {phase} phase: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "the {phase} phase failed: {}{}",
            text.lines().last().unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let parsed = text.lines().rev().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next()? == phase).then_some(())?;
        Some(Measure {
            cpu: w.next()?.parse().ok()?,
            peak_kb: w.next()?.parse().ok()?,
        })
    });
    parsed.ok_or_else(|| format!("the {phase} phase printed no measurement: {text}"))
}

/// The lab scenario files of `dir/raft` and `dir/kv`, sorted (as a shell glob lists them).
fn lab_scenarios(dir: &std::path::Path) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    for sub in ["raft", "kv"] {
        let d = dir.join(sub);
        let mut here: Vec<String> = std::fs::read_dir(&d)
            .map_err(|e| format!("{}: {e}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| p.display().to_string())
            .collect();
        here.sort();
        files.extend(here);
    }
    Ok(files)
}

/// A KV run with snapshots sized to about `ops` client operations: the many-clients snapshot
/// test's setup (5 servers, 20 clients, maxraftstate 1000, reliable network) running clients
/// for `ops / OPS_PER_SECOND` virtual seconds, then checking the replicas agree. No
/// linearizability check: it must keep the whole history, so its memory grows by design.
fn long_kv_scenario(ops: u64) -> String {
    let ms = (ops as f64 / OPS_PER_SECOND * 1000.0).ceil();
    format!(
        r#"{{"name": "bench/kv-long-{ops}", "system": "kv", "servers": 5, "clients": 20,
  "duration_ms": {limit}, "network": {{"latency_ms": [1, 3]}},
  "kv": {{"maxraftstate": 1000, "linearizability": false}},
  "steps": [{{"kv_clients_start": {{"random_keys": false}}}}, {{"sleep_ms": {ms}}},
            {{"kv_clients_stop": {{}}}}, {{"kv_clients_wait": {{"within_ms": 60000}}}},
            {{"kv_check_replicas": {{"within_ms": 10000}}}}]}}"#,
        limit = ms + 120_000.0
    )
}

/// Runs one phase in this process and prints `PHASE CPU_SECONDS PEAK_KB`.
fn phase_here(phase: &str, a: &SpeedArgs) -> Result<(), String> {
    match phase {
        "fuzz" => {
            let mut argv = vec!["sim".to_string(), "fuzz".to_string()];
            argv.extend(lab_scenarios(&a.scenarios)?);
            argv.extend(["--seeds", "1..1", "--jobs", "1"].map(String::from));
            let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(argv)
                .map_err(|e| e.to_string())?;
            let crate::cli::Command::Fuzz(args) = cli.command else {
                unreachable!("parsed as fuzz")
            };
            let code = crate::fuzz::run(&args);
            if code != 0 {
                return Err(format!("the campaign exited {code}"));
            }
        }
        "run" => {
            let path = a.scenarios.join(HEAVY.trim_start_matches("scenarios/"));
            let sc = Scenario::load(&path).map_err(|e| e.to_string())?;
            let out = run_traced(&sc, 1, &path.display().to_string(), None)?;
            if out.result.violation.is_some() {
                return Err(format!("{} seed 1 did not pass", path.display()));
            }
        }
        "memory" => {
            let ops = a.ops.ok_or("this phase needs --ops")?;
            let sc = Scenario::parse(&long_kv_scenario(ops), "bench").map_err(|e| e.to_string())?;
            let out = run_traced(&sc, 1, "bench", None)?;
            if out.result.violation.is_some() {
                return Err(format!("the {ops}-op run did not pass"));
            }
        }
        other => return Err(format!("unknown phase {other:?}")),
    }
    println!("{phase} {:.3} {}", cpu_seconds(), peak_kb());
    Ok(())
}

/// This process's CPU time so far (user + system, every thread), from `/proc/self/stat` at
/// 100 ticks a second; 0 where `/proc` has none.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces): state is
    // the 3rd field, utime the 14th, stime the 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0
}
