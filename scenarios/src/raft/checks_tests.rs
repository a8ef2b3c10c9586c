//! Each property of [`RaftSafety`] catches a broken observation sequence, and the sequences a
//! correct Raft produced (seeds 888 and 6641 of raft-swarm, scaled down) pass.

use super::*;

fn append(c: &mut RaftSafety, node: NodeId, entries: &[(u64, u64, u64)]) -> Result<(), Failure> {
    let change = LogChange::Append {
        entries: entries.to_vec(),
    };
    c.event(node, RaftEvent::Log(&change))
}
fn truncate(c: &mut RaftSafety, node: NodeId, from: u64) -> Result<(), Failure> {
    c.event(node, RaftEvent::Log(&LogChange::Truncate { from }))
}
fn snapshot(c: &mut RaftSafety, node: NodeId, index: u64, term: u64) -> Result<(), Failure> {
    c.event(node, RaftEvent::Log(&LogChange::Snapshot { index, term }))
}
fn leader(c: &mut RaftSafety, node: NodeId, term: u64) -> Result<(), Failure> {
    c.event(node, RaftEvent::Role { leader: true, term })
}
fn follower(c: &mut RaftSafety, node: NodeId, term: u64) -> Result<(), Failure> {
    c.event(
        node,
        RaftEvent::Role {
            leader: false,
            term,
        },
    )
}
fn commit(c: &mut RaftSafety, node: NodeId, commit_index: u64, term: u64) -> Result<(), Failure> {
    c.event(node, RaftEvent::Commit { commit_index, term })
}
fn apply(
    c: &mut RaftSafety,
    node: NodeId,
    index: u64,
    term: u64,
    entry: u64,
) -> Result<(), Failure> {
    c.event(node, RaftEvent::Applied { index, term, entry })
}
fn boot(c: &mut RaftSafety, node: NodeId, commit_index: u64) -> Result<(), Failure> {
    c.event(node, RaftEvent::Boot { commit_index })
}
fn property(r: Result<(), Failure>) -> String {
    r.expect_err("a violation").property
}

#[test]
fn election_safety_one_leader_per_term() {
    let mut c = RaftSafety::new(3);
    leader(&mut c, 0, 2).unwrap();
    leader(&mut c, 0, 2).unwrap();
    leader(&mut c, 1, 3).unwrap();
    assert_eq!(property(leader(&mut c, 1, 2)), "election safety");
}

#[test]
fn leader_append_only() {
    let mut c = RaftSafety::new(3);
    append(&mut c, 0, &[(1, 1, 10), (2, 1, 20)]).unwrap();
    leader(&mut c, 0, 2).unwrap();
    append(&mut c, 0, &[(3, 2, 30)]).unwrap();
    assert_eq!(property(truncate(&mut c, 0, 3)), "leader append-only");
    // Deposed, it may lose its uncommitted entries.
    follower(&mut c, 0, 3).unwrap();
    truncate(&mut c, 0, 3).unwrap();

    let mut c = RaftSafety::new(3);
    append(&mut c, 0, &[(1, 1, 10), (2, 1, 20)]).unwrap();
    leader(&mut c, 0, 2).unwrap();
    snapshot(&mut c, 0, 2, 1).unwrap(); // its own entries compacted: fine
    assert_eq!(property(snapshot(&mut c, 0, 5, 2)), "leader append-only");
}

#[test]
fn log_matching_catches_different_entries_at_the_same_index_and_term() {
    let mut c = RaftSafety::new(3);
    append(&mut c, 0, &[(1, 1, 10), (2, 1, 20)]).unwrap();
    append(&mut c, 1, &[(1, 1, 10)]).unwrap();
    assert_eq!(property(append(&mut c, 1, &[(2, 1, 21)])), "log matching");
}

#[test]
fn log_matching_catches_a_different_prefix() {
    let mut c = RaftSafety::new(3);
    append(&mut c, 0, &[(1, 1, 10), (2, 2, 20)]).unwrap();
    append(&mut c, 1, &[(1, 2, 11)]).unwrap();
    assert_eq!(property(append(&mut c, 1, &[(2, 2, 20)])), "log matching");
}

/// raft-swarm seed 6641: s2 leads term 25 and commits entry 4 with s0 and s4; then a delayed
/// vote reply elects s1, which lacks it, leader of term 24. Raft allows that (the property
/// is about later terms); a leader of term 26 without it is caught.
#[test]
fn leader_completeness_is_about_later_terms_6641() {
    let mut c = RaftSafety::new(5);
    for s in 0..5 {
        append(&mut c, s, &[(1, 20, 10), (2, 20, 20), (3, 20, 30)]).unwrap();
    }
    follower(&mut c, 1, 24).unwrap();
    leader(&mut c, 2, 25).unwrap();
    for s in [2, 0, 4] {
        append(&mut c, s, &[(4, 25, 40)]).unwrap();
    }
    commit(&mut c, 2, 4, 25).unwrap();
    commit(&mut c, 0, 4, 25).unwrap();
    leader(&mut c, 1, 24).unwrap();
    follower(&mut c, 1, 26).unwrap();
    let e = leader(&mut c, 1, 26).unwrap_err();
    assert_eq!(e.property, "leader completeness");
    assert!(e.detail.contains("lacks entry 4"), "{}", e.detail);
}

/// A leader already in office in a later term than a commit must hold the entry too, also
/// when a server reports the commit in an earlier term than the first report said.
#[test]
fn leader_completeness_when_a_commit_is_observed() {
    let mut c = RaftSafety::new(5);
    leader(&mut c, 1, 7).unwrap(); // s1 has an empty log
    leader(&mut c, 2, 5).unwrap();
    for s in [2, 0, 4] {
        append(&mut c, s, &[(1, 5, 10)]).unwrap();
    }
    commit(&mut c, 0, 1, 8).unwrap(); // seen in term 8: the term-7 leader is not concerned
    assert_eq!(
        property(commit(&mut c, 2, 1, 5)),
        "leader completeness",
        "committed in term 5: the term-7 leader must hold it"
    );
    // The same commit in a correct run: the term-7 leader holds the entry.
    let mut c = RaftSafety::new(5);
    leader(&mut c, 2, 5).unwrap();
    for s in [2, 0, 1] {
        append(&mut c, s, &[(1, 5, 10)]).unwrap();
    }
    leader(&mut c, 1, 7).unwrap();
    commit(&mut c, 2, 1, 5).unwrap();
}

/// raft-swarm seed 888: entry 3 (term 2) is committed in term 15 by s0, s1, s4; s2, which held
/// it but restarted (commitIndex 0), takes term 12's entry 3 from the stale leader s3 in its
/// minority. Raft allows that; deleting an entry at or below one's own commitIndex is caught.
#[test]
fn committed_prefix_is_per_server_and_incarnation_888() {
    let run = |restart: bool| -> Result<(), Failure> {
        let mut c = RaftSafety::new(5);
        for s in 0..5 {
            append(&mut c, s, &[(1, 2, 10), (2, 2, 20)])?;
        }
        for s in [0, 1, 2, 4] {
            append(&mut c, s, &[(3, 2, 30)])?;
        }
        leader(&mut c, 3, 12)?;
        append(&mut c, 3, &[(3, 12, 31)])?;
        commit(&mut c, 2, 2, 12)?;
        leader(&mut c, 1, 15)?;
        for s in [1, 0, 4] {
            commit(&mut c, s, 3, 15)?;
        }
        if restart {
            boot(&mut c, 2, 0)?;
        } else {
            commit(&mut c, 2, 3, 15)?;
        }
        truncate(&mut c, 2, 3)?;
        append(&mut c, 2, &[(3, 12, 31)])
    };
    run(true).unwrap();
    assert_eq!(property(run(false)), "committed prefix kept");
}

#[test]
fn committed_entries_agree_and_commits_stay_in_the_log() {
    let mut c = RaftSafety::new(3);
    append(&mut c, 0, &[(1, 1, 10)]).unwrap();
    append(&mut c, 1, &[(1, 2, 11)]).unwrap();
    commit(&mut c, 0, 1, 1).unwrap();
    assert_eq!(property(commit(&mut c, 1, 1, 2)), "committed entries agree");
    assert_eq!(property(commit(&mut c, 2, 1, 2)), "commit within log");
}

#[test]
fn state_machine_safety_and_apply_rules() {
    let mut c = RaftSafety::new(3);
    for s in 0..3 {
        append(&mut c, s, &[(1, 1, 10), (2, 1, 20), (3, 1, 30)]).unwrap();
        commit(&mut c, s, 3, 1).unwrap();
    }
    apply(&mut c, 0, 1, 1, 10).unwrap();
    apply(&mut c, 1, 1, 1, 10).unwrap();
    assert_eq!(property(apply(&mut c, 0, 3, 1, 30)), "apply order");
    assert_eq!(property(apply(&mut c, 1, 2, 1, 21)), "apply log entry");
    apply(&mut c, 0, 2, 1, 20).unwrap();
    let restored = [10, 21];
    let r = c.event(
        2,
        RaftEvent::Restored {
            index: 2,
            term: 1,
            entries: Some(&restored),
        },
    );
    assert_eq!(property(r), "state machine safety");

    let mut c = RaftSafety::new(3);
    append(&mut c, 0, &[(1, 1, 10), (2, 1, 20)]).unwrap();
    commit(&mut c, 0, 1, 1).unwrap();
    apply(&mut c, 0, 1, 1, 10).unwrap();
    assert_eq!(property(apply(&mut c, 0, 2, 1, 20)), "apply only committed");
    assert_eq!(property(commit(&mut c, 0, 0, 1)), "commit index monotonic");
    // After a restart, commitIndex starts again from the snapshot.
    boot(&mut c, 0, 0).unwrap();
    commit(&mut c, 0, 1, 1).unwrap();
    apply(&mut c, 0, 1, 1, 10).unwrap();
}

/// State Machine Safety across services: two different entries applied at one index.
#[test]
fn state_machine_safety_across_servers() {
    let mut c = RaftSafety::new(3);
    append(&mut c, 0, &[(1, 1, 10)]).unwrap();
    commit(&mut c, 0, 1, 1).unwrap();
    apply(&mut c, 0, 1, 1, 10).unwrap();
    // s1's log is not mirrored (a checker started late would see this): its apply still counts.
    c.logs[1].snap_index = 5;
    c.commit[1] = 5;
    assert_eq!(property(apply(&mut c, 1, 1, 1, 11)), "state machine safety");
}

#[test]
fn snapshots_shift_the_mirror() {
    let mut c = RaftSafety::new(3);
    append(&mut c, 0, &[(1, 1, 10), (2, 1, 20), (3, 1, 30)]).unwrap();
    snapshot(&mut c, 0, 2, 1).unwrap();
    append(&mut c, 0, &[(4, 1, 40)]).unwrap();
    assert_eq!(c.logs[0].held(3), mirror::Held::Entry(1, 30));
    snapshot(&mut c, 1, 5, 2).unwrap();
    assert_eq!(c.logs[1].last_index(), 5);
    append(&mut c, 1, &[(6, 2, 60)]).unwrap();
    assert_eq!(c.logs[1].term_at(5), Some(2));
}

#[test]
fn a_server_that_lost_its_disk_is_held_to_the_votes_it_cast_before() {
    use crate::raft::node::RaftNode;
    use sim::{Checker, DiskChange};
    // Without a loss, a durable term that goes back is a violation.
    let mut plain = RaftSafety::new(3);
    plain.hard_state(0, 3, Some(1)).unwrap();
    assert_eq!(
        property(plain.hard_state(0, 0, None)),
        "durable term monotonic"
    );
    // After a loss, the empty disk and votes in new terms pass...
    let mut c = RaftSafety::new(3);
    c.hard_state(0, 3, Some(1)).unwrap();
    let empty = <crate::wire::RaftDurable<crate::raft::node::Cmd> as sim::Durable>::replaced();
    Checker::<RaftNode>::on_disk(&mut c, 0, 0, DiskChange::Lost, &empty).unwrap();
    c.hard_state(0, 0, None).unwrap();
    c.hard_state(0, 4, Some(2)).unwrap();
    // ... as does the same vote again, but another candidate in a term it voted in is not.
    c.hard_state(0, 3, Some(1)).unwrap();
    assert_eq!(property(c.hard_state(0, 3, Some(2))), "one vote per term");
}
