//! Tests of the `Raft` struct's own plumbing: identity, accessors, restart from storage,
//! election timer draws.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::testing::{cfg, Cluster};
use crate::{Raft, Role, Storage};

#[test]
fn a_node_knows_its_id_and_config() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let r: Raft<u64> = Raft::new(cfg(2, 3), &Storage::default(), 0, &mut rng);
    assert_eq!((r.id(), r.config().id), (2, 2));
    assert_eq!(r.role(), Role::Follower);
}

#[test]
fn restart_from_storage_restores_term_vote_and_log() {
    let mut c = Cluster::new(3, 21);
    for k in 1..=5 {
        c.one(k, 3);
    }
    let before: Vec<_> = c
        .nodes
        .iter()
        .map(|n| {
            (
                n.current_term(),
                n.voted_for(),
                n.log().iter().cloned().collect::<Vec<_>>(),
            )
        })
        .collect();
    for i in 0..3 {
        c.crash(i);
    }
    for (i, before) in before.iter().enumerate() {
        c.restart(i);
        let n = &c.nodes[i];
        assert_eq!(n.role(), Role::Follower);
        assert_eq!(
            (n.commit_index(), n.last_applied()),
            (0, 0),
            "volatile state starts over"
        );
        let after = (
            n.current_term(),
            n.voted_for(),
            n.log().iter().cloned().collect::<Vec<_>>(),
        );
        assert_eq!(&after, before);
    }
    c.one(6, 3);
    for i in 0..3 {
        assert_eq!(c.nodes[i].last_applied(), 6);
        assert_eq!(c.services[i], c.services[0]);
    }
}

#[test]
fn timers_are_randomized_and_within_bounds() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut deadlines = vec![];
    for i in 0..20 {
        let r: Raft<u64> = Raft::new(cfg(0, 3), &Storage::default(), 1_000 * i, &mut rng);
        let d = r.next_deadline() - 1_000 * i;
        assert!((300_000..600_000).contains(&d));
        deadlines.push(d);
    }
    deadlines.sort_unstable();
    deadlines.dedup();
    assert!(deadlines.len() > 15);
    // Ticking before the deadline does nothing.
    let mut r: Raft<u64> = Raft::new(cfg(0, 3), &Storage::default(), 0, &mut rng);
    r.tick(r.next_deadline() - 1, &mut rng);
    assert!(!r.has_ready());
    r.tick(r.next_deadline(), &mut rng);
    assert_eq!(r.role(), Role::Candidate);
    assert_eq!(r.take_ready().messages.len(), 2);
}

#[test]
fn ignores_messages_from_strangers_and_self() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut r: Raft<u64> = Raft::new(cfg(0, 3), &Storage::default(), 0, &mut rng);
    let m = crate::Message::RequestVote {
        term: 9,
        candidate_id: 7,
        last_log_index: 0,
        last_log_term: 0,
    };
    r.handle_message(0, &mut rng, 7, m.clone());
    r.handle_message(0, &mut rng, 0, m);
    assert_eq!(r.current_term(), 0);
    assert!(!r.has_ready());
}

#[test]
fn last_term_is_the_term_of_the_last_entry_or_of_the_snapshot() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let r: Raft<u64> = Raft::new(
        cfg(0, 3),
        &crate::testing::storage_with(5, &[1, 3, 4]),
        0,
        &mut rng,
    );
    assert_eq!((r.last_index(), r.last_term()), (3, 4));
    let mut s = crate::testing::storage_with(5, &[1, 3, 4]);
    s.apply(&crate::StorageOp::Snapshot {
        snapshot: crate::Snapshot {
            last_included_index: 3,
            last_included_term: 4,
            data: Default::default(),
        },
    });
    let r: Raft<u64> = Raft::new(cfg(0, 3), &s, 0, &mut rng);
    assert_eq!(r.log().iter().count(), 0, "every entry is in the snapshot");
    assert_eq!((r.last_index(), r.last_term()), (3, 4));
}

#[test]
fn peers_are_every_server_of_the_cluster() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let r: Raft<u64> = Raft::new(cfg(1, 4), &Storage::default(), 0, &mut rng);
    assert_eq!(r.peers(), &[0, 1, 2, 3]);
}

#[test]
fn a_fixed_election_timeout_is_taken_as_it_is() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut config = cfg(0, 3);
    config.election_timeout_min = 250_000;
    config.election_timeout_max = 250_000;
    let r: Raft<u64> = Raft::new(config, &Storage::default(), 1_000, &mut rng);
    assert_eq!(r.next_deadline(), 251_000);
}
