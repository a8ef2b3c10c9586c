use super::*;
use std::io::Write;
use std::sync::{Arc, Mutex as StdMutex};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(file: &str) -> (Scenario, PathBuf) {
    let path = root().join(file);
    (Scenario::load(&path).unwrap(), path)
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Buf(Arc<StdMutex<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The run's trace after its header (which names the scenario and what the seed drew).
fn trace_of(sc: &Scenario, seed: u64) -> Vec<u8> {
    let buf = Buf::default();
    run_scenario(sc, seed, "t", Some(Box::new(buf.clone()))).unwrap();
    let out = buf.0.lock().unwrap().clone();
    let body = out.iter().position(|&b| b == b'\n').expect("a header line") + 1;
    out[body..].to_vec()
}

/// Runs enough for the corpus to be used: the first 32 runs are plain seeds.
const RUNS: usize = 64;

#[test]
fn an_exploration_is_the_same_on_one_worker_and_on_two() {
    let (sc, path) = load("scenarios/fuzz/raft-swarm.json");
    let run = |jobs| {
        explore(
            std::slice::from_ref(&sc),
            std::slice::from_ref(&path),
            &[],
            RUNS,
            5,
            jobs,
            false,
            None,
        )
        .unwrap()
    };
    let summary = |e: &Exploration| {
        let runs: Vec<String> = e
            .runs
            .iter()
            .map(|r| {
                format!(
                    "{} {:?} {} {} {:?}",
                    r.seed,
                    r.branches,
                    r.schedule.as_ref().map_or(0, |s| s.len()),
                    r.verdict,
                    r.new_marks
                )
            })
            .collect();
        (runs, e.coverage.clone(), e.growth.clone())
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(summary(&one), summary(&two));
    // The exploration did explore: some runs branched, some edited faults, and the correct
    // build passed them all.
    assert!(two.runs.iter().any(|r| !r.branches.is_empty()), "no branch");
    assert!(
        two.runs.iter().any(|r| r.schedule.is_some()),
        "no edited schedule"
    );
    assert!(two.runs.iter().all(|r| r.verdict == "ok"));
}

/// A schedule written out as `replace_schedule` is exactly the one the seed drew: the run is
/// byte for byte the same (after the header), so an edited schedule changes only what was
/// edited.
#[test]
fn the_drawn_schedule_written_out_replays_the_same_run() {
    let (sc, _) = load("scenarios/fuzz/kv-swarm.json");
    let seed = 3;
    let faults = crate::run::sim_config(&sc, seed).0.faults;
    assert!(faults.len() > 4, "the seed draws faults");
    let plan = Plan {
        file: 0,
        seed,
        branches: vec![],
        schedule: Some(faults.clone()),
    };
    let fixed = planned(&sc, &[], &plan);
    assert_eq!(trace_of(&sc, seed), trace_of(&fixed, seed));
    // Without its first crash, the run differs.
    let mut edited = faults;
    let i = edited
        .iter()
        .position(|(_, f)| matches!(f, sim::Fault::Crash(_) | sim::Fault::Partition(_)))
        .unwrap();
    edited.remove(i);
    let plan = Plan {
        schedule: Some(edited),
        ..plan
    };
    assert_ne!(
        trace_of(&sc, seed),
        trace_of(&planned(&sc, &[], &plan), seed)
    );
}

/// A saved exploration run (a scenario with branch points and an edited schedule) reads back
/// and reproduces the run exactly, as `sim run` would.
#[test]
fn a_saved_exploration_run_reproduces_from_its_file() {
    let (sc, path) = load("scenarios/fuzz/raft-swarm.json");
    let e = explore(
        std::slice::from_ref(&sc),
        std::slice::from_ref(&path),
        &[],
        RUNS,
        9,
        2,
        false,
        None,
    )
    .unwrap();
    let r = e
        .runs
        .iter()
        .find(|r| !r.branches.is_empty() && r.schedule.is_some())
        .or_else(|| e.runs.iter().find(|r| !r.branches.is_empty()))
        .expect("a branched run");
    let plan = Plan {
        file: 0,
        seed: r.seed,
        branches: r.branches.clone(),
        schedule: r.schedule.clone(),
    };
    let saved = planned(&sc, &[], &plan);
    let text = serde_json::to_string_pretty(&saved).unwrap();
    let dir = std::env::temp_dir().join(format!("detsim-explore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("saved.json");
    std::fs::write(&file, text).unwrap();
    let back = Scenario::load(&file).unwrap();
    assert_eq!(back, saved);
    let a = run_scenario(&back, r.seed, "a", None).unwrap().result;
    assert_eq!(a.stats.events, r.events);
    assert_eq!(a.verdict.as_str(), r.verdict);
    assert_eq!(trace_of(&back, r.seed), trace_of(&saved, r.seed));
    std::fs::remove_dir_all(&dir).ok();
}

/// A bug the explorer finds is reported as a failure, with the property that fired.
#[test]
fn the_explorer_reports_a_bug_it_reaches() {
    let (sc, path) = load("scenarios/fuzz/raft-swarm.json");
    let e = explore(
        &[sc],
        &[path],
        &["no-election-restriction".to_string()],
        16,
        1,
        2,
        true,
        None,
    )
    .unwrap();
    let last = e.runs.last().unwrap();
    assert_eq!(last.verdict, "violation");
    assert!(last.property.is_some());
    assert_eq!(
        e.runs.iter().filter(|r| r.verdict == "violation").count(),
        1
    );
}
