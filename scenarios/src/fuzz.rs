//! `sim fuzz`: every scenario on every seed, in parallel worker threads (each run stays
//! single-threaded), with a report whose content does not depend on the number of workers.

use crate::run::run_scenario;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Options of `sim fuzz`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  sim fuzz scenarios/raft/*.json --seeds 1..200
  sim fuzz scenarios/fuzz/*.json --seeds 1..10000 --jobs 2 --report fuzz.jsonl --out failures/
  sim fuzz scenarios/raft/*.json --seeds 1..10000 --shard 3/8 --report shard-3.jsonl
  sim merge shard-*.jsonl -o fuzz.jsonl

Each run's verdict is ok, violation (a check failed; a panic of the code under test is one)
or unknown (no check failed, but one could not decide). Exit 1 if any run had a violation,
else 3 if any was unknown, else 0; 2 on bad input. Campaigns should use a build with the
invariants on: cargo build --profile fuzz --bin sim (then target/fuzz/sim).")]
pub struct FuzzArgs {
    /// Scenario files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Seed range, inclusive: `1..10000` (or a single seed).
    #[arg(long, default_value = "1..100")]
    pub seeds: String,
    /// Worker threads (default: the machine's cores). Results do not depend on it.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only slice I of N of the seed range (1-based), e.g. `--shard 2/4`.
    #[arg(long)]
    pub shard: Option<String>,
    /// Write one JSON line per run here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Save the trace of every failing run in this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop at the first failure (in scenario, seed order).
    #[arg(long)]
    pub until_failure: bool,
    /// Stop starting runs after this many seconds of wall time.
    #[arg(long)]
    pub time_budget: Option<f64>,
    /// Shrink each failure found (needs --out): writes NAME-seed-N.min.json and .min.jsonl.
    #[arg(long, requires = "out")]
    pub shrink: bool,
    /// Report coverage: the marks (abstract protocol events, `name/context`) each run reached,
    /// in the report lines, and a table of how many runs reached each.
    #[arg(long)]
    pub coverage: bool,
}

/// One line of a fuzz report. Everything but `wall_ms` is a function of (file, seed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportLine {
    pub file: String,
    pub scenario: String,
    pub seed: u64,
    /// `ok`, `violation` or `unknown`.
    pub verdict: String,
    /// The property violated (`panic` for a panic), or for `unknown` the first undecided check.
    #[serde(default)]
    pub property: Option<String>,
    /// The violation, or for `unknown` what was undecided.
    #[serde(default)]
    pub detail: Option<String>,
    /// Virtual time at the end of the run, µs.
    pub virtual_us: u64,
    pub events: u64,
    /// Wall-clock milliseconds this run took (the only field that varies between machines).
    pub wall_ms: f64,
    /// With `--coverage`: the marks the run reached, as `name/context`, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage: Vec<String>,
}

/// Parses `A..B` (inclusive) or `A`.
pub fn parse_seeds(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--seeds: expected A..B or A with whole numbers, got {s:?}");
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (
            a.trim().parse().map_err(|_| bad())?,
            b.trim_start_matches('=')
                .trim()
                .parse()
                .map_err(|_| bad())?,
        ),
        None => {
            let a = s.trim().parse().map_err(|_| bad())?;
            (a, a)
        }
    };
    if a > b {
        return Err(format!("--seeds: the range {a}..{b} is empty"));
    }
    Ok((a, b))
}

/// The `I`-th of `N` contiguous slices of `first..=last`, 1-based.
pub fn shard_range(first: u64, last: u64, shard: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--shard: expected I/N with 1 <= I <= N, got {shard:?}");
    let (i, n) = shard.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    let total = last - first + 1;
    let lo = first + total * (i - 1) / n;
    let hi = first + total * i / n;
    Ok((lo, hi.saturating_sub(1).max(lo.saturating_sub(1))))
}

struct Job {
    index: usize,
    file: usize,
    seed: u64,
}

/// Runs the fuzz campaign; returns the exit code.
pub fn run(args: &FuzzArgs) -> i32 {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn run_inner(args: &FuzzArgs) -> Result<i32, String> {
    let (first, last) = parse_seeds(&args.seeds)?;
    let (first, last) = match &args.shard {
        Some(s) => shard_range(first, last, s)?,
        None => (first, last),
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return Err("--jobs: must be at least 1".into());
    }
    // Files in a canonical order, so reports of shards and of one run line up.
    let mut files: Vec<PathBuf> = args.files.clone();
    files.sort();
    files.dedup();
    let mut scenarios = Vec::new();
    for f in &files {
        scenarios.push(Scenario::load(f).map_err(|e| e.to_string())?);
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    }
    let mut report: Option<Box<dyn Write>> = match &args.report {
        Some(p) => Some(Box::new(BufWriter::new(
            std::fs::File::create(p)
                .map_err(|e| format!("{}: cannot create report: {e}", p.display()))?,
        ))),
        None => None,
    };
    let seeds_per_file = if last >= first { last - first + 1 } else { 0 };
    let mut work = Vec::new();
    for file in 0..files.len() {
        for seed in first..first + seeds_per_file {
            work.push(Job {
                index: work.len(),
                file,
                seed,
            });
        }
    }
    let total = work.len();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let budget = args.time_budget.map(Duration::from_secs_f64);
    let progress = progress_bar(total as u64);
    let (tx, rx) = mpsc::channel::<(usize, Result<ReportLine, String>)>();
    let mut lines: BTreeMap<usize, ReportLine> = BTreeMap::new();
    let mut error = None;
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(total.max(1)) {
            let tx = tx.clone();
            let (work, scenarios, files, next, stop) = (&work, &scenarios, &files, &next, &stop);
            scope.spawn(move || loop {
                if stop.load(Ordering::SeqCst) || budget.is_some_and(|b| start.elapsed() >= b) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = work.get(i) else { return };
                let t0 = Instant::now();
                let file = files[job.file].display().to_string();
                let res = run_scenario(&scenarios[job.file], job.seed, &file, None).map(|o| {
                    let r = o.result;
                    let (property, detail) = match (&r.violation, r.unknown.first()) {
                        (Some(v), _) => (Some(v.failure.property.clone()), Some(v.to_string())),
                        (None, Some(u)) => (Some(u.check.clone()), Some(join_undecided(&r))),
                        (None, None) => (None, None),
                    };
                    ReportLine {
                        file: file.clone(),
                        scenario: scenarios[job.file].name.clone(),
                        seed: job.seed,
                        verdict: r.verdict.as_str().into(),
                        property,
                        detail,
                        virtual_us: r.end_time,
                        events: r.stats.events,
                        wall_ms: (t0.elapsed().as_secs_f64() * 1e5).round() / 100.0,
                        coverage: if args.coverage {
                            r.marks
                                .iter()
                                .map(|s| format!("{}/{}", s.mark.name, s.mark.context))
                                .collect()
                        } else {
                            Vec::new()
                        },
                    }
                });
                if tx.send((job.index, res)).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let (mut failures, mut unknown) = (0, 0);
        let mut done = 0u64;
        for (index, res) in rx {
            done += 1;
            match res {
                Ok(line) => {
                    unknown += u64::from(line.verdict == "unknown");
                    if is_failure(&line) {
                        failures += 1;
                        if args.until_failure {
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                    lines.insert(index, line);
                }
                Err(e) => {
                    error.get_or_insert(e);
                    stop.store(true, Ordering::SeqCst);
                }
            }
            progress.update(done, failures, unknown, start.elapsed());
        }
    });
    progress.finish();
    if let Some(e) = error {
        return Err(e);
    }
    // Keep the contiguous prefix of finished runs (a stop leaves later ones unfinished), and with
    // --until-failure, nothing after the first failure: the report then does not depend on timing.
    let mut kept: Vec<ReportLine> = Vec::new();
    for (expect, (index, line)) in lines.into_iter().enumerate() {
        if index != expect {
            break;
        }
        let failed = is_failure(&line);
        kept.push(line);
        if failed && args.until_failure {
            break;
        }
    }
    if let Some(w) = report.as_mut() {
        for line in &kept {
            let text = serde_json::to_string(line).expect("report lines serialize");
            writeln!(w, "{text}").map_err(|e| format!("writing the report: {e}"))?;
        }
        w.flush().map_err(|e| format!("writing the report: {e}"))?;
    }
    let failed: Vec<&ReportLine> = kept.iter().filter(|l| is_failure(l)).collect();
    let unknown: Vec<&ReportLine> = kept.iter().filter(|l| l.verdict == "unknown").collect();
    for line in failed.iter().chain(&unknown) {
        report_failure(
            args,
            line,
            &scenarios[files
                .iter()
                .position(|f| f.display().to_string() == line.file)
                .expect("known file")],
        )?;
    }
    if args.coverage {
        print_coverage(&kept);
    }
    let wall = start.elapsed().as_secs_f64();
    let events: u64 = kept.iter().map(|l| l.events).sum();
    println!(
        "fuzz      {} runs ({} scenarios, seeds {first}..{last}{}), {} failed, {} unknown, {} not run; {:.1} s wall, {:.0} runs/s, {:.2} M events/s, {jobs} jobs, {}",
        kept.len(),
        files.len(),
        args.shard.as_ref().map(|s| format!(", shard {s}")).unwrap_or_default(),
        failed.len(),
        unknown.len(),
        total - kept.len(),
        wall,
        kept.len() as f64 / wall.max(1e-9),
        events as f64 / wall.max(1e-9) / 1e6,
        if cfg!(debug_assertions) {
            "debug assertions on"
        } else {
            "debug assertions off (build with --profile fuzz to check them)"
        },
    );
    Ok(campaign_exit_code(failed.len(), unknown.len()))
}

/// How many runs reached each mark, rarest first.
fn print_coverage(lines: &[ReportLine]) {
    let mut reached: BTreeMap<&str, usize> = BTreeMap::new();
    for l in lines {
        for m in &l.coverage {
            *reached.entry(m.as_str()).or_default() += 1;
        }
    }
    let mut rows: Vec<(&str, usize)> = reached.into_iter().collect();
    rows.sort_by_key(|&(m, n)| (n, m));
    println!(
        "coverage  {} distinct marks over {} runs (runs reaching each, rarest first):",
        rows.len(),
        lines.len()
    );
    for (m, n) in rows {
        println!("          {n:>7}  {m}");
    }
}

/// A run that counts as a failure (a violation; unknown is neither a failure nor a pass).
fn is_failure(line: &ReportLine) -> bool {
    line.verdict != "ok" && line.verdict != "unknown"
}

/// 1 if any run failed, else 3 if any run was unknown, else 0.
pub fn campaign_exit_code(failed: usize, unknown: usize) -> i32 {
    match (failed, unknown) {
        (0, 0) => 0,
        (0, _) => 3,
        _ => 1,
    }
}

/// Every undecided check of a run, one after the other.
fn join_undecided(r: &sim::RunResult) -> String {
    let all: Vec<String> = r.unknown.iter().map(|u| u.to_string()).collect();
    all.join("; ")
}

/// Print a failure (or an unknown run) with the commands that reproduce it; save its trace
/// with `--out`; shrink it with `--shrink` (failures only: unknown is not a failure to keep).
fn report_failure(args: &FuzzArgs, line: &ReportLine, sc: &Scenario) -> Result<(), String> {
    let unknown = line.verdict == "unknown";
    println!(
        "{}{} seed {}: {}",
        if unknown { "UNKNOWN   " } else { "FAILED    " },
        line.file,
        line.seed,
        line.detail.as_deref().unwrap_or("")
    );
    let Some(dir) = &args.out else {
        println!(
            "  reproduce: sim run --seed {} {} --trace seed-{}.jsonl",
            line.seed, line.file, line.seed
        );
        return Ok(());
    };
    let stem = Path::new(&line.file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = dir.join(format!("{stem}-seed-{}.jsonl", line.seed));
    let f = std::fs::File::create(&path)
        .map_err(|e| format!("{}: cannot create: {e}", path.display()))?;
    let o = run_scenario(sc, line.seed, &line.file, Some(Box::new(BufWriter::new(f))))?;
    if o.result.verdict.as_str() != line.verdict {
        println!(
            "  WARNING:   the rerun with a trace ended {}, not {}: the run is not deterministic",
            o.result.verdict.as_str(),
            line.verdict
        );
    }
    println!("  trace:     {}", path.display());
    println!(
        "  reproduce: sim run --seed {} {} --trace {}",
        line.seed,
        line.file,
        path.display()
    );
    println!("  replay:    sim replay {}", path.display());
    println!(
        "  view:      sim view {} -o {}",
        path.display(),
        path.with_extension("html").display()
    );
    if args.shrink && !unknown {
        let min = path.with_extension("min.json");
        let code = crate::shrink::run(&crate::shrink::ShrinkArgs {
            trace: path.clone(),
            output: Some(min),
            max_runs: 2000,
        });
        if code != 0 {
            return Err(format!("{}: shrinking failed", path.display()));
        }
    }
    Ok(())
}

/// A progress bar on a terminal; a quiet line every 10% otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    last_decile: std::cell::Cell<u64>,
}

fn progress_bar(total: u64) -> Progress {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} runs, {msg} [{elapsed_precise} < {eta}]",
            )
            .expect("a valid template"),
        );
        bar
    });
    Progress {
        bar,
        total,
        last_decile: std::cell::Cell::new(0),
    }
}

impl Progress {
    fn update(&self, done: u64, failures: u64, unknown: u64, elapsed: Duration) {
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(format!(
                    "{failures} failed, {unknown} unknown, {rate:.0} runs/s"
                ));
            }
            None => {
                let decile = done * 10 / self.total.max(1);
                if decile > self.last_decile.get() {
                    self.last_decile.set(decile);
                    eprintln!(
                        "progress  {done}/{} runs, {failures} failed, {unknown} unknown, {rate:.0} runs/s",
                        self.total
                    );
                }
            }
        }
    }
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `sim merge`: shard reports into one, in the canonical (file, seed) order.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  sim merge shard-*.jsonl -o fuzz.jsonl\n\nExit 1 if any run had a violation, else 3 if any was unknown, else 0; 2 on bad input."
)]
pub struct MergeArgs {
    /// Reports written by `sim fuzz --report`.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the merged report here (default: standard output).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

/// Merges reports; exit 1 if any run failed, else 3 if any was unknown, else 0; 2 on bad
/// input (or a run reported twice).
pub fn merge(args: &MergeArgs) -> i32 {
    let mut all: BTreeMap<(String, u64), ReportLine> = BTreeMap::new();
    for path in &args.reports {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}: cannot read: {e}", path.display());
                return 2;
            }
        };
        for (i, l) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let line: ReportLine = match serde_json::from_str(l) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("error: {}: line {}: {e}", path.display(), i + 1);
                    return 2;
                }
            };
            let key = (line.file.clone(), line.seed);
            if all.insert(key, line).is_some() {
                eprintln!(
                    "error: {}: line {}: this file and seed are already in another report",
                    path.display(),
                    i + 1
                );
                return 2;
            }
        }
    }
    let mut out = String::new();
    for line in all.values() {
        out.push_str(&serde_json::to_string(line).expect("serializes"));
        out.push('\n');
    }
    let res = match &args.output {
        Some(p) => std::fs::write(p, &out).map_err(|e| format!("{}: {e}", p.display())),
        None => std::io::stdout()
            .write_all(out.as_bytes())
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = res {
        eprintln!("error: {e}");
        return 2;
    }
    let failed = all.values().filter(|l| is_failure(l)).count();
    let unknown = all.values().filter(|l| l.verdict == "unknown").count();
    eprintln!(
        "merged    {} runs from {} reports, {failed} failed, {unknown} unknown",
        all.len(),
        args.reports.len()
    );
    campaign_exit_code(failed, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_shards() {
        assert_eq!(parse_seeds("1..10000"), Ok((1, 10000)));
        assert_eq!(parse_seeds("7"), Ok((7, 7)));
        assert!(parse_seeds("10..1").is_err());
        assert!(parse_seeds("a..b").is_err());
        let shards: Vec<(u64, u64)> = (1..=3)
            .map(|i| shard_range(1, 10, &format!("{i}/3")).unwrap())
            .collect();
        assert_eq!(shards, vec![(1, 3), (4, 6), (7, 10)]);
        assert!(shard_range(1, 10, "0/3").is_err());
        assert!(shard_range(1, 10, "4/3").is_err());
    }
}
