//! Service tests on the in-crate harness (see `testing.rs`).

use std::collections::BTreeSet;

use rand::Rng;

use crate::testing::{World, RETRY_TIMEOUT};
use crate::{Bugs, ClientReply, KvMessage, Op, ServerEvent};

pub(crate) fn leader(w: &mut World) -> usize {
    assert!(
        w.run_until(5_000_000, |w| w.leaders().len() == 1),
        "no single leader"
    );
    w.leaders()[0]
}

/// All up servers converge to the same map.
pub(crate) fn converged(w: &World) -> bool {
    let up: Vec<_> = w.servers.iter().flatten().collect();
    up.windows(2)
        .all(|p| p[0].data() == p[1].data() && p[0].applied_index() == p[1].applied_index())
}

#[test]
fn single_client_put_append_get() {
    let mut w = World::new(3, 1, None, 1);
    assert_eq!(w.op(0, Op::get("a")).as_deref(), Some(""));
    assert_eq!(w.op(0, Op::put("a", "1")), None);
    assert_eq!(w.op(0, Op::append("a", "2")), None);
    assert_eq!(w.op(0, Op::append("b", "x")), None);
    assert_eq!(w.op(0, Op::get("a")).as_deref(), Some("12"));
    assert_eq!(w.op(0, Op::get("b")).as_deref(), Some("x"));
    assert_eq!(w.op(0, Op::put("a", "3")), None);
    assert_eq!(w.op(0, Op::get("a")).as_deref(), Some("3"));
    assert!(w.run_until(1_000_000, converged));
    for i in 0..3 {
        assert_eq!(w.server(i).get_local("a"), Some("3"));
        assert_eq!(w.server(i).last_executed(World::client_id(0)), Some(8));
    }
    // Gets went through the log too: 8 applies.
    assert_eq!(w.server(0).applied_index(), 8);
    w.assert_linearizable();
}

/// Each clerk appends `count` tagged values to `key`; returns the final value.
fn concurrent_appends(w: &mut World, key: &str, count: usize) -> String {
    let clerks = w.clerks.len();
    let mut next = vec![0; clerks];
    while next.iter().any(|n| *n < count) || w.clerks.iter().any(|c| c.busy()) {
        for (k, n) in next.iter_mut().enumerate() {
            if !w.clerks[k].busy() && *n < count {
                w.invoke(k, Op::append(key, format!("<{k}.{n}>")));
                *n += 1;
            }
        }
        let before = w.now;
        assert!(w.step(u64::MAX));
        assert!(w.now - before < 60_000_000, "stuck");
    }
    w.op(0, Op::get(key)).expect("a get value")
}

/// Each clerk's values appear exactly once and in its order.
fn check_appends(value: &str, clerks: usize, count: usize) {
    for k in 0..clerks {
        let mut pos = 0;
        for j in 0..count {
            let tag = format!("<{k}.{j}>");
            assert_eq!(value.matches(&tag).count(), 1, "{tag} in {value}");
            let at = value.find(&tag).unwrap();
            assert!(at >= pos, "{tag} out of order in {value}");
            pos = at;
        }
    }
}

#[test]
fn concurrent_clients_append_exactly_once_in_order() {
    let mut w = World::new(5, 4, None, 2);
    let v = concurrent_appends(&mut w, "k", 15);
    check_appends(&v, 4, 15);
    let tags: usize = (0..4)
        .flat_map(|k| (0..15).map(move |j| format!("<{k}.{j}>").len()))
        .sum();
    assert_eq!(v.len(), tags);
    // (No linearizability search here: 60 concurrent appends to one key are
    // costly for it; exactly-once and per-client order are checked above.)
}

#[test]
fn duplicated_requests_and_lost_replies_never_double_apply() {
    let mut w = World::new(3, 3, None, 3);
    w.dup_rate = 0.5;
    // Lose the first reply to each request: the clerk must time out and retry.
    let mut seen = BTreeSet::new();
    w.drop_filter = Some(Box::new(move |_, to, m| match m {
        KvMessage::Reply(r @ ClientReply::Ok { .. }) => seen.insert((to, r.seq())),
        _ => false,
    }));
    let v = concurrent_appends(&mut w, "k", 8);
    check_appends(&v, 3, 8);
    assert!(w.run_until(2_000_000, converged));
    assert!(w.history_len() > 20);
    for i in 0..3 {
        for k in 0..3 {
            for seq in 1..=8 {
                assert_eq!(w.executions(i, World::client_id(k), seq), 1);
            }
        }
    }
}

#[test]
fn leader_change_in_the_middle_of_a_request() {
    let mut w = World::new(5, 1, None, 4);
    w.op(0, Op::put("k", "a"));
    let old = leader(&mut w);
    let last = w.server(old).raft().last_index();
    w.invoke(0, Op::append("k", "b"));
    // The old leader has proposed the append; cut it off before it commits.
    assert!(w.run_until(1_000_000, |w| w.server(old).raft().last_index() > last));
    w.partition(&[&[old]]);
    assert!(w.run_until(5_000_000, |w| !w.clerks[0].busy()));
    assert!(
        w.leaders().iter().any(|l| *l != old),
        "a new leader answered"
    );
    w.heal();
    assert!(w.run_until(3_000_000, |w| converged(w)
        && !w.server(old).raft().is_leader()));
    assert_eq!(w.op(0, Op::get("k")).as_deref(), Some("ab"));
    for i in 0..5 {
        assert_eq!(w.executions(i, World::client_id(0), 2), 1);
        assert_eq!(w.server(i).get_local("k"), Some("ab"));
    }
    w.assert_linearizable();
}

/// Old leader isolated with clerk 0; clerk 1 writes in the majority; then
/// clerk 0 reads through the old leader. Returns what clerk 0's get saw
/// while partitioned (None if it did not complete).
pub(crate) fn read_from_deposed_leader(bugs: Bugs) -> (World, Option<Option<String>>) {
    read_from_deposed_leader_with(|w| w.set_bugs(bugs))
}

/// [`read_from_deposed_leader`] in a world that `setup` prepared first.
pub(crate) fn read_from_deposed_leader_with(
    setup: impl FnOnce(&mut World),
) -> (World, Option<Option<String>>) {
    let mut w = World::new(5, 2, None, 5);
    setup(&mut w);
    w.op(1, Op::put("k", "v1"));
    let old = leader(&mut w);
    // Clerk 0 learns who leads.
    w.op(0, Op::get("k"));
    let c0 = w.clerk_node(0);
    w.partition(&[&[old, c0]]);
    assert!(w.run_until(5_000_000, |w| w.leaders().len() == 2));
    w.op(1, Op::put("k", "v2"));
    w.run_for(1_000);
    let stale = w.try_op(0, Op::get("k"), 2_000_000);
    (w, stale)
}

#[test]
fn deposed_leader_does_not_answer() {
    let (mut w, during) = read_from_deposed_leader(Bugs::NONE);
    assert_eq!(during, None, "a minority leader answered");
    w.heal();
    assert!(w.run_until(5_000_000, |w| !w.clerks[0].busy()));
    assert_eq!(w.completed[0].clone().unwrap().1.as_deref(), Some("v2"));
    w.assert_linearizable();
}

#[test]
fn snapshots_bound_the_log_and_restore_restarted_and_lagging_servers() {
    let max = 1_500;
    let mut w = World::new(3, 1, Some(max), 6);
    for j in 0..60 {
        w.op(0, Op::append(format!("k{}", j % 4), format!("v{j};")));
    }
    assert!(w.count_events(|e| matches!(e, ServerEvent::SnapshotTaken { .. })) >= 3);
    assert!(w.max_persisted <= max + 200, "{}", w.max_persisted);
    // A follower crashes and misses many ops; the leader compacts past them.
    let l = leader(&mut w);
    let f = (l + 1) % 3;
    w.crash(f);
    for j in 60..120 {
        w.op(0, Op::append(format!("k{}", j % 4), format!("v{j};")));
    }
    let restored_before = w.events.len();
    w.restart(f);
    assert!(
        w.events[restored_before..]
            .iter()
            .any(|(s, e)| *s == f && matches!(e, ServerEvent::SnapshotRestored { .. })),
        "restart restores its own snapshot"
    );
    assert!(w.run_until(5_000_000, converged));
    let restores = w.events[restored_before..]
        .iter()
        .filter(|(s, e)| *s == f && matches!(e, ServerEvent::SnapshotRestored { .. }))
        .count();
    assert!(restores >= 2, "caught up by InstallSnapshot");
    let c = World::client_id(0);
    assert_eq!(w.server(f).last_executed(c), Some(120));
    assert_eq!(w.server(f).data(), w.server(l).data());
    // A lagging (partitioned) follower catches up the same way.
    let g = (l + 2) % 3;
    w.partition(&[&[g]]);
    for j in 120..180 {
        w.op(0, Op::append("k0", format!("v{j};")));
    }
    w.heal();
    assert!(w.run_until(5_000_000, converged));
    assert_eq!(w.server(g).last_executed(c), Some(180));
    assert!(w.max_persisted <= max + 200, "{}", w.max_persisted);
    w.assert_linearizable();
}

/// Clerk 0's append executes but every reply to it is lost; clerk 1's
/// writes push it into snapshots; all servers restart from their snapshots;
/// then clerk 0's retries get through. Returns the final value of "a".
pub(crate) fn retried_append_after_restore(bugs: Bugs) -> (World, String) {
    let mut w = World::new(3, 2, Some(800), 7);
    w.set_bugs(bugs);
    w.op(0, Op::put("a", "x"));
    let c0 = w.clerk_node(0);
    w.drop_filter = Some(Box::new(move |_, to, m| {
        to == c0 && matches!(m, KvMessage::Reply(_))
    }));
    w.invoke(0, Op::append("a", "y"));
    let c = World::client_id(0);
    assert!(w.run_until(2_000_000, |w| (0..3)
        .all(|i| w.server(i).last_executed(c) == Some(2))));
    for j in 0..40 {
        w.op(1, Op::put(format!("b{}", j % 3), format!("{j}")));
    }
    for i in 0..3 {
        w.crash(i);
    }
    for i in 0..3 {
        w.restart(i);
    }
    w.drop_filter = None;
    assert!(w.run_until(10 * RETRY_TIMEOUT + 5_000_000, |w| !w.clerks[0].busy()));
    let v = w.op(1, Op::get("a")).unwrap();
    (w, v)
}

#[test]
fn duplicate_table_survives_snapshots() {
    let (w, v) = retried_append_after_restore(Bugs::NONE);
    assert_eq!(v, "xy");
    assert!(w.count_events(|e| matches!(e, ServerEvent::SnapshotRestored { .. })) >= 3);
    w.assert_linearizable();
}

#[test]
fn speed_at_least_three_ops_per_heartbeat_interval() {
    let mut w = World::new(3, 1, None, 8);
    w.op(0, Op::put("k", ""));
    let start = w.now;
    let ops = 300;
    for j in 0..ops {
        w.op(0, Op::append("k", format!("{j}")));
    }
    let per_op = (w.now - start) / ops;
    assert!(per_op * 3 < 100_000, "{per_op} µs per op");
}

#[test]
fn random_faults_stay_linearizable() {
    let mut restores = 0;
    for seed in 0..6 {
        let mut w = World::new(5, 4, Some(1_000), 100 + seed);
        w.drop_rate = 0.05;
        w.dup_rate = 0.05;
        let mut crashed: Option<usize> = None;
        let mut counter = 0;
        for round in 0..40 {
            if round % 8 == 0 {
                let n = w.n + w.clerks.len();
                let groups: Vec<u32> = (0..n).map(|_| w.rng.random_range(0..2)).collect();
                w.group = groups;
            } else if round % 8 == 5 {
                w.heal();
            }
            if round % 10 == 3 {
                let i = w.rng.random_range(0..w.n);
                w.crash(i);
                crashed = Some(i);
            } else if round % 10 == 7 {
                if let Some(i) = crashed.take() {
                    w.restart(i);
                }
            }
            for _ in 0..10 {
                for k in 0..w.clerks.len() {
                    if !w.clerks[k].busy() {
                        counter += 1;
                        let key = format!("k{}", w.rng.random_range(0..3));
                        let op = match w.rng.random_range(0..3) {
                            0 => Op::get(key),
                            1 => Op::put(key, format!("p{counter};")),
                            _ => Op::append(key, format!("a{counter};")),
                        };
                        w.invoke(k, op);
                    }
                }
                w.run_for(30_000);
            }
        }
        w.heal();
        if let Some(i) = crashed {
            w.restart(i);
        }
        w.drop_rate = 0.0;
        w.dup_rate = 0.0;
        assert!(
            w.run_until(30_000_000, |w| w.clerks.iter().all(|c| !c.busy())),
            "seed {seed}: clerks stuck"
        );
        assert!(w.run_until(5_000_000, converged), "seed {seed}");
        assert!(w.history_len() > 150);
        restores += w.count_events(|e| matches!(e, ServerEvent::SnapshotRestored { .. }));
        w.assert_linearizable();
    }
    assert!(restores > 20, "snapshots were installed: {restores}");
}
