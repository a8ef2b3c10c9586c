//! The replication and snapshot cases of the bug catalog (see `bug_tests.rs`).

use super::{ack, ae, e, hard_state, install, leader, nack, node, rng, snap, terms, vote};
use crate::testing::storage_with;
use crate::{Apply, Bugs, Entry, Message, Ready, Role, Storage, StorageOp};

// ----- replication -----

/// A candidate of term 2 receives the vote node 1 granted it in term 1.
pub(super) fn accept_stale_replies(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(0, 3, &Storage::default(), bugs, &mut rng);
    let t1 = r.next_deadline();
    r.tick(t1, &mut rng);
    let t2 = r.next_deadline();
    r.tick(t2, &mut rng);
    r.take_ready();
    assert_eq!((r.role(), r.current_term()), (Role::Candidate, 2));
    r.handle_message(t2 + 1, &mut rng, 1, vote(1, true));
    assert_eq!(r.role(), if buggy { Role::Leader } else { Role::Candidate });
}

/// A follower of term 5 holds entry 3 of term 5; the deposed leader of term 4 sends its own.
pub(super) fn accept_stale_append(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(1, 3, &storage_with(5, &[1, 1, 5]), bugs, &mut rng);
    r.handle_message(1, &mut rng, 2, ae(2, 4, 2, 1, vec![e(3, 4)], 0));
    let rd = r.take_ready();
    assert_eq!(r.current_term(), 5);
    if buggy {
        assert_eq!(rd.messages, vec![(2, ack(5, 4, 3))]);
        assert_eq!(terms(&r), vec![1, 1, 4]);
        let writes = vec![
            StorageOp::TruncateFrom { index: 3 },
            StorageOp::Append {
                entries: vec![e(3, 4)],
            },
        ];
        assert_eq!(rd.storage, writes);
    } else {
        assert_eq!(rd.messages, vec![(2, nack(5, 4, None, 0))]);
        assert_eq!(terms(&r), vec![1, 1, 5]);
        assert!(rd.storage.is_empty());
    }
}

/// A new leader with two entries; follower 1 is empty and says so.
pub(super) fn match_index_starts_at_last(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut l = leader(3, &storage_with(1, &[1, 1]), bugs, &mut rng);
    assert_eq!(l.current_term(), 2);
    let start = if buggy { 2 } else { 0 };
    assert_eq!((l.match_index(1), l.next_index(1)), (Some(start), Some(3)));
    l.handle_message(1, &mut rng, 1, nack(2, 2, None, 1));
    let rd = l.take_ready();
    if buggy {
        assert_eq!(l.next_index(1), Some(3));
        assert!(rd.messages.is_empty());
    } else {
        assert_eq!(l.next_index(1), Some(1));
        let resend = ae(0, 2, 0, 0, vec![e(1, 1), e(2, 1)], 0);
        assert_eq!(rd.messages, vec![(1, resend)]);
    }
}

/// The leader pipelines entries 1 and 2; node 1 acknowledges the first request only.
pub(super) fn match_from_sent(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut l = leader(3, &Storage::default(), bugs, &mut rng);
    let term = l.current_term();
    l.start(1, &mut rng, 7);
    l.start(1, &mut rng, 8);
    l.take_ready();
    l.handle_message(2, &mut rng, 1, ack(term, term, 1));
    let matched = if buggy { 2 } else { 1 };
    assert_eq!(l.match_index(1), Some(matched));
    assert_eq!(l.commit_index(), matched);
}

/// A follower whose stale entry 3 (term 2) follows what the heartbeat vouches for.
pub(super) fn ack_whole_log(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(1, 3, &storage_with(2, &[1, 1, 2]), bugs, &mut rng);
    r.handle_message(1, &mut rng, 0, ae(0, 3, 2, 1, vec![], 0));
    let matched = if buggy { 3 } else { 2 };
    assert_eq!(r.take_ready().messages, vec![(0, ack(3, 3, matched))]);
}

/// The indices (and terms) a Ready hands to the service.
fn applied(rd: &Ready<u64>) -> Vec<(u64, u64)> {
    rd.applies
        .iter()
        .map(|a| match a {
            Apply::Command { index, term, .. } => (*index, *term),
            Apply::Snapshot { .. } => panic!("no snapshot expected"),
        })
        .collect()
}

/// A follower receives two entries the leader has not committed yet.
pub(super) fn apply_before_commit(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(1, 3, &Storage::default(), bugs, &mut rng);
    r.handle_message(1, &mut rng, 0, ae(0, 1, 0, 0, vec![e(1, 1), e(2, 1)], 0));
    let rd = r.take_ready();
    assert_eq!(rd.messages, vec![(0, ack(1, 1, 2))]);
    if buggy {
        assert_eq!(r.commit_index(), 2);
        assert_eq!(applied(&rd), vec![(1, 1), (2, 1)]);
    } else {
        assert_eq!(r.commit_index(), 0);
        assert!(rd.applies.is_empty());
    }
}

/// A follower holds entries 1-2; the leader's heartbeat says they committed, then an
/// AppendEntries with entry 3 says the same.
pub(super) fn heartbeat_commit_ignored(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(1, 3, &Storage::default(), bugs, &mut rng);
    r.handle_message(1, &mut rng, 0, ae(0, 1, 0, 0, vec![e(1, 1), e(2, 1)], 0));
    r.take_ready();
    r.handle_message(2, &mut rng, 0, ae(0, 1, 2, 1, vec![], 2));
    let rd = r.take_ready();
    assert_eq!(rd.messages, vec![(0, ack(1, 1, 2))]);
    if buggy {
        assert_eq!(r.commit_index(), 0);
        assert!(rd.applies.is_empty());
    } else {
        assert_eq!(r.commit_index(), 2);
        assert_eq!(applied(&rd), vec![(1, 1), (2, 1)]);
    }
    r.handle_message(3, &mut rng, 0, ae(0, 1, 2, 1, vec![e(3, 1)], 2));
    let rd = r.take_ready();
    assert_eq!(r.commit_index(), 2);
    assert_eq!(
        applied(&rd),
        if buggy { vec![(1, 1), (2, 1)] } else { vec![] }
    );
}

/// Heartbeats of the leader of term 3 to a follower with log terms [1, 1, 2]: one whose
/// prevLogTerm differs at index 3, one past the follower's log.
pub(super) fn heartbeat_skips_consistency_check(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let follower = storage_with(2, &[1, 1, 2]);
    for (prev, commit, refusal) in [(3, 3, nack(3, 3, Some(2), 3)), (5, 5, nack(3, 3, None, 4))] {
        let mut r = node(1, 3, &follower, bugs, &mut rng);
        r.handle_message(1, &mut rng, 0, ae(0, 3, prev, 3, vec![], commit));
        let reply = r.take_ready().messages;
        if buggy {
            assert_eq!(reply, vec![(0, ack(3, 3, 3))]);
            assert_eq!(r.commit_index(), 3);
        } else {
            assert_eq!(reply, vec![(0, refusal)]);
            assert_eq!(r.commit_index(), 0);
        }
    }
    // Entries, unlike heartbeats, are still checked.
    let mut r = node(1, 3, &follower, bugs, &mut rng);
    r.handle_message(1, &mut rng, 0, ae(0, 3, 3, 3, vec![e(4, 3)], 4));
    assert_eq!(r.take_ready().messages, vec![(0, nack(3, 3, Some(2), 3))]);
}

/// The leader of term 3 sends entry 4 after its entry 3 (term 3); the follower's entry 3 is
/// of term 2.
pub(super) fn prev_log_term_unchecked(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(1, 3, &storage_with(2, &[1, 1, 2]), bugs, &mut rng);
    r.handle_message(1, &mut rng, 0, ae(0, 3, 3, 3, vec![e(4, 3)], 4));
    let reply = r.take_ready().messages;
    if buggy {
        assert_eq!(reply, vec![(0, ack(3, 3, 4))]);
        assert_eq!(terms(&r), vec![1, 1, 2, 3]);
        assert_eq!(r.commit_index(), 4);
    } else {
        assert_eq!(reply, vec![(0, nack(3, 3, Some(2), 3))]);
        assert_eq!(terms(&r), vec![1, 1, 2]);
        assert_eq!(r.commit_index(), 0);
    }
}

/// A follower holds entries 1-4 (acknowledged); an older AppendEntries with 1-2 arrives late.
pub(super) fn truncate_matching_suffix(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(1, 3, &Storage::default(), bugs, &mut rng);
    let all = vec![e(1, 2), e(2, 2), e(3, 2), e(4, 2)];
    r.handle_message(1, &mut rng, 0, ae(0, 2, 0, 0, all, 0));
    assert_eq!(r.take_ready().messages, vec![(0, ack(2, 2, 4))]);
    r.handle_message(2, &mut rng, 0, ae(0, 2, 0, 0, vec![e(1, 2), e(2, 2)], 0));
    let rd = r.take_ready();
    assert_eq!(rd.messages, vec![(0, ack(2, 2, 2))]);
    if buggy {
        assert_eq!(r.last_index(), 2);
        assert_eq!(rd.storage, vec![StorageOp::TruncateFrom { index: 3 }]);
    } else {
        assert_eq!(r.last_index(), 4);
        assert!(rd.storage.is_empty());
    }
}

/// Follower log terms [1, 4, 4]; the leader of term 5 replaces entry 2 with its own (term 3).
pub(super) fn conflict_suffix_kept(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(1, 3, &storage_with(4, &[1, 4, 4]), bugs, &mut rng);
    r.handle_message(1, &mut rng, 0, ae(0, 5, 1, 1, vec![e(2, 3)], 0));
    let rd = r.take_ready();
    assert_eq!(rd.messages, vec![(0, ack(5, 5, 2))]);
    let mut appended = vec![e(2, 3)];
    if buggy {
        appended.push(e(3, 4));
    }
    assert_eq!(terms(&r), if buggy { vec![1, 3, 4] } else { vec![1, 3] });
    let writes = vec![
        hard_state(5, None),
        StorageOp::TruncateFrom { index: 2 },
        StorageOp::Append { entries: appended },
    ];
    assert_eq!(rd.storage, writes);
}

/// The leader of term 4 (of 5 servers) holds entry 2 of term 2; three servers acknowledge it.
pub(super) fn commit_old_terms(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut l = leader(5, &storage_with(3, &[1, 2]), bugs, &mut rng);
    assert_eq!(l.current_term(), 4);
    l.handle_message(1, &mut rng, 1, ack(4, 4, 2));
    assert_eq!(l.commit_index(), 0);
    l.handle_message(1, &mut rng, 2, ack(4, 4, 2));
    assert_eq!(l.commit_index(), if buggy { 2 } else { 0 });
}

/// A proposal on the leader of 3 servers, then on the leader of 5 with one acknowledgement.
pub(super) fn quorum_off_by_one(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut l = leader(3, &Storage::default(), bugs, &mut rng);
    let (index, term) = l.start(1, &mut rng, 7).unwrap();
    let applied = l.take_ready().applies;
    if buggy {
        assert_eq!(l.commit_index(), 1);
        assert_eq!(
            applied,
            vec![Apply::Command {
                index,
                term,
                command: 7
            }]
        );
    } else {
        assert_eq!(l.commit_index(), 0);
        assert!(applied.is_empty());
    }
    let mut l = leader(5, &Storage::default(), bugs, &mut rng);
    let (index, term) = l.start(1, &mut rng, 7).unwrap();
    assert_eq!(l.commit_index(), 0);
    l.handle_message(2, &mut rng, 1, ack(term, term, index));
    assert_eq!(l.commit_index(), if buggy { 1 } else { 0 });
}

// ----- snapshots -----

/// A follower that committed and applied 1-5 receives a snapshot through 3.
pub(super) fn install_older_snapshot(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(1, 3, &Storage::default(), bugs, &mut rng);
    let five = (1..=5).map(|i| e(i, 1)).collect();
    r.handle_message(1, &mut rng, 0, ae(0, 1, 0, 0, five, 5));
    r.take_ready();
    r.handle_message(2, &mut rng, 0, install(1, snap(3, 1)));
    let rd = r.take_ready();
    let reply = Message::InstallSnapshotReply {
        term: 1,
        request_term: 1,
        last_included_index: 3,
        match_index: 3,
    };
    assert_eq!(rd.messages, vec![(0, reply)]);
    let state = (
        r.commit_index(),
        r.last_applied(),
        r.snapshot_index(),
        r.last_index(),
    );
    if buggy {
        assert_eq!(
            rd.applies,
            vec![Apply::Snapshot {
                snapshot: snap(3, 1)
            }]
        );
        assert_eq!(
            rd.storage,
            vec![StorageOp::Snapshot {
                snapshot: snap(3, 1)
            }]
        );
        assert_eq!(state, (3, 3, 3, 5));
    } else {
        assert!(rd.applies.is_empty() && rd.storage.is_empty());
        assert_eq!(state, (5, 5, 0, 5));
    }
}

/// Follower log terms [1, 1, 2, 2], nothing committed; a snapshot through 3 (term 2) arrives.
pub(super) fn install_drops_matching_suffix(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(1, 3, &storage_with(2, &[1, 1, 2, 2]), bugs, &mut rng);
    r.handle_message(1, &mut rng, 0, install(2, snap(3, 2)));
    let rd = r.take_ready();
    let mut writes = vec![StorageOp::Snapshot {
        snapshot: snap(3, 2),
    }];
    if buggy {
        writes.push(StorageOp::TruncateFrom { index: 4 });
    }
    assert_eq!(rd.storage, writes);
    assert_eq!((r.snapshot_index(), r.commit_index()), (3, 3));
    let kept: Vec<Entry<u64>> = r.log().iter().cloned().collect();
    assert_eq!(kept, if buggy { vec![] } else { vec![e(4, 2)] });
}

/// The leader snapshots through 4 and brings lagging follower 1 up with InstallSnapshot.
pub(super) fn snapshot_reply_matches_leader_log(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut l = leader(3, &Storage::default(), bugs, &mut rng);
    let term = l.current_term();
    for k in 0..6 {
        l.start(1, &mut rng, k);
    }
    l.handle_message(2, &mut rng, 2, ack(term, term, 6));
    assert_eq!(l.commit_index(), 6);
    l.snapshot(4, vec![4]);
    l.take_ready();
    let t = l.next_deadline();
    l.tick(t, &mut rng);
    let sent = l.take_ready().messages;
    assert!(
        matches!(&sent[0], (1, Message::InstallSnapshot { snapshot, .. })
        if snapshot.last_included_index == 4)
    );
    let reply = Message::InstallSnapshotReply {
        term,
        request_term: term,
        last_included_index: 4,
        match_index: 4,
    };
    l.handle_message(t, &mut rng, 1, reply);
    let rd = l.take_ready();
    if buggy {
        assert_eq!((l.match_index(1), l.next_index(1)), (Some(6), Some(7)));
        assert!(rd.messages.is_empty());
    } else {
        assert_eq!((l.match_index(1), l.next_index(1)), (Some(4), Some(5)));
        let rest = (5..=6)
            .map(|index| Entry {
                index,
                term,
                command: index - 1,
            })
            .collect();
        assert_eq!(rd.messages, vec![(1, ae(0, term, 4, term, rest, 6))]);
    }
}

/// A node restarts from a snapshot through 2 and entries 3-4.
pub(super) fn restart_skips_snapshot(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut disk = storage_with(3, &[1, 2, 3, 3]);
    disk.apply(&StorageOp::Snapshot {
        snapshot: snap(2, 2),
    });
    let mut r = node(1, 3, &disk, bugs, &mut rng);
    assert_eq!(
        (r.commit_index(), r.last_applied(), r.snapshot_index()),
        (2, 2, 2)
    );
    let restored = r.take_ready().applies;
    if buggy {
        assert!(restored.is_empty());
    } else {
        assert_eq!(
            restored,
            vec![Apply::Snapshot {
                snapshot: snap(2, 2)
            }]
        );
    }
}
