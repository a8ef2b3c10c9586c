//! The `sim` command line: argument parsing and the commands' output and exit codes.
//!
//! Exit codes: 0 every check held, 1 a check failed (a bug was found; a panic of the code under
//! test is one) or a replay diverged, 2 bad input or usage (a truncated trace is one), 3 unknown:
//! no check failed but one could not decide (a linearizability search out of budget). A
//! violation wins over unknown; unknown is never a pass.

use crate::run::{replay_trace, run_traced, Outcome};
use crate::scenario::Scenario;
use clap::{Parser, Subcommand};
use sim::trace::{files, TraceReader, TraceSink};
use sim::{fmt_time, Verdict};
use std::io::BufRead;
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  sim run --seed 1 scenarios/raft/figure8.json
  sim run --seed 7 scenarios/kv/persist-partition-unreliable.json --trace run.jsonl --timeline
  sim replay run.jsonl
  sim view run.jsonl -o run.html
  sim fuzz scenarios/raft/*.json --seeds 1..1000 --out failures/
  sim shrink failures/figure8-seed-17.jsonl
  sim lincheck ../shared/histories/porcupine/kv/c10-ok.txt
  sim power --seeds 1..100 --report power.jsonl

Exit codes: 0 all checks held, 1 a check failed (a panic counts; or a replay
            diverged), 2 bad input or usage (a truncated trace too), 3 unknown: no
            check failed but one could not decide (never a pass). `sim fuzz` and
            `sim merge`: 1 if any run failed, else 3 if any was unknown, else 0.";

/// Deterministic simulation of distributed systems: run scenarios from a seed, record and
/// replay traces, check linearizability.
#[derive(Parser, Debug)]
#[command(name = "sim", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one scenario file with one seed and print a summary.
    #[command(
        after_help = "Example:\n  sim run --seed 1 scenarios/raft/figure8.json --trace run.jsonl"
    )]
    Run {
        /// The run's seed: every random decision derives from it.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the run's JSON Lines trace here (zstd-compressed if the name ends in `.zst`).
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Print an aligned text timeline of the run after the summary.
        #[arg(long)]
        timeline: bool,
        /// The scenario file.
        file: PathBuf,
    },
    /// Re-execute the nodes of a recorded trace and check that every output matches.
    #[command(after_help = "Example:\n  sim replay run.jsonl")]
    Replay {
        /// A trace written by `sim run --trace` (plain or `.zst`).
        trace: PathBuf,
    },
    /// Run every scenario on every seed of a range, in parallel; save failing traces.
    Fuzz(crate::fuzz::FuzzArgs),
    /// Draw a trace: a self-contained HTML space-time diagram, or a text timeline.
    #[command(
        after_help = "Examples:\n  sim view run.jsonl -o run.html\n  sim view --text run.jsonl"
    )]
    View(crate::view::ViewArgs),
    /// Shrink a failing trace to a smaller scenario that fails the same way.
    Shrink(crate::shrink::ShrinkArgs),
    /// Merge fuzz reports of shards into one.
    Merge(crate::fuzz::MergeArgs),
    /// Check one history file for linearizability.
    Lincheck(crate::histories::cmd::LincheckArgs),
    /// Measure the testbed's power: run every catalog bug against scenarios over seeds, and
    /// report which are caught, how often, how soon and by which check.
    Power(crate::power::PowerArgs),
    /// Coverage-guided exploration: branch runs that reached rare protocol events, with fresh
    /// randomness after the branch point, to find rare bugs in fewer runs than random seeds.
    Explore(crate::explore::ExploreArgs),
    /// Benchmarks of the tool itself: `sim bench traces` (trace size, tracing and replay
    /// cost), `sim bench speed` (the speed goals' figures).
    #[command(
        after_help = "Examples:\n  sim bench traces scenarios/kv/snapshot-recover-many-clients.json\n  sim bench speed --no-memory"
    )]
    Bench(crate::bench::BenchArgs),
}

/// Parses the arguments and runs the command; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Run {
            seed,
            trace,
            timeline,
            file,
        } => cmd_run(seed, trace, timeline, &file),
        Command::Replay { trace } => cmd_replay(&trace),
        Command::Fuzz(args) => crate::fuzz::run(&args),
        Command::Merge(args) => crate::fuzz::merge(&args),
        Command::View(args) => crate::view::run(&args),
        Command::Shrink(args) => crate::shrink::run(&args),
        Command::Lincheck(args) => crate::histories::cmd::run(&args),
        Command::Power(args) => crate::power::run(&args),
        Command::Explore(args) => crate::explore::run(&args),
        Command::Bench(args) => crate::bench::run(&args),
    }
}

fn bad_input(msg: impl std::fmt::Display) -> i32 {
    eprintln!("error: {msg}");
    2
}

fn cmd_run(seed: u64, trace: Option<PathBuf>, timeline: bool, file: &std::path::Path) -> i32 {
    // The timeline is drawn from a trace: record one to a temporary file if none was asked for.
    let temp = (timeline && trace.is_none()).then(|| {
        std::env::temp_dir().join(format!("detsim-timeline-{}.jsonl", std::process::id()))
    });
    let code = cmd_run_inner(seed, trace.clone().or(temp.clone()), temp.is_none(), file);
    if timeline && code != 2 {
        let path = trace.or(temp.clone()).expect("a trace was written");
        match crate::view::timeline_file(&path, 0) {
            Ok(t) => print!("{t}"),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    if let Some(t) = temp {
        let _ = std::fs::remove_file(t);
    }
    code
}

fn cmd_run_inner(
    seed: u64,
    trace: Option<PathBuf>,
    show_trace: bool,
    file: &std::path::Path,
) -> i32 {
    let sc = match Scenario::load(file) {
        Ok(sc) => sc,
        Err(e) => return bad_input(e),
    };
    let sink = match &trace {
        Some(path) => match TraceSink::create(path) {
            Ok(sink) => Some(sink),
            Err(e) => return bad_input(format!("{}: cannot create trace: {e}", path.display())),
        },
        None => None,
    };
    let source = file.display().to_string();
    let outcome = match run_traced(&sc, seed, &source, sink) {
        Ok(o) => o,
        Err(e) => return bad_input(e),
    };
    let account = if outcome.result.violation.is_some() {
        account_of_run(&sc, seed, &source, trace.as_deref())
    } else {
        String::new()
    };
    print_summary(
        &sc,
        &source,
        seed,
        &outcome,
        trace.as_deref().filter(|_| show_trace),
        &account,
    );
    outcome.result.verdict.exit_code()
}

/// The causal account of a failed run (`crate::explain`): from its trace if one was written,
/// else from a trace of the same run recorded again to a temporary file (the run is
/// deterministic, so it fails the same way).
fn account_of_run(
    sc: &Scenario,
    seed: u64,
    source: &str,
    trace: Option<&std::path::Path>,
) -> String {
    if let Some(path) = trace {
        return crate::explain::account_text(path);
    }
    let temp = std::env::temp_dir().join(format!("detsim-explain-{}.jsonl", std::process::id()));
    let account = match TraceSink::create(&temp) {
        Ok(sink) => match run_traced(sc, seed, source, Some(sink)) {
            Ok(_) => crate::explain::account_text(&temp),
            Err(_) => String::new(),
        },
        Err(_) => String::new(),
    };
    let _ = std::fs::remove_file(&temp);
    account
}

/// The human summary of one run; `account` (the violation's causal account, or empty) goes
/// right after the verdict line.
pub fn print_summary(
    sc: &Scenario,
    source: &str,
    seed: u64,
    o: &Outcome,
    trace: Option<&std::path::Path>,
    account: &str,
) {
    let r = &o.result;
    let s = &r.stats;
    println!("scenario  {} ({source}), seed {seed}", sc.name);
    match (&r.verdict, &r.violation) {
        (Verdict::Ok, _) => println!("result    ok: all checks held"),
        (_, Some(v)) => println!("result    VIOLATION: {v}"),
        (Verdict::Unknown, None) => {
            for u in &r.unknown {
                println!("result    UNKNOWN: {u}");
            }
        }
        (Verdict::Violation, None) => println!("result    VIOLATION"),
    }
    print!("{account}");
    println!(
        "virtual   {} simulated, {} events, {} node steps",
        fmt_time(r.end_time),
        s.events,
        s.steps
    );
    println!(
        "messages  {} sent ({} bytes), {} delivered, {} dropped ({} random, {} partition, {} to a crashed node), {} duplicated",
        s.messages_sent,
        s.bytes_sent,
        s.messages_delivered,
        s.dropped(),
        s.dropped_random,
        s.dropped_partition,
        s.dropped_crashed,
        s.duplicated
    );
    println!(
        "faults    {} applied ({} crashes, {} restarts)",
        s.faults, s.crashes, s.restarts
    );
    if o.drawn.as_object().is_some_and(|m| !m.is_empty()) {
        println!("drawn     {}", o.drawn);
    }
    let undecided: Vec<&str> = r.unknown.iter().map(|u| u.check.as_str()).collect();
    let verdict = match r.verdict {
        Verdict::Violation => "checked until the violation".to_string(),
        Verdict::Unknown => format!("none failed; undecided: {}", undecided.join(", ")),
        Verdict::Ok => "held".to_string(),
    };
    println!("checks    {} ({verdict})", o.checks.join(", "));
    if let Some(path) = trace {
        println!(
            "trace     {} (replay: sim replay {})",
            path.display(),
            path.display()
        );
        if r.verdict != Verdict::Ok {
            println!(
                "view      sim view {} -o {}",
                path.display(),
                crate::view::page_path(path).display()
            );
        }
    } else if r.verdict != Verdict::Ok {
        println!("reproduce sim run --seed {seed} {source} --trace seed-{seed}.jsonl");
        println!("view      then: sim view seed-{seed}.jsonl -o seed-{seed}.html");
    }
}

fn cmd_replay(path: &std::path::Path) -> i32 {
    let input = match files::open(path) {
        Ok(t) => t,
        Err(e) => return bad_input(format!("{}: cannot read: {e}", path.display())),
    };
    let mut trace = match TraceReader::new(input) {
        Ok(t) => t,
        Err(e) => return bad_input(format!("{}: {e}", path.display())),
    };
    match replay_trace(&mut trace) {
        Err(e) => bad_input(format!("{}: {e}", path.display())),
        Ok(Ok(summary)) => {
            let Some((verdict, violation)) = trace.result() else {
                // A trace cut short (the writer died) is never "ok": what it would have
                // recorded next is not known.
                return bad_input(format!(
                    "{}: line {}: the trace ends without a result record: it is truncated (the run that wrote it did not finish), so it cannot be checked; its {} steps replayed without a difference",
                    path.display(),
                    trace.last_line(),
                    summary.steps
                ));
            };
            let panics = if summary.panics > 0 {
                ", and the recorded panic reproduces (same message and place)".to_string()
            } else {
                String::new()
            };
            println!(
                "replay    ok: {} steps and {} outputs match the trace {}{panics}",
                summary.steps,
                summary.outputs,
                path.display()
            );
            match violation {
                Some(v) => {
                    println!("recorded  {}: {v}", verdict.as_str());
                    print!("{}", crate::explain::account_text(path));
                }
                None => println!("recorded  {}", verdict.as_str()),
            }
            for u in trace.undecided() {
                println!("recorded  {u}");
            }
            0
        }
        Ok(Err(d)) => {
            println!(
                "replay    DIVERGED at event {} (line {} of {}), node {}: {}",
                d.event,
                d.line,
                path.display(),
                d.node,
                d.what
            );
            println!("  recorded: {}", d.expected);
            println!("  replayed: {}", d.actual);
            println!("  neighbouring events:");
            // Read the file again for the lines around the divergence (a large trace is never
            // held whole).
            let lo = d.line.saturating_sub(3).max(1);
            let hi = d.line + 2;
            if let Ok(input) = files::open(path) {
                for (i, line) in input.split(b'\n').enumerate().take(hi) {
                    let no = i + 1;
                    let Ok(line) = line else { break };
                    if no < lo {
                        continue;
                    }
                    let line = String::from_utf8_lossy(&line);
                    let mark = if no == d.line { ">" } else { " " };
                    let cut: String = line.chars().take(240).collect();
                    let ell = if cut.len() < line.len() { " ..." } else { "" };
                    println!("  {mark}{no:>6} {cut}{ell}");
                }
            }
            1
        }
    }
}
