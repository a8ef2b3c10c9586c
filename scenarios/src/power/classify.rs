//! Which kind of check caught a bug. The question `sim power` answers is not only "was it
//! caught" but "by what": a generic property (one that holds for any correct Raft or any
//! linearizable service, whatever the test) is the net a user can rely on for bugs nobody has
//! thought of; a lab assertion (a test's own expectation, like 6.824's "Get returns the
//! latest value" or an RPC budget) is a second net.

use serde::Serialize;

/// The class of a violated property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// A Raft safety property: the paper's Figure 3, or a rule derived from Figure 2.
    Safety,
    /// The client history is not linearizable.
    Linearizability,
    /// An append was lost, doubled or reordered (exactly-once execution).
    ExactlyOnce,
    /// Replicas disagree on the service state, or did not converge once healed.
    ReplicaAgreement,
    /// After every fault was repaired, the cluster did not recover (a swarm profile's end).
    LivenessAfterHeal,
    /// An assertion of the code under test fired (a panic): an invariant the protocol states.
    Assertion,
    /// An expectation of one lab test (a value a Get must return, an RPC budget, a timing).
    Lab,
}

impl Class {
    /// Whether the property holds for every correct system, whatever the test.
    pub fn generic(self) -> bool {
        self != Class::Lab
    }

    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Class::Safety => "safety",
            Class::Linearizability => "linearizability",
            Class::ExactlyOnce => "exactly-once",
            Class::ReplicaAgreement => "replica agreement",
            Class::LivenessAfterHeal => "liveness after heal",
            Class::Assertion => "assertion",
            Class::Lab => "lab",
        }
    }
}

/// Properties of Raft's Figure 3, and rules derived from Figure 2, as the checkers name them.
const SAFETY: &[&str] = &[
    "election safety",
    "leader append-only",
    "log matching",
    "leader completeness",
    "state machine safety",
    "commit index monotonic",
    "commit within log",
    "committed entries agree",
    "committed prefix kept",
    "apply order",
    "apply only committed",
    "apply log entry",
    "log continuity",
    "leader match index",
    "durable term covers log",
    "persisted before responding",
    "durable term monotonic",
    "one vote per term",
];

/// Checks that something happens in time: generic after a swarm profile healed everything (the
/// cluster must recover), a lab assertion when a lab test demands it within its own timing
/// while its faults go on.
const LIVENESS: &[&str] = &[
    "liveness",
    "agreement",
    "one leader",
    "progress",
    "catch-up",
    "term stability",
    "term agreement",
];

/// The class of `property`, violated in a run of a scenario that is (`swarm`) or is not a
/// swarm profile (whose end, after every fault is repaired, checks recovery).
pub fn classify(property: &str, swarm: bool) -> Class {
    match property {
        p if SAFETY.contains(&p) => Class::Safety,
        "linearizability" => Class::Linearizability,
        "appends exactly once" | "appends in order" => Class::ExactlyOnce,
        "replica agreement" => Class::ReplicaAgreement,
        "replicas caught up" if swarm => Class::ReplicaAgreement,
        "panic" => Class::Assertion,
        p if swarm && LIVENESS.contains(&p) => Class::LivenessAfterHeal,
        _ => Class::Lab,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_is_generic_everywhere_and_liveness_only_after_a_heal() {
        assert_eq!(classify("leader completeness", false), Class::Safety);
        assert_eq!(classify("linearizability", false), Class::Linearizability);
        assert_eq!(classify("appends exactly once", true), Class::ExactlyOnce);
        assert_eq!(classify("agreement", true), Class::LivenessAfterHeal);
        assert_eq!(classify("agreement", false), Class::Lab);
        assert_eq!(
            classify("get returns the latest value", true),
            Class::Lab,
            "a lab test's own expectation"
        );
        assert_eq!(classify("message count", true), Class::Lab);
        assert!(Class::Assertion.generic() && !Class::Lab.generic());
    }
}
