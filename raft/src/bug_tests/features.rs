//! The cases of the bug catalog for the features beyond Figure 2: PreVote, CheckQuorum and
//! ReadIndex reads (see `bug_tests.rs`).

use super::{ack, ae, hard_state, leader, nack, rng};
use crate::testing::{cfg, make_leader_with, storage_with};
use crate::{Bugs, Message, ReadRefusal, ReadState, Role, Storage};

// ----- election -----

/// Node 1 of 3, in term 2 with PreVote on, hears nobody until its timer fires; then the
/// leader of term 2 (node 0) reaches it again.
pub(super) fn prevote_bumps_term(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut config = cfg(1, 3);
    config.pre_vote = true;
    config.bugs = bugs;
    let mut r = crate::Raft::new(config, &storage_with(2, &[1, 2]), 0, &mut rng);
    let t = r.next_deadline();
    r.tick(t, &mut rng);
    let rd = r.take_ready();
    let term = if buggy { 3 } else { 2 };
    assert_eq!(r.current_term(), term);
    assert_eq!(
        rd.storage,
        if buggy {
            vec![hard_state(3, None)]
        } else {
            vec![]
        }
    );
    let pre_vote = Message::PreVote {
        term: term + 1,
        candidate_id: 1,
        last_log_index: 2,
        last_log_term: 2,
    };
    assert_eq!(rd.messages, vec![(0, pre_vote.clone()), (2, pre_vote)]);
    // The leader's heartbeat: followed (correct), or refused with a newer term that deposes it.
    r.handle_message(t + 1, &mut rng, 0, ae(0, 2, 2, 2, vec![], 2));
    let reply = r.take_ready().messages;
    let expected = if buggy {
        nack(3, 2, None, 0)
    } else {
        ack(2, 2, 2)
    };
    assert_eq!(reply, vec![(0, expected)]);
}

/// A leader of 3 with CheckQuorum is answered by one follower in its first period, then by
/// nobody.
pub(super) fn checkquorum_never_steps_down(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut config = cfg(0, 3);
    config.check_quorum = true;
    config.bugs = bugs;
    let mut l = make_leader_with(config, &Storage::default(), &mut rng);
    let term = l.current_term();
    l.take_ready();
    let first_check = l.quorum_check_due;
    l.handle_message(first_check - 1, &mut rng, 1, ack(term, term, 0));
    let mut run_until = |l: &mut crate::Raft<u64>, until: u64| {
        while l.next_deadline() <= until {
            let now = l.next_deadline();
            l.tick(now, &mut rng);
            l.take_ready();
        }
    };
    run_until(&mut l, first_check);
    assert!(l.is_leader(), "a majority answered in the first period");
    let second_check = first_check + l.config().election_timeout_max;
    run_until(&mut l, second_check);
    assert_eq!(l.current_term(), term);
    assert_eq!(l.role(), if buggy { Role::Leader } else { Role::Follower });
    assert_eq!(l.leader_hint(), if buggy { Some(0) } else { None });
}

// ----- reads -----

/// A leader of 3 that committed an entry of its term is asked for a read.
pub(super) fn read_index_no_heartbeat(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut l = leader(3, &Storage::default(), bugs, &mut rng);
    let term = l.current_term();
    let (index, _) = l.start(1, &mut rng, 7).unwrap();
    l.handle_message(2, &mut rng, 1, ack(term, term, index));
    assert_eq!(l.commit_index(), index);
    l.take_ready();
    assert_eq!(l.read_index(42), Ok(()));
    let rd = l.take_ready();
    let read = ReadState { ctx: 42, index };
    if buggy {
        // Served at once, though this leader may have been deposed long ago.
        assert_eq!(rd.reads, vec![read]);
        assert!(rd.messages.is_empty());
        return;
    }
    let check = Message::LeadershipCheck {
        term,
        leader_id: 0,
        read_seq: 1,
    };
    assert_eq!(rd.messages, vec![(1, check.clone()), (2, check)]);
    assert!(rd.reads.is_empty(), "not before a majority confirmed");
    let confirm = Message::LeadershipCheckReply {
        term,
        request_term: term,
        read_seq: 1,
    };
    l.handle_message(3, &mut rng, 2, confirm);
    assert_eq!(l.take_ready().reads, vec![read]);
}

/// A new leader (term 2) holds entries 1 and 2 of term 1, which the leader before it may
/// have committed and answered; its own commit index is still 0.
pub(super) fn read_index_before_own_term_commit(bugs: Bugs, buggy: bool) {
    let mut rng = rng();
    let mut l = leader(3, &storage_with(1, &[1, 1]), bugs, &mut rng);
    let term = l.current_term();
    assert_eq!((term, l.commit_index()), (2, 0));
    l.take_ready();
    let asked = l.read_index(42);
    if !buggy {
        assert_eq!(asked, Err(ReadRefusal::NoCommitInTerm));
        assert!(l.take_ready().messages.is_empty());
        return;
    }
    assert_eq!(asked, Ok(()));
    l.take_ready();
    let confirm = Message::LeadershipCheckReply {
        term,
        request_term: term,
        read_seq: 1,
    };
    l.handle_message(3, &mut rng, 1, confirm);
    // Read index 0: the service would answer from a state before entries 1 and 2.
    assert_eq!(l.take_ready().reads, vec![ReadState { ctx: 42, index: 0 }]);
}
