//! One test per deliberate KV bug: the same situation run on the correct service and on
//! the buggy one, where the bug's rule matters. Each asserts what the correct code does
//! and the observable mistake the bug makes (a wrong value, a lost or doubled append,
//! replicas in different states), so a switch that does nothing fails its test.

use crate::testing::{World, RETRY_TIMEOUT};
use crate::tests::{converged, leader, read_from_deposed_leader, retried_append_after_restore};
use crate::{Bug, Bugs, Clerk, ClientReply, ClientRequest, KvMessage, Op, ServerEvent};

/// Every bug and the test that shows it.
const CASES: &[(Bug, fn())] = &[
    (Bug::StaleReads, stale_reads),
    (Bug::DedupNotInSnapshot, dedup_not_in_snapshot),
    (Bug::FollowerSkipsDedup, follower_skips_dedup),
    (Bug::ReplyBeforeCommit, reply_before_commit),
    (Bug::ReplyForOtherCommand, reply_for_other_command),
    (Bug::DedupAtSubmitOnly, dedup_at_submit_only),
    (Bug::DedupIgnoresClient, dedup_ignores_client),
    (Bug::DedupEqualSeqOnly, dedup_equal_seq_only),
    (Bug::SnapshotBeforeApply, snapshot_before_apply),
    (Bug::NewSeqOnRetry, new_seq_on_retry),
    (Bug::ErrorAsEmptyValue, error_as_empty_value),
    (Bug::AcceptsStaleReply, accepts_stale_reply),
];

#[test]
fn every_bug_has_a_test() {
    let listed: Vec<Bug> = CASES.iter().map(|(b, _)| *b).collect();
    assert_eq!(listed, Bug::ALL, "one case per bug, in catalog order");
}

fn only(bug: Bug) -> Bugs {
    Bugs::NONE.with(bug)
}

/// The clerk of the harness's client `k`, as the servers know it.
fn client(k: usize) -> u64 {
    World::client_id(k)
}

#[test]
fn stale_reads() {
    let (mut w, during) = read_from_deposed_leader(Bugs::NONE);
    assert_eq!(during, None, "a minority leader answered");
    w.heal();
    assert!(w.run_until(5_000_000, |w| !w.clerks[0].busy()));
    assert_eq!(w.completed[0].clone().unwrap().1.as_deref(), Some("v2"));
    assert!(w.linearizable());

    let (w, during) = read_from_deposed_leader(only(Bug::StaleReads));
    assert_eq!(during, Some(Some("v1".to_string())));
    assert!(!w.linearizable());
}

#[test]
fn dedup_not_in_snapshot() {
    let (w, v) = retried_append_after_restore(Bugs::NONE);
    assert_eq!(v, "xy");
    assert!(w.linearizable());
    let (w, v) = retried_append_after_restore(only(Bug::DedupNotInSnapshot));
    assert_eq!(v, "xyy");
    assert!(!w.linearizable());
}

/// Clerk 0's append executes on every server but its replies are lost; the leader
/// crashes and the clerk's retry reaches the new leader. Returns whether all servers were
/// in the same state after the append, and the final value of "a".
fn retry_at_new_leader(bugs: Bugs) -> (World, bool, String) {
    let mut w = World::new(3, 1, None, 11);
    w.set_bugs(bugs);
    w.op(0, Op::put("a", "x"));
    let old = leader(&mut w);
    let c0 = w.clerk_node(0);
    w.drop_filter = Some(Box::new(move |_, to, m| {
        to == c0 && matches!(m, KvMessage::Reply(_))
    }));
    w.invoke(0, Op::append("a", "y"));
    assert!(w.run_until(2_000_000, |w| (0..3)
        .all(|i| w.server(i).get_local("a") == Some("xy"))));
    let digest = w.server(0).state_digest();
    let agree = (0..3).all(|i| w.server(i).state_digest() == digest);
    w.crash(old);
    w.drop_filter = None;
    assert!(w.run_until(10 * RETRY_TIMEOUT, |w| !w.clerks[0].busy()));
    let v = w.op(0, Op::get("a")).unwrap();
    (w, agree, v)
}

#[test]
fn follower_skips_dedup() {
    let (w, agree, v) = retry_at_new_leader(Bugs::NONE);
    assert!(agree);
    assert_eq!(v, "xy");
    assert!(w.linearizable());
    let (w, agree, v) = retry_at_new_leader(only(Bug::FollowerSkipsDedup));
    assert!(!agree, "followers recorded no duplicate entry");
    assert_eq!(v, "xyy");
    assert!(!w.linearizable());
}

/// The leader is cut off with clerk 0, which appends "b" through it; the majority elects
/// another leader and clerk 1 appends "c" there; then the partition heals. Returns whether
/// clerk 0's append completed while cut off, and the final value.
fn append_in_minority(bugs: Bugs) -> (World, bool, String) {
    let mut w = World::new(5, 2, None, 12);
    w.set_bugs(bugs);
    w.op(1, Op::put("k", "v1"));
    let old = leader(&mut w);
    w.op(0, Op::get("k"));
    let c0 = w.clerk_node(0);
    w.partition(&[&[old, c0]]);
    assert!(w.run_until(5_000_000, |w| w.leaders().len() == 2));
    let during = w.try_op(0, Op::append("k", "b"), 2_000_000).is_some();
    w.op(1, Op::append("k", "c"));
    w.heal();
    assert!(w.run_until(5_000_000, |w| !w.clerks[0].busy()));
    assert!(w.run_until(2_000_000, converged));
    let v = w.op(1, Op::get("k")).unwrap();
    (w, during, v)
}

#[test]
fn reply_before_commit() {
    let (w, during, v) = append_in_minority(Bugs::NONE);
    assert!(!during, "a minority leader acknowledged a write");
    assert_eq!(v, "v1cb");
    assert!(w.linearizable());
    let (w, during, v) = append_in_minority(only(Bug::ReplyBeforeCommit));
    assert!(during);
    assert_eq!(v, "v1c", "the acknowledged append was overwritten");
    assert!(!w.linearizable());
}

/// The leader is cut off with clerk 0, which appends "b" through it; the majority's leader
/// puts clerk 1's append "c" at the same index. On healing, the old leader learns the new
/// term from that entry itself, and clerk 0 can reach only the old leader until it applied
/// it. Returns whether clerk 0 was answered then, and the final value.
fn other_command_at_index(bugs: Bugs) -> (World, bool, String) {
    let mut w = World::new(5, 2, None, 13);
    w.set_bugs(bugs);
    w.op(1, Op::put("k", "v1"));
    let old = leader(&mut w);
    w.op(0, Op::get("k"));
    let c0 = w.clerk_node(0);
    w.partition(&[&[old, c0]]);
    assert!(w.run_until(5_000_000, |w| w.leaders().len() == 2));
    w.invoke(0, Op::append("k", "b"));
    let index = w.server(old).applied_index() + 1;
    assert!(w.run_until(1_000_000, |w| w.server(old).raft().last_index() == index));
    w.op(1, Op::append("k", "c"));
    // The old leader hears nothing back from its own heartbeats.
    let n = w.n;
    w.drop_filter = Some(Box::new(move |from, to, _| {
        (from == old && to < n) || (from == c0 && to != old) || (to == c0 && from != old)
    }));
    w.heal();
    assert!(w.run_until(2_000_000, |w| w.server(old).applied_index() >= index));
    // Long enough for a reply to arrive, too short for a retry.
    w.run_for(RETRY_TIMEOUT / 4);
    let answered = !w.clerks[0].busy();
    w.drop_filter = None;
    assert!(w.run_until(5_000_000, |w| !w.clerks[0].busy()));
    assert!(w.run_until(2_000_000, converged));
    let v = w.op(1, Op::get("k")).unwrap();
    (w, answered, v)
}

#[test]
fn reply_for_other_command() {
    let (w, answered, v) = other_command_at_index(Bugs::NONE);
    assert!(!answered);
    assert_eq!(v, "v1cb");
    assert!(w.linearizable());
    let (w, answered, v) = other_command_at_index(only(Bug::ReplyForOtherCommand));
    assert!(answered, "clerk 1's append answered clerk 0's");
    assert_eq!(v, "v1c");
    assert!(!w.linearizable());
}

/// The leader replicates clerk 0's append but never hears back, so never commits it;
/// it crashes, and the clerk's retry goes into the new leader's log behind the first copy.
/// Returns the final value.
fn retry_in_log_twice(bugs: Bugs) -> (World, String) {
    let mut w = World::new(3, 1, None, 14);
    w.set_bugs(bugs);
    w.op(0, Op::put("a", "x"));
    let old = leader(&mut w);
    w.drop_filter = Some(Box::new(move |_, to, m| {
        to == old && matches!(m, KvMessage::Raft(raft::Message::AppendEntriesReply { .. }))
    }));
    let last = w.server(old).raft().last_index();
    w.invoke(0, Op::append("a", "y"));
    assert!(w.run_until(1_000_000, |w| (0..3).all(|i| w
        .server(i)
        .raft()
        .last_index()
        == last + 1)));
    w.crash(old);
    w.drop_filter = None;
    assert!(w.run_until(10 * RETRY_TIMEOUT, |w| !w.clerks[0].busy()));
    let v = w.op(0, Op::get("a")).unwrap();
    let survivor = (old + 1) % 3;
    assert_eq!(
        w.server(survivor).applied_index(),
        last + 3,
        "both copies applied"
    );
    (w, v)
}

#[test]
fn dedup_at_submit_only() {
    let (w, v) = retry_in_log_twice(Bugs::NONE);
    assert_eq!(v, "xy");
    assert!(w.linearizable());
    let (w, v) = retry_in_log_twice(only(Bug::DedupAtSubmitOnly));
    assert_eq!(v, "xyy");
    assert!(!w.linearizable());
}

/// Two clerks, each on its first request: clerk 0 puts, clerk 1 appends.
fn first_requests_of_two_clerks(bugs: Bugs) -> (World, String) {
    let mut w = World::new(3, 2, None, 15);
    w.set_bugs(bugs);
    w.op(0, Op::put("a", "x"));
    w.run_for(1);
    w.op(1, Op::append("a", "y"));
    w.run_for(1);
    let v = w.op(1, Op::get("a")).unwrap();
    (w, v)
}

#[test]
fn dedup_ignores_client() {
    let (w, v) = first_requests_of_two_clerks(Bugs::NONE);
    assert_eq!(v, "xy");
    assert_eq!(w.executions(0, client(1), 1), 1);
    assert!(w.linearizable());
    let (w, v) = first_requests_of_two_clerks(only(Bug::DedupIgnoresClient));
    assert_eq!(v, "x", "clerk 1's request 1 taken for clerk 0's");
    assert_eq!(w.executions(0, client(1), 1), 0);
    assert!(!w.linearizable());
}

/// Clerk 0 runs requests 1-3; every server restarts (no snapshots: nothing applied yet);
/// a long-delayed copy of request 2 reaches the new leader, which proposes it after
/// request 3. Returns the final value.
fn old_request_after_newer(bugs: Bugs) -> (World, String) {
    let mut w = World::new(3, 1, None, 16);
    w.set_bugs(bugs);
    w.op(0, Op::put("a", "x"));
    let late = ClientRequest {
        client: client(0),
        seq: 2,
        op: Op::append("a", "y"),
    };
    w.op(0, Op::append("a", "y"));
    w.op(0, Op::append("a", "z"));
    for i in 0..3 {
        w.crash(i);
    }
    for i in 0..3 {
        w.restart(i);
    }
    let l = leader(&mut w);
    assert_eq!(w.server(l).applied_index(), 0);
    let c0 = w.clerk_node(0);
    w.send(c0, l, KvMessage::Request(late));
    assert!(w.run_until(2_000_000, |w| w.server(l).applied_index() == 4));
    let v = w.op(0, Op::get("a")).unwrap();
    (w, v)
}

#[test]
fn dedup_equal_seq_only() {
    let (w, v) = old_request_after_newer(Bugs::NONE);
    assert_eq!(v, "xyz");
    assert!(w.linearizable());
    let (w, v) = old_request_after_newer(only(Bug::DedupEqualSeqOnly));
    assert_eq!(v, "xyzy", "request 2 executed again after request 3");
    assert!(!w.linearizable());
}

/// Clerk 0 appends 30 values with snapshots on; every server restarts from its snapshot.
/// Returns the number of snapshots taken and the final value.
fn appends_across_restarts(bugs: Bugs) -> (World, usize, String) {
    let mut w = World::new(3, 1, Some(1_000), 17);
    w.set_bugs(bugs);
    for j in 0..30 {
        w.op(0, Op::append("k", format!("{j};")));
    }
    let taken = w.count_events(|e| matches!(e, ServerEvent::SnapshotTaken { .. }));
    for i in 0..3 {
        w.crash(i);
    }
    for i in 0..3 {
        w.restart(i);
    }
    let v = w.op(0, Op::get("k")).unwrap();
    (w, taken, v)
}

#[test]
fn snapshot_before_apply() {
    let values = |skip: Option<usize>| -> String {
        (0..30)
            .filter(|j| Some(*j) != skip)
            .map(|j| format!("{j};"))
            .collect()
    };
    let (w, taken, v) = appends_across_restarts(Bugs::NONE);
    assert!(taken >= 3, "{taken} snapshots");
    assert_eq!(v, values(None));
    assert!(w.linearizable());
    let (w, taken, v) = appends_across_restarts(only(Bug::SnapshotBeforeApply));
    assert!(taken >= 3, "{taken} snapshots");
    // The entry at the last snapshot's index is lost from every restored server.
    let lost = (0..30).find(|j| v == values(Some(*j)));
    assert!(lost.is_some(), "exactly one append lost: {v}");
    assert!(!w.linearizable());
}

/// Clerk 0's append executes but its first reply is lost; the clerk retries.
fn lost_first_reply(bugs: Bugs) -> (World, String) {
    let mut w = World::new(3, 1, None, 18);
    w.set_bugs(bugs);
    w.op(0, Op::put("a", "x"));
    let c0 = w.clerk_node(0);
    let mut dropped = false;
    w.drop_filter = Some(Box::new(move |_, to, m| {
        let first = to == c0 && !dropped && matches!(m, KvMessage::Reply(ClientReply::Ok { .. }));
        dropped |= first;
        first
    }));
    w.op(0, Op::append("a", "y"));
    let v = w.op(0, Op::get("a")).unwrap();
    (w, v)
}

/// A clerk of servers 10, 11, 12 whose Get is refused by 10.
fn refused_get(bugs: Bugs) -> Clerk {
    let mut c = Clerk::new(7, vec![10, 11, 12], 1_000);
    c.set_bugs(bugs);
    assert_eq!(c.invoke(0, Op::get("k")), 1);
    c.take_ready();
    let refusal = ClientReply::WrongLeader {
        seq: 1,
        leader_hint: None,
    };
    c.handle_reply(5, 10, refusal);
    c
}

/// The requests in `r`, as (server, seq).
fn sent(r: &crate::ClerkReady) -> Vec<(usize, u64)> {
    r.messages
        .iter()
        .map(|(to, m)| match m {
            KvMessage::Request(q) => (*to, q.seq),
            other => panic!("clerk sent {other:?}"),
        })
        .collect()
}

#[test]
fn new_seq_on_retry() {
    // By hand: the retry to the next server carries the operation's number, or a new one.
    let r = refused_get(Bugs::NONE).take_ready();
    assert_eq!(sent(&r), vec![(11, 1)]);
    let mut c = refused_get(only(Bug::NewSeqOnRetry));
    assert_eq!(sent(&c.take_ready()), vec![(11, 2)]);
    // The operation completes under the number `invoke` returned; the next one moves on.
    let ok = ClientReply::Ok {
        seq: 2,
        value: Some("v".into()),
    };
    c.handle_reply(6, 11, ok);
    assert_eq!(c.take_ready().completed, Some((1, Some("v".into()))));
    assert_eq!(c.invoke(7, Op::get("k")), 3);

    // In a cluster: a retry with a new number executes again.
    let (w, v) = lost_first_reply(Bugs::NONE);
    assert_eq!(v, "xy");
    assert!(w.linearizable());
    let (w, v) = lost_first_reply(only(Bug::NewSeqOnRetry));
    assert_eq!(v, "xyy");
    assert!(!w.linearizable());
}

#[test]
fn error_as_empty_value() {
    let mut c = refused_get(Bugs::NONE);
    let r = c.take_ready();
    assert_eq!((sent(&r), r.completed), (vec![(11, 1)], None));
    assert!(c.busy());
    let mut c = refused_get(only(Bug::ErrorAsEmptyValue));
    let r = c.take_ready();
    assert_eq!(sent(&r), vec![]);
    assert_eq!(r.completed, Some((1, Some(String::new()))));
    assert!(!c.busy());
    // A refused write is retried either way.
    for bugs in [Bugs::NONE, only(Bug::ErrorAsEmptyValue)] {
        let mut c = Clerk::new(7, vec![10, 11], 1_000);
        c.set_bugs(bugs);
        c.invoke(0, Op::put("k", "v"));
        c.take_ready();
        let refusal = ClientReply::WrongLeader {
            seq: 1,
            leader_hint: None,
        };
        c.handle_reply(5, 10, refusal);
        assert_eq!(sent(&c.take_ready()), vec![(11, 1)]);
        assert!(c.busy());
    }
}

#[test]
fn accepts_stale_reply() {
    // Get 1 answered "old"; the value changes; Get 2 is outstanding when a duplicate of
    // Get 1's reply arrives, then a stale write reply, then Get 2's own reply.
    let run = |bugs: Bugs| {
        let mut c = Clerk::new(7, vec![10, 11, 12], 1_000);
        c.set_bugs(bugs);
        let old = ClientReply::Ok {
            seq: 1,
            value: Some("old".into()),
        };
        c.invoke(0, Op::get("k"));
        c.handle_reply(1, 10, old.clone());
        assert_eq!(c.take_ready().completed, Some((1, Some("old".into()))));
        c.invoke(2, Op::get("k"));
        c.take_ready();
        c.handle_reply(3, 10, old);
        let after_stale_get = c.take_ready().completed;
        let write = ClientReply::Ok {
            seq: 1,
            value: None,
        };
        c.handle_reply(4, 10, write);
        let after_stale_write = c.take_ready().completed;
        let fresh = ClientReply::Ok {
            seq: 2,
            value: Some("new".into()),
        };
        c.handle_reply(5, 10, fresh);
        (after_stale_get, after_stale_write, c.take_ready().completed)
    };
    assert_eq!(run(Bugs::NONE), (None, None, Some((2, Some("new".into())))));
    assert_eq!(
        run(only(Bug::AcceptsStaleReply)),
        (Some((2, Some("old".into()))), None, None)
    );
    // A write takes a stale write's OK: completed without being executed.
    let write = |bugs: Bugs| {
        let mut c = Clerk::new(7, vec![10], 1_000);
        c.set_bugs(bugs);
        c.invoke(0, Op::put("k", "1"));
        let done = ClientReply::Ok {
            seq: 1,
            value: None,
        };
        c.handle_reply(1, 10, done.clone());
        c.invoke(2, Op::append("k", "2"));
        c.take_ready();
        c.handle_reply(3, 10, done);
        c.take_ready().completed
    };
    assert_eq!(write(Bugs::NONE), None);
    assert_eq!(write(only(Bug::AcceptsStaleReply)), Some((2, None)));
}
