//! Static configuration of one Raft node.

use crate::bugs::Bugs;
use crate::NodeId;

/// Static configuration of one node. Invariant: `peers` contains `id`, has no
/// duplicates, and `election_timeout_min <= election_timeout_max`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id.
    pub id: NodeId,
    /// All members of the cluster, including `id`.
    pub peers: Vec<NodeId>,
    /// Lower bound (inclusive, µs) of the randomized election timeout.
    pub election_timeout_min: u64,
    /// Upper bound (exclusive, µs) of the randomized election timeout.
    pub election_timeout_max: u64,
    /// µs between heartbeats a leader sends to each follower.
    pub heartbeat_interval: u64,
    /// Cap on the number of entries carried by one AppendEntries.
    pub max_entries_per_append: usize,
    /// PreVote (Raft thesis §9.6): before starting an election, ask whether a majority would
    /// vote, without changing any term; a server grants only if it has not heard from a
    /// leader for `election_timeout_min`. So a node that hears nobody never pushes terms up.
    pub pre_vote: bool,
    /// CheckQuorum (thesis §6.2): once per `election_timeout_max`, a leader that has not had
    /// an answer to a request of its term from a majority (itself included) in that period
    /// steps down, so a leader whose incoming links are cut stops holding the cluster with
    /// heartbeats it cannot get answers to.
    pub check_quorum: bool,
    /// Lease reads (thesis §6.4.1, `lease.rs`): the leader serves reads locally while a
    /// lease a majority confirmed holds; followers refuse votes within
    /// `election_timeout_min` of hearing from a leader (and of starting). Off by default.
    pub lease_reads: bool,
    /// The clock drift bound leases are safe within, in ppm (each clock runs between
    /// 1 - bound and 1 + bound times the true rate); the lease is shortened to cover it.
    pub max_drift_ppm: u64,
    /// Deliberate protocol bugs, so a testbed can show that its checks catch them. Empty
    /// (the correct protocol) unless a power campaign switches one on.
    pub bugs: Bugs,
}

impl Config {
    /// A configuration with the default timing: elections in
    /// [300 ms, 600 ms), heartbeats every 100 ms, at most 512 entries per
    /// AppendEntries; PreVote and CheckQuorum off (Figure 2's protocol).
    pub fn new(id: NodeId, peers: Vec<NodeId>) -> Self {
        Config {
            id,
            peers,
            election_timeout_min: 300_000,
            election_timeout_max: 600_000,
            heartbeat_interval: 100_000,
            max_entries_per_append: 512,
            pre_vote: false,
            check_quorum: false,
            lease_reads: false,
            max_drift_ppm: 0,
            bugs: Bugs::NONE,
        }
    }

    /// Number of votes (or replicas) that form a majority of `peers`.
    pub fn quorum(&self) -> usize {
        self.peers.len() / 2 + 1
    }

    /// Checks the invariants; panics with a description when one is broken.
    pub(crate) fn validate(&self) {
        assert!(
            self.peers.contains(&self.id),
            "config.peers must contain config.id"
        );
        let mut sorted = self.peers.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), self.peers.len(), "duplicate peer ids");
        assert!(self.election_timeout_min <= self.election_timeout_max);
        assert!(
            self.heartbeat_interval > 0,
            "heartbeat_interval must be > 0"
        );
        assert!(self.max_entries_per_append > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_quorum() {
        let c = Config::new(1, vec![0, 1, 2]);
        assert_eq!(c.election_timeout_min, 300_000);
        assert_eq!(c.election_timeout_max, 600_000);
        assert_eq!(c.heartbeat_interval, 100_000);
        assert_eq!(c.max_entries_per_append, 512);
        assert_eq!(c.quorum(), 2);
        assert_eq!(Config::new(0, vec![0]).quorum(), 1);
        assert_eq!(Config::new(0, vec![0, 1, 2, 3]).quorum(), 3);
        assert_eq!(Config::new(0, vec![0, 1, 2, 3, 4]).quorum(), 3);
        c.validate();
    }

    #[test]
    #[should_panic]
    fn id_must_be_a_peer() {
        Config::new(5, vec![0, 1, 2]).validate();
    }
}
