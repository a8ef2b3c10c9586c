//! ReadIndex reads (`ReadMode::ReadIndex`) on the in-crate harness, and the two Raft bugs of
//! the read rules as the service shows them: a stale value, a non-linearizable history.

use crate::testing::World;
use crate::tests::{leader, read_from_deposed_leader_with};
use crate::{KvMessage, Op, ServerEvent};

/// How many `Get`s went through the log (on any server, counted once per index).
fn logged_gets(w: &World) -> usize {
    let mut indexes: Vec<u64> = w
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            ServerEvent::Applied { index, op, .. } if op.is_get() => Some(*index),
            _ => None,
        })
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    indexes.len()
}

#[test]
fn read_index_gets_skip_the_log_once_the_leader_committed_in_its_term() {
    let mut w = World::new(3, 2, None, 21);
    w.read_by_index(raft::Bugs::NONE);
    w.op(0, Op::put("a", "1"));
    for k in 0..10 {
        w.op(k % 2, Op::append("a", "x"));
        let want = format!("1{}", "x".repeat(k + 1));
        assert_eq!(w.op((k + 1) % 2, Op::get("a")), Some(want));
    }
    assert_eq!(logged_gets(&w), 0, "every read was served by ReadIndex");
    w.assert_linearizable();
}

#[test]
fn a_fresh_leader_sends_its_first_read_through_the_log() {
    let mut w = World::new(3, 1, None, 22);
    w.read_by_index(raft::Bugs::NONE);
    assert_eq!(w.op(0, Op::get("a")).as_deref(), Some(""));
    assert_eq!(logged_gets(&w), 1, "no entry of the term was committed yet");
    assert_eq!(w.op(0, Op::get("a")).as_deref(), Some(""));
    assert_eq!(logged_gets(&w), 1);
    w.assert_linearizable();
}

#[test]
fn a_deposed_leader_answers_no_read_index_read() {
    let (mut w, during) = read_from_deposed_leader_with(|w| w.read_by_index(raft::Bugs::NONE));
    assert_eq!(during, None, "a minority leader answered");
    w.heal();
    assert!(w.run_until(5_000_000, |w| !w.clerks[0].busy()));
    assert_eq!(w.completed[0].clone().unwrap().1.as_deref(), Some("v2"));
    w.assert_linearizable();
}

#[test]
fn read_index_no_heartbeat_serves_a_stale_read_from_a_deposed_leader() {
    let bugs = raft::Bugs::NONE.with(raft::Bug::ReadIndexNoHeartbeat);
    let (w, during) = read_from_deposed_leader_with(|w| w.read_by_index(bugs));
    assert_eq!(during, Some(Some("v1".to_string())));
    assert!(!w.linearizable());
}

/// The leader commits and answers a put, but no follower learns that it committed (its
/// heartbeats are lost); then it crashes and clerk 0 reads at the new leader.
fn read_after_unannounced_commit(raft_bugs: raft::Bugs) -> (World, Option<Option<String>>) {
    let mut w = World::new(3, 2, None, 23);
    w.read_by_index(raft_bugs);
    w.op(1, Op::put("k", "v1"));
    w.op(0, Op::get("k"));
    let old = leader(&mut w);
    w.drop_filter = Some(Box::new(move |from, _, m| {
        from == old
            && matches!(m, KvMessage::Raft(raft::Message::AppendEntries { entries, .. }) if entries.is_empty())
    }));
    w.op(1, Op::put("k", "v2"));
    w.run_for(1_000);
    w.crash(old);
    w.drop_filter = None;
    let got = w.try_op(0, Op::get("k"), 5_000_000);
    (w, got)
}

#[test]
fn read_index_before_own_term_commit_reads_before_an_acknowledged_write() {
    let (w, got) = read_after_unannounced_commit(raft::Bugs::NONE);
    assert_eq!(got, Some(Some("v2".to_string())));
    w.assert_linearizable();
    let bugs = raft::Bugs::NONE.with(raft::Bug::ReadIndexBeforeOwnTermCommit);
    let (w, got) = read_after_unannounced_commit(bugs);
    assert_eq!(got, Some(Some("v1".to_string())));
    assert!(!w.linearizable());
}

/// Leadership checks sent so far (counted where the harness routes messages).
fn rounds_sent(w: &World) -> u64 {
    w.leadership_checks
}

#[test]
fn lease_gets_skip_the_log_and_most_skip_the_round_too() {
    let mut w = World::new(3, 2, None, 31);
    w.read_by_lease(raft::Bugs::NONE, 1000);
    w.op(0, Op::put("a", "1"));
    let before = rounds_sent(&w);
    let mut elapsed = 0;
    for k in 0..20 {
        w.op(k % 2, Op::append("a", "x"));
        let want = format!("1{}", "x".repeat(k + 1));
        let t0 = w.now;
        assert_eq!(w.op((k + 1) % 2, Op::get("a")), Some(want));
        elapsed += w.now - t0;
    }
    assert_eq!(logged_gets(&w), 0, "every read was served without the log");
    // The leader's rounds go out once per heartbeat (100 ms), not once per read: far fewer
    // than the 2 checks a ReadIndex read costs.
    let rounds = rounds_sent(&w) - before;
    assert!(
        rounds < 20,
        "{rounds} checks for 20 reads in {elapsed} µs of reading"
    );
    w.assert_linearizable();
}

#[test]
fn a_deposed_leader_answers_no_lease_read() {
    let (mut w, during) =
        read_from_deposed_leader_with(|w| w.read_by_lease(raft::Bugs::NONE, 1000));
    assert_eq!(
        during, None,
        "a minority leader answered after its lease ran out"
    );
    w.heal();
    assert!(w.run_until(5_000_000, |w| !w.clerks[0].busy()));
    assert_eq!(w.completed[0].clone().unwrap().1.as_deref(), Some("v2"));
    w.assert_linearizable();
}
