//! The `clocks` section and the `clock` step: what they accept, the one-line errors for what
//! they do not, and that a scenario without them keeps its header.

use crate::scenario::Scenario;

const RAFT: &str = r#"{
    "name": "t", "system": "raft", "servers": 3, "duration_ms": 1000,
    "clocks": {"drift_ppm": [-1000, 1000], "nodes": [{"node": 2, "drift_ppm": 5000}],
               "jumps_per_s": [0, 2], "jump_ms": [-50, 50], "until_ms": 900},
    "steps": [{"clock": {"node": 1, "drift_ppm": -300000, "jump_ms": 20}}]
}"#;

fn err(text: &str) -> String {
    Scenario::parse(text, "x.json").unwrap_err().to_string()
}

#[test]
fn clocks_parse_and_each_seed_draws_them() {
    let sc = Scenario::parse(RAFT, "x.json").unwrap();
    let (cfg, drawn) = crate::run::sim_config(&sc, 4);
    assert_eq!(cfg.nodes[2].clock.drift_ppm, 5000);
    assert!(cfg.nodes[0].clock.drift_ppm.abs() <= 1000);
    assert_eq!(drawn["clocks"]["drift_ppm"][2], 5000);
    let jumps = cfg
        .faults
        .iter()
        .filter(|(_, f)| matches!(f, sim::Fault::ClockJump { .. }))
        .count();
    assert_eq!(drawn["clocks"]["jumps"], jumps);
    // Without the section: perfect clocks, nothing drawn, nothing in the header.
    let plain = Scenario::parse(
        &RAFT.replace(r#""clocks""#, r#""_x""#).replace(
            r#""_x": {"drift_ppm": [-1000, 1000], "nodes": [{"node": 2, "drift_ppm": 5000}],
               "jumps_per_s": [0, 2], "jump_ms": [-50, 50], "until_ms": 900},"#,
            "",
        ),
        "x.json",
    )
    .unwrap();
    let (cfg, drawn) = crate::run::sim_config(&plain, 4);
    assert!(cfg.nodes.iter().all(|n| n.clock.is_perfect()));
    assert!(drawn.get("clocks").is_none());
    let header = serde_json::to_string(&cfg.nodes).unwrap();
    assert!(!header.contains("clock"), "{header}");
}

#[test]
fn bad_clock_settings_are_one_line_errors_naming_the_place() {
    for (from, to, place, problem) in [
        (
            "[-1000, 1000]",
            "[-1000, 1e7]",
            "clocks.drift_ppm",
            "drift_ppm: need a number or a range",
        ),
        (
            r#""node": 2"#,
            r#""node": 3"#,
            "clocks.nodes[0]",
            "node 3 does not exist",
        ),
        (
            r#""drift_ppm": 5000"#,
            r#""drift_ppm": 2000000"#,
            "clocks.nodes[0]",
            "out of range",
        ),
        (
            r#""until_ms": 900"#,
            r#""until_ms": 2000"#,
            "clocks.until_ms",
            "after the end of the run",
        ),
        (
            r#""until_ms": 900"#,
            r#""until_ms": 0"#,
            "clocks.until_ms",
            "jumps need a window",
        ),
        (
            r#""drift_ppm": -300000, "#,
            r#""drift_ppm": -3000000, "#,
            "steps[0].clock.drift_ppm",
            "out of range",
        ),
        (
            r#", "drift_ppm": -300000, "jump_ms": 20"#,
            "",
            "steps[0].clock",
            "give drift_ppm, jump_ms or both",
        ),
        (
            r#""node": 1"#,
            r#""node": 7"#,
            "steps[0].clock.node",
            "server 7",
        ),
    ] {
        let e = err(&RAFT.replacen(from, to, 1));
        assert!(e.starts_with(&format!("x.json: {place}: ")), "{e}");
        assert!(e.contains(problem), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
    let e = err(&RAFT.replace(r#""jump_ms": [-50, 50]"#, r#""jump": [-50, 50]"#));
    assert!(e.contains("unknown field `jump`"), "{e}");
    let faulty = r#"{"name": "t", "system": "raft", "servers": 3, "duration_ms": 1000,
        "faults": {"schedule": [{"at_ms": 5, "fault": {"clock_drift": {"node": 0, "drift_ppm": 999999}}}]}}"#;
    let e = err(faulty);
    assert!(
        e.starts_with("x.json: faults.schedule[0]: clock_drift: drift_ppm 999999 is out of range"),
        "{e}"
    );
}
