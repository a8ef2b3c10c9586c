//! The explorer's corpus: the runs that reached a mark nobody had reached before, and how the
//! next run is chosen from them.
//!
//! Energy goes to rare marks: an entry's weight is the sum, over the marks it reached, of one
//! over the number of runs that reached each (so a run that alone reached something weighs
//! most), divided by how often it was branched already. Within the chosen entry the branch
//! point is the first occurrence of one of its marks, weighted by the square of that rarity.
//! Half the runs stay plain seeds, so the exploration never narrows to one corner: a seed
//! also draws its swarm configuration (fault rates, network, Raft timing), and measured on
//! the bug catalog, spending every run on a few seeds' configurations did worse than random
//! seeds.
//!
//! A chosen entry is either branched (its past kept, a fresh future) or its fault schedule is
//! edited (see `mutate.rs`) and the run made again from its seed, half the time each when the
//! scenario has a fault window to edit in.

use super::mutate::{mutate, splice, Window};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sim::{Branch, Fault, Mark, RunResult, Time};
use std::collections::BTreeMap;

/// Plain seed runs before any branching.
const PLAIN_FIRST: usize = 2 * super::BATCH;
/// Share of later runs that are plain seeds.
const PLAIN_SHARE: f64 = 0.5;

/// What one run is: a file, a seed, branch points, and the fault schedule if it was edited.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub file: usize,
    pub seed: u64,
    pub branches: Vec<Branch>,
    pub schedule: Option<Vec<(Time, Fault)>>,
}

struct Entry {
    plan: Plan,
    /// The run's whole fault schedule (edited or as the seed drew it).
    schedule: Vec<(Time, Fault)>,
    /// The run's marks, and the event and time of their first report.
    marks: Vec<(Mark, u64, Time)>,
    /// Times it was branched.
    picked: u32,
}

/// The corpus and the plain-seed sequence.
pub struct Corpus {
    files: usize,
    /// Per file, where edits may put faults (None: the scenario draws no faults).
    windows: Vec<Option<Window>>,
    first_seed: u64,
    plain: u64,
    entries: Vec<Entry>,
}

impl Corpus {
    /// An empty corpus over files with these fault windows, whose plain runs start at
    /// `first_seed`.
    pub fn new(windows: Vec<Option<Window>>, first_seed: u64) -> Self {
        Corpus {
            files: windows.len(),
            windows,
            first_seed,
            plain: 0,
            entries: Vec::new(),
        }
    }

    fn next_plain(&mut self) -> Plan {
        let k = self.plain;
        self.plain += 1;
        Plan {
            file: (k % self.files as u64) as usize,
            seed: self.first_seed.wrapping_add(k / self.files as u64),
            branches: Vec::new(),
            schedule: None,
        }
    }

    /// The next run to make, given how many runs reached each mark so far; `fresh(file, seed)`
    /// is the fault schedule `seed` draws for `file` (for branches that also redraw the
    /// future's faults and network).
    pub fn next_plan(
        &mut self,
        rng: &mut ChaCha8Rng,
        coverage: &BTreeMap<Mark, usize>,
        fresh: &dyn Fn(usize, u64) -> Vec<(Time, Fault)>,
    ) -> Plan {
        if (self.plain as usize) < PLAIN_FIRST
            || self.entries.is_empty()
            || rng.random_bool(PLAIN_SHARE)
        {
            return self.next_plain();
        }
        let rarity = |m: &Mark| 1.0 / coverage.get(m).copied().unwrap_or(1).max(1) as f64;
        // Only marks after the entry's last branch point can start a new branch.
        let after = |e: &Entry| e.plan.branches.last().map_or(0, |b| b.at_event);
        let weights: Vec<f64> = self
            .entries
            .iter()
            .map(|e| {
                let a = after(e);
                let w: f64 = e
                    .marks
                    .iter()
                    .filter(|(_, at, _)| *at > a)
                    .map(|(m, _, _)| rarity(m))
                    .sum();
                w / f64::from(1 + e.picked)
            })
            .collect();
        let Some(i) = pick(rng, &weights) else {
            return self.next_plain();
        };
        let e = &mut self.entries[i];
        e.picked += 1;
        if let Some(w) = self.windows[e.plan.file] {
            if rng.random_bool(0.5) {
                if let Some(schedule) = mutate(&e.schedule, w, rng) {
                    return Plan {
                        file: e.plan.file,
                        seed: e.plan.seed,
                        branches: Vec::new(),
                        schedule: Some(schedule),
                    };
                }
            }
        }
        let a = after(e);
        let candidates: Vec<&(Mark, u64, Time)> =
            e.marks.iter().filter(|(_, at, _)| *at > a).collect();
        let w: Vec<f64> = candidates
            .iter()
            .map(|(m, _, _)| rarity(m).powi(2))
            .collect();
        let &(_, at_event, at_time) = candidates[pick(rng, &w).expect("the entry has weight")];
        let seed: u64 = rng.random();
        let mut branches = e.plan.branches.clone();
        branches.push(Branch { at_event, seed });
        // Half the branches also draw the future's faults and network anew (from the branch
        // seed's schedule), not only its delays, losses and timeouts.
        let mut schedule = e.plan.schedule.clone();
        if self.windows[e.plan.file].is_some() && rng.random_bool(0.5) {
            schedule = Some(splice(&e.schedule, &fresh(e.plan.file, seed), at_time));
        }
        Plan {
            file: e.plan.file,
            seed: e.plan.seed,
            branches,
            schedule,
        }
    }

    /// Keeps a run that reached new coverage; `schedule` is its whole fault schedule.
    pub fn add(&mut self, plan: &Plan, schedule: Vec<(Time, Fault)>, r: &RunResult) {
        self.entries.push(Entry {
            plan: plan.clone(),
            schedule,
            marks: r
                .marks
                .iter()
                .map(|m| (m.mark, m.first_event, m.first_time))
                .collect(),
            picked: 0,
        });
    }
}

/// An index drawn with probability proportional to `weights` (None if they sum to 0).
fn pick(rng: &mut ChaCha8Rng, weights: &[f64]) -> Option<usize> {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    let mut x = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return Some(i);
        }
        x -= w;
    }
    weights.iter().rposition(|w| *w > 0.0)
}
