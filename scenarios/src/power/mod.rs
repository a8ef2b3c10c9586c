//! `sim power`: would the testbed have found my bug? Each catalog bug is switched on, one at a
//! time, and run against scenario files over a range of seeds; a bug is caught by a run whose
//! verdict is a violation. One row per bug says whether it was caught, on what share of the
//! runs, after how many runs the first catch came, which property fired first (and whether it
//! is a generic property or a lab assertion), and how small the first failure shrinks. The
//! correct build runs the same campaign as a baseline: any failure there is a false alarm.
//!
//! Runs are numbered per bug in (seed, file) order, so "runs to the first catch" counts every
//! file once per seed. The numbers are a function of the arguments alone, whatever `--jobs`.

pub mod classify;
mod modes;
mod report;
#[cfg(test)]
mod tests;

use crate::catalog::CatalogBug;
use crate::fuzz::parse_seeds;
use crate::run::run_scenario;
use crate::scenario::{Scenario, SystemKind};
use classify::{classify, Class};
pub use modes::Mode;
use report::{BugRow, FirstCatch, ShrunkSize};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The profiles a campaign runs by default: the swarm profiles (with and without PreVote,
/// CheckQuorum and ReadIndex reads, whose bugs only act where they are on), and the lab
/// scenarios whose faults reach deepest (the two Figure 8 tests for Raft; the hardest 3B
/// test for KV, and its 3A partition test with ReadIndex reads), and the lease reads under
/// clock drift within their bound (a swarm profile, and the worst case of the bound), and
/// the two moments their rules protect them (leader stickiness, a lease counted from when
/// its round left).
pub const DEFAULT_PROFILES: &[&str] = &[
    "scenarios/fuzz/raft-swarm.json",
    "scenarios/fuzz/kv-swarm.json",
    "scenarios/fuzz/kv-swarm-snapshots.json",
    "scenarios/fuzz/raft-swarm-prevote.json",
    "scenarios/fuzz/kv-swarm-read-index.json",
    "scenarios/raft/figure8.json",
    "scenarios/raft/figure8-unreliable.json",
    "scenarios/kv/snapshot-unreliable-recover-concurrent-partition-linearizable.json",
    "scenarios/kv/read-index-partition-unreliable-linearizable.json",
    "scenarios/fuzz/kv-swarm-lease.json",
    "scenarios/kv/lease-slow-leader-fast-followers.json",
    "scenarios/kv/lease-vote-while-leader-heard.json",
    "scenarios/kv/lease-late-answers.json",
];

/// Options of `sim power`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  sim power --list
  sim power --seeds 1..100 --jobs 2 --report power.jsonl
  sim power --bugs vote-not-persisted,commit-old-terms --profiles scenarios/fuzz/raft-swarm.json --seeds 1..2000
  sim power --first-catch --seeds 1..400 --shrink-runs 0     (CI: every bug within its budget)
  sim power --mode compare --profiles scenarios/fuzz/raft-swarm.json,scenarios/fuzz/kv-swarm.json,scenarios/fuzz/kv-swarm-snapshots.json --seeds 1..400

One row per bug: caught or not, the share of runs that caught it, the runs to the first catch,
the property that fired first and its class (generic: safety, linearizability, exactly-once,
replica agreement, liveness after heal, assertion; or lab), and the size of the first
failure before (up to the violation) and after shrinking. The correct build (\"(none)\") runs
the same campaign: a failure there is a false alarm. Exit 1 if any bug escapes or the correct
build fails, 2 on bad input, else 0.")]
pub struct PowerArgs {
    /// Bugs to measure, by id (default: the whole catalog).
    #[arg(long, value_delimiter = ',')]
    pub bugs: Vec<String>,
    /// Scenario files to run each bug against (default: the swarm profiles and the lab
    /// scenarios that reach deepest). A KV bug runs only under KV scenarios.
    #[arg(long, value_delimiter = ',')]
    pub profiles: Vec<PathBuf>,
    /// Seed range, inclusive, run on every file.
    #[arg(long, default_value = "1..100")]
    pub seeds: String,
    /// Worker threads (default: the machine's cores). Results do not depend on it.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Write one JSON line per bug here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print the catalog and exit.
    #[arg(long)]
    pub list: bool,
    /// Stop each bug at its first catch (the share is then over the runs made).
    #[arg(long)]
    pub first_catch: bool,
    /// Shrink each bug's first failure with at most this many candidate runs (0: don't).
    #[arg(long, default_value_t = 200)]
    pub shrink_runs: usize,
    /// Skip the correct build's baseline runs.
    #[arg(long)]
    pub no_baseline: bool,
    /// Write each bug's first catch (bug, file, seed, property) here: the pins the test suite
    /// re-runs (`traces/power-pins.json`), so a weakened check fails a test.
    #[arg(long)]
    pub pins: Option<PathBuf>,
    /// How to search for each bug: consecutive seeds (random), `sim explore`'s guided search
    /// within the same budget (explore), or both side by side (compare).
    #[arg(long, value_enum, default_value_t = Mode::Random)]
    pub mode: Mode,
}

/// One bug of a campaign, or the correct build.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Subject {
    Correct,
    Bug(CatalogBug),
}

impl Subject {
    fn id(self) -> &'static str {
        match self {
            Subject::Correct => "(none)",
            Subject::Bug(b) => b.id(),
        }
    }
    fn runs_under(self, system: SystemKind) -> bool {
        match self {
            Subject::Correct => true,
            Subject::Bug(b) => match system {
                SystemKind::Pingpong => false,
                SystemKind::Raft => !b.kv_only(),
                SystemKind::Kv => true,
            },
        }
    }
}

/// What one run of one subject found.
#[derive(Clone, Debug)]
struct RunOutcome {
    verdict: sim::Verdict,
    property: Option<String>,
    class: Option<Class>,
    detail: String,
    event: u64,
}

/// One subject's plan: its files (indices into the campaign's scenarios) and outcomes by run.
struct Plan {
    subject: Subject,
    files: Vec<usize>,
    outcomes: Mutex<Vec<Option<RunOutcome>>>,
    /// The lowest run index known to catch the subject (usize::MAX while none).
    first: AtomicUsize,
}

/// Runs the campaign; returns the exit code.
pub fn run(args: &PowerArgs) -> i32 {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn resolve(path: &str) -> PathBuf {
    let here = PathBuf::from(path);
    if here.exists() {
        return here;
    }
    // Run from elsewhere than the repository's root: the files of the tree this was built from.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// What a campaign found: one row per subject (the correct build first, unless left out).
pub struct Campaign {
    pub rows: Vec<BugRow>,
    pub files: Vec<PathBuf>,
    pub seeds: (u64, u64),
    pub jobs: usize,
    pub wall_s: f64,
}

fn run_inner(args: &PowerArgs) -> Result<i32, String> {
    if args.list {
        report::print_catalog();
        return Ok(0);
    }
    if args.mode != Mode::Random {
        return modes::run(args);
    }
    let c = campaign(args)?;
    let rows = &c.rows;
    let (first_seed, last_seed) = c.seeds;
    report::print_table(rows);
    let total_runs: usize = rows.iter().map(|r| r.runs).sum();
    println!(
        "power     {} bugs, {} files, seeds {first_seed}..{last_seed}: {total_runs} runs in {:.1} s ({:.0} runs/s, {} jobs){}",
        rows.iter().filter(|r| r.bug != "(none)").count(),
        c.files.len(),
        c.wall_s,
        total_runs as f64 / c.wall_s.max(1e-9),
        c.jobs,
        if args.first_catch { ", stopping each bug at its first catch" } else { "" },
    );
    report::print_summary(rows);
    if let Some(path) = &args.report {
        report::write_jsonl(path, rows)?;
    }
    if let Some(path) = &args.pins {
        report::write_pins(path, rows)?;
    }
    let escaped = rows.iter().any(|r| r.bug != "(none)" && r.caught == 0);
    let false_alarm = rows.iter().any(|r| r.bug == "(none)" && r.caught > 0);
    Ok(if escaped || false_alarm { 1 } else { 0 })
}

/// What every mode of a campaign reads from its arguments, validated.
struct Inputs {
    first_seed: u64,
    last_seed: u64,
    jobs: usize,
    bugs: Vec<CatalogBug>,
    files: Vec<PathBuf>,
    scenarios: Vec<Scenario>,
}

fn inputs(args: &PowerArgs) -> Result<Inputs, String> {
    let (first_seed, last_seed) = parse_seeds(&args.seeds)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return Err("--jobs: must be at least 1".into());
    }
    let bugs: Vec<CatalogBug> = if args.bugs.is_empty() {
        CatalogBug::all()
    } else {
        args.bugs
            .iter()
            .map(|id| id.parse::<CatalogBug>().map_err(|e| format!("--bugs: {e}")))
            .collect::<Result<_, _>>()?
    };
    let files: Vec<PathBuf> = if args.profiles.is_empty() {
        DEFAULT_PROFILES.iter().map(|p| resolve(p)).collect()
    } else {
        args.profiles.clone()
    };
    let mut scenarios = Vec::new();
    for f in &files {
        let sc = Scenario::load(f).map_err(|e| e.to_string())?;
        if !sc.bugs.is_empty() {
            return Err(format!(
                "{}: bugs: a power profile must not switch bugs on itself ({:?})",
                f.display(),
                sc.bugs
            ));
        }
        scenarios.push(sc);
    }
    Ok(Inputs {
        first_seed,
        last_seed,
        jobs,
        bugs,
        files,
        scenarios,
    })
}

/// Runs a campaign (no printing but the progress bar).
pub fn campaign(args: &PowerArgs) -> Result<Campaign, String> {
    let Inputs {
        first_seed,
        last_seed,
        jobs,
        bugs,
        files,
        scenarios,
    } = inputs(args)?;
    let seeds: Vec<u64> = (first_seed..=last_seed).collect();
    let mut subjects: Vec<Subject> = bugs.into_iter().map(Subject::Bug).collect();
    if !args.no_baseline {
        subjects.insert(0, Subject::Correct);
    }
    let plans: Vec<Plan> = subjects
        .iter()
        .map(|&subject| {
            let files: Vec<usize> = (0..scenarios.len())
                .filter(|&i| subject.runs_under(scenarios[i].system))
                .collect();
            Plan {
                subject,
                outcomes: Mutex::new(vec![None; files.len() * seeds.len()]),
                files,
                first: AtomicUsize::new(usize::MAX),
            }
        })
        .collect();
    if let Some(p) = plans.iter().find(|p| p.files.is_empty()) {
        return Err(format!(
            "--profiles: no file can run {} (a KV bug needs a KV scenario)",
            p.subject.id()
        ));
    }
    // Jobs interleave the subjects run by run, so every row fills in at the same pace.
    let mut work: Vec<(usize, usize)> = Vec::new();
    let longest = plans
        .iter()
        .map(|p| p.files.len() * seeds.len())
        .max()
        .unwrap_or(0);
    for k in 0..longest {
        for (s, p) in plans.iter().enumerate() {
            if k < p.files.len() * seeds.len() {
                work.push((s, k));
            }
        }
    }
    let start = Instant::now();
    let bar = progress(work.len() as u64);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(work.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(s, k)) = work.get(i) else { return };
                let plan = &plans[s];
                if !(args.first_catch && plan.first.load(Ordering::SeqCst) < k) {
                    let (file, seed) = (
                        plan.files[k % plan.files.len()],
                        seeds[k / plan.files.len()],
                    );
                    let outcome = run_one(plan.subject, &scenarios[file], &files[file], seed);
                    if outcome.verdict == sim::Verdict::Violation {
                        plan.first.fetch_min(k, Ordering::SeqCst);
                    }
                    plan.outcomes.lock().expect("no worker panics")[k] = Some(outcome);
                }
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(bar) = &bar {
                    bar.set_position(n as u64);
                }
            });
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let mut rows: Vec<BugRow> = plans
        .iter()
        .map(|p| summarize(p, &scenarios, &files, &seeds, args.first_catch))
        .collect();
    if args.shrink_runs > 0 {
        shrink_first_catches(
            &mut rows,
            &plans,
            &scenarios,
            &seeds,
            jobs,
            args.shrink_runs,
        );
    }
    Ok(Campaign {
        rows,
        files,
        seeds: (first_seed, last_seed),
        jobs,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// The scenario with `subject` switched on.
fn with_bug(subject: Subject, sc: &Scenario) -> Scenario {
    let mut sc = sc.clone();
    if let Subject::Bug(b) = subject {
        sc.bugs = vec![b.id().to_string()];
    }
    sc
}

fn run_one(subject: Subject, sc: &Scenario, file: &Path, seed: u64) -> RunOutcome {
    let sc = with_bug(subject, sc);
    let swarm = sc.faults.swarm.is_some();
    match run_scenario(&sc, seed, &file.display().to_string(), None) {
        Ok(o) => {
            let r = o.result;
            let (property, detail, event) = match (&r.violation, r.unknown.first()) {
                (Some(v), _) => (Some(v.failure.property.clone()), v.to_string(), v.event),
                (None, Some(u)) => (Some(u.check.clone()), u.to_string(), u.event),
                (None, None) => (None, String::new(), 0),
            };
            let class = r
                .violation
                .as_ref()
                .map(|v| classify(&v.failure.property, swarm));
            RunOutcome {
                verdict: r.verdict,
                property,
                class,
                detail,
                event,
            }
        }
        Err(e) => RunOutcome {
            verdict: sim::Verdict::Violation,
            property: Some("harness error".into()),
            class: Some(Class::Lab),
            detail: e,
            event: 0,
        },
    }
}

fn summarize(
    p: &Plan,
    scenarios: &[Scenario],
    files: &[PathBuf],
    seeds: &[u64],
    first_catch: bool,
) -> BugRow {
    let outcomes = p.outcomes.lock().expect("no worker panics");
    let mut row = BugRow::new(p.subject_id(), p.layer(), p.rule());
    // Stopping at the first catch, runs after it may or may not have happened (timing): count
    // only the runs up to it, so the row does not depend on --jobs.
    let upto = match p.first.load(Ordering::SeqCst) {
        k if first_catch && k != usize::MAX => k + 1,
        _ => outcomes.len(),
    };
    for (k, o) in outcomes.iter().enumerate().take(upto) {
        let Some(o) = o else { continue };
        row.runs += 1;
        match o.verdict {
            sim::Verdict::Ok => {}
            sim::Verdict::Unknown => row.unknown += 1,
            sim::Verdict::Violation => {
                row.caught += 1;
                let class = o.class.unwrap_or(Class::Lab);
                if class.generic() {
                    row.caught_generic += 1;
                }
                *row.by_class.entry(class.name().to_string()).or_default() += 1;
                let prop = o.property.clone().unwrap_or_default();
                *row.by_property.entry(prop.clone()).or_default() += 1;
                if row.first.is_none() {
                    let file = p.files[k % p.files.len()];
                    row.first = Some(FirstCatch {
                        run: k + 1,
                        file: files[file].display().to_string(),
                        scenario: scenarios[file].name.clone(),
                        seed: seeds[k / p.files.len()],
                        property: prop,
                        class,
                        detail: o.detail.clone(),
                        event: o.event,
                        shrunk: None,
                    });
                }
            }
        }
    }
    row
}

impl Plan {
    fn subject_id(&self) -> &'static str {
        self.subject.id()
    }
    fn layer(&self) -> String {
        match self.subject {
            Subject::Correct => "-".into(),
            Subject::Bug(b) => b.layer(),
        }
    }
    fn rule(&self) -> &'static str {
        match self.subject {
            Subject::Correct => "the correct build: any failure is a false alarm",
            Subject::Bug(b) => b.rule(),
        }
    }
}

/// Shrinks every bug's first failure (in parallel across bugs, each shrink on one thread).
fn shrink_first_catches(
    rows: &mut [BugRow],
    plans: &[Plan],
    scenarios: &[Scenario],
    seeds: &[u64],
    jobs: usize,
    max_runs: usize,
) {
    let todo: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].first.is_some() && plans[i].subject != Subject::Correct)
        .collect();
    let results: Mutex<Vec<(usize, Result<ShrunkSize, String>)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let rows_ref = &*rows;
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(todo.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&r) = todo.get(i) else { return };
                let first = rows_ref[r].first.as_ref().expect("filtered");
                let plan = &plans[r];
                let k = first.run - 1;
                let sc = with_bug(plan.subject, &scenarios[plan.files[k % plan.files.len()]]);
                let seed = seeds[k / plan.files.len()];
                let res = crate::shrink::shrink(&sc, seed, max_runs).map(|s| ShrunkSize {
                    events_before: s.violation_event_before,
                    events_after: s.violation_event_after,
                    faults_before: s.faults_before,
                    faults_after: s.faults_after,
                    property_kept: s.property,
                    runs: s.runs,
                });
                results.lock().expect("no worker panics").push((r, res));
            });
        }
    });
    for (r, res) in results.into_inner().expect("no worker panics") {
        if let Some(first) = &mut rows[r].first {
            first.shrunk = Some(res);
        }
    }
}

fn progress(total: u64) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} runs [{elapsed_precise} < {eta}]",
            )
            .expect("a valid template"),
        );
        bar
    })
}
