//! The 6.824 Raft tester's steps (checkOneLeader, one, wait, nCommitted...) for the step
//! interpreter, over [`RaftNode`] servers.

use super::node::{is_leader, Cmd, RaftInput, RaftNode, RaftObs};
use crate::steps::spec::{describe, Expr, Step};
use crate::steps::{Env, Flow, System};
use rand::Rng;
use sim::network::ms_to_us;
use sim::{Durable, Failure, NodeId, Time, World};
use std::collections::BTreeMap;

/// State of a Raft step that waits.
pub enum RaftState {
    /// checkOneLeader's round number.
    LeaderRound(u32),
    /// one(): started at `t0`; `index` is set once a leader accepted (at `t1`).
    One {
        t0: Time,
        starts: usize,
        index: Option<(u64, Time)>,
        cmd: u64,
    },
    /// wait(): started at `t0`.
    Wait { t0: Time },
    /// check_caught_up: started at `t0`; `target` is the leader and its commit index once seen.
    CatchUp {
        t0: Time,
        target: Option<(NodeId, u64)>,
    },
}

/// The Raft tester.
pub struct RaftTester {
    servers: usize,
    /// Fail as soon as a server's persisted state passes this many bytes (6.824 2D: 2000).
    max_raft_state: Option<u64>,
}

impl RaftTester {
    /// A tester over servers `0..servers`.
    pub fn new(servers: usize, max_raft_state: Option<u64>) -> Self {
        RaftTester {
            servers,
            max_raft_state,
        }
    }

    fn live<'w>(
        &self,
        world: &'w World<RaftNode>,
    ) -> impl Iterator<Item = (NodeId, &'w RaftNode)> + 'w {
        // A server that halted after losing synced state is down to the others, and so to
        // the tester.
        (0..self.servers)
            .filter_map(move |i| world.node(i).map(|n| (i, n)))
            .filter(|(_, n)| !n.halted())
    }
}

impl RaftTester {
    /// One poll of `check_caught_up`: fix the target on the first leader seen (the connected
    /// leader of the newest term), then wait until every live server's commit index and
    /// applied entries reach it; fail after `within` µs since `t0`, naming the laggards.
    fn catch_up(
        &self,
        world: &mut World<RaftNode>,
        target: &mut Option<(NodeId, u64)>,
        t0: Time,
        within: Time,
    ) -> Flow {
        if target.is_none() {
            *target = self
                .live(world)
                .filter(|(i, node)| !world.isolated(*i) && is_leader(node))
                .max_by_key(|(_, node)| node.raft().current_term())
                .map(|(i, node)| (i, node.raft().commit_index()));
        }
        let late = world.now() - t0 >= within;
        let Some((leader, index)) = *target else {
            return if late {
                fail(
                    "catch-up",
                    format!(
                        "no leader among connected servers within {} ms",
                        within / 1000
                    ),
                )
            } else {
                Flow::Wait(10_000)
            };
        };
        let laggards: Vec<(NodeId, u64, u64)> = self
            .live(world)
            .map(|(i, node)| (i, node.raft().commit_index(), node.applied_len()))
            .filter(|&(_, commit, applied)| commit < index || applied < index)
            .collect();
        if laggards.is_empty() {
            world.note(|| {
                format!(
                    "check_caught_up: every live server applied s{leader}'s commit index {index}"
                )
            });
            return Flow::Next;
        }
        if !late {
            return Flow::Wait(10_000);
        }
        let who: Vec<String> = laggards
            .iter()
            .map(|(i, c, a)| format!("s{i} (commit {c}, applied {a})"))
            .collect();
        Flow::Fail(Failure::new(
            "catch-up",
            laggards.iter().map(|l| l.0).collect(),
            format!(
                "leader s{leader} had committed index {index}, but after {} ms {} had not caught up",
                within / 1000,
                who.join(", ")
            ),
        ))
    }
}

impl RaftTester {
    /// Figure 2: a leader's `matchIndex[]` is the "index of highest log entry known to be
    /// replicated on server". So whenever a live leader of term T says a live server of the
    /// same term matches it through index m, that server holds index m (m <= its last index)
    /// with the leader's term there. (Within one term a follower only loses entries that
    /// conflict with that leader's, and none at or below what matches; a server in another
    /// term is not compared.) A leader that believes more never sends the missing entries.
    fn check_match_indexes(&self, world: &World<RaftNode>) -> Result<(), Failure> {
        for (l, leader) in self.live(world).filter(|(_, n)| is_leader(n)) {
            let lr = leader.raft();
            for (p, peer) in self.live(world).filter(|(p, _)| *p != l) {
                let pr = peer.raft();
                // A server that halted after losing synced state is down to the others: what
                // the leader knew of its log went with its disk.
                if pr.current_term() != lr.current_term() || peer.halted() {
                    continue;
                }
                let Some(m) = lr.match_index(p) else { continue };
                let holds = m <= pr.last_index()
                    && match (pr.term_at(m), lr.term_at(m)) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    };
                if !holds {
                    return Err(Failure::new(
                        "leader match index",
                        vec![l, p],
                        format!(
                            "s{l}, leader of term {}, holds match_index[s{p}] = {m}, but s{p} (same term) has last index {} with term {:?} there (leader's: {:?})",
                            lr.current_term(),
                            pr.last_index(),
                            pr.term_at(m),
                            lr.term_at(m)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn fail(property: &str, detail: String) -> Flow {
    Flow::Fail(Failure::new(property, vec![], detail))
}

fn leader_pause(world: &mut World<RaftNode>) -> Time {
    world.rng().random_range(450_000..550_000)
}

/// nCommitted: how many live servers applied `index`, and the value (None if none did).
fn n_committed(
    world: &World<RaftNode>,
    servers: usize,
    index: u64,
) -> Result<(usize, Option<u64>), Failure> {
    let mut count = 0;
    let mut value: Option<(NodeId, u64)> = None;
    for i in 0..servers {
        let Some(node) = world.node(i) else { continue };
        if let Some(v) = node.applied(index) {
            if let Some((j, w)) = value {
                if w != v {
                    return Err(Failure::new(
                        "state machine safety",
                        vec![j, i],
                        format!("committed values do not match at index {index}: s{j} has {w}, s{i} has {v}"),
                    ));
                }
            }
            value = Some((i, v));
            count += 1;
        }
    }
    Ok((count, value.map(|(_, v)| v)))
}

impl System<RaftNode> for RaftTester {
    type State = RaftState;

    fn exec(
        &mut self,
        world: &mut World<RaftNode>,
        env: &mut Env<'_>,
        step: &Step,
        state: &mut Option<RaftState>,
    ) -> Flow {
        macro_rules! tryf {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(f) => return Flow::Fail(f),
                }
            };
        }
        let n = self.servers;
        match step {
            Step::CheckOneLeader(store) => {
                let round = match state {
                    None => {
                        *state = Some(RaftState::LeaderRound(0));
                        return Flow::Wait(leader_pause(world));
                    }
                    Some(RaftState::LeaderRound(r)) => r,
                    _ => unreachable!("state of another step"),
                };
                let mut by_term: BTreeMap<u64, Vec<NodeId>> = BTreeMap::new();
                for (i, node) in self.live(world) {
                    if !world.isolated(i) && is_leader(node) {
                        by_term
                            .entry(node.raft().current_term())
                            .or_default()
                            .push(i);
                    }
                }
                if let Some((term, ids)) = by_term.iter().find(|(_, ids)| ids.len() > 1) {
                    return Flow::Fail(Failure::new(
                        "one leader",
                        ids.clone(),
                        format!("term {term} has {} leaders", ids.len()),
                    ));
                }
                if let Some((term, ids)) = by_term.iter().next_back() {
                    let leader = ids[0];
                    if let Some(name) = &store.store {
                        env.vars.insert(name.clone(), leader as i64);
                    }
                    world.note(|| format!("check_one_leader: s{leader} leads term {term}"));
                    return Flow::Next;
                }
                *round += 1;
                if *round >= 10 {
                    return fail(
                        "one leader",
                        "expected one leader, got none after 10 rounds".into(),
                    );
                }
                Flow::Wait(leader_pause(world))
            }
            Step::MaxTerm(store) => {
                let max = self
                    .live(world)
                    .map(|(_, node)| node.raft().current_term())
                    .max()
                    .unwrap_or(0);
                if let Some(name) = &store.store {
                    env.vars.insert(name.clone(), max as i64);
                }
                Flow::Next
            }
            Step::CheckNoLeader {} => {
                for (i, node) in self.live(world) {
                    if !world.isolated(i) && is_leader(node) {
                        return Flow::Fail(Failure::new("no leader", vec![i], format!("expected no leader among connected servers, but s{i} claims to be one")));
                    }
                }
                Flow::Next
            }
            Step::CheckTerms(ct) => {
                let mut term = None;
                for (i, node) in self.live(world) {
                    if world.isolated(i) {
                        continue;
                    }
                    let t = node.raft().current_term();
                    match term {
                        None => term = Some(t),
                        Some(x) if x != t => {
                            return fail(
                                "term agreement",
                                format!("servers disagree on term: {x} and {t}"),
                            )
                        }
                        _ => {}
                    }
                }
                let term = term.unwrap_or(0) as i64;
                if let Some(name) = &ct.same_as {
                    let before = tryf!(env.eval(
                        world,
                        &Expr::Name(format!("${}", name.trim_start_matches('$')))
                    ));
                    if before != term {
                        return fail(
                            "term stability",
                            format!("term changed from {before} to {term} although nothing failed"),
                        );
                    }
                }
                if let Some(name) = &ct.store {
                    env.vars.insert(name.clone(), term);
                }
                Flow::Next
            }
            Step::One(one) => {
                if state.is_none() {
                    let cmd = tryf!(env.eval(world, &one.cmd)) as u64;
                    *state = Some(RaftState::One {
                        t0: world.now(),
                        starts: 0,
                        index: None,
                        cmd,
                    });
                }
                let Some(RaftState::One {
                    t0,
                    starts,
                    index,
                    cmd,
                }) = state
                else {
                    unreachable!()
                };
                let expected = tryf!(env.eval(world, &one.servers)) as usize;
                let now = world.now();
                if let Some((idx, t1)) = *index {
                    let (nd, value) = tryf!(n_committed(world, n, idx));
                    if nd > 0 && nd >= expected && value == Some(*cmd) {
                        if let Some(name) = &one.store {
                            env.vars.insert(name.clone(), idx as i64);
                        }
                        return Flow::Next;
                    }
                    if now - t1 < 2_000_000 {
                        return Flow::Wait(20_000);
                    }
                    if !one.retry {
                        return fail("agreement", format!("one({cmd}) failed to reach agreement: {nd} of {expected} servers applied index {idx} within 2s"));
                    }
                    *index = None;
                }
                if now - *t0 >= 10_000_000 {
                    return fail(
                        "agreement",
                        format!("one({cmd}) failed to reach agreement within 10s"),
                    );
                }
                for _ in 0..n {
                    *starts = (*starts + 1) % n;
                    let s = *starts;
                    if world.isolated(s) || !world.is_up(s) {
                        continue;
                    }
                    if let Some(Some((idx, _term))) = world.input(
                        s,
                        RaftInput::Start(Cmd {
                            value: *cmd,
                            pad: one.pad,
                        }),
                    ) {
                        *index = Some((idx, now));
                        break;
                    }
                }
                if index.is_some() {
                    // Check right away, as the tester does, then poll.
                    let (idx, _) = index.expect("set");
                    let (nd, value) = tryf!(n_committed(world, n, idx));
                    if nd > 0 && nd >= expected && value == Some(*cmd) {
                        if let Some(name) = &one.store {
                            env.vars.insert(name.clone(), idx as i64);
                        }
                        return Flow::Next;
                    }
                    Flow::Wait(20_000)
                } else {
                    Flow::Wait(50_000)
                }
            }
            Step::Submit(sub) => {
                let cmd = tryf!(env.eval(world, &sub.cmd)) as u64;
                let mut accepted = None;
                let mut leader = -1;
                for s in tryf!(env.select(world, &sub.on)) {
                    if let Some(Some((idx, term))) = world.input(
                        s,
                        RaftInput::Start(Cmd {
                            value: cmd,
                            pad: sub.pad,
                        }),
                    ) {
                        accepted = Some((idx, term));
                        leader = s as i64;
                        if !sub.to_all {
                            break;
                        }
                    }
                }
                let (idx, term) = accepted.map_or((-1, -1), |(i, t)| (i as i64, t as i64));
                for (name, v) in [
                    (&sub.store, idx),
                    (&sub.term_as, term),
                    (&sub.ok_as, i64::from(accepted.is_some())),
                    (&sub.leader_as, leader),
                ] {
                    if let Some(name) = name {
                        env.vars.insert(name.clone(), v);
                    }
                }
                match sub.expect_leader {
                    Some(true) if accepted.is_none() => fail("leader accepts", format!("no selected server accepted command {cmd} as leader")),
                    Some(false) if accepted.is_some() => fail("no leader accepts", format!("a server accepted command {cmd} at index {idx} term {term} but none should lead")),
                    _ => Flow::Next,
                }
            }
            Step::WaitCommitted(w) => {
                let t0 = match state {
                    None => {
                        *state = Some(RaftState::Wait { t0: world.now() });
                        world.now()
                    }
                    Some(RaftState::Wait { t0 }) => *t0,
                    _ => unreachable!(),
                };
                let index = tryf!(env.eval(world, &w.index));
                let expected = tryf!(env.eval(world, &w.servers)) as usize;
                if index < 0 {
                    return fail(
                        "agreement",
                        "wait_committed on index -1 (no leader accepted the command)".into(),
                    );
                }
                let (nd, value) = tryf!(n_committed(world, n, index as u64));
                if nd >= expected {
                    if let Some(cmd) = &w.cmd {
                        let cmd = tryf!(env.eval(world, cmd)) as u64;
                        if w.expect_cmd && value != Some(cmd) {
                            return fail(
                                "agreement",
                                format!("index {index} committed {value:?}, expected {cmd}"),
                            );
                        }
                        if let (Some(list), true) = (&w.collect, value == Some(cmd)) {
                            env.lists.entry(list.clone()).or_default().push(cmd);
                        }
                    }
                    if let Some(name) = &w.ok_as {
                        env.vars.insert(name.clone(), 1);
                    }
                    return Flow::Next;
                }
                if let Some(term) = &w.term {
                    let term = tryf!(env.eval(world, term));
                    if let Some((i, node)) = self
                        .live(world)
                        .find(|(_, nd)| nd.raft().current_term() as i64 > term)
                    {
                        return Flow::Abort(format!(
                            "s{i} moved to term {} past {term}",
                            node.raft().current_term()
                        ));
                    }
                }
                if world.now() - t0 >= ms_to_us(w.within_ms) {
                    if let Some(name) = &w.ok_as {
                        env.vars.insert(name.clone(), 0);
                    }
                    return if w.required {
                        fail(
                            "agreement",
                            format!("only {nd} decided for index {index}; wanted {expected}"),
                        )
                    } else {
                        Flow::Next
                    };
                }
                Flow::Wait(10_000)
            }
            Step::CheckCommitted(c) => {
                let index = tryf!(env.eval(world, &c.index)) as u64;
                let expected = tryf!(env.eval(world, &c.servers)) as usize;
                let (nd, _) = tryf!(n_committed(world, n, index));
                if nd != expected {
                    return fail(
                        "commitment",
                        format!("{nd} servers applied index {index}, expected {expected}"),
                    );
                }
                Flow::Next
            }
            Step::CheckCollected(c) => {
                let expected = tryf!(env.eval(world, &c.servers)) as usize;
                let values = env.lists.get(&c.list).cloned().unwrap_or_default();
                for v in &values {
                    let holders = self
                        .live(world)
                        .filter(|(_, node)| {
                            (1..=node.applied_len()).any(|i| node.applied(i) == Some(*v))
                        })
                        .count();
                    if holders < expected {
                        return fail("durability", format!("value {v} that a client saw committed is applied on {holders} servers, expected {expected}"));
                    }
                }
                world.note(|| format!("{} collected values all committed", values.len()));
                Flow::Next
            }
            Step::CheckPersistedSize { max_bytes } => {
                for i in 0..n {
                    let size = world.durable(i).byte_size() as u64;
                    if size > *max_bytes {
                        return Flow::Fail(Failure::new(
                            "persisted size",
                            vec![i],
                            format!(
                                "s{i} persists {size} bytes of Raft state, more than {max_bytes}"
                            ),
                        ));
                    }
                }
                Flow::Next
            }
            Step::CheckCaughtUp(w) => {
                if state.is_none() {
                    *state = Some(RaftState::CatchUp {
                        t0: world.now(),
                        target: None,
                    });
                }
                let Some(RaftState::CatchUp { t0, target }) = state else {
                    unreachable!("state of another step")
                };
                let t0 = *t0;
                self.catch_up(world, target, t0, ms_to_us(w.within_ms))
            }
            other => fail(
                "scenario",
                format!("step {} is not a Raft step", describe(other)),
            ),
        }
    }

    fn observe(
        &mut self,
        world: &mut World<RaftNode>,
        node: NodeId,
        obs: &RaftObs,
    ) -> Result<(), Failure> {
        self.check_match_indexes(world)?;
        // A server that halted after losing synced state keeps what its disk had left, an
        // older hard state maybe: it serves nothing from it.
        let halted = world.node(node).is_some_and(|n| n.halted());
        if let (RaftObs::Log(_) | RaftObs::Boot { .. }, false) = (obs, halted) {
            super::durable::check_durable_term(node, &world.durable(node).recovered())?;
        }
        if let (Some(max), RaftObs::Log(_)) = (self.max_raft_state, obs) {
            let size = world.durable(node).byte_size() as u64;
            if size > max {
                return Err(Failure::new(
                    "persisted size",
                    vec![node],
                    format!("s{node} persists {size} bytes of Raft state, more than {max}"),
                ));
            }
        }
        Ok(())
    }
}
