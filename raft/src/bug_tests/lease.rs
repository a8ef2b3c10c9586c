//! The cases of the bug catalog for leader leases (thesis §6.4.1, `lease.rs`; see
//! `bug_tests.rs`).

use super::{ack, ae, rng};
use crate::testing::{cfg, make_leader_with};
use crate::{Bugs, Config, Message, Raft, ReadState, Storage};

/// Lease reads on, with a drift bound of 10%.
fn lease_config(id: usize, bugs: Bugs) -> Config {
    let mut config = cfg(id, 3);
    config.lease_reads = true;
    config.max_drift_ppm = 100_000;
    config.bugs = bugs;
    config
}

/// A leader of 3 with leases that committed an entry of its term, and the local time its
/// first round left. The round is not answered yet.
fn lease_leader(bugs: Bugs, rng: &mut rand_chacha::ChaCha8Rng) -> (Raft<u64>, u64, u64) {
    let mut l = make_leader_with(lease_config(0, bugs), &Storage::default(), rng);
    let term = l.current_term();
    let sent = l.next_deadline();
    l.tick(sent, rng);
    let (index, _) = l.start(sent, rng, 7).unwrap();
    l.handle_message(sent + 1, rng, 1, ack(term, term, index));
    assert_eq!(l.commit_index(), index);
    let round = Message::LeadershipCheck {
        term,
        leader_id: 0,
        read_seq: 1,
    };
    assert!(l.take_ready().messages.contains(&(1, round)));
    (l, sent, index)
}

fn confirm(term: u64) -> Message<u64> {
    Message::LeadershipCheckReply {
        term,
        request_term: term,
        read_seq: 1,
    }
}

/// The first round is answered at once; the lease runs from when it left.
pub(super) fn lease_ignores_drift(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let (mut l, sent, index) = lease_leader(bugs, &mut rng);
    let term = l.current_term();
    l.handle_message(sent + 2, &mut rng, 1, confirm(term));
    let min = l.config().election_timeout_min;
    // 300 ms * 0.9 / 1.1, less 2 µs: a 10% slow leader clock still ends it before a 10% fast
    // follower clock ends the follower's refusal to vote.
    let safe = min * 9 / 11 - 2;
    assert_eq!(l.lease_duration(), if buggy { min } else { safe });
    assert!(l.holds_lease(sent + safe - 1));
    assert_eq!(l.holds_lease(sent + safe), buggy);
    l.take_ready();
    // A read after the safe lease: served at once by the bug, by a ReadIndex round if correct.
    assert_eq!(l.read_lease(5, sent + safe + 1), Ok(()));
    let rd = l.take_ready();
    if buggy {
        assert_eq!(rd.reads, vec![ReadState { ctx: 5, index }]);
        assert!(rd.messages.is_empty());
    } else {
        assert!(rd.reads.is_empty());
        assert_eq!(rd.messages.len(), 2, "a round of leadership checks");
    }
}

/// The first round is answered 250 ms late.
pub(super) fn lease_from_ack_time(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let (mut l, sent, index) = lease_leader(bugs, &mut rng);
    let term = l.current_term();
    let late = sent + 250_000;
    l.handle_message(late, &mut rng, 1, confirm(term));
    let d = l.lease_duration();
    assert!(l.holds_lease(sent + d - 1));
    assert_eq!(l.holds_lease(sent + d), buggy);
    assert_eq!(l.holds_lease(late + d - 1), buggy);
    l.take_ready();
    // A read once the lease of the round's send time is over: a ReadIndex round if correct.
    assert_eq!(l.read_lease(5, sent + d), Ok(()));
    let rd = l.take_ready();
    if buggy {
        assert_eq!(rd.reads, vec![ReadState { ctx: 5, index }]);
    } else {
        assert!(rd.reads.is_empty());
        assert_eq!(rd.messages.len(), 2, "a round of leadership checks");
    }
}

/// Node 1 of 3 (leases on) hears the leader of term 1, then, 1 ms short of the minimum
/// election timeout later, a RequestVote for term 2; then a restarted node is asked at once.
pub(super) fn lease_without_stickiness(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut f = Raft::new(lease_config(1, bugs), &Storage::default(), 0, &mut rng);
    let min = f.config().election_timeout_min;
    f.handle_message(1000, &mut rng, 0, ae(0, 1, 0, 0, vec![], 0));
    f.take_ready();
    let ask = Message::RequestVote {
        term: 2,
        candidate_id: 2,
        last_log_index: 0,
        last_log_term: 0,
    };
    f.handle_message(1000 + min - 1, &mut rng, 2, ask.clone());
    let granted = Message::RequestVoteReply {
        term: 2,
        request_term: 2,
        vote_granted: true,
    };
    if buggy {
        assert_eq!(f.current_term(), 2);
        assert_eq!(f.take_ready().messages, vec![(2, granted.clone())]);
    } else {
        // Not heard at all: no term change, no vote, no answer.
        assert_eq!((f.current_term(), f.voted_for()), (1, None));
        assert!(!f.has_ready());
        // Once the minimum election timeout has passed, the vote is granted.
        f.handle_message(1000 + min, &mut rng, 2, ask.clone());
        assert_eq!(f.take_ready().messages, vec![(2, granted)]);
    }
    // A server that (re)starts may have heard a leader just before: it waits as well.
    let start = 5_000_000;
    let mut r = Raft::new(lease_config(1, bugs), &Storage::default(), start, &mut rng);
    r.handle_message(start + 1, &mut rng, 2, ask.clone());
    assert_eq!(r.current_term(), if buggy { 2 } else { 0 });
    assert_eq!(r.has_ready(), buggy);
    // Without leases it votes at once (the lab's protocol is unchanged).
    let mut plain = Raft::new(cfg(1, 3), &Storage::default(), start, &mut rng);
    plain.handle_message(start + 1, &mut rng, 2, ask);
    assert_eq!(plain.current_term(), 2);
}
