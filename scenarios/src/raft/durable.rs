//! A check on what a server has made durable: the state a crash would leave it with.

use raft::Storage;
use sim::{Failure, NodeId};

/// "currentTerm ... latest term server has seen" and log entries are both persistent state
/// (Figure 2), and a server appends an entry of term T only while its currentTerm is T (it
/// adopts any newer term from the request first, and rejects older ones). So the durable
/// currentTerm is never below the term of any durable entry, nor of the durable snapshot's
/// last included entry. A server that fails this would, after a crash, come back in a term
/// older than its own log: it could accept a deposed leader of an intermediate term and let
/// it overwrite entries a newer leader committed.
///
/// Checked after each step that wrote to the log (the engine applies a step's durable writes
/// together, so a correct server never shows a half-written state here).
pub fn check_durable_term<C: raft::Command>(
    node: NodeId,
    storage: &Storage<C>,
) -> Result<(), Failure> {
    let last_term = storage
        .entries
        .last()
        .map(|e| e.term)
        .or(storage.snapshot.as_ref().map(|s| s.last_included_term))
        .unwrap_or(0);
    if storage.current_term < last_term {
        return Err(Failure::new(
            "durable term covers log",
            vec![node],
            format!(
                "s{node}'s durable currentTerm is {} but its durable log ends with an entry of term {last_term} (index {}): a crash now would bring it back in a term older than its own log",
                storage.current_term,
                storage.last_index()
            ),
        ));
    }
    Ok(())
}

/// Figure 2: persistent state (currentTerm, votedFor, log[]) is "updated on stable storage
/// before responding to RPCs". After a step in which a server answered a request, its
/// in-memory persistent state must therefore equal its durable state: the term, the vote, where the
/// log ends (index and term) and where the snapshot ends. `None` if they agree, else what
/// differs. A server whose answers vouch for more than it made durable can, after a crash,
/// vote twice in a term or lose entries a majority was counted on. (Requests are not held to
/// it: a leader may send entries before its own write is done, as the Raft thesis allows,
/// counting itself only once they are durable.)
pub fn durable_lag<C: raft::Command>(raft: &raft::Raft<C>, storage: &Storage<C>) -> Option<String> {
    if raft.current_term() != storage.current_term {
        return Some(format!(
            "its currentTerm {} was not durable (the durable term is {})",
            raft.current_term(),
            storage.current_term
        ));
    }
    if raft.voted_for() != storage.voted_for {
        return Some(format!(
            "its vote {:?} in term {} was not durable (the durable vote is {:?})",
            raft.voted_for(),
            raft.current_term(),
            storage.voted_for
        ));
    }
    let durable_last_term = storage
        .entries
        .last()
        .map(|e| e.term)
        .or(storage.snapshot.as_ref().map(|s| s.last_included_term))
        .unwrap_or(0);
    let memory = (raft.last_index(), raft.last_term());
    let durable = (storage.last_index(), durable_last_term);
    if memory != durable {
        return Some(format!(
            "its log ended at index {} (term {}) but its durable log at index {} (term {})",
            memory.0, memory.1, durable.0, durable.1
        ));
    }
    if raft.snapshot_index() != storage.snapshot_index() {
        return Some(format!(
            "its snapshot covered index {} but its durable snapshot index {}",
            raft.snapshot_index(),
            storage.snapshot_index()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{Entry, StorageOp};

    fn storage(term: u64, entry_terms: &[u64]) -> Storage<u64> {
        let mut s = Storage::default();
        s.apply(&StorageOp::HardState {
            current_term: term,
            voted_for: None,
        });
        let entries = entry_terms
            .iter()
            .enumerate()
            .map(|(i, &t)| Entry {
                index: i as u64 + 1,
                term: t,
                command: 7,
            })
            .collect();
        s.apply(&StorageOp::Append { entries });
        s
    }

    #[test]
    fn a_term_at_or_above_the_log_passes_and_one_below_fails() {
        assert!(check_durable_term(0, &storage(3, &[1, 2, 3])).is_ok());
        assert!(check_durable_term(0, &Storage::<u64>::default()).is_ok());
        let err = check_durable_term(2, &storage(2, &[1, 3])).unwrap_err();
        assert_eq!(err.property, "durable term covers log");
        assert!(err.detail.contains("term 3"), "{}", err.detail);
    }
}
