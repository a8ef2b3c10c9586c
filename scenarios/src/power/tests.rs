//! The power campaign's own tests: each bug's pinned first catch still catches it, with the
//! same property, a generic one; every bug has a pin; results do not depend on `--jobs`.
//!
//! The pins are recorded with the protocol's debug assertions on (the `fuzz` profile), as
//! the tests build it: an assertion of the code under test is one of the generic nets.

use super::report::Pin;
use super::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn pins() -> Vec<Pin> {
    let path = root().join("traces/power-pins.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const REGENERATE: &str = "If a change of the checks, the faults or the profiles moved a first catch on purpose, \
regenerate the pins from the workspace root, with the invariants on as in the tests, with
  cargo run --profile fuzz --bin sim -- power --first-catch --seeds 1..150 --shrink-runs 0 --pins traces/power-pins.json
and say why in the commit.";

#[test]
fn every_catalog_bug_has_a_pinned_first_catch() {
    let pinned: Vec<String> = pins().into_iter().map(|p| p.bug).collect();
    let all: Vec<String> = CatalogBug::all()
        .iter()
        .map(|b| b.id().to_string())
        .collect();
    assert_eq!(
        pinned, all,
        "the pins list every catalog bug, in catalog order\n{REGENERATE}"
    );
}

#[test]
fn each_pinned_run_still_catches_its_bug_with_a_generic_property() {
    // The pins were recorded with debug assertions on; without them a catch may come later.
    if !cfg!(debug_assertions) {
        eprintln!("skipped: the pins were recorded with debug assertions on");
        return;
    }
    let pins = pins();
    let next = AtomicUsize::new(0);
    let problems: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some(pin) = pins.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                let sc = Scenario::load(&root().join(&pin.file)).unwrap_or_else(|e| panic!("{e}"));
                let bug: CatalogBug = pin.bug.parse().unwrap();
                let o = run_one(Subject::Bug(bug), &sc, Path::new(&pin.file), pin.seed);
                let ok = o.verdict == sim::Verdict::Violation
                    && o.property.as_deref() == Some(pin.property.as_str())
                    && o.class.is_some_and(Class::generic);
                if !ok {
                    problems.lock().unwrap().push(format!(
                        "{} on {} seed {}: expected {:?} (generic), got {:?} {:?} {:?}: {}",
                        pin.bug,
                        pin.file,
                        pin.seed,
                        pin.property,
                        o.verdict,
                        o.property,
                        o.class,
                        o.detail
                    ));
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(
        problems.is_empty(),
        "{}\n\n{REGENERATE}",
        problems.join("\n")
    );
}

#[test]
fn a_campaign_is_the_same_on_one_worker_and_on_two() {
    let args = |jobs| PowerArgs {
        bugs: vec!["no-election-restriction".into(), "commit-old-terms".into()],
        profiles: vec![root().join("scenarios/fuzz/raft-swarm.json")],
        seeds: "1..4".into(),
        jobs: Some(jobs),
        report: None,
        list: false,
        first_catch: false,
        shrink_runs: 0,
        no_baseline: false,
        pins: None,
        mode: Mode::Random,
    };
    let rows = |jobs| {
        let c = campaign(&args(jobs)).unwrap();
        serde_json::to_string(&c.rows).unwrap()
    };
    let one = rows(1);
    assert_eq!(one, rows(2));
    let c = campaign(&args(2)).unwrap();
    assert_eq!(c.rows.len(), 3, "the correct build, then each bug");
    assert_eq!(
        (c.rows[0].bug, c.rows[0].caught, c.rows[0].runs),
        ("(none)", 0, 4)
    );
    assert!(
        c.rows[1].caught >= 3,
        "no-election-restriction is caught on most seeds"
    );
}
