//! The sequential specification of the key/value service, for the linearizability checker.
//!
//! Keys are independent, so [`KvModel`] partitions a history per key and its state is the value
//! of a single key: `get` returns the whole value (`""` for a missing key), `put` replaces it,
//! `append` concatenates to it (appending to a missing key acts like `put`).

use serde::{Deserialize, Serialize};
use sim::linearizability::{AppendView, Model, Operation};

/// The kind of a key/value operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvOp {
    Get,
    Put,
    Append,
}

impl KvOp {
    pub fn as_str(self) -> &'static str {
        match self {
            KvOp::Get => "get",
            KvOp::Put => "put",
            KvOp::Append => "append",
        }
    }
}

/// What a client asked for. `value` is empty for `get`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KvInput {
    pub op: KvOp,
    pub key: String,
    pub value: String,
}

impl KvInput {
    pub fn get(key: impl Into<String>) -> Self {
        KvInput {
            op: KvOp::Get,
            key: key.into(),
            value: String::new(),
        }
    }

    pub fn put(key: impl Into<String>, value: impl Into<String>) -> Self {
        KvInput {
            op: KvOp::Put,
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn append(key: impl Into<String>, value: impl Into<String>) -> Self {
        KvInput {
            op: KvOp::Append,
            key: key.into(),
            value: value.into(),
        }
    }
}

/// What the client observed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvOutput {
    /// A `put` or `append` completed.
    Done,
    /// A `get` returned this value.
    Value(String),
    /// The operation never returned: it may or may not have taken effect.
    Unknown,
}

/// One operation of a key/value history.
pub type KvOperation = Operation<KvInput, KvOutput>;

/// The key/value sequential model, partitioned per key (the state is one key's value).
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

impl Model for KvModel {
    type State = String;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> String {
        String::new()
    }

    fn step(&self, state: &String, input: &KvInput, output: &KvOutput) -> Option<String> {
        match (input.op, output) {
            (KvOp::Get, KvOutput::Value(v)) => (v == state).then(|| state.clone()),
            (KvOp::Get, KvOutput::Unknown) => Some(state.clone()),
            (KvOp::Put, KvOutput::Done | KvOutput::Unknown) => Some(input.value.clone()),
            (KvOp::Append, KvOutput::Done | KvOutput::Unknown) => {
                let mut next = String::with_capacity(state.len() + input.value.len());
                next.push_str(state);
                next.push_str(&input.value);
                Some(next)
            }
            // An output of the wrong shape (a value for a write, "done" for a get) is never legal.
            (KvOp::Get, KvOutput::Done) | (KvOp::Put | KvOp::Append, KvOutput::Value(_)) => None,
        }
    }

    fn observe(&self, state: &String, input: &KvInput, output: &KvOutput) -> Option<bool> {
        match (input.op, output) {
            (KvOp::Get, KvOutput::Value(v)) => Some(v == state),
            (KvOp::Get, KvOutput::Unknown) => Some(true),
            _ => None,
        }
    }

    fn partition_key(&self, input: &KvInput) -> Option<String> {
        Some(input.key.clone())
    }

    fn describe(&self, input: &KvInput, output: &KvOutput) -> String {
        let call = match input.op {
            KvOp::Get => format!("get({:?})", input.key),
            op => format!("{}({:?}, {:?})", op.as_str(), input.key, input.value),
        };
        match output {
            KvOutput::Done => call,
            KvOutput::Value(v) => format!("{call} -> {v:?}"),
            KvOutput::Unknown => format!("{call} -> ?"),
        }
    }

    fn append_view<'a>(&self, input: &'a KvInput, output: &'a KvOutput) -> Option<AppendView<'a>> {
        Some(match (input.op, output) {
            (KvOp::Get, KvOutput::Value(v)) => AppendView::Read(v),
            (KvOp::Get, KvOutput::Unknown) => AppendView::Nothing,
            (KvOp::Put, KvOutput::Done | KvOutput::Unknown) => AppendView::Put(&input.value),
            (KvOp::Append, KvOutput::Done | KvOutput::Unknown) => AppendView::Append(&input.value),
            // Never legal (see `step`): no view, so the search alone decides.
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::linearizability::{check, Verdict};

    fn op(client: u64, input: KvInput, output: KvOutput, call: u64, ret: u64) -> KvOperation {
        Operation {
            client,
            input,
            output,
            call,
            ret: Some(ret),
        }
    }

    fn value(s: &str) -> KvOutput {
        KvOutput::Value(s.to_string())
    }

    /// `append_view` keeps the contract of `sim::linearizability::AppendView` with `step`, for
    /// every (input, output) pair `step` can accept, in several states; it answers for all of
    /// them, so the checker's read inference is on for KV histories.
    #[test]
    fn append_view_agrees_with_step() {
        let m = KvModel;
        let inputs = [
            KvInput::get("k"),
            KvInput::put("k", "p"),
            KvInput::append("k", "a"),
        ];
        let outputs = [KvOutput::Done, KvOutput::Unknown, value(""), value("xy")];
        let states = ["", "xy", "p"];
        for input in &inputs {
            for output in &outputs {
                let legal = states
                    .iter()
                    .any(|s| m.step(&s.to_string(), input, output).is_some());
                let view = m.append_view(input, output);
                assert_eq!(view.is_some(), legal, "{input:?} {output:?}");
                let Some(view) = view else { continue };
                for s in states {
                    let expected = match view {
                        AppendView::Put(v) => Some(v.to_string()),
                        AppendView::Append(v) => Some(format!("{s}{v}")),
                        AppendView::Read(v) => (v == s).then(|| s.to_string()),
                        AppendView::Nothing => Some(s.to_string()),
                    };
                    let state = s.to_string();
                    assert_eq!(
                        m.step(&state, input, output),
                        expected,
                        "{input:?} {output:?} in {s:?}"
                    );
                }
            }
        }
        assert_eq!(
            m.append_view(&KvInput::get("k"), &value("xy")),
            Some(AppendView::Read("xy"))
        );
        assert_eq!(
            m.append_view(&KvInput::get("k"), &KvOutput::Unknown),
            Some(AppendView::Nothing)
        );
    }

    #[test]
    fn step_semantics() {
        let m = KvModel;
        let s = m.init();
        assert_eq!(
            m.step(&s, &KvInput::get("k"), &value("")),
            Some(String::new())
        );
        assert_eq!(m.step(&s, &KvInput::get("k"), &value("x")), None);
        let s = m
            .step(&s, &KvInput::append("k", "ab"), &KvOutput::Done)
            .unwrap();
        assert_eq!(s, "ab");
        let s = m
            .step(&s, &KvInput::append("k", "c"), &KvOutput::Unknown)
            .unwrap();
        assert_eq!(s, "abc");
        let s = m
            .step(&s, &KvInput::put("k", "z"), &KvOutput::Done)
            .unwrap();
        assert_eq!(s, "z");
        assert_eq!(
            m.step(&s, &KvInput::get("k"), &KvOutput::Unknown),
            Some(s.clone())
        );
        assert_eq!(m.step(&s, &KvInput::get("k"), &KvOutput::Done), None);
        assert_eq!(m.step(&s, &KvInput::put("k", "q"), &value("q")), None);
    }

    #[test]
    fn observe_agrees_with_step() {
        let m = KvModel;
        let inputs = [
            KvInput::get("k"),
            KvInput::put("k", "ab"),
            KvInput::append("k", "b"),
        ];
        let outputs = [value(""), value("ab"), KvOutput::Done, KvOutput::Unknown];
        for state in ["", "ab", "abb"] {
            let state = state.to_string();
            for input in &inputs {
                for output in &outputs {
                    let step = m.step(&state, input, output);
                    match m.observe(&state, input, output) {
                        Some(legal) => assert_eq!(step, legal.then(|| state.clone())),
                        // Every get that returned a value or never returned is an
                        // observation (a "done" get is malformed: `step` rejects it).
                        None => assert!(input.op != KvOp::Get || *output == KvOutput::Done),
                    }
                }
            }
        }
    }

    #[test]
    fn describe_operations() {
        let m = KvModel;
        assert_eq!(
            m.describe(&KvInput::get("k"), &value("v")),
            r#"get("k") -> "v""#
        );
        assert_eq!(
            m.describe(&KvInput::put("k", "v"), &KvOutput::Done),
            r#"put("k", "v")"#
        );
        assert_eq!(
            m.describe(&KvInput::append("k", "v"), &KvOutput::Unknown),
            r#"append("k", "v") -> ?"#
        );
    }

    #[test]
    fn checks_per_key() {
        let ok = vec![
            op(0, KvInput::append("a", "x"), KvOutput::Done, 0, 10),
            op(1, KvInput::append("b", "y"), KvOutput::Done, 1, 2),
            op(2, KvInput::get("a"), value(""), 3, 4),
            op(2, KvInput::get("b"), value("y"), 5, 6),
            op(1, KvInput::get("a"), value("x"), 11, 12),
        ];
        let report = check(&KvModel, &ok);
        assert_eq!(report.verdict, Verdict::Linearizable);
        assert_eq!(report.partitions, 2);

        let mut bad = ok.clone();
        bad.push(op(3, KvInput::get("b"), value(""), 20, 21));
        let report = check(&KvModel, &bad);
        assert_eq!(report.verdict, Verdict::NotLinearizable);
        assert_eq!(report.failures[0].key.as_deref(), Some("b"));
        assert!(report.to_string().contains(r#"get("b") -> """#));
    }

    #[test]
    fn pending_append_may_appear_later() {
        let h = vec![
            Operation {
                client: 0,
                input: KvInput::append("k", "x"),
                output: KvOutput::Unknown,
                call: 0,
                ret: None,
            },
            op(1, KvInput::get("k"), value(""), 1, 2),
            op(1, KvInput::get("k"), value("x"), 50, 51),
        ];
        assert_eq!(check(&KvModel, &h).verdict, Verdict::Linearizable);
    }
}
