//! Deliberate service and clerk bugs, one switch per rule, so that a testbed can measure
//! whether its checks and faults would catch a mistake a careful programmer makes.
//!
//! A [`Bugs`] value is a small bit set given to a [`crate::KvServer`] and a [`crate::Clerk`];
//! empty by default. Each switch is tested at the one place its rule lives (the server, its
//! store's apply path, or the clerk), so the code reads as the correct service plus one
//! `bugs.has(..)` test per rule. Every bug can be seen from outside: a non-linearizable
//! history, a lost or doubled append, or replicas in different states at the same index
//! (`bug_tests.rs` shows each).

use std::fmt;

/// Which side of the service a bug lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    /// The KV server on top of Raft.
    Service,
    /// The client library.
    Clerk,
}

impl Layer {
    /// Lower-case name, as the catalog prints it.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Service => "kv",
            Layer::Clerk => "clerk",
        }
    }
}

macro_rules! bugs {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $layer:ident, $rule:literal; )*) => {
        /// One deliberate KV bug. Each breaks exactly one rule of the lab's design.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Bug {
            $( $(#[$doc])* $variant, )*
        }

        impl Bug {
            /// Every KV bug, in catalog order.
            pub const ALL: &'static [Bug] = &[$(Bug::$variant),*];

            /// Stable kebab-case id, used in scenario files and `sim power`.
            pub fn id(self) -> &'static str {
                match self { $(Bug::$variant => $id,)* }
            }

            /// Server or clerk.
            pub fn layer(self) -> Layer {
                match self { $(Bug::$variant => Layer::$layer,)* }
            }

            /// One line: the rule it breaks, with the lab hint or paper section.
            pub fn rule(self) -> &'static str {
                match self { $(Bug::$variant => $rule,)* }
            }
        }
    };
}

bugs! {
    // ---- service ----
    /// A leader answers `Get` from its local state without going through the log.
    StaleReads = "stale-reads", Service,
        "a Get is linearizable only if it goes through the log (Lab 3A hint; Raft paper Section 8)";
    /// The duplicate table is left out of snapshots.
    DedupNotInSnapshot = "dedup-not-in-snapshot", Service,
        "the snapshot must include the duplicate-detection table (Lab 3B hint)";
    /// A server that is not leader when it applies an entry leaves the duplicate table
    /// unchanged.
    FollowerSkipsDedup = "follower-skips-dedup", Service,
        "every replica applies the same commands the same way, dedup included (Lab 3A hint)";
    /// The leader answers a write as soon as Raft accepted it, before it commits.
    ReplyBeforeCommit = "reply-before-commit", Service,
        "reply only once the command has been applied from the committed log (Lab 3A)";
    /// The leader answers the request it was waiting for when any command is applied at its
    /// index, even one from another leader (the reply carries that command's result).
    ReplyForOtherCommand = "reply-for-other-command", Service,
        "a different command at the request's index means leadership was lost: fail the request (Lab 3A hint)";
    /// Duplicates are detected when a request arrives, not when a command is applied: a
    /// command is executed (and recorded) whatever the duplicate table says.
    DedupAtSubmitOnly = "dedup-at-submit-only", Service,
        "duplicate detection happens when a command is applied, since a retry can be in the log twice (Lab 3A hint)";
    /// A command counts as a duplicate when any client has executed its sequence number, as
    /// if the duplicate table were keyed by sequence number alone.
    DedupIgnoresClient = "dedup-ignores-client", Service,
        "duplicates are identified by (client id, sequence number) (Lab 3A hint)";
    /// A command counts as a duplicate only when its sequence number equals the client's last
    /// executed one, so an old request that reaches the log after a newer one executes again.
    DedupEqualSeqOnly = "dedup-equal-seq-only", Service,
        "a request at or below the client's last executed sequence number is a duplicate (Lab 3A hint)";
    /// The size check and snapshot run as each entry arrives, before it executes: the snapshot
    /// labelled with the entry's index lacks that entry.
    SnapshotBeforeApply = "snapshot-before-apply", Service,
        "a snapshot at index i holds the state after executing entry i (Lab 3B: Snapshot(index, state))";

    // ---- clerk ----
    /// The clerk gives each retry a new sequence number.
    NewSeqOnRetry = "new-seq-on-retry", Clerk,
        "a retried operation keeps its sequence number, so it executes at most once (Lab 3A hint)";
    /// The clerk takes an error reply to a Get as the empty value.
    ErrorAsEmptyValue = "error-as-empty-value", Clerk,
        "only an OK reply from a leader answers an operation; ErrWrongLeader means try another server (Lab 3A)";
    /// The clerk takes an OK reply to an earlier request of the same kind (a Get's value for a
    /// Get, a write's for a write) as the answer to the current one.
    AcceptsStaleReply = "accepts-stale-reply", Clerk,
        "a reply answers the operation whose sequence number it carries (Lab 3A)";
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
            .ok_or_else(|| format!("unknown KV bug {s:?}"))
    }
}

/// A set of [`Bug`]s; empty (the correct service) by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs(u64);

const _: () = assert!(Bug::ALL.len() <= 64, "Bugs is one 64-bit word");

impl Bugs {
    /// No bug: the correct service.
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
    }

    #[test]
    fn a_set_holds_exactly_what_was_added() {
        let set: Bugs = [Bug::StaleReads, Bug::NewSeqOnRetry].into_iter().collect();
        for b in Bug::ALL {
            assert_eq!(
                set.has(*b),
                matches!(b, Bug::StaleReads | Bug::NewSeqOnRetry)
            );
        }
        assert!(Bugs::default().is_empty());
    }

    #[test]
    fn adding_twice_keeps_a_bug_and_iteration_lists_the_set_in_catalog_order() {
        let b = Bug::DedupIgnoresClient;
        let set = Bugs::NONE.with(b).with(b);
        assert!(set.has(b) && !set.is_empty());
        assert_eq!(set.iter().collect::<Vec<_>>(), [b]);
        let all: Bugs = Bug::ALL.iter().rev().copied().collect();
        assert_eq!(all.iter().collect::<Vec<_>>(), Bug::ALL);
        assert_eq!(Bugs::NONE.iter().count(), 0);
    }

    #[test]
    fn names_as_the_catalog_prints_them() {
        assert_eq!(
            (Layer::Service.name(), Layer::Clerk.name()),
            ("kv", "clerk")
        );
        for b in Bug::ALL {
            assert_eq!(b.to_string(), b.id());
        }
        assert_eq!(Bug::StaleReads.to_string(), "stale-reads");
    }
}
