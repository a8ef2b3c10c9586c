//! Edits of a run's fault schedule: the explorer's second way (besides branching) of making a
//! run that is like an interesting one but not the same. A schedule is read as episodes (a
//! crash and its restart; a partition or a cut and its heal); an edit drops, moves, stretches,
//! shortens or copies an episode, or adds a crash or a partition. Everything else in the
//! schedule (network changes, holds) stays as it was.
//!
//! Edits keep what the checks rely on: every added or moved episode starts and ends inside the
//! scenario's fault window (its profiles' `[from_ms, until_ms]`), so "everything is repaired
//! by `until_ms`" stays true and a liveness check after the heal stays fair; a node is never
//! crashed twice at once, and one partition is healed before the next begins.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sim::{Fault, NodeId, Time};

/// One episode: a fault, and when it is repaired (None: never, within the run).
#[derive(Clone, Debug, PartialEq)]
struct Episode {
    from: Time,
    to: Option<Time>,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// `Crash(node)` ... `Restart(node)`.
    Crash(NodeId),
    /// `Partition` or `Cut` ... `Heal`.
    Split(Fault),
}

/// Where edits may put faults: the servers and the fault window, in µs.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub servers: usize,
    pub from: Time,
    pub until: Time,
}

/// Splits `faults` into episodes and the rest (kept as they are).
fn episodes(faults: &[(Time, Fault)]) -> (Vec<Episode>, Vec<(Time, Fault)>) {
    let mut eps: Vec<Episode> = Vec::new();
    let mut rest = Vec::new();
    for (t, f) in faults {
        match f {
            // A crash of a node that is down already does nothing (as in the engine).
            Fault::Crash(n) => {
                let down = eps
                    .iter()
                    .any(|e| e.kind == Kind::Crash(*n) && e.to.is_none());
                if !down {
                    eps.push(Episode {
                        from: *t,
                        to: None,
                        kind: Kind::Crash(*n),
                    });
                }
            }
            Fault::Restart(n) => {
                let open = eps
                    .iter_mut()
                    .rev()
                    .find(|e| e.kind == Kind::Crash(*n) && e.to.is_none());
                match open {
                    Some(e) => e.to = Some(*t),
                    None => rest.push((*t, f.clone())),
                }
            }
            Fault::Partition(_) | Fault::Cut { .. } => eps.push(Episode {
                from: *t,
                to: None,
                kind: Kind::Split(f.clone()),
            }),
            Fault::Heal => {
                let mut closed = false;
                for e in eps.iter_mut() {
                    if matches!(e.kind, Kind::Split(_)) && e.to.is_none() {
                        e.to = Some(*t);
                        closed = true;
                    }
                }
                if !closed {
                    rest.push((*t, f.clone()));
                }
            }
            _ => rest.push((*t, f.clone())),
        }
    }
    (eps, rest)
}

/// The schedule of `eps` and `rest`, sorted by time with repairs before new faults at the same
/// instant, after making the episodes consistent: a node's overlapping crashes merge, and a
/// partition that begins while another holds ends the earlier one.
fn schedule(mut eps: Vec<Episode>, rest: Vec<(Time, Fault)>) -> Vec<(Time, Fault)> {
    eps.sort_by_key(|e| e.from);
    let mut out: Vec<(Time, u8, Fault)> = rest.into_iter().map(|(t, f)| (t, 2, f)).collect();
    let mut crash_end: Vec<(NodeId, Option<Time>)> = Vec::new();
    let mut kept: Vec<Episode> = Vec::new();
    for e in eps {
        match &e.kind {
            Kind::Crash(n) => {
                let busy = crash_end
                    .iter()
                    .any(|(m, end)| m == n && end.is_none_or(|end| end > e.from));
                if busy {
                    continue;
                }
                crash_end.push((*n, e.to));
                kept.push(e);
            }
            Kind::Split(_) => {
                if let Some(prev) = kept
                    .iter_mut()
                    .rev()
                    .find(|p| matches!(p.kind, Kind::Split(_)))
                {
                    if prev.to.is_none_or(|end| end > e.from) {
                        prev.to = Some(e.from);
                    }
                }
                kept.push(e);
            }
        }
    }
    // An episode cut down to nothing (repaired as it begins) is left out.
    for e in kept.into_iter().filter(|e| e.to != Some(e.from)) {
        let (start, end) = match e.kind {
            Kind::Crash(n) => (Fault::Crash(n), Fault::Restart(n)),
            Kind::Split(f) => (f, Fault::Heal),
        };
        out.push((e.from, 1, start));
        if let Some(to) = e.to {
            out.push((to, 0, end));
        }
    }
    out.sort_by_key(|(t, order, _)| (*t, *order));
    out.into_iter().map(|(t, _, f)| (t, f)).collect()
}

/// The schedule of a branch at time `at` that also draws new weather: `parent`'s faults up to
/// `at` (and the repairs of what is still broken then), followed by what another seed drew
/// after it (`fresh`): its network from `at` on, its crashes and partitions.
pub fn splice(parent: &[(Time, Fault)], fresh: &[(Time, Fault)], at: Time) -> Vec<(Time, Fault)> {
    let (eps, _) = episodes(parent);
    let mut out: Vec<(Time, Fault)> = parent.iter().filter(|(t, _)| *t <= at).cloned().collect();
    // Repairs of the parent's episodes still open at `at`.
    for e in eps
        .iter()
        .filter(|e| e.from <= at && e.to.is_some_and(|to| to > at))
    {
        let to = e.to.expect("filtered");
        out.push(match e.kind {
            Kind::Crash(n) => (to, Fault::Restart(n)),
            Kind::Split(_) => (to, Fault::Heal),
        });
    }
    let mut weather: Option<Fault> = None;
    for (t, f) in fresh {
        match f {
            Fault::Network(_) if *t <= at => weather = Some(f.clone()),
            _ if *t > at => out.push((*t, f.clone())),
            _ => {}
        }
    }
    if let Some(w) = weather {
        out.push((at + 1, w));
    }
    out.sort_by_key(|(t, _)| *t);
    let (eps, rest) = episodes(&out);
    schedule(eps, rest)
}

/// A down time: a flash crash (0.1 to 20 ms) or a long one (50 ms to 3 s).
fn down_us(rng: &mut ChaCha8Rng) -> Time {
    if rng.random_bool(0.5) {
        rng.random_range(100..=20_000)
    } else {
        rng.random_range(50_000..=3_000_000)
    }
}

/// `faults` with one to three edits, inside `w`; None if nothing could be edited.
pub fn mutate(
    faults: &[(Time, Fault)],
    w: Window,
    rng: &mut ChaCha8Rng,
) -> Option<Vec<(Time, Fault)>> {
    if w.servers == 0 || w.until <= w.from {
        return None;
    }
    let (mut eps, rest) = episodes(faults);
    let clamp = |t: Time| t.clamp(w.from, w.until);
    let edits = rng.random_range(1..=3);
    for _ in 0..edits {
        let n = eps.len();
        match rng.random_range(0..7) {
            // Drop an episode.
            0 if n > 0 => {
                eps.remove(rng.random_range(0..n));
            }
            // Move one, keeping its length.
            1 if n > 0 => {
                let e = &mut eps[rng.random_range(0..n)];
                let len = e.to.map(|to| to - e.from);
                let shift = rng.random_range(-2_000_000i64..=2_000_000);
                e.from = clamp(e.from.saturating_add_signed(shift));
                e.to = len.map(|l| clamp(e.from + l));
            }
            // Stretch or shorten one (a crash may become a flash crash).
            2 if n > 0 => {
                let e = &mut eps[rng.random_range(0..n)];
                let len = if matches!(e.kind, Kind::Crash(_)) {
                    down_us(rng)
                } else {
                    let old = e.to.map_or(1_000_000, |to| to - e.from).max(1_000) as f64;
                    (old * rng.random_range(-2.0f64..2.0).exp()) as Time
                };
                e.to = Some(clamp(e.from + len));
            }
            // Copy one to another time.
            3 if n > 0 => {
                let mut e = eps[rng.random_range(0..n)].clone();
                let len = e.to.map_or(1_000_000, |to| to - e.from);
                e.from = rng.random_range(w.from..=w.until);
                e.to = Some(clamp(e.from + len));
                eps.push(e);
            }
            // Add a partition (a majority/minority split) or a one-way cut.
            4 => {
                let servers: Vec<NodeId> = (0..w.servers).collect();
                let fault = if w.servers >= 2 && rng.random_bool(0.3) {
                    let a = rng.random_range(0..w.servers);
                    let b = (a + rng.random_range(1..w.servers)) % w.servers;
                    Fault::Cut { from: a, to: b }
                } else {
                    Fault::Partition(sim::faults::random_split(&servers, rng))
                };
                let from = rng.random_range(w.from..=w.until);
                let len = rng.random_range(100_000..=5_000_000);
                eps.push(Episode {
                    from,
                    to: Some(clamp(from + len)),
                    kind: Kind::Split(fault),
                });
            }
            // Add a crash.
            _ => {
                let from = rng.random_range(w.from..=w.until);
                let len = down_us(rng);
                eps.push(Episode {
                    from,
                    to: Some(clamp(from + len)),
                    kind: Kind::Crash(rng.random_range(0..w.servers)),
                });
            }
        }
    }
    Some(schedule(eps, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn sample() -> Vec<(Time, Fault)> {
        vec![
            (0, Fault::Network(sim::NetworkConfig::default())),
            (1_000_000, Fault::Crash(1)),
            (1_500_000, Fault::Partition(vec![vec![0, 2], vec![1]])),
            (2_000_000, Fault::Restart(1)),
            (3_000_000, Fault::Heal),
            (4_000_000, Fault::Crash(2)),
        ]
    }

    #[test]
    fn an_unedited_schedule_reads_back_as_it_was() {
        let (eps, rest) = episodes(&sample());
        assert_eq!(eps.len(), 3);
        assert_eq!(rest.len(), 1);
        assert_eq!(schedule(eps, rest), sample());
    }

    /// Whatever the edits, the schedule stays well formed: repairs inside the window, one
    /// crash of a node at a time, one partition at a time, the network change kept.
    #[test]
    fn edits_keep_the_schedule_well_formed_and_inside_the_window() {
        let w = Window {
            servers: 3,
            from: 500_000,
            until: 6_000_000,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut changed = 0;
        for _ in 0..500 {
            let out = mutate(&sample(), w, &mut rng).expect("editable");
            changed += usize::from(out != sample());
            assert!(out.windows(2).all(|p| p[0].0 <= p[1].0), "sorted");
            assert!(matches!(out[0], (0, Fault::Network(_))));
            let mut down = [false; 3];
            let mut split = false;
            for (t, f) in &out {
                match f {
                    Fault::Crash(n) => {
                        assert!(!down[*n], "node {n} crashed twice at once: {out:?}");
                        down[*n] = true;
                    }
                    Fault::Restart(n) => {
                        assert!(down[*n] && *t <= w.until);
                        down[*n] = false;
                    }
                    Fault::Partition(_) | Fault::Cut { .. } => {
                        assert!(!split, "two partitions at once: {out:?}");
                        split = true;
                    }
                    Fault::Heal => {
                        assert!(*t <= w.until);
                        split = false;
                    }
                    _ => {}
                }
            }
            // Only the original unrepaired crash of node 2 may stay down at the end.
            assert!(!down[0] && !down[1] && !split, "{out:?}");
        }
        assert!(changed > 400, "edits change the schedule ({changed}/500)");
    }

    /// A spliced schedule keeps the past, repairs what the past left broken, and takes the
    /// other seed's network and faults for the future.
    #[test]
    fn a_splice_keeps_the_past_and_takes_the_future_from_the_other_draw() {
        let other = sim::NetworkConfig {
            duplicate: 0.5,
            ..sim::NetworkConfig::default()
        };
        let fresh = vec![
            (0, Fault::Network(other.clone())),
            (1_200_000, Fault::Crash(0)),
            (1_800_000, Fault::Crash(1)),
            (2_500_000, Fault::Restart(1)),
        ];
        let out = splice(&sample(), &fresh, 1_600_000);
        assert_eq!(
            out,
            vec![
                (0, Fault::Network(sim::NetworkConfig::default())),
                (1_000_000, Fault::Crash(1)),
                (1_500_000, Fault::Partition(vec![vec![0, 2], vec![1]])),
                (1_600_001, Fault::Network(other)),
                (2_000_000, Fault::Restart(1)),
                // The other draw's restart of a node that is up by then: a no-op, kept.
                (2_500_000, Fault::Restart(1)),
                (3_000_000, Fault::Heal),
            ]
        );
    }

    #[test]
    fn edits_are_a_function_of_the_seed() {
        let w = Window {
            servers: 5,
            from: 0,
            until: 10_000_000,
        };
        let a = mutate(&sample(), w, &mut ChaCha8Rng::seed_from_u64(3));
        let b = mutate(&sample(), w, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a, b);
    }
}
