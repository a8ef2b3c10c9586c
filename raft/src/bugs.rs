//! Deliberate protocol bugs, one switch per rule, so that a testbed can measure whether its
//! checks and faults would catch a mistake a careful programmer makes.
//!
//! A [`Bugs`] value is a small bit set carried in [`crate::Config`]; it is empty by default.
//! Each switch is tested at the one place the rule it breaks lives (named after the rule), so
//! the protocol code reads as the correct protocol plus one `bugs.has(..)` test per rule.
//! Testing a bit of a `Copy` word is free next to everything else a step does.

use std::fmt;

/// The area of the protocol a bug belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Area {
    /// Leader election (Sections 5.2, 5.4.1).
    Election,
    /// What is persisted and when (Figure 2, "Persistent state on all servers").
    Persistence,
    /// Log replication and commitment (Sections 5.3, 5.4.2).
    Replication,
    /// Log compaction (Section 7, Figure 13).
    Snapshot,
    /// Reads served without a log entry (ReadIndex, thesis §6.4).
    Read,
}

impl Area {
    /// Lower-case name, as the catalog prints it.
    pub fn name(self) -> &'static str {
        match self {
            Area::Election => "election",
            Area::Persistence => "persistence",
            Area::Replication => "replication",
            Area::Snapshot => "snapshot",
            Area::Read => "read",
        }
    }
}

macro_rules! bugs {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $area:ident, $rule:literal; )*) => {
        /// One deliberate Raft bug. Each breaks exactly one rule of the paper.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Bug {
            $( $(#[$doc])* $variant, )*
        }

        impl Bug {
            /// Every Raft bug, in catalog order.
            pub const ALL: &'static [Bug] = &[$(Bug::$variant),*];

            /// Stable kebab-case id, used in scenario files and `sim power`.
            pub fn id(self) -> &'static str {
                match self { $(Bug::$variant => $id,)* }
            }

            /// The area of the protocol it belongs to.
            pub fn area(self) -> Area {
                match self { $(Bug::$variant => Area::$area,)* }
            }

            /// One line: the rule it breaks, with the paper section.
            pub fn rule(self) -> &'static str {
                match self { $(Bug::$variant => $rule,)* }
            }
        }
    };
}

bugs! {
    // ---- election ----
    /// Following the leader of the current term forgets the vote cast in it (`voted_for` is
    /// cleared whenever the node becomes a follower, not only when the term advances), so a
    /// late RequestVote of another candidate of the same term gets a second vote.
    VoteTwiceInTerm = "vote-twice-in-term", Election,
        "votedFor holds for the whole term: grant only if votedFor is null or candidateId (Figure 2, RequestVote receiver 2)";
    /// Votes are granted without the election restriction.
    NoElectionRestriction = "no-election-restriction", Election,
        "a vote needs the candidate's log at least as up-to-date as the voter's (Section 5.4.1)";
    /// "Up-to-date" compares log lengths only, ignoring the last entries' terms.
    UpToDateByLength = "up-to-date-by-length", Election,
        "up-to-date compares the last entries' terms first, then lengths (Section 5.4.1)";
    /// A candidate does not record its vote for itself (it counts it, but `voted_for` stays
    /// null), so it can vote for another candidate of the same term.
    CandidateForgetsSelfVote = "candidate-forgets-self-vote", Election,
        "a candidate votes for itself: votedFor = self on starting an election (Figure 2, Candidates)";
    /// A candidate counts every granting reply, so a duplicated reply counts twice.
    VotesNotDeduplicated = "votes-not-deduplicated", Election,
        "a candidate needs votes from a majority of servers, each counted once (Section 5.2)";
    /// A follower does not restart its election timer when it hears from the current leader,
    /// so it times out under a steady leader and deposes it.
    HeartbeatKeepsTimer = "heartbeat-keeps-timer", Election,
        "a follower restarts its election timer on AppendEntries from the current leader (Figure 2, Followers; Section 5.6)";
    /// A leader that learns a newer term from a message (a vote request, a reply) adopts the
    /// term but does not step down: it goes on leading, now in a term another server may be
    /// elected in, and its new entries carry that term.
    NewerTermKeepsLeader = "newer-term-keeps-leader", Election,
        "a server that sees a newer term sets currentTerm to it and converts to follower (Figure 2, All Servers)";
    /// A would-be candidate moves to the next term when it starts a pre-vote (as if it were
    /// campaigning), so a node that hears nobody still pushes its term up at every timeout
    /// and deposes the leader when it comes back.
    PrevoteBumpsTerm = "prevote-bumps-term", Election,
        "a pre-vote changes no term: the would-be candidate asks for currentTerm + 1 and stays in currentTerm (thesis §9.6)";
    /// A leader with CheckQuorum on goes on leading although it has not heard from a majority
    /// within an election timeout.
    CheckQuorumNeverStepsDown = "checkquorum-never-steps-down", Election,
        "with CheckQuorum, a leader that has not heard from a majority within an election timeout steps down (thesis §6.2)";

    // ---- persistence ----
    /// A granted vote is not written to stable storage.
    VoteNotPersisted = "vote-not-persisted", Persistence,
        "votedFor is persistent state, updated on stable storage before responding (Figure 2)";
    /// A newer current term learnt from a message is not written to stable storage.
    TermNotPersisted = "term-not-persisted", Persistence,
        "currentTerm is persistent state, updated on stable storage before responding (Figure 2)";
    /// A candidate's new term and its vote for itself are not written to stable storage
    /// before it asks for votes. Nothing later in that term writes them either, so a node
    /// elected with that self-vote, or holding entries of that term, restarts in the term
    /// before: it can vote for a second candidate of the term it was elected in, and it takes
    /// AppendEntries from a deposed leader of the older term that overwrite its newer entries.
    CampaignNotPersisted = "campaign-not-persisted", Persistence,
        "a candidate's currentTerm and votedFor are stable before its RequestVotes go out (Figure 2)";
    /// A follower acknowledges appended entries before they are on stable storage: the write
    /// lands only when the node next runs, so a crash in between loses acknowledged entries.
    FollowerLogNotPersisted = "follower-log-not-persisted", Persistence,
        "log[] is persistent state, stable before the AppendEntries reply (Figure 2)";
    /// A follower acknowledges an installed snapshot before it is on stable storage: the
    /// write lands only when the node next runs, so a crash in between loses it.
    InstalledSnapshotNotPersisted = "installed-snapshot-not-persisted", Persistence,
        "InstallSnapshot: save the snapshot before replying (Figure 13, receiver 5)";

    // ---- replication ----
    /// Replies to requests of an earlier term are acted upon.
    AcceptStaleReplies = "accept-stale-replies", Replication,
        "a reply to an RPC sent in an earlier term is stale and must be ignored (Section 5.1)";
    /// An AppendEntries from a deposed leader (an older term) is processed like one from the
    /// current leader: its entries overwrite ours.
    AcceptStaleAppend = "accept-stale-append", Replication,
        "reply false if term < currentTerm (Figure 2, AppendEntries receiver 1)";
    /// A new leader initialises every follower's matchIndex to its own last index, as if
    /// everyone already held its log, so a lagging follower's rejections look stale.
    MatchIndexStartsAtLast = "match-index-starts-at-last", Replication,
        "a new leader initialises matchIndex to 0 for every server (Figure 2, Leaders)";
    /// On a success the leader takes everything it has sent the follower so far (its
    /// pipelined send position) as matched, not what the acknowledged request carried.
    MatchFromSent = "match-from-sent", Replication,
        "on success, matchIndex is the last index the acknowledged request carried (Figure 2, Leaders)";
    /// A follower acknowledges its whole log, not just the entries the request vouched for.
    AckWholeLog = "ack-whole-log", Replication,
        "a success vouches for prevLogIndex + len(entries) only; entries after them may differ (Figure 2, AppendEntries receiver; Section 5.3)";
    /// A follower takes the entries it has just matched as committed (commitIndex = index of
    /// the last new entry, whatever leaderCommit says) and applies them before any majority
    /// may hold them.
    ApplyBeforeCommit = "apply-before-commit", Replication,
        "apply only committed entries: commitIndex = min(leaderCommit, index of last new entry) (Figure 2, AppendEntries receiver 5; All Servers)";
    /// A follower advances its commit index only from AppendEntries that carry entries, so
    /// it learns that the last entries committed only when another entry arrives.
    HeartbeatCommitIgnored = "heartbeat-commit-ignored", Replication,
        "a heartbeat's leaderCommit advances commitIndex too (Figure 2, AppendEntries receiver 5)";
    /// A heartbeat with no entries is accepted without the consistency check: it is taken to
    /// vouch for the follower's log up to prevLogIndex (or the log's end, if shorter).
    HeartbeatSkipsConsistencyCheck = "heartbeat-skips-consistency-check", Replication,
        "every AppendEntries, heartbeats included, checks prevLogIndex/prevLogTerm (Figure 2, receiver 2)";
    /// The consistency check looks at prevLogIndex only, not at the entry's term.
    PrevLogTermUnchecked = "prev-log-term-unchecked", Replication,
        "reply false if the log has no entry at prevLogIndex whose term matches prevLogTerm (Figure 2, receiver 2)";
    /// A follower truncates its log after the new entries even when they all matched, so a
    /// late, shorter AppendEntries drops entries it has acknowledged.
    TruncateMatchingSuffix = "truncate-matching-suffix", Replication,
        "delete entries only from the first conflict on; a matching suffix stays (Figure 2, receiver 3)";
    /// A conflicting entry is overwritten, but the entries after the new ones are kept.
    ConflictSuffixKept = "conflict-suffix-kept", Replication,
        "on a conflict, delete the existing entry and all that follow it (Figure 2, receiver 3)";
    /// The leader commits entries of earlier terms by counting replicas (the Figure 8 bug).
    CommitOldTerms = "commit-old-terms", Replication,
        "only entries of the leader's current term are committed by counting replicas (Section 5.4.2)";
    /// The commit quorum is computed as half the cluster (at least one), not a strict majority.
    QuorumOffByOne = "quorum-off-by-one", Replication,
        "commitment needs a majority: more than half of the servers (Section 5.3)";

    // ---- snapshots ----
    /// A snapshot older than what the follower has already committed is installed (the
    /// guard compares with the snapshot index instead of the commit index).
    InstallOlderSnapshot = "install-older-snapshot", Snapshot,
        "a snapshot that does not extend past the commit index must not roll the state back (Section 7)";
    /// Installing a snapshot discards the whole log, even a suffix that matches the snapshot.
    InstallDropsMatchingSuffix = "install-drops-matching-suffix", Snapshot,
        "if an entry matches the snapshot's last included entry, retain the entries after it (Figure 13, receiver 6)";
    /// The leader takes its own last index as the follower's match after an InstallSnapshot.
    SnapshotReplyMatchesLeaderLog = "snapshot-reply-matches-leader-log", Snapshot,
        "after InstallSnapshot, the follower matches up to the snapshot's last included index only (Section 7)";
    /// A node restarting from a snapshot does not hand it to the service, which then applies
    /// the entries after it to an empty state.
    RestartSkipsSnapshot = "restart-skips-snapshot", Snapshot,
        "on restart the service state is restored from the snapshot before later entries apply (Section 7)";

    // ---- reads ----
    /// A ReadIndex read is served as soon as it is asked, without a round of heartbeats that
    /// confirms the leader still leads: a deposed leader answers from its stale state.
    ReadIndexNoHeartbeat = "read-index-no-heartbeat", Read,
        "a leader confirms it still leads with a heartbeat round to a majority before serving a read (thesis §6.4, step 2)";
    /// The read index is taken before the leader has committed an entry of its own term, so
    /// its commit index may lag behind what an earlier leader committed and answered.
    ReadIndexBeforeOwnTermCommit = "read-index-before-own-term-commit", Read,
        "a leader takes a read index only once it has committed an entry of its current term (thesis §6.4, step 1)";
    /// The lease lasts the whole minimum election timeout, with no margin for clock drift: a
    /// slow leader clock outlives the followers' (fast) refusal to vote.
    LeaseIgnoresDrift = "lease-ignores-drift", Read,
        "a lease is shorter than the election timeout by the clock drift bound: min (1 - e) / (1 + e) (thesis §6.4.1)";
    /// Followers vote whenever asked, even just after hearing from the leader (and right
    /// after a restart): another leader can be elected while the old one's lease holds.
    LeaseWithoutStickiness = "lease-without-stickiness", Read,
        "with leases, a server ignores RequestVote within the minimum election timeout of hearing from a leader (thesis §6.4.1, §4.2.3)";
    /// The lease runs from when a majority's answers arrived, not from when the round was
    /// sent: a round answered late buys a lease reaching past the followers' guarantee.
    LeaseFromAckTime = "lease-from-ack-time", Read,
        "a lease starts when its round was sent, not when the answers came back (thesis §6.4.1)";
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for Bug {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Bug::ALL
            .iter()
            .copied()
            .find(|b| b.id() == s)
            .ok_or_else(|| format!("unknown Raft bug {s:?}"))
    }
}

/// A set of [`Bug`]s; empty (the correct protocol) by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs(u64);

const _: () = assert!(Bug::ALL.len() <= 64, "Bugs is one 64-bit word");

impl Bugs {
    /// No bug: the correct protocol.
    pub const NONE: Bugs = Bugs(0);

    /// This set plus `bug`.
    pub fn with(self, bug: Bug) -> Bugs {
        Bugs(self.0 | 1 << bug as u32)
    }

    /// Whether `bug` is switched on.
    #[inline]
    pub fn has(self, bug: Bug) -> bool {
        self.0 & (1 << bug as u32) != 0
    }

    /// Whether no bug is switched on.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bugs switched on, in catalog order.
    pub fn iter(self) -> impl Iterator<Item = Bug> {
        Bug::ALL.iter().copied().filter(move |b| self.has(*b))
    }
}

impl FromIterator<Bug> for Bugs {
    fn from_iter<I: IntoIterator<Item = Bug>>(iter: I) -> Self {
        iter.into_iter().fold(Bugs::NONE, Bugs::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_kebab_case_and_parse_back() {
        let mut ids: Vec<&str> = Bug::ALL.iter().map(|b| b.id()).collect();
        for (b, id) in Bug::ALL.iter().zip(&ids) {
            assert_eq!(id.parse::<Bug>().unwrap(), *b);
            assert!(id.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
            assert!(!b.rule().is_empty());
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Bug::ALL.len());
        assert!("no-such-bug".parse::<Bug>().is_err());
    }

    #[test]
    fn a_set_holds_exactly_what_was_added() {
        assert!(Bugs::default().is_empty());
        let set: Bugs = [Bug::CommitOldTerms, Bug::VoteNotPersisted]
            .into_iter()
            .collect();
        for b in Bug::ALL {
            assert_eq!(
                set.has(*b),
                matches!(b, Bug::CommitOldTerms | Bug::VoteNotPersisted)
            );
        }
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![Bug::VoteNotPersisted, Bug::CommitOldTerms]
        );
        assert!(!set.is_empty());
    }

    #[test]
    fn adding_twice_keeps_a_bug() {
        let b = Bug::CommitOldTerms;
        let set = Bugs::NONE.with(b).with(b);
        assert!(set.has(b));
        assert_eq!(set.iter().collect::<Vec<_>>(), [b]);
    }

    #[test]
    fn names_as_the_catalog_prints_them() {
        let areas = [
            Area::Election,
            Area::Persistence,
            Area::Replication,
            Area::Snapshot,
        ];
        let names: Vec<&str> = areas.iter().map(|a| a.name()).collect();
        assert_eq!(
            names,
            ["election", "persistence", "replication", "snapshot"]
        );
        for b in Bug::ALL {
            assert_eq!(b.to_string(), b.id());
        }
    }
}
