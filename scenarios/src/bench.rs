//! `sim bench traces`: what tracing costs on one scenario run. It reports the trace's size
//! (plain and zstd), the run's time without a trace and with each, and the replay's time and
//! peak memory.
//!
//! Each measurement runs in a child process (this binary, with the hidden `--phase` option),
//! so a peak resident size (`VmHWM` of `/proc/self/status`, read by the child as it ends) is
//! that phase's alone. Times are wall clock: this is a benchmark of the tool, not part of a
//! simulation.

use crate::run::{replay_trace, run_traced};
use crate::scenario::Scenario;
use sim::trace::{files, TraceReader, TraceSink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Arguments of `sim bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

/// What `sim bench` measures.
#[derive(clap::Subcommand, Debug)]
pub enum BenchWhat {
    /// Trace size, compressed size, run time with and without a trace, replay time and peak
    /// memory, for one scenario and seed.
    Traces(TracesArgs),
    /// The speed goals' figures (CPU seconds now, at the start, and the goal): every lab
    /// scenario on one seed, the heaviest snapshot scenario, the engine against its floor,
    /// and a long KV run's peak memory against a short one's.
    Speed(crate::bench_speed::SpeedArgs),
}

/// Arguments of `sim bench traces`.
#[derive(clap::Args, Debug)]
pub struct TracesArgs {
    /// The scenario file.
    #[arg(default_value = "scenarios/kv/snapshot-recover-many-clients.json")]
    pub scenario: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run each measurement this many times and keep the fastest.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Keep the traces in this folder (default: a temporary folder, removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// (internal) Run one phase in this process and print `PHASE SECONDS PEAK_KB`.
    #[arg(long, hide = true)]
    pub phase: Option<String>,
    /// (internal) The trace of the phase.
    #[arg(long, hide = true)]
    pub trace: Option<PathBuf>,
}

/// One measured phase.
#[derive(Clone, Copy, Debug)]
struct Measure {
    secs: f64,
    peak_kb: u64,
    /// Events of a run, steps of a replay.
    count: u64,
}

/// Runs `sim bench`; returns the exit code (0 ok, 2 bad input or a failed phase).
pub fn run(args: &BenchArgs) -> i32 {
    let a = match &args.what {
        BenchWhat::Traces(a) => a,
        BenchWhat::Speed(s) => return crate::bench_speed::run(s),
    };
    if let Some(phase) = &a.phase {
        return match phase_here(phase, a) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        };
    }
    match traces(a) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn traces(a: &TracesArgs) -> Result<(), String> {
    // Fail early on a bad scenario, before any child starts.
    Scenario::load(&a.scenario).map_err(|e| e.to_string())?;
    let temp = a.dir.is_none();
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("detsim-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let plain = dir.join("trace.jsonl");
    let zst = dir.join("trace.jsonl.zst");
    let best = |phase: &str, trace: Option<&Path>| -> Result<Measure, String> {
        let mut best: Option<Measure> = None;
        for _ in 0..a.repeat.max(1) {
            let m = phase_child(phase, a, trace)?;
            if best.is_none_or(|b| m.secs < b.secs) {
                best = Some(m);
            }
        }
        Ok(best.expect("at least one run"))
    };
    println!(
        "bench traces: {} seed {} (best of {})",
        a.scenario.display(),
        a.seed,
        a.repeat.max(1)
    );
    let bare = best("run", None)?;
    let traced = best("run-trace", Some(&plain))?;
    let traced_z = best("run-trace", Some(&zst))?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let (plain_bytes, zst_bytes) = (size(&plain), size(&zst));
    let replay = best("replay", Some(&plain))?;
    let replay_z = best("replay", Some(&zst))?;
    let mb = |b: u64| b as f64 / 1e6;
    let ratio = |m: Measure| m.secs / bare.secs;
    let row = |what: &str, m: Measure, extra: String| {
        println!(
            "  {what:<22} {:>8.2} s  {:>5.2}x  peak {:>7.1} MB{extra}",
            m.secs,
            ratio(m),
            m.peak_kb as f64 / 1024.0
        );
    };
    row("run, no trace", bare, String::new());
    row(
        "run, trace .jsonl",
        traced,
        format!("  trace {:.1} MB", mb(plain_bytes)),
    );
    row(
        "run, trace .jsonl.zst",
        traced_z,
        format!("  trace {:.1} MB", mb(zst_bytes)),
    );
    row("replay .jsonl", replay, String::new());
    row("replay .jsonl.zst", replay_z, String::new());
    println!(
        "  ({} events, {} steps replayed; times relative to the run without a trace)",
        bare.count, replay.count
    );
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("  traces kept in {}", dir.display());
    }
    Ok(())
}

/// Runs `phase` in a child process of this binary and reads what it measured.
fn phase_child(phase: &str, a: &TracesArgs, trace: Option<&Path>) -> Result<Measure, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("bench")
        .arg("traces")
        .arg(&a.scenario)
        .arg("--seed")
        .arg(a.seed.to_string())
        .arg("--phase")
        .arg(phase);
    if let Some(t) = trace {
        cmd.arg("--trace").arg(t);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start the {phase} phase: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "the {phase} phase failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let parsed = text.lines().rev().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next()? == phase).then_some(())?;
        Some(Measure {
            secs: w.next()?.parse().ok()?,
            peak_kb: w.next()?.parse().ok()?,
            count: w.next()?.parse().ok()?,
        })
    });
    parsed.ok_or_else(|| format!("the {phase} phase printed no measurement: {text}"))
}

/// Runs one phase in this process and prints `PHASE SECONDS PEAK_KB`.
fn phase_here(phase: &str, a: &TracesArgs) -> Result<(), String> {
    let sc = Scenario::load(&a.scenario).map_err(|e| e.to_string())?;
    let source = a.scenario.display().to_string();
    let trace = || a.trace.clone().ok_or("this phase needs --trace");
    let start = Instant::now();
    let count = match phase {
        "run" => run_traced(&sc, a.seed, &source, None)?.result.stats.events,
        "run-trace" => {
            let path = trace()?;
            let sink = TraceSink::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            run_traced(&sc, a.seed, &source, Some(sink))?
                .result
                .stats
                .events
        }
        "replay" => {
            let path = trace()?;
            let input = files::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut reader =
                TraceReader::new(input).map_err(|e| format!("{}: {e}", path.display()))?;
            match replay_trace(&mut reader) {
                Err(e) => return Err(format!("{}: {e}", path.display())),
                Ok(Err(d)) => {
                    return Err(format!("{}: the replay diverged: {d:?}", path.display()))
                }
                Ok(Ok(summary)) => summary.steps,
            }
        }
        other => return Err(format!("unknown phase {other:?}")),
    };
    let secs = start.elapsed().as_secs_f64();
    println!("{phase} {secs:.3} {} {count}", peak_kb());
    Ok(())
}

/// This process's peak resident size in KB (`VmHWM`), or 0 where `/proc` has none.
pub fn peak_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
