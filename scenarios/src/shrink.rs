//! `sim shrink`: turn a failing run into a smaller one that fails with the same property.
//!
//! The run is rebuilt from its scenario and seed, so shrinking edits the scenario: the seed's
//! random and swarm faults are first written out as a fixed schedule (the network stream is
//! separate, so the run is unchanged), then faults are removed, steps dropped and loops cut,
//! servers removed where the scenario still validates, and the deadline brought forward. Each
//! candidate is rerun deterministically and kept only if it still fails the same way: the same
//! property, and for a panic the same place. A candidate that panics elsewhere, or whose
//! verdict is unknown, fails differently (or not at all) and is dropped.

use crate::run::{run_scenario, sim_config};
use crate::scenario::Scenario;
use crate::steps::spec::{Expr, Step};
use sim::trace::TraceReader;
use sim::{Fault, ScheduledFault, Verdict, Violation};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of `sim shrink`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  sim shrink failures/figure8-seed-17.jsonl\n  (writes failures/figure8-seed-17.min.json and .min.jsonl)"
)]
pub struct ShrinkArgs {
    /// A trace of a failing run (from `sim run --trace` or `sim fuzz --out`).
    pub trace: PathBuf,
    /// Where to write the minimal scenario (default: next to the trace, `.min.json`).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Give up after this many candidate runs.
    #[arg(long, default_value_t = 2000)]
    pub max_runs: usize,
}

/// The outcome of a shrink.
pub struct Shrunk {
    pub scenario: Scenario,
    pub property: String,
    pub runs: usize,
    /// Events of the whole run, before and after.
    pub events_before: u64,
    pub events_after: u64,
    /// The violation's event number (events up to it), before and after: a fairer measure of
    /// the reduction than whole runs, which go on after a late failure's cause.
    pub violation_event_before: u64,
    pub violation_event_after: u64,
    /// Faults applied up to the violation (scheduled, drawn and reactive), before and after.
    pub faults_before: usize,
    pub faults_after: usize,
}

struct Shrinker {
    seed: u64,
    /// The original failure.
    target: Violation,
    runs: usize,
    max_runs: usize,
    /// Events of the smallest failing run so far: a candidate must not be larger.
    best_events: u64,
}

impl Shrinker {
    /// Does `sc` still fail with the same property? Invalid candidates do not.
    fn fails(&mut self, sc: &Scenario) -> Option<u64> {
        if self.runs >= self.max_runs || sc.validate().is_err() {
            return None;
        }
        self.runs += 1;
        let o = run_scenario(sc, self.seed, "shrink", None).ok()?;
        match o.result.violation {
            Some(v) if same_failure(&self.target, &v) => Some(o.result.stats.events),
            _ => None,
        }
    }

    /// Try `candidate`; keep it if it still fails and its run is no longer.
    fn attempt(&mut self, best: &mut Scenario, candidate: Scenario) -> bool {
        match self.fails(&candidate) {
            Some(events) if events <= self.best_events => {
                self.best_events = events;
                *best = candidate;
                true
            }
            _ => false,
        }
    }
}

/// Does `candidate` fail the way `target` did? The same property; for a panic, also the same
/// place (file and line), since a panic elsewhere is another bug.
pub fn same_failure(target: &Violation, candidate: &Violation) -> bool {
    target.failure.property == candidate.failure.property
        && target.panic.as_ref().map(|p| &p.location)
            == candidate.panic.as_ref().map(|p| &p.location)
}

/// The scenario with the seed's random and swarm faults written out as a fixed schedule.
/// Faults that reacted to the run (a swarm profile's `reactive` part) are only known once it
/// ran: the run is made once to learn them, and they join the schedule at the times they
/// struck.
pub fn materialize(sc: &Scenario, seed: u64) -> Scenario {
    let (cfg, _) = sim_config(sc, seed);
    let mut faults = cfg.faults;
    if sc
        .faults
        .swarm
        .as_ref()
        .is_some_and(|s| s.reactive.is_some())
    {
        if let Ok(o) = run_scenario(sc, seed, "shrink", None) {
            faults.extend(o.result.reactive_faults);
            faults.sort_by_key(|(t, _)| *t);
        }
    }
    let mut out = sc.clone();
    out.faults.random = None;
    out.faults.swarm = None;
    out.faults.schedule = faults
        .into_iter()
        .map(|(t, fault)| ScheduledFault {
            at_ms: t as f64 / 1000.0,
            fault,
        })
        .collect();
    out
}

/// Faults of a materialized scenario at or before the violation, network changes and
/// releases left out (they are the storm's weather, not its blows).
fn faults_upto(sc: &Scenario, v: &Violation) -> usize {
    let t_ms = v.time as f64 / 1000.0;
    sc.faults
        .schedule
        .iter()
        .filter(|f| f.at_ms <= t_ms && !matches!(f.fault, Fault::Network(_) | Fault::Release))
        .count()
}

/// Shrinks the failing run of `sc` with `seed`.
pub fn shrink(sc: &Scenario, seed: u64, max_runs: usize) -> Result<Shrunk, String> {
    let first = run_scenario(sc, seed, "shrink", None)?;
    let Some(v) = first.result.violation else {
        return Err(match first.result.verdict {
            Verdict::Unknown => "the run's verdict is unknown, not a failure: nothing to shrink",
            _ => "the run does not fail: nothing to shrink",
        }
        .into());
    };
    let mut s = Shrinker {
        seed,
        target: v.clone(),
        runs: 0,
        max_runs,
        best_events: first.result.stats.events,
    };
    let mut best = sc.clone();
    // Materializing keeps the run as it was (fault draws have their own streams).
    let materialized = materialize(sc, seed);
    let faults_before = faults_upto(&materialized, &v);
    s.attempt(&mut best, materialized);
    // The deadline: just after the violation.
    let mut cut = best.clone();
    cut.duration_ms = (v.time as f64 / 1000.0 + 1.0).min(best.duration_ms);
    cut.faults.schedule.retain(|f| f.at_ms <= cut.duration_ms);
    s.attempt(&mut best, cut);
    loop {
        let before = (
            best.faults.schedule.len(),
            count_steps(&best.steps),
            best.servers,
            best.duration_ms.to_bits(),
        );
        // Faults: halves first, then one at a time.
        let mut chunk = best.faults.schedule.len().div_ceil(2).max(1);
        while chunk >= 1 && !best.faults.schedule.is_empty() {
            let mut i = 0;
            while i < best.faults.schedule.len() {
                let mut c = best.clone();
                let end = (i + chunk).min(c.faults.schedule.len());
                c.faults.schedule.drain(i..end);
                if !s.attempt(&mut best, c) {
                    i += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
        // Steps: drop each step (at any depth), and cut loop counts.
        let mut path = 0;
        while path < count_steps(&best.steps) {
            let mut c = best.clone();
            let mut k = path;
            if remove_nth(&mut c.steps, &mut k) && s.attempt(&mut best, c) {
                continue;
            }
            let mut c = best.clone();
            let mut k = path;
            if halve_nth_loop(&mut c.steps, &mut k) && s.attempt(&mut best, c) {
                continue;
            }
            path += 1;
        }
        // Fewer servers.
        if best.servers > 1 {
            let mut c = best.clone();
            c.servers -= 1;
            s.attempt(&mut best, c);
        }
        let after = (
            best.faults.schedule.len(),
            count_steps(&best.steps),
            best.servers,
            best.duration_ms.to_bits(),
        );
        if after == before || s.runs >= s.max_runs {
            break;
        }
    }
    let last = run_scenario(&best, seed, "shrink", None)?;
    debug_assert!(last.result.verdict == Verdict::Violation);
    let last_v = last.result.violation.clone().unwrap_or_else(|| v.clone());
    let faults_after = if best.faults.swarm.is_some() || best.faults.random.is_some() {
        faults_before
    } else {
        faults_upto(&best, &last_v)
    };
    Ok(Shrunk {
        violation_event_before: v.event,
        violation_event_after: last_v.event,
        faults_before,
        faults_after,
        scenario: best,
        property: match &s.target.panic {
            Some(p) => format!("panic at {}", p.location),
            None => s.target.failure.property.clone(),
        },
        runs: s.runs,
        events_before: first.result.stats.events,
        events_after: last.result.stats.events,
    })
}

fn count_steps(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|s| 1 + children(s).iter().map(|b| count_steps(b)).sum::<usize>())
        .sum()
}

fn children(step: &Step) -> Vec<&Arc<[Step]>> {
    match step {
        Step::Loop(l) => vec![&l.steps],
        Step::If(c) => vec![&c.then, &c.otherwise],
        Step::Choose(cs) => cs.iter().map(|c| &c.steps).collect(),
        Step::Spawn(sp) => vec![&sp.steps],
        Step::Attempts(a) => vec![&a.steps],
        _ => vec![],
    }
}

fn children_mut(step: &mut Step) -> Vec<&mut Arc<[Step]>> {
    match step {
        Step::Loop(l) => vec![&mut l.steps],
        Step::If(c) => vec![&mut c.then, &mut c.otherwise],
        Step::Choose(cs) => cs.iter_mut().map(|c| &mut c.steps).collect(),
        Step::Spawn(sp) => vec![&mut sp.steps],
        Step::Attempts(a) => vec![&mut a.steps],
        _ => vec![],
    }
}

/// Removes the `k`-th step in pre-order. True if there was one.
fn remove_nth(steps: &mut Vec<Step>, k: &mut usize) -> bool {
    let mut i = 0;
    while i < steps.len() {
        if *k == 0 {
            steps.remove(i);
            return true;
        }
        *k -= 1;
        for block in children_mut(&mut steps[i]) {
            let mut v = block.to_vec();
            if remove_nth(&mut v, k) {
                *block = Arc::from(v);
                return true;
            }
        }
        i += 1;
    }
    false
}

/// Halves the count of the `k`-th step if it is a loop with a literal count above 1.
fn halve_nth_loop(steps: &mut [Step], k: &mut usize) -> bool {
    for step in steps.iter_mut() {
        if *k == 0 {
            if let Step::Loop(l) = step {
                if let Some(Expr::Int(n)) = l.times {
                    if n > 1 {
                        l.times = Some(Expr::Int(n / 2));
                        return true;
                    }
                }
            }
            return false;
        }
        *k -= 1;
        for block in children_mut(step) {
            let mut v = block.to_vec();
            if halve_nth_loop(&mut v, k) {
                *block = Arc::from(v);
                return true;
            }
            // `k` was consumed by the block's steps.
        }
    }
    false
}

/// `sim shrink TRACE`: exit 0 when a smaller failing scenario was written, 2 on bad input.
pub fn run(args: &ShrinkArgs) -> i32 {
    let fail = |e: String| {
        eprintln!("error: {}: {e}", args.trace.display());
        2
    };
    // Only the header is needed: the scenario and the seed (the trace is not read further).
    let input = match sim::trace::files::open(&args.trace) {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot read: {e}")),
    };
    let trace = match TraceReader::new(input) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let (seed, scenario, source, _) = trace.header();
    let source = source.to_string();
    let sc: Scenario = match serde_json::from_value(scenario.clone()) {
        Ok(sc) => sc,
        Err(e) => return fail(format!("line 1: the header's scenario is not valid: {e}")),
    };
    let shrunk = match shrink(&sc, seed, args.max_runs) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| with_suffix(&args.trace, "min.json"));
    let trace_out = out.with_extension("jsonl");
    let mut small = shrunk.scenario.clone();
    small.name = format!("{} (shrunk)", sc.name);
    small.description = format!(
        "Shrunk by `sim shrink` from {source} seed {seed}, which failed {}.",
        shrunk.property
    );
    let mut value = serde_json::to_value(&small).expect("a scenario serializes");
    strip_nulls(&mut value);
    let json = serde_json::to_string_pretty(&value).expect("a value serializes");
    if let Err(e) = std::fs::write(&out, json + "\n") {
        return fail(format!("{}: cannot write: {e}", out.display()));
    }
    let out_name = out.display().to_string();
    let file = match std::fs::File::create(&trace_out) {
        Ok(f) => f,
        Err(e) => return fail(format!("{}: cannot write: {e}", trace_out.display())),
    };
    if let Err(e) = run_scenario(
        &small,
        seed,
        &out_name,
        Some(Box::new(BufWriter::new(file))),
    ) {
        return fail(e);
    }
    println!(
        "shrunk    {} ({source}, seed {seed}) still fails {}",
        sc.name, shrunk.property
    );
    println!(
        "before    {} events, {} scheduled faults, {} steps, {} servers, {} ms",
        shrunk.events_before,
        materialize(&sc, seed).faults.schedule.len(),
        count_steps(&sc.steps),
        sc.servers,
        sc.duration_ms
    );
    println!(
        "after     {} events, {} scheduled faults, {} steps, {} servers, {} ms ({} candidate runs)",
        shrunk.events_after,
        small.faults.schedule.len(),
        count_steps(&small.steps),
        small.servers,
        small.duration_ms,
        shrunk.runs
    );
    println!("scenario  {out_name}");
    println!("trace     {}", trace_out.display());
    println!("reproduce sim run --seed {seed} {out_name}");
    0
}

/// Drops `null` fields (unset options) so the written scenario reads like a hand-written one.
fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|_, x| !x.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::{Failure, Panic};

    fn violation(property: &str, place: Option<&str>) -> Violation {
        Violation {
            failure: Failure::new(property, vec![0], "detail"),
            time: 1,
            event: 2,
            panic: place.map(|l| Panic {
                message: "m".into(),
                location: l.into(),
            }),
        }
    }

    #[test]
    fn a_panic_elsewhere_fails_differently() {
        let safety = violation("election safety", None);
        let here = violation("panic", Some("raft/src/log.rs:10"));
        let there = violation("panic", Some("raft/src/log.rs:99"));
        assert!(same_failure(&safety, &violation("election safety", None)));
        assert!(
            !same_failure(&safety, &here),
            "a panicking candidate is dropped"
        );
        assert!(same_failure(
            &here,
            &violation("panic", Some("raft/src/log.rs:10"))
        ));
        assert!(!same_failure(&here, &there));
        assert!(!same_failure(&here, &safety));
    }
}
