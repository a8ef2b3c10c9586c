//! Online Raft safety checks (the extended paper's Figure 3 properties and more), generic over
//! any Raft run: they read only the servers' observations, after every event.

use super::node::{LogChange, RaftObs};
use sim::{Checker, Failure, NodeId, Time};
use std::collections::BTreeMap;

/// A server's durable log as the checker mirrors it from its writes.
#[derive(Clone, Debug, Default)]
struct MirrorLog {
    snap_index: u64,
    snap_term: u64,
    /// `(term, value)` of entries `snap_index + 1 ..`.
    entries: Vec<(u64, u64)>,
}

impl MirrorLog {
    fn last_index(&self) -> u64 {
        self.snap_index + self.entries.len() as u64
    }
    fn get(&self, index: u64) -> Option<(u64, u64)> {
        if index == self.snap_index {
            return Some((self.snap_term, 0));
        }
        let i = index.checked_sub(self.snap_index + 1)?;
        self.entries.get(usize::try_from(i).ok()?).copied()
    }
}

/// What is known to be committed at an index: its value, and its term when an apply said so.
#[derive(Clone, Copy, Debug)]
struct Committed {
    term: Option<u64>,
    value: u64,
}

/// Election safety, log matching, leader completeness, state machine safety, and commit and
/// apply indices that never go backwards within an incarnation.
pub struct RaftSafety {
    leaders: BTreeMap<u64, NodeId>,
    logs: Vec<MirrorLog>,
    /// `(index, term)` → `(value, term of the previous entry)`, over all servers, ever.
    entries: BTreeMap<(u64, u64), (u64, u64)>,
    committed: BTreeMap<u64, Committed>,
    commit: Vec<u64>,
    applied: Vec<u64>,
}

impl RaftSafety {
    /// A checker for `servers` servers (ids 0..servers); observations of others are ignored.
    pub fn new(servers: usize) -> Self {
        RaftSafety {
            leaders: BTreeMap::new(),
            logs: vec![MirrorLog::default(); servers],
            entries: BTreeMap::new(),
            committed: BTreeMap::new(),
            commit: vec![0; servers],
            applied: vec![0; servers],
        }
    }

    fn log_change(&mut self, node: NodeId, change: &LogChange) -> Result<(), Failure> {
        let log = &mut self.logs[node];
        match change {
            LogChange::Append { entries } => {
                for &(index, term, value) in entries {
                    if index != log.last_index() + 1 {
                        return Err(Failure::new(
                            "log continuity",
                            vec![node],
                            format!(
                                "s{node} appended index {index} after its last index {}",
                                log.last_index()
                            ),
                        ));
                    }
                    let prev_term = log.get(index - 1).map_or(0, |(t, _)| t);
                    match self.entries.get(&(index, term)) {
                        Some(&(v, pt)) if v != value || pt != prev_term => {
                            return Err(Failure::new(
                                "log matching",
                                vec![node],
                                format!(
                                    "s{node} holds index {index} term {term} = {value} after an entry of term {prev_term}, \
                                     but another server held index {index} term {term} = {v} after term {pt}"
                                ),
                            ));
                        }
                        Some(_) => {}
                        None => {
                            self.entries.insert((index, term), (value, prev_term));
                        }
                    }
                    log.entries.push((term, value));
                }
            }
            LogChange::Truncate { from } => {
                let keep = from.saturating_sub(log.snap_index + 1) as usize;
                for (offset, &(term, value)) in log.entries.iter().enumerate().skip(keep) {
                    let index = log.snap_index + 1 + offset as u64;
                    if let Some(c) = self.committed.get(&index) {
                        if c.term == Some(term) && c.value == value {
                            return Err(Failure::new(
                                "committed entry kept",
                                vec![node],
                                format!("s{node} truncated committed entry {index} (term {term}, value {value})"),
                            ));
                        }
                    }
                }
                log.entries.truncate(keep);
            }
            LogChange::Snapshot { index, term } => {
                if *index <= log.snap_index {
                    return Ok(());
                }
                if log.get(*index).map(|(t, _)| t) == Some(*term) {
                    let drop = (index - log.snap_index) as usize;
                    log.entries.drain(..drop.min(log.entries.len()));
                } else {
                    log.entries.clear();
                }
                log.snap_index = *index;
                log.snap_term = *term;
            }
        }
        Ok(())
    }

    fn became_leader(&mut self, node: NodeId, term: u64) -> Result<(), Failure> {
        if let Some(&other) = self.leaders.get(&term) {
            if other != node {
                return Err(Failure::new(
                    "election safety",
                    vec![other, node],
                    format!("s{other} and s{node} were both leader in term {term}"),
                ));
            }
        }
        self.leaders.insert(term, node);
        let log = &self.logs[node];
        for (&index, c) in self.committed.range(log.snap_index + 1..) {
            let held = log.get(index);
            let ok = match (held, c.term) {
                (Some((t, v)), Some(ct)) => t == ct && v == c.value,
                (Some((_, v)), None) => v == c.value,
                (None, _) => false,
            };
            if !ok {
                return Err(Failure::new(
                    "leader completeness",
                    vec![node],
                    format!(
                        "s{node} became leader of term {term} without committed entry {index} (value {}); its log has {held:?}",
                        c.value
                    ),
                ));
            }
        }
        Ok(())
    }

    fn commit_value(
        &mut self,
        node: NodeId,
        index: u64,
        term: Option<u64>,
        value: u64,
    ) -> Result<(), Failure> {
        match self.committed.get_mut(&index) {
            Some(c) if c.value != value || matches!((c.term, term), (Some(a), Some(b)) if a != b) => {
                Err(Failure::new(
                    "state machine safety",
                    vec![node],
                    format!(
                        "s{node} applied {value} (term {term:?}) at index {index}, but {} (term {:?}) was applied there before",
                        c.value, c.term
                    ),
                ))
            }
            Some(c) => {
                c.term = c.term.or(term);
                Ok(())
            }
            None => {
                self.committed.insert(index, Committed { term, value });
                Ok(())
            }
        }
    }
}

impl Checker<super::node::RaftNode> for RaftSafety {
    fn name(&self) -> &'static str {
        "raft safety"
    }

    fn on_observation(&mut self, _now: Time, node: NodeId, obs: &RaftObs) -> Result<(), Failure> {
        if node >= self.logs.len() {
            return Ok(());
        }
        match obs {
            RaftObs::Boot { commit_index } => {
                self.commit[node] = *commit_index;
                self.applied[node] = 0;
            }
            RaftObs::Role { role, term } if role == "leader" => self.became_leader(node, *term)?,
            RaftObs::Role { .. } => {}
            RaftObs::Commit { commit_index } => {
                if *commit_index < self.commit[node] {
                    return Err(Failure::new(
                        "commit index monotonic",
                        vec![node],
                        format!(
                            "s{node}'s commit index went from {} back to {commit_index}",
                            self.commit[node]
                        ),
                    ));
                }
                self.commit[node] = *commit_index;
            }
            RaftObs::Applied { index, term, value } => {
                if *index != self.applied[node] + 1 {
                    return Err(Failure::new(
                        "apply order",
                        vec![node],
                        format!(
                            "s{node} applied index {index} right after index {}",
                            self.applied[node]
                        ),
                    ));
                }
                if *index > self.commit[node] {
                    return Err(Failure::new(
                        "apply only committed",
                        vec![node],
                        format!(
                            "s{node} applied index {index} above its commit index {}",
                            self.commit[node]
                        ),
                    ));
                }
                self.applied[node] = *index;
                self.commit_value(node, *index, Some(*term), *value)?;
            }
            RaftObs::Restored {
                index,
                term,
                values,
            } => {
                if *index < self.applied[node] {
                    return Err(Failure::new(
                        "apply order",
                        vec![node],
                        format!(
                            "s{node} restored a snapshot through {index} after applying {}",
                            self.applied[node]
                        ),
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    let at = i as u64 + 1;
                    let t = (at == *index).then_some(*term);
                    self.commit_value(node, at, t, *v)?;
                }
                self.applied[node] = *index;
                self.commit[node] = self.commit[node].max(*index);
            }
            RaftObs::Log(change) => self.log_change(node, change)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(
        c: &mut RaftSafety,
        node: NodeId,
        entries: &[(u64, u64, u64)],
    ) -> Result<(), Failure> {
        c.on_observation(
            0,
            node,
            &RaftObs::Log(LogChange::Append {
                entries: entries.to_vec(),
            }),
        )
    }
    fn leader(c: &mut RaftSafety, node: NodeId, term: u64) -> Result<(), Failure> {
        c.on_observation(
            0,
            node,
            &RaftObs::Role {
                role: "leader".into(),
                term,
            },
        )
    }
    fn applied(
        c: &mut RaftSafety,
        node: NodeId,
        index: u64,
        term: u64,
        value: u64,
    ) -> Result<(), Failure> {
        c.on_observation(
            0,
            node,
            &RaftObs::Commit {
                commit_index: index,
            },
        )?;
        c.on_observation(0, node, &RaftObs::Applied { index, term, value })
    }

    #[test]
    fn two_leaders_in_one_term() {
        let mut c = RaftSafety::new(3);
        leader(&mut c, 0, 2).unwrap();
        leader(&mut c, 0, 2).unwrap();
        assert_eq!(
            leader(&mut c, 1, 2).unwrap_err().property,
            "election safety"
        );
    }

    #[test]
    fn log_matching_catches_different_values_at_the_same_index_and_term() {
        let mut c = RaftSafety::new(3);
        append(&mut c, 0, &[(1, 1, 10), (2, 1, 20)]).unwrap();
        append(&mut c, 1, &[(1, 1, 10)]).unwrap();
        assert_eq!(
            append(&mut c, 1, &[(2, 1, 21)]).unwrap_err().property,
            "log matching"
        );
    }

    #[test]
    fn log_matching_catches_a_different_prefix() {
        let mut c = RaftSafety::new(3);
        append(&mut c, 0, &[(1, 1, 10), (2, 2, 20)]).unwrap();
        append(&mut c, 1, &[(1, 2, 11)]).unwrap();
        assert_eq!(
            append(&mut c, 1, &[(2, 2, 20)]).unwrap_err().property,
            "log matching"
        );
    }

    #[test]
    fn state_machine_safety_and_apply_order() {
        let mut c = RaftSafety::new(3);
        applied(&mut c, 0, 1, 1, 10).unwrap();
        assert_eq!(
            applied(&mut c, 1, 1, 1, 11).unwrap_err().property,
            "state machine safety"
        );
        let mut c = RaftSafety::new(3);
        applied(&mut c, 0, 1, 1, 10).unwrap();
        assert_eq!(
            applied(&mut c, 0, 3, 1, 30).unwrap_err().property,
            "apply order"
        );
        let mut c = RaftSafety::new(3);
        c.on_observation(0, 0, &RaftObs::Commit { commit_index: 3 })
            .unwrap();
        let e = c
            .on_observation(0, 0, &RaftObs::Commit { commit_index: 2 })
            .unwrap_err();
        assert_eq!(e.property, "commit index monotonic");
        let e = c
            .on_observation(
                0,
                1,
                &RaftObs::Applied {
                    index: 1,
                    term: 1,
                    value: 1,
                },
            )
            .unwrap_err();
        assert_eq!(e.property, "apply only committed");
    }

    #[test]
    fn leader_completeness() {
        let mut c = RaftSafety::new(3);
        append(&mut c, 0, &[(1, 1, 10)]).unwrap();
        append(&mut c, 1, &[(1, 1, 10)]).unwrap();
        applied(&mut c, 0, 1, 1, 10).unwrap();
        leader(&mut c, 1, 2).unwrap();
        let e = leader(&mut c, 2, 3).unwrap_err();
        assert_eq!(e.property, "leader completeness");
    }

    #[test]
    fn truncating_a_committed_entry() {
        let mut c = RaftSafety::new(3);
        append(&mut c, 0, &[(1, 1, 10), (2, 1, 20)]).unwrap();
        applied(&mut c, 0, 1, 1, 10).unwrap();
        c.on_observation(0, 0, &RaftObs::Log(LogChange::Truncate { from: 2 }))
            .unwrap();
        let e = c
            .on_observation(0, 0, &RaftObs::Log(LogChange::Truncate { from: 1 }))
            .unwrap_err();
        assert_eq!(e.property, "committed entry kept");
    }

    #[test]
    fn snapshots_shift_the_mirror() {
        let mut c = RaftSafety::new(3);
        append(&mut c, 0, &[(1, 1, 10), (2, 1, 20), (3, 1, 30)]).unwrap();
        c.on_observation(
            0,
            0,
            &RaftObs::Log(LogChange::Snapshot { index: 2, term: 1 }),
        )
        .unwrap();
        append(&mut c, 0, &[(4, 1, 40)]).unwrap();
        assert_eq!(c.logs[0].get(3), Some((1, 30)));
        c.on_observation(
            0,
            1,
            &RaftObs::Log(LogChange::Snapshot { index: 5, term: 2 }),
        )
        .unwrap();
        assert_eq!(c.logs[1].last_index(), 5);
        append(&mut c, 1, &[(6, 2, 60)]).unwrap();
    }
}
