//! Hand-fed message tests of the rules of the features beyond Figure 2: when a PreVote is
//! granted, what CheckQuorum counts as an answer, and when a ReadIndex round is confirmed.
//! Each pins one boundary of one rule (a timeout's last microsecond, a quorum's last vote),
//! where the cluster tests in `prevote.rs` and `read_index.rs` only see the overall effect.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::testing::{cfg, make_leader_with, storage_with};
use crate::{Config, Message, Raft, ReadState, Role, Storage};

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(23)
}

fn pre_vote(
    term: u64,
    candidate_id: usize,
    last_log_index: u64,
    last_log_term: u64,
) -> Message<u64> {
    Message::PreVote {
        term,
        candidate_id,
        last_log_index,
        last_log_term,
    }
}

/// The answer `r` sent to the PreVote it was just handed (and nothing else).
fn pre_vote_answer(r: &mut Raft<u64>, to: usize) -> bool {
    let messages = r.take_ready().messages;
    assert_eq!(messages.len(), 1, "one answer: {messages:?}");
    match &messages[0] {
        (t, Message::PreVoteReply { vote_granted, .. }) if *t == to => *vote_granted,
        other => panic!("not a PreVoteReply to {to}: {other:?}"),
    }
}

/// Node 1 of 3 with PreVote on, in term 2 with entries of terms [1, 2], that heard the
/// leader of term 2 (node 0) at `contact`.
fn follower_that_heard_the_leader(contact: u64) -> (Raft<u64>, ChaCha8Rng) {
    let mut rng = rng();
    let mut config = cfg(1, 3);
    config.pre_vote = true;
    let mut r = Raft::new(config, &storage_with(2, &[1, 2]), 0, &mut rng);
    let heartbeat = Message::AppendEntries {
        term: 2,
        leader_id: 0,
        prev_log_index: 2,
        prev_log_term: 2,
        entries: vec![],
        leader_commit: 2,
    };
    r.handle_message(contact, &mut rng, 0, heartbeat);
    r.take_ready();
    (r, rng)
}

#[test]
fn a_pre_vote_is_refused_until_the_minimum_election_timeout_since_the_leader_has_passed() {
    let contact = 1_000;
    let (mut r, mut rng) = follower_that_heard_the_leader(contact);
    let min = r.config().election_timeout_min;
    // An up-to-date candidate for the next term, one microsecond before the timeout: refused.
    r.handle_message(contact + min - 1, &mut rng, 2, pre_vote(3, 2, 2, 2));
    assert!(!pre_vote_answer(&mut r, 2), "the leader may still be alive");
    // At the timeout itself the leader counts as gone: granted.
    r.handle_message(contact + min, &mut rng, 2, pre_vote(3, 2, 2, 2));
    assert!(pre_vote_answer(&mut r, 2));
    // Nothing changed for either: no term, no vote.
    assert_eq!((r.current_term(), r.voted_for()), (2, None));
}

#[test]
fn a_pre_vote_needs_a_newer_term_and_an_up_to_date_log_even_with_no_leader_heard() {
    let contact = 1_000;
    let (mut r, mut rng) = follower_that_heard_the_leader(contact);
    let late = contact + 10 * r.config().election_timeout_max;
    r.handle_message(late, &mut rng, 2, pre_vote(2, 2, 2, 2));
    assert!(!pre_vote_answer(&mut r, 2), "term 2 is not newer than ours");
    r.handle_message(late, &mut rng, 2, pre_vote(3, 2, 1, 1));
    assert!(
        !pre_vote_answer(&mut r, 2),
        "its log ends before ours (Section 5.4.1)"
    );
    r.handle_message(late, &mut rng, 2, pre_vote(3, 2, 2, 2));
    assert!(pre_vote_answer(&mut r, 2));
}

fn leader_with(edit: impl Fn(&mut Config), n: usize) -> (Raft<u64>, ChaCha8Rng) {
    let mut rng = rng();
    let mut config = cfg(0, n);
    edit(&mut config);
    let l = make_leader_with(config, &Storage::default(), &mut rng);
    (l, rng)
}

#[test]
fn a_leader_refuses_pre_votes_however_long_ago_it_was_elected() {
    let (mut l, mut rng) = leader_with(|_| {}, 3);
    // Elected the Figure 2 way (the helper answers RequestVotes), then switched to PreVote.
    l.config.pre_vote = true;
    let term = l.current_term();
    let late = 10 * l.config().election_timeout_max;
    l.handle_message(late, &mut rng, 2, pre_vote(term + 1, 2, 0, 0));
    let answers: Vec<bool> = l
        .take_ready()
        .messages
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::PreVoteReply { vote_granted, .. } => Some(vote_granted),
            _ => None,
        })
        .collect();
    assert_eq!(answers, vec![false]);
    assert!(l.is_leader());
}

#[test]
fn check_quorum_counts_answers_only_not_requests_from_the_followers() {
    let (mut l, mut rng) = leader_with(|c| c.check_quorum = true, 3);
    let term = l.current_term();
    let check = l.quorum_check_due;
    // Both followers send requests (they want to campaign), none answers the leader.
    l.handle_message(check - 2, &mut rng, 1, pre_vote(term + 1, 1, 0, 0));
    l.handle_message(check - 1, &mut rng, 2, pre_vote(term + 1, 2, 0, 0));
    l.take_ready();
    l.tick(check, &mut rng);
    assert_eq!(
        l.role(),
        Role::Follower,
        "no follower answered in the period"
    );
    assert_eq!(l.current_term(), term);
    let sent = l.take_ready().messages;
    assert!(
        !sent
            .iter()
            .any(|(_, m)| matches!(m, Message::AppendEntries { .. })),
        "a leader that stepped down sends no heartbeat: {sent:?}"
    );
}

#[test]
fn a_leader_that_passes_its_quorum_check_sends_the_heartbeats_due_in_the_same_tick() {
    let (mut l, mut rng) = leader_with(|c| c.check_quorum = true, 3);
    let term = l.current_term();
    let check = l.quorum_check_due;
    let answer = Message::AppendEntriesReply {
        term,
        request_term: term,
        success: true,
        match_index: 0,
        conflict_term: None,
        conflict_index: 0,
    };
    l.handle_message(check - 1, &mut rng, 1, answer);
    l.take_ready();
    // No tick since the election: both heartbeats are overdue when the check runs.
    l.tick(check, &mut rng);
    assert!(l.is_leader());
    let to: Vec<usize> = l
        .take_ready()
        .messages
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::AppendEntries { .. }))
        .map(|(to, _)| to)
        .collect();
    assert_eq!(to, vec![1, 2]);
}

/// A leader of `n` with an entry of its term committed by its first `n / 2` followers.
fn leader_ready_to_read(n: usize) -> (Raft<u64>, ChaCha8Rng, u64) {
    let (mut l, mut rng) = leader_with(|_| {}, n);
    let term = l.current_term();
    let (index, _) = l.start(1, &mut rng, 7).unwrap();
    for peer in 1..=n / 2 {
        let answer = Message::AppendEntriesReply {
            term,
            request_term: term,
            success: true,
            match_index: index,
            conflict_term: None,
            conflict_index: 0,
        };
        l.handle_message(2, &mut rng, peer, answer);
    }
    assert_eq!(l.commit_index(), index);
    l.take_ready();
    (l, rng, index)
}

fn confirm(term: u64, read_seq: u64) -> Message<u64> {
    Message::LeadershipCheckReply {
        term,
        request_term: term,
        read_seq,
    }
}

#[test]
fn a_read_of_five_waits_for_two_confirmations_besides_the_leader() {
    let (mut l, mut rng, index) = leader_ready_to_read(5);
    let term = l.current_term();
    assert_eq!(l.read_index(9), Ok(()));
    l.take_ready();
    l.handle_message(3, &mut rng, 3, confirm(term, 1));
    assert!(
        l.take_ready().reads.is_empty(),
        "two of five is no majority"
    );
    l.handle_message(4, &mut rng, 3, confirm(term, 1));
    assert!(l.take_ready().reads.is_empty(), "the same follower twice");
    l.handle_message(5, &mut rng, 4, confirm(term, 1));
    assert_eq!(l.take_ready().reads, vec![ReadState { ctx: 9, index }]);
    // A confirmation after the read was handed over changes nothing.
    l.handle_message(6, &mut rng, 1, confirm(term, 1));
    assert!(l.take_ready().reads.is_empty());
}

/// The LeadershipChecks in the next heartbeat round of `l`, by destination.
fn checks_in_next_heartbeats(l: &mut Raft<u64>, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let t = l.next_deadline();
    l.tick(t, rng);
    l.take_ready()
        .messages
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::LeadershipCheck { .. }))
        .map(|(to, _)| to)
        .collect()
}

#[test]
fn heartbeats_carry_a_check_only_to_followers_that_have_not_confirmed_a_pending_read() {
    let (mut l, mut rng, _) = leader_ready_to_read(5);
    let term = l.current_term();
    assert_eq!(
        checks_in_next_heartbeats(&mut l, &mut rng),
        Vec::<usize>::new(),
        "no read pending"
    );
    assert_eq!(l.read_index(9), Ok(()));
    l.take_ready();
    l.handle_message(3, &mut rng, 2, confirm(term, 1));
    l.take_ready();
    assert_eq!(checks_in_next_heartbeats(&mut l, &mut rng), vec![1, 3, 4]);
}

#[test]
fn a_check_of_the_current_term_makes_the_receiver_follow_the_sender() {
    let mut rng = rng();
    let mut r: Raft<u64> = Raft::new(cfg(1, 3), &storage_with(2, &[1, 2]), 0, &mut rng);
    assert_eq!(r.leader_hint(), None);
    let at = 5_000;
    let check = Message::LeadershipCheck {
        term: 2,
        leader_id: 0,
        read_seq: 4,
    };
    r.handle_message(at, &mut rng, 0, check);
    assert_eq!(r.leader_hint(), Some(0));
    assert!(r.next_deadline() >= at + r.config().election_timeout_min);
    assert_eq!(
        r.take_ready().messages,
        vec![(0, confirm(2, 4))],
        "the round is confirmed"
    );
}

// ----- leases -----

/// A leader of 3 with lease reads (drift bound 10%) and an entry of its term committed, the
/// local time its first lease round left (unanswered yet), and its lease duration.
fn lease_leader() -> (Raft<u64>, ChaCha8Rng, u64, u64) {
    let (mut l, mut rng) = leader_with(
        |c| {
            c.lease_reads = true;
            c.max_drift_ppm = 100_000;
        },
        3,
    );
    let term = l.current_term();
    let sent = l.next_deadline();
    l.tick(sent, &mut rng);
    let (index, _) = l.start(sent, &mut rng, 7).unwrap();
    let ack = Message::AppendEntriesReply {
        term,
        request_term: term,
        success: true,
        match_index: index,
        conflict_term: None,
        conflict_index: 0,
    };
    l.handle_message(sent + 1, &mut rng, 1, ack);
    assert_eq!(l.commit_index(), index);
    l.take_ready();
    let d = l.lease_duration();
    (l, rng, sent, d)
}

#[test]
fn a_lease_runs_from_when_the_answered_round_left_even_with_a_later_round_pending() {
    let (mut l, mut rng, first, d) = lease_leader();
    let term = l.current_term();
    let second = first + l.config().heartbeat_interval;
    l.tick(second, &mut rng);
    let rounds: Vec<u64> = l
        .take_ready()
        .messages
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::LeadershipCheck { read_seq, .. } if to == 1 => Some(read_seq),
            _ => None,
        })
        .collect();
    assert_eq!(
        rounds,
        vec![2],
        "the second round left, the first is still unanswered"
    );
    // The answer to the first round only: the lease counts from the first round's departure.
    l.handle_message(second + 1, &mut rng, 1, confirm(term, 1));
    assert!(l.holds_lease(first + d - 1));
    assert!(
        !l.holds_lease(first + d),
        "not from the unanswered second round"
    );
}

#[test]
fn the_round_a_read_starts_renews_the_lease_from_when_it_left() {
    let (mut l, mut rng, first, d) = lease_leader();
    let term = l.current_term();
    l.handle_message(first + 2, &mut rng, 1, confirm(term, 1));
    assert!(l.holds_lease(first + d - 1) && !l.holds_lease(first + d));
    // Long after the lease ended (no tick in between): the read falls back to ReadIndex.
    let asked = first + d + 10;
    assert_eq!(l.read_lease(5, asked), Ok(()));
    let rd = l.take_ready();
    assert!(rd.reads.is_empty(), "not served from an expired lease");
    assert!(rd
        .messages
        .iter()
        .any(|(_, m)| matches!(m, Message::LeadershipCheck { read_seq: 2, .. })));
    l.handle_message(asked + 3, &mut rng, 1, confirm(term, 2));
    assert_eq!(l.take_ready().reads.len(), 1, "the read is confirmed");
    assert!(
        l.holds_lease(asked + d - 1),
        "and its round renewed the lease"
    );
    assert!(!l.holds_lease(asked + d));
}
