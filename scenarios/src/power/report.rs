//! The rows of a power campaign: the table on the terminal, the JSON Lines report, the
//! catalog listing.

use super::classify::Class;
use crate::catalog::CatalogBug;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// How small a bug's first failure became.
#[derive(Clone, Debug, Serialize)]
pub struct ShrunkSize {
    /// Events up to the violation, before and after shrinking.
    pub events_before: u64,
    pub events_after: u64,
    /// Faults applied up to the violation, before and after.
    pub faults_before: usize,
    pub faults_after: usize,
    /// The property the shrunk run still violates.
    pub property_kept: String,
    /// Candidate runs the shrink took.
    pub runs: usize,
}

/// The first run that caught a bug.
#[derive(Clone, Debug, Serialize)]
pub struct FirstCatch {
    /// 1-based: how many runs it took.
    pub run: usize,
    pub file: String,
    pub scenario: String,
    pub seed: u64,
    pub property: String,
    pub class: Class,
    pub detail: String,
    /// The violation's event number.
    pub event: u64,
    pub shrunk: Option<Result<ShrunkSize, String>>,
}

/// One bug's row (or the correct build's, id "(none)").
#[derive(Clone, Debug, Serialize)]
pub struct BugRow {
    pub bug: &'static str,
    pub layer: String,
    pub rule: &'static str,
    pub runs: usize,
    /// Runs with a violation.
    pub caught: usize,
    /// Of those, runs whose violation is a generic property.
    pub caught_generic: usize,
    /// Runs whose verdict was unknown (not a catch, not a pass).
    pub unknown: usize,
    pub by_class: BTreeMap<String, usize>,
    pub by_property: BTreeMap<String, usize>,
    pub first: Option<FirstCatch>,
}

impl BugRow {
    pub fn new(bug: &'static str, layer: String, rule: &'static str) -> Self {
        BugRow {
            bug,
            layer,
            rule,
            runs: 0,
            caught: 0,
            caught_generic: 0,
            unknown: 0,
            by_class: BTreeMap::new(),
            by_property: BTreeMap::new(),
            first: None,
        }
    }

    /// Share of runs that caught the bug.
    pub fn share(&self) -> f64 {
        self.caught as f64 / self.runs.max(1) as f64
    }
}

/// `sim power --list`.
pub fn print_catalog() {
    let all = CatalogBug::all();
    println!("{:<36} {:<17} rule", "bug", "layer");
    for b in &all {
        println!("{:<36} {:<17} {}", b.id(), b.layer(), b.rule());
    }
    println!("{} bugs", all.len());
}

fn shrunk_cell(first: &FirstCatch) -> String {
    match &first.shrunk {
        None => "-".into(),
        Some(Err(e)) => format!("not shrunk: {e}"),
        Some(Ok(s)) => format!(
            "{}→{} events, {}→{} faults",
            s.events_before, s.events_after, s.faults_before, s.faults_after
        ),
    }
}

/// The table on standard output.
pub fn print_table(rows: &[BugRow]) {
    println!(
        "{:<36} {:<17} {:>6} {:>7} {:>6}  {:<44} shrunk (up to the violation)",
        "bug", "layer", "caught", "share", "first", "first property (class)"
    );
    for r in rows {
        let (first, prop, shrunk) = match &r.first {
            Some(f) => (
                f.run.to_string(),
                format!("{} ({})", f.property, f.class.name()),
                shrunk_cell(f),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let caught = if r.bug == "(none)" {
            if r.caught == 0 {
                "ok".to_string()
            } else {
                "FALSE".to_string()
            }
        } else if r.caught > 0 {
            "yes".to_string()
        } else {
            "NO".to_string()
        };
        println!(
            "{:<36} {:<17} {:>6} {:>6.1}% {:>6}  {:<44} {}",
            r.bug,
            r.layer,
            caught,
            r.share() * 100.0,
            first,
            prop,
            shrunk
        );
    }
}

/// The figures the goals are stated in.
pub fn print_summary(rows: &[BugRow]) {
    let bugs: Vec<&BugRow> = rows.iter().filter(|r| r.bug != "(none)").collect();
    if bugs.is_empty() {
        return;
    }
    let caught = bugs.iter().filter(|r| r.caught > 0).count();
    let first_generic = bugs
        .iter()
        .filter(|r| r.first.as_ref().is_some_and(|f| f.class.generic()))
        .count();
    let mut shares: Vec<f64> = bugs.iter().map(|r| r.share()).collect();
    shares.sort_by(f64::total_cmp);
    let median = if shares.len() % 2 == 1 {
        shares[shares.len() / 2]
    } else {
        (shares[shares.len() / 2 - 1] + shares[shares.len() / 2]) / 2.0
    };
    let worst = bugs
        .iter()
        .filter_map(|r| r.first.as_ref().map(|f| (f.run, r.bug)))
        .max();
    let mut shrunk: Vec<(u64, usize)> = bugs
        .iter()
        .filter_map(|r| match r.first.as_ref().and_then(|f| f.shrunk.as_ref()) {
            Some(Ok(s)) => Some((s.events_after, s.faults_after)),
            _ => None,
        })
        .collect();
    println!(
        "summary   {caught} of {} bugs caught ({first_generic} first by a generic property); median share {:.1}%; worst first catch {}",
        bugs.len(),
        median * 100.0,
        worst.map_or("-".into(), |(run, bug)| format!("run {run} ({bug})")),
    );
    if !shrunk.is_empty() {
        shrunk.sort_unstable();
        let mid = shrunk.len() / 2;
        let mut faults: Vec<usize> = shrunk.iter().map(|s| s.1).collect();
        faults.sort_unstable();
        println!(
            "shrunk    median {} events and {} faults up to the violation, over {} first failures",
            shrunk[mid].0,
            faults[mid],
            shrunk.len()
        );
    }
    let escaped: Vec<&str> = bugs
        .iter()
        .filter(|r| r.caught == 0)
        .map(|r| r.bug)
        .collect();
    if !escaped.is_empty() {
        println!("ESCAPED   {}", escaped.join(", "));
    }
    if let Some(r) = rows.iter().find(|r| r.bug == "(none)" && r.caught > 0) {
        let f = r.first.as_ref().expect("caught");
        println!(
            "FALSE ALARM on the correct build: {} seed {}: {}",
            f.file, f.seed, f.detail
        );
    }
}

/// One bug's first catch, as the test suite re-runs it.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub bug: String,
    pub file: String,
    pub seed: u64,
    pub property: String,
}

/// Writes the pins of every caught bug (the correct build has none), as a JSON array, one
/// pin a line, in catalog order.
pub fn write_pins(path: &Path, rows: &[BugRow]) -> Result<(), String> {
    let pins: Vec<String> = rows
        .iter()
        .filter(|r| r.bug != "(none)")
        .filter_map(|r| {
            let f = r.first.as_ref()?;
            let pin = Pin {
                bug: r.bug.to_string(),
                file: f.file.clone(),
                seed: f.seed,
                property: f.property.clone(),
            };
            Some(serde_json::to_string(&pin).expect("pins serialize"))
        })
        .collect();
    let text = format!("[\n  {}\n]\n", pins.join(",\n  "));
    std::fs::write(path, text)
        .map_err(|e| format!("{}: cannot write the pins: {e}", path.display()))
}

/// One JSON line per row.
pub fn write_jsonl(path: &Path, rows: &[BugRow]) -> Result<(), String> {
    let mut out = Vec::new();
    for r in rows {
        let line = serde_json::to_string(r).expect("rows serialize");
        writeln!(out, "{line}").expect("writing to memory");
    }
    std::fs::write(path, out)
        .map_err(|e| format!("{}: cannot write the report: {e}", path.display()))
}
