//! One deterministic case per catalog bug ([`Bug::ALL`]). A case builds the situation where
//! the bug's rule matters by hand-feeding messages, runs it on the correct protocol and again
//! with the bug switched on, and pins both outcomes exactly (the messages, the durable writes,
//! the state): it shows that the switch does something, and that the correct code does the
//! right thing there. [`CASES`] pairs each bug with its case, so a bug without one fails
//! `every_bug_has_a_case`. Election and persistence cases are here, replication and snapshot
//! cases in `bug_tests/replication.rs`, PreVote, CheckQuorum and ReadIndex cases in
//! `bug_tests/features.rs`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::testing::{cfg, make_leader_with, storage_with};
use crate::{
    Bug, Bugs, Entry, Event, Message, NodeId, Raft, Ready, Role, Snapshot, Storage, StorageOp,
};

mod features;
mod lease;
mod replication;
use features::*;
use lease::*;
use replication::*;

/// Runs one situation with the given switches and asserts the outcome: the bug's when
/// `buggy` (the switches hold the case's bug), the correct one otherwise (none).
type Case = fn(Bugs, bool);

macro_rules! cases {
    ($($bug:ident => $case:ident,)*) => {
        /// Every catalog bug with its case, in catalog order.
        const CASES: &[(Bug, Case)] = &[$((Bug::$bug, $case)),*];
        $(
            mod $case {
                #[test]
                fn correct_and_buggy() {
                    super::run(super::Bug::$bug, super::$case);
                }
            }
        )*
    };
}

cases! {
    VoteTwiceInTerm => vote_twice_in_term,
    NoElectionRestriction => no_election_restriction,
    UpToDateByLength => up_to_date_by_length,
    CandidateForgetsSelfVote => candidate_forgets_self_vote,
    VotesNotDeduplicated => votes_not_deduplicated,
    HeartbeatKeepsTimer => heartbeat_keeps_timer,
    NewerTermKeepsLeader => newer_term_keeps_leader,
    PrevoteBumpsTerm => prevote_bumps_term,
    CheckQuorumNeverStepsDown => checkquorum_never_steps_down,
    VoteNotPersisted => vote_not_persisted,
    TermNotPersisted => term_not_persisted,
    CampaignNotPersisted => campaign_not_persisted,
    FollowerLogNotPersisted => follower_log_not_persisted,
    InstalledSnapshotNotPersisted => installed_snapshot_not_persisted,
    AcceptStaleReplies => accept_stale_replies,
    AcceptStaleAppend => accept_stale_append,
    MatchIndexStartsAtLast => match_index_starts_at_last,
    MatchFromSent => match_from_sent,
    AckWholeLog => ack_whole_log,
    ApplyBeforeCommit => apply_before_commit,
    HeartbeatCommitIgnored => heartbeat_commit_ignored,
    HeartbeatSkipsConsistencyCheck => heartbeat_skips_consistency_check,
    PrevLogTermUnchecked => prev_log_term_unchecked,
    TruncateMatchingSuffix => truncate_matching_suffix,
    ConflictSuffixKept => conflict_suffix_kept,
    CommitOldTerms => commit_old_terms,
    QuorumOffByOne => quorum_off_by_one,
    InstallOlderSnapshot => install_older_snapshot,
    InstallDropsMatchingSuffix => install_drops_matching_suffix,
    SnapshotReplyMatchesLeaderLog => snapshot_reply_matches_leader_log,
    RestartSkipsSnapshot => restart_skips_snapshot,
    ReadIndexNoHeartbeat => read_index_no_heartbeat,
    ReadIndexBeforeOwnTermCommit => read_index_before_own_term_commit,
    LeaseIgnoresDrift => lease_ignores_drift,
    LeaseWithoutStickiness => lease_without_stickiness,
    LeaseFromAckTime => lease_from_ack_time,
}

fn run(bug: Bug, case: Case) {
    case(Bugs::NONE, false);
    case(Bugs::NONE.with(bug), true);
}

#[test]
fn every_bug_has_a_case() {
    let covered: Vec<Bug> = CASES.iter().map(|(bug, _)| *bug).collect();
    assert_eq!(
        covered,
        Bug::ALL,
        "exactly one case per bug, in catalog order"
    );
}

// ----- helpers shared with `replication.rs` -----

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(17)
}

/// Node `id` of an `n`-node cluster with `bugs`, started at time 0 from `storage`.
fn node(
    id: NodeId,
    n: usize,
    storage: &Storage<u64>,
    bugs: Bugs,
    rng: &mut ChaCha8Rng,
) -> Raft<u64> {
    let mut config = cfg(id, n);
    config.bugs = bugs;
    Raft::new(config, storage, 0, rng)
}

/// Node 0 of an `n`-node cluster with `bugs`, elected in the term after `storage`'s.
fn leader(n: usize, storage: &Storage<u64>, bugs: Bugs, rng: &mut ChaCha8Rng) -> Raft<u64> {
    let mut config = cfg(0, n);
    config.bugs = bugs;
    make_leader_with(config, storage, rng)
}

/// An entry as `storage_with` writes it (command = index * 100).
fn e(index: u64, term: u64) -> Entry<u64> {
    Entry {
        index,
        term,
        command: index * 100,
    }
}

/// The terms of the entries after the snapshot.
fn terms(r: &Raft<u64>) -> Vec<u64> {
    r.log().iter().map(|e| e.term).collect()
}

fn ae(
    leader_id: NodeId,
    term: u64,
    prev_log_index: u64,
    prev_log_term: u64,
    entries: Vec<Entry<u64>>,
    leader_commit: u64,
) -> Message<u64> {
    Message::AppendEntries {
        term,
        leader_id,
        prev_log_index,
        prev_log_term,
        entries,
        leader_commit,
    }
}

/// A successful AppendEntriesReply.
fn ack(term: u64, request_term: u64, match_index: u64) -> Message<u64> {
    Message::AppendEntriesReply {
        term,
        request_term,
        success: true,
        match_index,
        conflict_term: None,
        conflict_index: 0,
    }
}

/// A rejecting AppendEntriesReply.
fn nack(
    term: u64,
    request_term: u64,
    conflict_term: Option<u64>,
    conflict_index: u64,
) -> Message<u64> {
    Message::AppendEntriesReply {
        term,
        request_term,
        success: false,
        match_index: 0,
        conflict_term,
        conflict_index,
    }
}

fn vote_request(
    term: u64,
    candidate_id: NodeId,
    last_log_index: u64,
    last_log_term: u64,
) -> Message<u64> {
    Message::RequestVote {
        term,
        candidate_id,
        last_log_index,
        last_log_term,
    }
}

fn vote(term: u64, vote_granted: bool) -> Message<u64> {
    Message::RequestVoteReply {
        term,
        request_term: term,
        vote_granted,
    }
}

fn hard_state(current_term: u64, voted_for: Option<NodeId>) -> StorageOp<u64> {
    StorageOp::HardState {
        current_term,
        voted_for,
    }
}

fn snap(index: u64, term: u64) -> Snapshot {
    Snapshot {
        last_included_index: index,
        last_included_term: term,
        data: vec![index as u8; 4].into(),
    }
}

fn install(term: u64, snapshot: Snapshot) -> Message<u64> {
    Message::InstallSnapshot {
        term,
        leader_id: 0,
        snapshot,
    }
}

/// What the engine does with a Ready's writes.
fn persist(disk: &mut Storage<u64>, ready: &Ready<u64>) {
    for op in &ready.storage {
        disk.apply(op);
    }
}

// ----- election -----

/// A voter follows the winner of term 5; a rival candidate's late request of term 5 must not
/// get a second vote.
fn vote_twice_in_term(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(2, 3, &storage_with(4, &[]), bugs, &mut rng);
    r.handle_message(1, &mut rng, 0, vote_request(5, 0, 0, 0));
    assert_eq!(r.take_ready().messages, vec![(0, vote(5, true))]);
    r.handle_message(2, &mut rng, 0, ae(0, 5, 0, 0, vec![], 0));
    let rd = r.take_ready();
    assert_eq!(rd.messages, vec![(0, ack(5, 5, 0))]);
    if buggy {
        assert_eq!(r.voted_for(), None);
        assert_eq!(rd.storage, vec![hard_state(5, None)]);
    } else {
        assert_eq!(r.voted_for(), Some(0));
        assert!(rd.storage.is_empty());
    }
    r.handle_message(3, &mut rng, 1, vote_request(5, 1, 0, 0));
    assert_eq!(r.take_ready().messages, vec![(1, vote(5, buggy))]);
    assert_eq!(r.voted_for(), Some(if buggy { 1 } else { 0 }));
}

/// A candidate of a newer term whose log ends in an older term than the voter's.
fn no_election_restriction(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(0, 3, &storage_with(3, &[3]), bugs, &mut rng);
    r.handle_message(1, &mut rng, 1, vote_request(4, 1, 5, 2));
    assert_eq!(r.current_term(), 4);
    assert_eq!(r.take_ready().messages, vec![(1, vote(4, buggy))]);
    assert_eq!(r.voted_for(), buggy.then_some(1));
}

/// Voter log terms [1, 3]: a longer log ending in term 2 is less up-to-date; a shorter one
/// ending in term 4 is more.
fn up_to_date_by_length(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let voter = storage_with(3, &[1, 3]);
    let mut r = node(0, 3, &voter, bugs, &mut rng);
    r.handle_message(1, &mut rng, 1, vote_request(4, 1, 3, 2));
    assert_eq!(r.take_ready().messages, vec![(1, vote(4, buggy))]);
    let mut r = node(0, 3, &voter, bugs, &mut rng);
    r.handle_message(1, &mut rng, 2, vote_request(4, 2, 1, 4));
    assert_eq!(r.take_ready().messages, vec![(2, vote(4, !buggy))]);
}

/// A candidate of term 2 steps down on the winner's heartbeat; it already voted (for itself)
/// in term 2, so a third candidate of that term must be refused.
fn candidate_forgets_self_vote(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(0, 3, &storage_with(1, &[]), bugs, &mut rng);
    let t = r.next_deadline();
    r.tick(t, &mut rng);
    assert_eq!((r.role(), r.current_term()), (Role::Candidate, 2));
    let self_vote = if buggy { None } else { Some(0) };
    assert_eq!(r.voted_for(), self_vote);
    let rd = r.take_ready();
    assert_eq!(rd.storage, vec![hard_state(2, self_vote)]);
    assert_eq!(
        rd.messages,
        vec![(1, vote_request(2, 0, 0, 0)), (2, vote_request(2, 0, 0, 0))]
    );
    r.handle_message(t + 1, &mut rng, 1, ae(1, 2, 0, 0, vec![], 0));
    assert_eq!((r.role(), r.leader_hint()), (Role::Follower, Some(1)));
    r.take_ready();
    r.handle_message(t + 2, &mut rng, 2, vote_request(2, 2, 0, 0));
    assert_eq!(r.take_ready().messages, vec![(2, vote(2, buggy))]);
}

/// A candidate in a 5-node cluster holds node 1's vote; the network duplicates the reply.
fn votes_not_deduplicated(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(0, 5, &Storage::default(), bugs, &mut rng);
    let t = r.next_deadline();
    r.tick(t, &mut rng);
    r.take_ready();
    r.handle_message(t, &mut rng, 1, vote(1, true));
    assert_eq!(r.role(), Role::Candidate);
    r.handle_message(t, &mut rng, 1, vote(1, true));
    assert_eq!(r.role(), if buggy { Role::Leader } else { Role::Candidate });
}

/// The leader's heartbeat arrives just before the follower's election timeout.
fn heartbeat_keeps_timer(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = node(1, 3, &Storage::default(), bugs, &mut rng);
    let timeout_at = r.next_deadline();
    let now = timeout_at - 1;
    // The one draw the correct follower makes: its fresh timeout.
    let fresh: u64 = rng.clone().random_range(300_000..600_000);
    r.handle_message(now, &mut rng, 0, ae(0, 1, 0, 0, vec![], 0));
    assert_eq!(r.take_ready().messages, vec![(0, ack(1, 1, 0))]);
    assert_eq!(
        r.next_deadline(),
        if buggy { timeout_at } else { now + fresh }
    );
    r.tick(timeout_at, &mut rng);
    assert_eq!(
        r.role(),
        if buggy {
            Role::Candidate
        } else {
            Role::Follower
        }
    );
    assert_eq!(r.current_term(), if buggy { 2 } else { 1 });
}

/// The leader of term 2 hears of term 3 from a follower's reply (the follower has moved on
/// to a newer election); then the service proposes a command.
fn newer_term_keeps_leader(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut r = leader(3, &storage_with(1, &[]), bugs, &mut rng);
    assert_eq!(r.current_term(), 2);
    let now = r.next_deadline();
    r.handle_message(now, &mut rng, 1, nack(3, 2, None, 1));
    let rd = r.take_ready();
    assert_eq!(rd.storage, vec![hard_state(3, None)]);
    assert!(rd.messages.is_empty(), "the stale reply itself is ignored");
    let stepped_down = vec![Event::BecameFollower { term: 3 }];
    assert_eq!(rd.events, if buggy { vec![] } else { stepped_down });
    assert_eq!(r.current_term(), 3);
    let proposed = r.start(now + 1, &mut rng, 7);
    let rd = r.take_ready();
    if buggy {
        // Leads term 3 unelected: its entry of term 3 goes out as term 3's log.
        assert_eq!((r.role(), r.leader_hint()), (Role::Leader, Some(0)));
        assert_eq!(proposed, Some((1, 3)));
        let entry = Entry {
            index: 1,
            term: 3,
            command: 7,
        };
        let append = ae(0, 3, 0, 0, vec![entry], 0);
        assert_eq!(rd.messages, vec![(1, append.clone()), (2, append)]);
    } else {
        assert_eq!((r.role(), r.leader_hint()), (Role::Follower, None));
        assert_eq!(proposed, None);
        assert!(rd.messages.is_empty() && rd.storage.is_empty());
    }
}

// ----- persistence -----

/// A voter grants its vote of term 5, crashes and restarts; another candidate of term 5 asks.
fn vote_not_persisted(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut disk = storage_with(4, &[]);
    let mut r = node(1, 3, &disk, bugs, &mut rng);
    r.handle_message(1, &mut rng, 2, vote_request(5, 2, 0, 0));
    let rd = r.take_ready();
    assert_eq!(rd.messages, vec![(2, vote(5, true))]);
    let mut writes = vec![hard_state(5, None)];
    if !buggy {
        writes.push(hard_state(5, Some(2)));
    }
    assert_eq!(rd.storage, writes);
    persist(&mut disk, &rd);
    let mut r = node(1, 3, &disk, bugs, &mut rng);
    assert_eq!(r.voted_for(), if buggy { None } else { Some(2) });
    r.handle_message(2, &mut rng, 0, vote_request(5, 0, 0, 0));
    assert_eq!(r.take_ready().messages, vec![(0, vote(5, buggy))]);
}

/// A follower learns term 5 from a heartbeat, crashes and restarts; the deposed leader of
/// term 3 then sends it an entry.
fn term_not_persisted(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut disk = storage_with(2, &[1]);
    let mut r = node(1, 3, &disk, bugs, &mut rng);
    r.handle_message(1, &mut rng, 0, ae(0, 5, 1, 1, vec![], 0));
    let rd = r.take_ready();
    assert_eq!(r.current_term(), 5);
    assert_eq!(rd.messages, vec![(0, ack(5, 5, 1))]);
    assert_eq!(
        rd.storage,
        if buggy {
            vec![]
        } else {
            vec![hard_state(5, None)]
        }
    );
    persist(&mut disk, &rd);
    let mut r = node(1, 3, &disk, bugs, &mut rng);
    assert_eq!(r.current_term(), if buggy { 2 } else { 5 });
    r.handle_message(2, &mut rng, 2, ae(2, 3, 1, 1, vec![e(2, 3)], 0));
    let rd = r.take_ready();
    if buggy {
        assert_eq!(rd.messages, vec![(2, ack(3, 3, 2))]);
        assert_eq!(terms(&r), vec![1, 3]);
    } else {
        assert_eq!(rd.messages, vec![(2, nack(5, 3, None, 0))]);
        assert_eq!(terms(&r), vec![1]);
    }
}

/// Node 0 wins term 2 with node 2's vote and crashes. Its self-vote did count: the crashed
/// incarnation was elected with it. Restarted, node 0 must still hold that vote, or node 1,
/// a candidate of term 2 that missed the election, gets a second vote of term 2 and is
/// elected too (two leaders in one term). And once node 0 has stored an entry of term 2 (as
/// that term's leader, or a follower of its leader), its durable currentTerm must cover it,
/// or after a restart it takes AppendEntries from a deposed leader of term 1 that overwrite
/// the entry, which may be committed.
fn campaign_not_persisted(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut disk = storage_with(1, &[]);
    let mut r = node(0, 3, &disk, bugs, &mut rng);
    let t = r.next_deadline();
    r.tick(t, &mut rng);
    assert_eq!(
        (r.role(), r.current_term(), r.voted_for()),
        (Role::Candidate, 2, Some(0))
    );
    let rd = r.take_ready();
    assert_eq!(
        rd.storage,
        if buggy {
            vec![]
        } else {
            vec![hard_state(2, Some(0))]
        }
    );
    assert_eq!(
        rd.messages,
        vec![(1, vote_request(2, 0, 0, 0)), (2, vote_request(2, 0, 0, 0))]
    );
    persist(&mut disk, &rd);
    r.handle_message(t + 1, &mut rng, 2, vote(2, true));
    assert_eq!((r.role(), r.current_term()), (Role::Leader, 2));
    let rd = r.take_ready();
    assert!(rd.storage.is_empty());
    persist(&mut disk, &rd);

    // The elected leader of term 2 crashes at once; node 1 asks for a vote of term 2.
    let mut restarted = node(0, 3, &disk, bugs, &mut rng);
    let restored = if buggy { (1, None) } else { (2, Some(0)) };
    assert_eq!((restarted.current_term(), restarted.voted_for()), restored);
    restarted.handle_message(t + 2, &mut rng, 1, vote_request(2, 1, 0, 0));
    assert_eq!(restarted.take_ready().messages, vec![(1, vote(2, buggy))]);

    // Or it first stores an entry of term 2, then crashes; node 1, deposed leader of
    // term 1, sends it an entry of term 1 at the same index.
    assert_eq!(r.start(t + 3, &mut rng, 7), Some((1, 2)));
    persist(&mut disk, &r.take_ready());
    let mut restarted = node(0, 3, &disk, bugs, &mut rng);
    assert_eq!(restarted.current_term(), if buggy { 1 } else { 2 });
    assert_eq!(terms(&restarted), vec![2]);
    restarted.handle_message(t + 4, &mut rng, 1, ae(1, 1, 0, 0, vec![e(1, 1)], 0));
    let rd = restarted.take_ready();
    if buggy {
        assert_eq!(rd.messages, vec![(1, ack(1, 1, 1))]);
        assert_eq!(terms(&restarted), vec![1]);
    } else {
        assert_eq!(rd.messages, vec![(1, nack(2, 1, None, 0))]);
        assert_eq!(terms(&restarted), vec![2]);
    }
}

/// A follower acknowledges two entries; it either runs again (and writes them) or crashes.
fn follower_log_not_persisted(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut disk = Storage::default();
    let mut r = node(1, 3, &disk, bugs, &mut rng);
    r.handle_message(1, &mut rng, 0, ae(0, 1, 0, 0, vec![e(1, 1), e(2, 1)], 0));
    let rd = r.take_ready();
    assert_eq!(rd.messages, vec![(0, ack(1, 1, 2))]);
    let write = StorageOp::Append {
        entries: vec![e(1, 1), e(2, 1)],
    };
    let mut writes = vec![hard_state(1, None)];
    if !buggy {
        writes.push(write.clone());
    }
    assert_eq!(rd.storage, writes);
    persist(&mut disk, &rd);
    let mut running = r.clone();
    running.handle_message(2, &mut rng, 0, ae(0, 1, 2, 1, vec![], 0));
    let late = running.take_ready().storage;
    assert_eq!(late, if buggy { vec![write] } else { vec![] });
    let restarted = node(1, 3, &disk, bugs, &mut rng);
    assert_eq!(restarted.last_index(), if buggy { 0 } else { 2 });
}

/// A follower acknowledges an installed snapshot; it either runs again or crashes.
fn installed_snapshot_not_persisted(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut disk = storage_with(1, &[]);
    let mut r = node(1, 3, &disk, bugs, &mut rng);
    r.handle_message(1, &mut rng, 0, install(1, snap(3, 1)));
    let rd = r.take_ready();
    let reply = Message::InstallSnapshotReply {
        term: 1,
        request_term: 1,
        last_included_index: 3,
        match_index: 3,
    };
    assert_eq!(rd.messages, vec![(0, reply)]);
    let write = StorageOp::Snapshot {
        snapshot: snap(3, 1),
    };
    assert_eq!(rd.storage, if buggy { vec![] } else { vec![write.clone()] });
    persist(&mut disk, &rd);
    let mut running = r.clone();
    running.handle_message(2, &mut rng, 0, ae(0, 1, 3, 1, vec![], 3));
    let late = running.take_ready().storage;
    assert_eq!(late, if buggy { vec![write] } else { vec![] });
    let restarted = node(1, 3, &disk, bugs, &mut rng);
    assert_eq!(restarted.snapshot_index(), if buggy { 0 } else { 3 });
}
