//! Tests: replies to requests of an earlier term, late and duplicated replies,
//! and the liveness they can cost (a leader must never believe a follower
//! holds more than it does).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::testing::{cfg, make_leader, storage_with, Cluster};
use crate::{Message, NodeId, Raft, Storage};

/// Everything `from` has queued for node `to`, in order; the rest is dropped.
fn outbox(r: &mut Raft<u64>, to: NodeId) -> Vec<Message<u64>> {
    r.take_ready()
        .messages
        .into_iter()
        .filter(|(t, _)| *t == to)
        .map(|(_, m)| m)
        .collect()
}

/// The stall found by `scenarios/fuzz/raft-stale-snapshot-reply.json`, step by step.
///
/// Leader 0 of term 2 sends follower 1 an InstallSnapshot through index 10, and the network
/// holds it. Node 0 then leads again, in term 4, with node 1's vote. The held snapshot
/// reaches node 1 (now in term 4), which rejects it as out of date. With the old reply
/// (`InstallSnapshotReply { term: 4, last_included_index: 10 }`: the follower's term and the
/// snapshot's index) the leader of term 4 took the rejection for an acknowledgement of one of
/// its own snapshots and set `match_index(1) = 10` although node 1 holds 2 entries; node 1's
/// "log too short" replies (`conflict_index 3 <= match_index`) were then ignored as stale and
/// node 1 never caught up in term 4. With the fix the reply names the request's term (2) and
/// what the follower holds (nothing), the leader ignores it, and node 1 catches up.
#[test]
fn rejected_stale_install_snapshot_is_not_an_acknowledgement() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut l = make_leader(3, &storage_with(1, &[1; 12]), &mut rng);
    assert_eq!(l.current_term(), 2);
    let mut f: Raft<u64> = Raft::new(cfg(1, 3), &storage_with(1, &[1, 1]), 0, &mut rng);
    // Index 13 (term 2) commits with node 2's ack; the leader snapshots through 10.
    l.start(1, &mut rng, 13);
    l.take_ready();
    let ack = Message::AppendEntriesReply {
        term: 2,
        request_term: 2,
        success: true,
        match_index: 13,
        conflict_term: None,
        conflict_index: 0,
    };
    l.handle_message(2, &mut rng, 2, ack);
    assert_eq!(l.commit_index(), 13);
    l.snapshot(10, vec![10]);
    l.take_ready();
    // A heartbeat to node 1; its "too short" makes the leader send the snapshot.
    let t = l.next_deadline();
    l.tick(t, &mut rng);
    for m in outbox(&mut l, 1) {
        f.handle_message(t, &mut rng, 0, m);
    }
    for m in outbox(&mut f, 0) {
        l.handle_message(t, &mut rng, 1, m);
    }
    let mut held = outbox(&mut l, 1);
    assert!(matches!(
        held.as_slice(),
        [Message::InstallSnapshot { term: 2, snapshot, .. }] if snapshot.last_included_index == 10
    ));
    let stale = held.remove(0);
    // Node 2 campaigns in term 3 and fails; node 0 then wins term 4 with node 1's vote.
    let rv = Message::RequestVote {
        term: 3,
        candidate_id: 2,
        last_log_index: 0,
        last_log_term: 0,
    };
    l.handle_message(t + 1, &mut rng, 2, rv);
    l.take_ready();
    let t = l.next_deadline();
    l.tick(t, &mut rng);
    assert_eq!(l.current_term(), 4);
    for m in outbox(&mut l, 1) {
        f.handle_message(t, &mut rng, 0, m);
    }
    for m in outbox(&mut f, 0) {
        l.handle_message(t, &mut rng, 1, m);
    }
    assert!(l.is_leader());
    let term4_heartbeat = outbox(&mut l, 1);
    // The held snapshot of term 2 arrives now, then the heartbeat of term 4.
    f.handle_message(t + 1, &mut rng, 0, stale);
    let reply = outbox(&mut f, 0);
    assert!(matches!(
        reply.as_slice(),
        [Message::InstallSnapshotReply {
            term: 4,
            request_term: 2,
            last_included_index: 10,
            match_index: 0
        }]
    ));
    for m in reply {
        l.handle_message(t + 2, &mut rng, 1, m);
    }
    assert_eq!(
        l.match_index(1),
        Some(0),
        "a rejection acknowledges nothing"
    );
    let mut inbox = term4_heartbeat;
    inbox.extend(outbox(&mut l, 1));
    // Deliver both ways until quiet (ticking the leader's heartbeat when nothing is in flight).
    let mut now = t + 3;
    for _ in 0..20 {
        if inbox.is_empty() {
            now = l.next_deadline();
            l.tick(now, &mut rng);
            inbox = outbox(&mut l, 1);
        }
        for m in std::mem::take(&mut inbox) {
            f.handle_message(now, &mut rng, 0, m);
        }
        for m in outbox(&mut f, 0) {
            l.handle_message(now, &mut rng, 1, m);
        }
        let m = l.match_index(1).unwrap();
        assert!(m <= f.last_index(), "match_index(1) = {m} past s1's log");
        if let (Some(a), Some(b)) = (f.term_at(m), l.term_at(m)) {
            assert_eq!(a, b, "s1 does not match at {m}");
        }
        inbox = outbox(&mut l, 1);
    }
    assert_eq!((f.last_index(), f.commit_index()), (13, 13));
    assert_eq!(l.match_index(1), Some(13));
    assert_eq!(l.current_term(), 4);
}

/// A reply to an AppendEntries of an earlier term is ignored by the leader of a later term,
/// even when it carries the leader's own term (the follower's term when it answered), and a
/// reply to a current request still counts.
#[test]
fn late_append_entries_reply_from_earlier_term_is_ignored() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut l = make_leader(3, &storage_with(1, &[1, 1]), &mut rng);
    let term = l.current_term();
    for k in 0..4 {
        l.start(10, &mut rng, k);
    }
    l.take_ready();
    let reply = |request_term, success, match_index, conflict_index| Message::AppendEntriesReply {
        term,
        request_term,
        success,
        match_index,
        conflict_term: None,
        conflict_index,
    };
    let before = (l.next_index(1), l.match_index(1), l.commit_index());
    // A rejection of a request of term - 1 (what a follower already in our term sends).
    l.handle_message(20, &mut rng, 1, reply(term - 1, false, 0, 0));
    // An acknowledgement claiming to answer an older request: not ours, not counted.
    l.handle_message(21, &mut rng, 1, reply(term - 1, true, 6, 0));
    // A "too short" of an older term must not back next_index up either.
    l.handle_message(22, &mut rng, 1, reply(term - 1, false, 0, 3));
    assert_eq!(
        (l.next_index(1), l.match_index(1), l.commit_index()),
        before
    );
    assert!(
        l.take_ready().messages.is_empty(),
        "no resend for a stale reply"
    );
    // The same acknowledgement for a request of this term counts.
    l.handle_message(23, &mut rng, 1, reply(term, true, 6, 0));
    assert_eq!((l.match_index(1), l.commit_index()), (Some(6), 6));
    // Votes too: an answer to an earlier election does not count toward this one.
    let mut c: Raft<u64> = Raft::new(cfg(0, 3), &Storage::default(), 0, &mut rng);
    let t = c.next_deadline();
    c.tick(t, &mut rng);
    let vote = |request_term| Message::RequestVoteReply {
        term: 1,
        request_term,
        vote_granted: true,
    };
    c.handle_message(t, &mut rng, 1, vote(0));
    assert!(!c.is_leader());
    c.handle_message(t, &mut rng, 1, vote(1));
    assert!(c.is_leader());
}

/// Match indexes only move forward: acknowledgements of less, in any order and from either
/// reply kind, leave them where they are.
#[test]
fn match_index_never_decreases() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut l = make_leader(3, &storage_with(1, &[1; 8]), &mut rng);
    let term = l.current_term();
    l.start(1, &mut rng, 9);
    l.take_ready();
    let ae = |m| Message::AppendEntriesReply {
        term,
        request_term: term,
        success: true,
        match_index: m,
        conflict_term: None,
        conflict_index: 0,
    };
    let is = |m| Message::InstallSnapshotReply {
        term,
        request_term: term,
        last_included_index: m,
        match_index: m,
    };
    let mut seen = vec![];
    for m in [
        ae(5),
        is(3),
        ae(2),
        ae(7),
        is(6),
        ae(0),
        ae(9),
        is(9),
        ae(4),
    ] {
        l.handle_message(5, &mut rng, 1, m);
        seen.push(l.match_index(1).unwrap());
    }
    assert_eq!(seen, vec![5, 5, 5, 7, 7, 7, 9, 9, 9]);
    assert!(l.next_index(1).unwrap() > 9);
}

/// The scenario's network in the test cluster: 3 nodes, snapshots every 5 entries, 30%
/// duplicates, 30% of all messages delayed 50-1500 ms, a follower cut off and back again
/// repeatedly. The cluster asserts on every step that a leader's match indexes never move
/// backwards and never pass what a follower of its term holds; after the storm, with the
/// network calm, every node must catch up with the leader's commit index.
#[test]
fn followers_catch_up_through_delayed_duplicated_snapshots() {
    for seed in 0..12 {
        let mut c = Cluster::new(3, 900 + seed);
        c.snapshot_every = Some(5);
        c.dup_rate = 0.3;
        c.long_delay = Some((0.3, 50_000, 1_500_000));
        c.one(1, 3);
        for round in 0..15u64 {
            let Some(&leader) = c.leaders().first() else {
                c.run_for(500_000);
                continue;
            };
            let victim = (leader + 1) % 3;
            c.group[victim] = 1;
            for k in 0..11 {
                c.start(leader, 1000 * round + k);
            }
            c.run_for(600_000);
            c.group[victim] = 0;
            c.run_for(1_500_000);
        }
        c.dup_rate = 0.0;
        c.long_delay = None;
        c.run_for(3_000_000);
        let idx = c.one(7, 3);
        let caught_up = c.run_until(10_000_000, |c| {
            let top = c.nodes.iter().map(Raft::commit_index).max().unwrap();
            c.nodes.iter().all(|n| n.last_applied() == top)
        });
        assert!(caught_up, "seed {seed}: a follower never caught up");
        assert!(c.nodes.iter().all(|n| n.last_applied() >= idx));
        assert!(c.sent.get("InstallSnapshot").copied().unwrap_or(0) > 0);
    }
}
