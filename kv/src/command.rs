//! What clients ask for and what goes in the Raft log.

use serde::{Deserialize, Serialize};

/// Identifies a clerk. Invariant: unique per clerk for the lifetime of the service.
pub type ClientId = u64;

/// A client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Read `key` (`""` when missing).
    Get {
        /// The key.
        key: String,
    },
    /// Replace the value of `key`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Concatenate `value` to the value of `key` (a missing key acts like `Put`).
    Append {
        /// The key.
        key: String,
        /// The suffix.
        value: String,
    },
}

impl Op {
    /// A `Get` of `key`.
    pub fn get(key: impl Into<String>) -> Self {
        Op::Get { key: key.into() }
    }

    /// A `Put` of `value` at `key`.
    pub fn put(key: impl Into<String>, value: impl Into<String>) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    /// An `Append` of `value` to `key`.
    pub fn append(key: impl Into<String>, value: impl Into<String>) -> Self {
        Op::Append {
            key: key.into(),
            value: value.into(),
        }
    }

    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            Op::Get { key } | Op::Put { key, .. } | Op::Append { key, .. } => key,
        }
    }

    /// True for `Get` (the only operation with a result value).
    pub fn is_get(&self) -> bool {
        matches!(self, Op::Get { .. })
    }

    /// Bytes of the key plus the value (none for `Get`).
    pub fn payload_bytes(&self) -> usize {
        match self {
            Op::Get { key } => key.len(),
            Op::Put { key, value } | Op::Append { key, value } => key.len() + value.len(),
        }
    }

    /// The equivalent input of the sequential model (for histories).
    pub fn to_model_input(&self) -> crate::model::KvInput {
        use crate::model::KvInput;
        match self {
            Op::Get { key } => KvInput::get(key.clone()),
            Op::Put { key, value } => KvInput::put(key.clone(), value.clone()),
            Op::Append { key, value } => KvInput::append(key.clone(), value.clone()),
        }
    }
}

impl Default for Op {
    /// `Get` of the empty key (only so that `raft::Storage<KvCommand>: Default`).
    fn default() -> Self {
        Op::get("")
    }
}

/// One Raft log entry of the service: the op, tagged with the client and that
/// client's request number so it executes at most once.
/// Invariant: `seq >= 1` for every real command; a client's seqs are issued in
/// increasing order. (`Default` exists only so `raft::Storage<KvCommand>: Default`.)
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCommand {
    /// The issuing clerk.
    pub client: ClientId,
    /// The clerk's request number (1, 2, 3, ...).
    pub seq: u64,
    /// The operation.
    pub op: Op,
}

impl raft::Command for KvCommand {
    fn size_bytes(&self) -> usize {
        self.op.payload_bytes() + 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Command;

    #[test]
    fn sizes_and_accessors() {
        let c = KvCommand {
            client: 1,
            seq: 1,
            op: Op::append("ab", "cde"),
        };
        assert_eq!(c.size_bytes(), 21);
        assert_eq!(c.op.key(), "ab");
        assert!(!c.op.is_get());
        assert_eq!(Op::get("k").payload_bytes(), 1);
        assert!(Op::get("k").is_get());
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains(r#""Append":{"key":"ab","value":"cde"}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<KvCommand>(&json).unwrap(), c);
    }
}
