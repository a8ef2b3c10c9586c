//! `sim explore`: coverage-guided exploration. Random seeds find common bugs fast and rare ones
//! almost never; the explorer keeps a corpus of runs that reached new coverage (marks: abstract
//! protocol events, `name/context`) and spends its budget on them: it branches a run at the
//! first occurrence of one of its rarest marks, keeping everything before that point exactly and
//! drawing everything after it (network delays and losses, reactive faults, timeouts, the
//! workload's choices) from a fresh seed. Because runs are deterministic, a branch is exact:
//! the run's prefix is re-executed, not approximated, and the branch is a normal scenario (with
//! `branches`) that `sim run`, `sim replay`, `sim shrink` and `sim view` take like any other.
//!
//! Decisions come from the explorer's own seeded stream and are made a batch at a time from the
//! results of earlier batches, in run order, so the same arguments give the same exploration on
//! any machine and with any `--jobs`.

mod corpus;
mod mutate;
#[cfg(test)]
mod tests;

use crate::run::run_scenario;
use crate::scenario::Scenario;
use corpus::{Corpus, Plan};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use sim::{Branch, Mark, Verdict};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Runs decided together: a fixed number, so decisions do not depend on `--jobs`.
pub const BATCH: usize = 16;

/// Options of `sim explore`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  sim explore scenarios/fuzz/raft-swarm.json --runs 1000
  sim explore scenarios/fuzz/raft-swarm.json --runs 500 --bugs commit-old-terms --until-failure --out failures/

The first 32 runs are plain seeds; after that half the runs stay plain seeds and the others
take a run that reached new coverage and either branch it at the first occurrence of a rare
mark (a fresh seed for everything after it, half the time with another seed's faults and
network too) or edit its fault schedule (drop, move, stretch, copy, add a crash or a
partition). Measured on the bug catalog it does not yet beat plain seeds: see README. A failing run is saved
(with --out) as NAME-explore-K.json, a scenario with its branch points, and NAME-explore-K.jsonl,
its trace; `sim run --seed S NAME-explore-K.json` reproduces it. At the end: coverage reached,
how it grew, and how many more runs a new mark would likely take. Exit 1 if a run failed, 3 if
one was unknown, else 0; 2 on bad input.")]
pub struct ExploreArgs {
    /// Scenario files (their seeds are explored in turn).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How many runs to make.
    #[arg(long, default_value_t = 1000)]
    pub runs: usize,
    /// The explorer's own seed (its decisions), also the first seed of its plain runs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: the machine's cores). Results do not depend on it.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Save failing runs (scenario with branches, and trace) in this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Switch on catalog bugs in every run (see `sim power --list`).
    #[arg(long, value_delimiter = ',')]
    pub bugs: Vec<String>,
    /// Stop at the first failing run (in run order).
    #[arg(long)]
    pub until_failure: bool,
}

/// One run the explorer made.
#[derive(Clone, Debug, Serialize)]
pub struct ExploreRun {
    /// 1-based, in run order.
    pub run: usize,
    pub file: String,
    pub seed: u64,
    pub branches: Vec<Branch>,
    /// The edited fault schedule, if the run had one.
    #[serde(skip)]
    pub schedule: Option<Vec<(sim::Time, sim::Fault)>>,
    pub verdict: &'static str,
    pub property: Option<String>,
    pub detail: Option<String>,
    /// Marks nobody had reached before this run.
    pub new_marks: Vec<String>,
    pub events: u64,
}

/// What an exploration found.
pub struct Exploration {
    pub runs: Vec<ExploreRun>,
    /// How many runs reached each mark.
    pub coverage: BTreeMap<Mark, usize>,
    /// `(runs made, distinct marks)` after each run that found a new mark.
    pub growth: Vec<(usize, usize)>,
    pub wall_s: f64,
    /// Seconds spent choosing runs (the explorer's own overhead).
    pub overhead_s: f64,
}

/// The name of a mark in reports: `name/context`.
pub fn mark_name(m: &Mark) -> String {
    format!("{}/{}", m.name, m.context)
}

/// The scenario a plan runs: its file's scenario, with the bugs switched on and its branches.
fn planned(base: &Scenario, bugs: &[String], plan: &Plan) -> Scenario {
    let mut sc = base.clone();
    if !bugs.is_empty() {
        sc.bugs = bugs.to_vec();
    }
    sc.branches = plan.branches.clone();
    if let Some(faults) = &plan.schedule {
        sc.faults.replace_schedule = Some(
            faults
                .iter()
                .map(|(t, fault)| sim::ScheduledFault {
                    at_ms: *t as f64 / 1000.0,
                    fault: fault.clone(),
                })
                .collect(),
        );
    }
    sc
}

/// Where the explorer may put faults in `sc`: its servers and its profiles' fault window.
fn window(sc: &Scenario) -> Option<mutate::Window> {
    let mut spans = Vec::new();
    if let Some(p) = &sc.faults.random {
        spans.push((p.from_ms, p.until_ms));
    }
    if let Some(p) = &sc.faults.swarm {
        spans.push((p.from_ms, p.until_ms));
    }
    let from = spans.iter().map(|s| s.0).reduce(f64::min)?;
    let until = spans.iter().map(|s| s.1).reduce(f64::max)?;
    (until > from && sc.servers > 0).then(|| mutate::Window {
        servers: sc.servers,
        from: sim::ms_to_us(from),
        until: sim::ms_to_us(until),
    })
}

/// Explores `scenarios` (loaded from `files`) for `runs` runs.
#[allow(clippy::too_many_arguments)]
pub fn explore(
    scenarios: &[Scenario],
    files: &[PathBuf],
    bugs: &[String],
    runs: usize,
    seed: u64,
    jobs: usize,
    until_failure: bool,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<Exploration, String> {
    let start = Instant::now();
    let mut overhead = 0.0;
    let mut corpus = Corpus::new(scenarios.iter().map(window).collect(), seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6578_706c_6f72_6572);
    let mut done: Vec<ExploreRun> = Vec::new();
    let mut coverage: BTreeMap<Mark, usize> = BTreeMap::new();
    let mut growth = Vec::new();
    while done.len() < runs {
        let t0 = Instant::now();
        let n = BATCH.min(runs - done.len());
        let fresh =
            |file: usize, seed: u64| crate::run::sim_config(&scenarios[file], seed).0.faults;
        let plans: Vec<Plan> = (0..n)
            .map(|_| corpus.next_plan(&mut rng, &coverage, &fresh))
            .collect();
        overhead += t0.elapsed().as_secs_f64();
        let results: Mutex<Vec<Option<Result<sim::RunResult, String>>>> = Mutex::new(vec![None; n]);
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..jobs.min(n) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(plan) = plans.get(i) else { return };
                    let sc = planned(&scenarios[plan.file], bugs, plan);
                    let file = files[plan.file].display().to_string();
                    let r = run_scenario(&sc, plan.seed, &file, None).map(|o| o.result);
                    results.lock().expect("no worker panics")[i] = Some(r);
                });
            }
        });
        let t1 = Instant::now();
        let results = results.into_inner().expect("no worker panics");
        let mut stop = false;
        for (plan, r) in plans.into_iter().zip(results) {
            let r = r.expect("every run ran")?;
            let mut new_marks = Vec::new();
            for m in &r.marks {
                let c = coverage.entry(m.mark).or_default();
                if *c == 0 {
                    new_marks.push(m.mark);
                }
                *c += 1;
            }
            let index = done.len() + 1;
            if !new_marks.is_empty() {
                growth.push((index, coverage.len()));
                let schedule = match &plan.schedule {
                    Some(s) => s.clone(),
                    None => {
                        crate::run::sim_config(&scenarios[plan.file], plan.seed)
                            .0
                            .faults
                    }
                };
                corpus.add(&plan, schedule, &r);
            }
            let (property, detail) = match (&r.violation, r.unknown.first()) {
                (Some(v), _) => (Some(v.failure.property.clone()), Some(v.to_string())),
                (None, Some(u)) => (Some(u.check.clone()), Some(u.to_string())),
                (None, None) => (None, None),
            };
            stop |= until_failure && r.verdict == Verdict::Violation;
            done.push(ExploreRun {
                run: index,
                file: files[plan.file].display().to_string(),
                seed: plan.seed,
                branches: plan.branches,
                schedule: plan.schedule,
                verdict: r.verdict.as_str(),
                property,
                detail,
                new_marks: new_marks.iter().map(mark_name).collect(),
                events: r.stats.events,
            });
            if stop {
                break;
            }
        }
        overhead += t1.elapsed().as_secs_f64();
        if let Some(bar) = progress {
            bar.set_position(done.len() as u64);
        }
        if stop {
            break;
        }
    }
    Ok(Exploration {
        runs: done,
        coverage,
        growth,
        wall_s: start.elapsed().as_secs_f64(),
        overhead_s: overhead,
    })
}

/// Runs `sim explore`; returns the exit code.
pub fn run(args: &ExploreArgs) -> i32 {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn run_inner(args: &ExploreArgs) -> Result<i32, String> {
    if args.runs == 0 {
        return Err("--runs: must be at least 1".into());
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return Err("--jobs: must be at least 1".into());
    }
    let mut scenarios = Vec::new();
    for f in &args.files {
        let mut sc = Scenario::load(f).map_err(|e| e.to_string())?;
        if !args.bugs.is_empty() {
            sc.bugs = args.bugs.clone();
            sc.validate().map_err(|(place, problem)| {
                format!("{}: {place}: {problem} (with --bugs)", f.display())
            })?;
        }
        scenarios.push(sc);
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(args.runs as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} runs [{elapsed_precise} < {eta}]",
            )
            .expect("a valid template"),
        );
        bar
    });
    let e = explore(
        &scenarios,
        &args.files,
        &args.bugs,
        args.runs,
        args.seed,
        jobs,
        args.until_failure,
        bar.as_ref(),
    )?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let failed: Vec<&ExploreRun> = e.runs.iter().filter(|r| r.verdict == "violation").collect();
    let unknown = e.runs.iter().filter(|r| r.verdict == "unknown").count();
    for (k, r) in failed.iter().enumerate() {
        println!(
            "FAILED    run {} ({} seed {}, {} branch points): {}",
            r.run,
            r.file,
            r.seed,
            r.branches.len(),
            r.detail.as_deref().unwrap_or("")
        );
        if let Some(dir) = &args.out {
            save_failure(dir, k + 1, r, &scenarios, &args.files, &args.bugs)?;
        }
    }
    report_coverage(&e);
    println!(
        "explore   {} runs ({} files), {} failed, {unknown} unknown; {:.1} s wall, {:.0} runs/s, explorer's own time {:.1}% ({jobs} jobs)",
        e.runs.len(),
        args.files.len(),
        failed.len(),
        e.wall_s,
        e.runs.len() as f64 / e.wall_s.max(1e-9),
        100.0 * e.overhead_s / e.wall_s.max(1e-9),
    );
    Ok(crate::fuzz::campaign_exit_code(failed.len(), unknown))
}

/// Writes a failing run as a scenario (its file's, with the run's bugs and branch points) and
/// its trace.
fn save_failure(
    dir: &Path,
    k: usize,
    r: &ExploreRun,
    scenarios: &[Scenario],
    files: &[PathBuf],
    bugs: &[String],
) -> Result<(), String> {
    let i = files
        .iter()
        .position(|f| f.display().to_string() == r.file)
        .expect("the run's file is one of the files");
    let plan = Plan {
        file: i,
        seed: r.seed,
        branches: r.branches.clone(),
        schedule: r.schedule.clone(),
    };
    let sc = planned(&scenarios[i], bugs, &plan);
    let stem = files[i]
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let json = dir.join(format!("{stem}-explore-{k}.json"));
    let text = serde_json::to_string_pretty(&sc).expect("a scenario serializes");
    std::fs::write(&json, text + "\n").map_err(|e| format!("{}: {e}", json.display()))?;
    let trace = json.with_extension("jsonl");
    let f = std::fs::File::create(&trace).map_err(|e| format!("{}: {e}", trace.display()))?;
    let source = json.display().to_string();
    run_scenario(
        &sc,
        r.seed,
        &source,
        Some(Box::new(std::io::BufWriter::new(f))),
    )?;
    println!("  scenario:  {}", json.display());
    println!(
        "  reproduce: sim run --seed {} {} --trace {}",
        r.seed,
        json.display(),
        trace.display()
    );
    println!(
        "  view:      sim view {} -o {}",
        trace.display(),
        trace.with_extension("html").display()
    );
    Ok(())
}

/// Coverage reached, how it grew, and a plateau estimate: with f1 marks reached by exactly one
/// run in n runs, the chance that the next run reaches a new mark is about f1 / n (Good-Turing),
/// so a new mark is likely only after about n / f1 more runs.
fn report_coverage(e: &Exploration) {
    let n = e.runs.len();
    let singles = e.coverage.values().filter(|&&c| c == 1).count();
    let steps: Vec<String> = [n / 10, n / 4, n / 2, n]
        .iter()
        .filter(|&&k| k > 0)
        .map(|&k| {
            let reached = e
                .growth
                .iter()
                .take_while(|(at, _)| *at <= k)
                .last()
                .map_or(0, |(_, c)| *c);
            format!("{reached} after {k} runs")
        })
        .collect();
    println!(
        "coverage  {} distinct marks ({})",
        e.coverage.len(),
        steps.join(", ")
    );
    let last_new = e.growth.last().map_or(0, |(at, _)| *at);
    if singles == 0 {
        println!(
            "plateau   every mark was reached by at least two runs; the last new mark came at run {last_new}: a new one would likely take well over {n} more runs"
        );
    } else {
        println!(
            "plateau   {singles} marks reached by one run only; the last new mark came at run {last_new}: chance of a new mark per run about {:.2}%, so about {} more runs to the next",
            100.0 * singles as f64 / n as f64,
            n.div_ceil(singles)
        );
    }
    let mut rare: Vec<(&Mark, &usize)> = e.coverage.iter().collect();
    rare.sort_by_key(|&(m, c)| (*c, *m));
    let shown: Vec<String> = rare
        .iter()
        .take(8)
        .map(|(m, c)| format!("{} ({c})", mark_name(m)))
        .collect();
    println!("rarest    {}", shown.join(", "));
}
