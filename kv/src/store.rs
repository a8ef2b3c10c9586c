//! The replicated state machine: the key/value map and the duplicate table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::{ClientId, KvCommand, Op};

/// The last request a client had executed, and its result.
/// Invariant: `value` is `Some` iff that request was a `Get`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executed {
    /// The client's highest executed request number.
    pub seq: u64,
    /// The `Get` result of that request.
    pub value: Option<String>,
}

/// Outcome of applying one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The `Get` result (`Some` exactly for a `Get`).
    pub value: Option<String>,
    /// The request had already executed (a write was skipped).
    pub duplicate: bool,
}

/// Key/value map plus the at-most-once table. Invariant: for every client,
/// `dedup[client].seq` is the highest seq of that client ever executed, and a
/// `Put`/`Append` with `seq <= dedup[client].seq` never changes `data`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    /// The key/value map.
    pub data: BTreeMap<String, String>,
    /// One entry per client.
    pub dedup: BTreeMap<ClientId, Executed>,
}

impl KvStore {
    /// The value of `key` as a `Get` sees it (`""` when missing).
    pub fn read(&self, key: &str) -> String {
        self.data.get(key).cloned().unwrap_or_default()
    }

    /// True if `client` already executed request `seq` (or a later one).
    pub fn executed(&self, client: ClientId, seq: u64) -> bool {
        self.dedup.get(&client).is_some_and(|e| e.seq >= seq)
    }

    /// Execute `cmd` unless it is a duplicate. A duplicate `Get` is re-read
    /// from the current state (its log position is inside the client's call).
    pub fn apply(&mut self, cmd: &KvCommand) -> Outcome {
        let duplicate = self.executed(cmd.client, cmd.seq);
        let value = match &cmd.op {
            Op::Get { key } => Some(self.read(key)),
            Op::Put { .. } | Op::Append { .. } if duplicate => None,
            Op::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
                None
            }
            Op::Append { key, value } => {
                self.data.entry(key.clone()).or_default().push_str(value);
                None
            }
        };
        if !duplicate {
            self.dedup.insert(
                cmd.client,
                Executed {
                    seq: cmd.seq,
                    value: value.clone(),
                },
            );
        }
        debug_assert!(self.executed(cmd.client, cmd.seq));
        Outcome { value, duplicate }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(client: ClientId, seq: u64, op: Op) -> KvCommand {
        KvCommand { client, seq, op }
    }

    #[test]
    fn semantics_and_at_most_once() {
        let mut s = KvStore::default();
        assert_eq!(s.apply(&cmd(1, 1, Op::get("a"))).value.as_deref(), Some(""));
        s.apply(&cmd(1, 2, Op::append("a", "x")));
        let dup = s.apply(&cmd(1, 2, Op::append("a", "x")));
        assert!(dup.duplicate);
        assert_eq!(s.read("a"), "x");
        s.apply(&cmd(2, 1, Op::append("a", "y")));
        // An old request of client 1 is never executed again.
        assert!(s.apply(&cmd(1, 1, Op::put("a", "z"))).duplicate);
        assert_eq!(s.read("a"), "xy");
        s.apply(&cmd(1, 3, Op::put("a", "z")));
        assert_eq!(s.read("a"), "z");
        let g = s.apply(&cmd(2, 2, Op::get("a")));
        assert_eq!(g.value.as_deref(), Some("z"));
        assert_eq!(s.dedup[&2].value.as_deref(), Some("z"));
        assert_eq!(s.dedup[&1].value, None);
    }
}
