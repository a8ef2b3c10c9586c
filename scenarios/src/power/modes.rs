//! `sim power --mode explore` and `--mode compare`: the same catalog and budget, searched by
//! the explorer (`sim explore`) instead of by consecutive seeds, and the two side by side.
//!
//! The budget is the random campaign's: as many runs per bug as the random mode would make
//! (files that can run the bug times seeds). The explorer's first runs are the random mode's
//! first runs (the same files and seeds, in the same order); after that it branches and edits
//! runs that reached new coverage. A bug the explorer does not catch within the budget counts
//! as "more than the budget" in the medians, which are then lower bounds, and says so.

use super::classify::{classify, Class};
use super::{campaign, PowerArgs, Subject};
use crate::explore::explore;
use crate::scenario::Scenario;
use std::path::PathBuf;
use std::time::Instant;

/// How `sim power` searches for each bug.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Consecutive seeds over every file (the default).
    #[default]
    Random,
    /// `sim explore`'s coverage-guided search, stopping at the first catch.
    Explore,
    /// Both, first catches side by side.
    Compare,
}

/// One bug's exploration: runs made, and the first catch if any.
struct ExploreRow {
    bug: &'static str,
    layer: String,
    budget: usize,
    runs: usize,
    /// Run number, property and class of the first catch.
    first: Option<(usize, String, Class)>,
    wall_s: f64,
}

/// Explores for `subject` within the random mode's budget.
fn explore_one(
    subject: Subject,
    scenarios: &[Scenario],
    files: &[PathBuf],
    first_seed: u64,
    seeds: usize,
    jobs: usize,
) -> Result<ExploreRow, String> {
    let (sc, fs): (Vec<Scenario>, Vec<PathBuf>) = scenarios
        .iter()
        .zip(files)
        .filter(|(s, _)| subject.runs_under(s.system))
        .map(|(s, f)| (s.clone(), f.clone()))
        .unzip();
    if sc.is_empty() {
        return Err(format!(
            "--profiles: no file can run {} (a KV bug needs a KV scenario)",
            subject.id()
        ));
    }
    let bugs = match subject {
        Subject::Correct => vec![],
        Subject::Bug(b) => vec![b.id().to_string()],
    };
    let budget = sc.len() * seeds;
    let start = Instant::now();
    let e = explore(&sc, &fs, &bugs, budget, first_seed, jobs, true, None)?;
    let first = e.runs.iter().find(|r| r.verdict == "violation").map(|r| {
        let property = r.property.clone().unwrap_or_default();
        let swarm = sc
            .iter()
            .zip(&fs)
            .find(|(_, f)| f.display().to_string() == r.file)
            .is_some_and(|(s, _)| s.faults.swarm.is_some());
        (r.run, property.clone(), classify(&property, swarm))
    });
    Ok(ExploreRow {
        bug: subject.id(),
        layer: match subject {
            Subject::Correct => "-".into(),
            Subject::Bug(b) => b.layer(),
        },
        budget,
        runs: e.runs.len(),
        first,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

fn median(mut xs: Vec<usize>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_unstable();
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m] as f64
    } else {
        (xs[m - 1] + xs[m]) as f64 / 2.0
    }
}

/// Runs `--mode explore` or `--mode compare`; returns the exit code.
pub fn run(args: &PowerArgs) -> Result<i32, String> {
    let super::Inputs {
        first_seed,
        last_seed,
        jobs,
        bugs,
        files,
        scenarios,
    } = super::inputs(args)?;
    let seeds = (last_seed - first_seed + 1) as usize;
    let start = Instant::now();
    let mut rows = Vec::new();
    let mut subjects: Vec<Subject> = bugs.into_iter().map(Subject::Bug).collect();
    if !args.no_baseline {
        subjects.insert(0, Subject::Correct);
    }
    for &s in &subjects {
        rows.push(explore_one(s, &scenarios, &files, first_seed, seeds, jobs)?);
    }
    let explore_s = start.elapsed().as_secs_f64();
    let random = if args.mode == Mode::Compare {
        let a = PowerArgs {
            first_catch: true,
            shrink_runs: 0,
            no_baseline: true,
            report: None,
            pins: None,
            mode: Mode::Random,
            bugs: args.bugs.clone(),
            profiles: files.clone(),
            seeds: args.seeds.clone(),
            jobs: Some(jobs),
            list: false,
        };
        Some(campaign(&a)?)
    } else {
        None
    };
    let random_first = |bug: &str| -> Option<Option<usize>> {
        let c = random.as_ref()?;
        let row = c.rows.iter().find(|r| r.bug == bug)?;
        Some(row.first.as_ref().map(|f| f.run))
    };
    let cell = |f: Option<usize>, budget: usize| f.map_or(format!(">{budget}"), |r| r.to_string());
    println!(
        "{:<36} {:<17} {:>8} {:>8} {:>9}  first property (class)",
        "bug", "layer", "random", "explore", "speed-up"
    );
    for r in &rows {
        let ex = r.first.as_ref().map(|f| f.0);
        let rnd = random_first(r.bug);
        let speedup = match (rnd, ex) {
            (Some(Some(a)), Some(b)) => format!("{:.1}x", a as f64 / b as f64),
            (Some(None), Some(_)) => "new".into(),
            _ => "-".into(),
        };
        let prop = r
            .first
            .as_ref()
            .map_or("-".into(), |(_, p, c)| format!("{p} ({})", c.name()));
        println!(
            "{:<36} {:<17} {:>8} {:>8} {:>9}  {prop}",
            r.bug,
            r.layer,
            rnd.map_or("-".into(), |f| cell(f, r.budget)),
            cell(ex, r.budget),
            speedup,
        );
    }
    let bug_rows: Vec<&ExploreRow> = rows.iter().filter(|r| r.bug != "(none)").collect();
    let caught = bug_rows.iter().filter(|r| r.first.is_some()).count();
    let ex_first = |r: &ExploreRow| r.first.as_ref().map_or(r.budget + 1, |f| f.0);
    let runs: usize = rows.iter().map(|r| r.runs).sum();
    println!(
        "explore   {} bugs, {} files, a budget of seeds {first_seed}..{last_seed} per file: {runs} runs in {explore_s:.1} s ({:.0} runs/s, {jobs} jobs), stopping each bug at its first catch",
        bug_rows.len(),
        files.len(),
        runs as f64 / explore_s.max(1e-9),
    );
    let escaped: Vec<&str> = bug_rows
        .iter()
        .filter(|r| r.first.is_none())
        .map(|r| r.bug)
        .collect();
    println!(
        "summary   explore caught {caught} of {} bugs; median runs to the first catch {:.1}{}",
        bug_rows.len(),
        median(bug_rows.iter().map(|r| ex_first(r)).collect()),
        if escaped.is_empty() {
            String::new()
        } else {
            format!(" (a lower bound: escaped {})", escaped.join(", "))
        }
    );
    if let Some(c) = &random {
        let rnd = |r: &ExploreRow| {
            c.rows
                .iter()
                .find(|x| x.bug == r.bug)
                .and_then(|x| x.first.as_ref().map(|f| f.run))
                .unwrap_or(r.budget + 1)
        };
        println!(
            "compare   median runs to the first catch: random {:.1}, explore {:.1}; random {:.1} s, explore {:.1} s of wall time",
            median(bug_rows.iter().map(|r| rnd(r)).collect()),
            median(bug_rows.iter().map(|r| ex_first(r)).collect()),
            c.wall_s,
            explore_s,
        );
        let hard: Vec<&&ExploreRow> = bug_rows.iter().filter(|r| rnd(r) > 10).collect();
        if !hard.is_empty() {
            println!(
                "hard      the {} bugs random seeds need more than 10 runs for ({}): median random {:.1}, explore {:.1}",
                hard.len(),
                hard.iter().map(|r| r.bug).collect::<Vec<_>>().join(", "),
                median(hard.iter().map(|r| rnd(r)).collect()),
                median(hard.iter().map(|r| ex_first(r)).collect()),
            );
        }
    }
    let slowest = rows
        .iter()
        .filter(|r| r.bug != "(none)")
        .map(|r| (r.wall_s, r.bug))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((s, bug)) = slowest {
        println!("slowest   {bug}: {s:.1} s");
    }
    let false_alarm = rows.iter().any(|r| r.bug == "(none)" && r.first.is_some());
    if let Some(base) = rows.iter().find(|r| r.bug == "(none)") {
        println!(
            "baseline  the correct build explored for {} runs: {}",
            base.runs,
            match &base.first {
                None => "no failure".to_string(),
                Some((run, p, _)) => format!("FAILED at run {run}: {p} (a false alarm)"),
            }
        );
    }
    Ok(if !escaped.is_empty() || false_alarm {
        1
    } else {
        0
    })
}
