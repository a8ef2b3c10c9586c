//! Unit tests of [`KvServer`] driven by hand: one server, every message built by the test, so
//! each rule of `server.rs` shows in the `ServerReady` it produces (the cluster tests in
//! `tests.rs` see most of them only through clerks that retry until they succeed).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

/// The node id the test's requests come from (not a Raft peer).
const CLERK: usize = 9;

/// Server 0 of a cluster of `peers`, with its rng and virtual time.
struct Node {
    s: KvServer,
    rng: ChaCha8Rng,
    now: u64,
}

impl Node {
    fn new(peers: usize, maxraftstate: Option<usize>) -> Node {
        Node::with_config(peers, maxraftstate, |_| {})
    }

    /// [`Node::new`] with `edit` applied to server 0's Raft config.
    fn with_config(
        peers: usize,
        maxraftstate: Option<usize>,
        edit: impl Fn(&mut raft::Config),
    ) -> Node {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut cfg = raft::Config::new(0, (0..peers).collect());
        edit(&mut cfg);
        let s = KvServer::new(cfg, &raft::Storage::default(), maxraftstate, 0, &mut rng);
        Node { s, rng, now: 0 }
    }

    /// Make server 0 leader: time out into an election and, with peers, get peer 1's vote.
    fn leader(peers: usize, maxraftstate: Option<usize>) -> Node {
        Node::elect(Node::new(peers, maxraftstate), peers)
    }

    /// Make `n` (server 0 of `peers`) leader, as [`Node::leader`] does.
    fn elect(mut n: Node, peers: usize) -> Node {
        while n.s.raft().role() == raft::Role::Follower {
            n.now = n.s.next_deadline();
            n.s.tick(n.now, &mut n.rng);
        }
        if peers > 1 {
            let term = n.s.raft().current_term();
            let vote = raft::Message::RequestVoteReply {
                term,
                request_term: term,
                vote_granted: true,
            };
            n.s.handle_message(n.now, &mut n.rng, 1, KvMessage::Raft(vote));
        }
        assert!(n.s.raft().is_leader());
        n.s.take_ready();
        n
    }

    /// Deliver request `seq` of `client` from the test's clerk node; what it produced.
    fn request(&mut self, client: ClientId, seq: u64, op: Op) -> ServerReady {
        let req = ClientRequest { client, seq, op };
        let (now, from) = (self.now, CLERK);
        self.s
            .handle_message(now, &mut self.rng, from, KvMessage::Request(req));
        self.s.take_ready()
    }
}

/// The client replies in `rd` (all addressed to the test's clerk node).
fn replies(rd: &ServerReady) -> Vec<ClientReply> {
    rd.messages
        .iter()
        .filter_map(|(to, m)| match m {
            KvMessage::Reply(r) => {
                assert_eq!(*to, CLERK);
                Some(r.clone())
            }
            _ => None,
        })
        .collect()
}

fn ok(seq: u64, value: Option<&str>) -> ClientReply {
    ClientReply::Ok {
        seq,
        value: value.map(String::from),
    }
}

fn snapshots_taken(rd: &ServerReady) -> Vec<u64> {
    rd.events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::SnapshotTaken { index, .. } => Some(*index),
            _ => None,
        })
        .collect()
}

#[test]
fn has_ready_until_taken() {
    let mut n = Node::leader(1, None);
    assert!(!n.s.has_ready());
    let req = ClientRequest {
        client: 1,
        seq: 1,
        op: Op::put("a", "1"),
    };
    n.s.handle_message(n.now, &mut n.rng, CLERK, KvMessage::Request(req));
    assert!(n.s.has_ready());
    assert!(!n.s.take_ready().is_empty());
    assert!(!n.s.has_ready());
}

#[test]
fn a_single_server_executes_and_answers() {
    let mut n = Node::leader(1, None);
    assert_eq!(replies(&n.request(1, 1, Op::put("a", "1"))), [ok(1, None)]);
    assert_eq!(
        replies(&n.request(1, 2, Op::append("b", "x"))),
        [ok(2, None)]
    );
    assert_eq!(replies(&n.request(2, 1, Op::get("a"))), [ok(1, Some("1"))]);
    let expected: BTreeMap<String, String> = [("a", "1"), ("b", "x")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(n.s.data(), &expected);
    assert_eq!((n.s.applied_index(), n.s.dedup_len()), (3, 2));
}

/// A retry of the client's last executed request is answered from the duplicate table; an
/// older one (the clerk has moved on) is neither answered nor proposed again.
#[test]
fn executed_requests_are_not_proposed_again() {
    let mut n = Node::leader(1, None);
    n.request(1, 1, Op::append("a", "x"));
    n.request(1, 2, Op::get("a"));
    let last = n.s.raft().last_index();
    assert_eq!(replies(&n.request(1, 2, Op::get("a"))), [ok(2, Some("x"))]);
    assert!(n.request(1, 1, Op::append("a", "x")).is_empty());
    assert_eq!(n.s.raft().last_index(), last);
    assert_eq!(n.s.get_local("a"), Some("x"));
}

/// A request already awaiting its entry in this term is not proposed twice; the same seq from
/// another client, or a later seq, is a different request.
#[test]
fn a_request_in_flight_is_proposed_once() {
    let mut n = Node::leader(3, None);
    let start = n.s.raft().last_index();
    for _ in 0..2 {
        assert!(replies(&n.request(1, 1, Op::append("a", "x"))).is_empty());
        assert_eq!(n.s.raft().last_index(), start + 1);
    }
    n.request(2, 1, Op::append("a", "y"));
    assert_eq!(n.s.raft().last_index(), start + 2);
    n.request(1, 2, Op::append("a", "z"));
    assert_eq!(n.s.raft().last_index(), start + 3);
}

/// A leader that learns of a newer term fails what it awaited at once, so clerks need not
/// wait for their retry timeout.
#[test]
fn a_deposed_leader_fails_its_pending_requests_at_once() {
    let mut n = Node::leader(3, None);
    n.request(1, 1, Op::append("a", "x"));
    n.request(2, 5, Op::get("a"));
    let term = n.s.raft().current_term();
    let vote = raft::Message::RequestVote {
        term: term + 1,
        candidate_id: 1,
        last_log_index: 0,
        last_log_term: 0,
    };
    n.s.handle_message(n.now, &mut n.rng, 1, KvMessage::Raft(vote));
    let rd = n.s.take_ready();
    assert!(!n.s.raft().is_leader());
    let failed: Vec<u64> = replies(&rd)
        .iter()
        .map(|r| match r {
            ClientReply::WrongLeader { seq, .. } => *seq,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(failed, [1, 5]);
}

/// The persisted size after one put at index 1 on a single server without snapshots, and the
/// index it was applied at.
fn size_after_put(value: &str) -> (usize, u64) {
    let mut n = Node::leader(1, None);
    n.request(1, 1, Op::put("k", value));
    (n.s.raft().persisted_size(), n.s.applied_index())
}

/// A snapshot is taken, in the same call as the apply, exactly when the persisted Raft state
/// reaches 9/10 of `maxraftstate`.
#[test]
fn snapshot_at_nine_tenths_of_maxraftstate() {
    // A value length that makes 10 * size a multiple of 9, so the threshold can be hit exactly.
    let (value, size, index) = (1..40)
        .map(|len| "v".repeat(len))
        .find_map(|v| {
            let (size, index) = size_after_put(&v);
            (size % 9 == 0).then_some((v, size, index))
        })
        .expect("some length hits a multiple of 9");
    let exact = size * 10 / 9;
    for (max, taken) in [(exact, true), (exact + 1, false), (exact - 1, true)] {
        let mut n = Node::leader(1, Some(max));
        let rd = n.request(1, 1, Op::put("k", value.as_str()));
        assert_eq!(replies(&rd), [ok(1, None)]);
        let expected = if taken { vec![index] } else { vec![] };
        assert_eq!(
            snapshots_taken(&rd),
            expected,
            "maxraftstate {max}, size {size}"
        );
        assert_eq!(n.s.raft().snapshot_index(), if taken { index } else { 0 });
    }
}

/// `stored_before` merges events and storage writes in Raft's order: a role change is reported
/// before the writes of its Ready (the new term's hard state), a commit after them (the entry
/// it commits is durable first), and the apply after the commit.
#[test]
fn events_are_placed_among_the_storage_writes_in_raft_order() {
    let mut n = Node::new(1, None);
    n.now = n.s.next_deadline();
    n.s.tick(n.now, &mut n.rng);
    let rd = n.s.take_ready();
    assert!(!rd.storage.is_empty());
    let roles: Vec<usize> = rd
        .events
        .iter()
        .zip(&rd.stored_before)
        .filter(|(e, _)| matches!(e, ServerEvent::Raft(raft::Event::BecameCandidate { .. })))
        .map(|(_, before)| *before)
        .collect();
    assert_eq!(roles, [0]);
    assert!(n.s.raft().is_leader());

    let rd = n.request(1, 1, Op::put("a", "1"));
    let kinds: Vec<(&str, usize)> = rd
        .events
        .iter()
        .zip(&rd.stored_before)
        .map(|(e, before)| match e {
            ServerEvent::Raft(raft::Event::CommitAdvanced { .. }) => ("commit", *before),
            ServerEvent::Applied { .. } => ("applied", *before),
            other => panic!("{other:?}"),
        })
        .collect();
    let writes = rd.storage.len();
    assert!(writes > 0);
    assert_eq!(kinds, [("commit", writes), ("applied", writes)]);
}

// ----- ReadIndex reads -----

/// Server 0 of 3, leader, reading by ReadIndex, with `put a=1` committed and applied (an
/// entry of its term, so reads need no log entry); `edit` adjusts its Raft config.
fn read_index_leader(edit: impl Fn(&mut raft::Config)) -> Node {
    let mut n = Node::with_config(3, None, edit);
    n.s.set_read_mode(ReadMode::ReadIndex);
    let mut n = Node::elect(n, 3);
    n.request(1, 1, Op::put("a", "1"));
    let rd = n.ack_from_peer_1();
    assert_eq!(replies(&rd), [ok(1, None)]);
    n
}

impl Node {
    /// Peer 1 acknowledges the leader's whole log.
    fn ack_from_peer_1(&mut self) -> ServerReady {
        let term = self.s.raft().current_term();
        let ack = raft::Message::AppendEntriesReply {
            term,
            request_term: term,
            success: true,
            match_index: self.s.raft().last_index(),
            conflict_term: None,
            conflict_index: 0,
        };
        self.s
            .handle_message(self.now, &mut self.rng, 1, KvMessage::Raft(ack));
        self.s.take_ready()
    }
    /// Peer 1 confirms the leader's read rounds through `read_seq`.
    fn confirm_from_peer_1(&mut self, read_seq: u64) -> ServerReady {
        let term = self.s.raft().current_term();
        let confirm = raft::Message::LeadershipCheckReply {
            term,
            request_term: term,
            read_seq,
        };
        self.s
            .handle_message(self.now, &mut self.rng, 1, KvMessage::Raft(confirm));
        self.s.take_ready()
    }
}

/// The read rounds (`read_seq`) of the LeadershipChecks sent to peer 1.
fn rounds_to_peer_1(rd: &ServerReady) -> Vec<u64> {
    rd.messages
        .iter()
        .filter_map(|(to, m)| match m {
            KvMessage::Raft(raft::Message::LeadershipCheck { read_seq, .. }) if *to == 1 => {
                Some(*read_seq)
            }
            _ => None,
        })
        .collect()
}

/// A Get awaiting its read is asked of Raft once; another client's Get with the same seq, and
/// the same client's next Get, are other reads, each with its own round; one confirmation of
/// the last round answers all three.
#[test]
fn a_read_in_flight_is_asked_once_and_every_other_read_gets_its_own_round() {
    let mut n = read_index_leader(|_| {});
    let last = n.s.raft().last_index();
    assert_eq!(rounds_to_peer_1(&n.request(2, 1, Op::get("a"))), [1]);
    let again = n.request(2, 1, Op::get("a"));
    assert!(again.is_empty(), "a retry of a read in flight: {again:?}");
    assert_eq!(rounds_to_peer_1(&n.request(3, 1, Op::get("a"))), [2]);
    assert_eq!(rounds_to_peer_1(&n.request(2, 2, Op::get("a"))), [3]);
    assert_eq!(n.s.raft().last_index(), last, "no read took a log entry");
    let rd = n.confirm_from_peer_1(3);
    assert_eq!(
        replies(&rd),
        [ok(1, Some("1")), ok(1, Some("1")), ok(2, Some("1"))]
    );
}

/// A read confirmed after later writes were applied is answered at once, from the state now
/// (it holds every write committed before the read was asked).
#[test]
fn a_read_confirmed_after_its_index_was_passed_is_answered_at_once() {
    let mut n = read_index_leader(|_| {});
    assert_eq!(rounds_to_peer_1(&n.request(2, 1, Op::get("a"))), [1]);
    n.request(1, 2, Op::put("a", "2"));
    assert_eq!(replies(&n.ack_from_peer_1()), [ok(2, None)]);
    assert_eq!(replies(&n.confirm_from_peer_1(1)), [ok(1, Some("2"))]);
}

/// A leader that steps down in its own term (CheckQuorum: nobody answered in a period) fails
/// its unconfirmed read at once, so the clerk need not wait for its retry timeout.
#[test]
fn a_leader_stepping_down_in_its_term_fails_its_waiting_read() {
    let mut n = read_index_leader(|c| c.check_quorum = true);
    let term = n.s.raft().current_term();
    n.request(2, 1, Op::get("a"));
    let mut failed = vec![];
    for _ in 0..100 {
        n.now = n.s.next_deadline();
        n.s.tick(n.now, &mut n.rng);
        failed.extend(replies(&n.s.take_ready()));
        if !n.s.raft().is_leader() {
            break;
        }
    }
    assert!(
        !n.s.raft().is_leader(),
        "no majority answered: it stepped down"
    );
    assert_eq!(n.s.raft().current_term(), term, "in its own term");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(matches!(failed[0], ClientReply::WrongLeader { seq: 1, .. }));
}
