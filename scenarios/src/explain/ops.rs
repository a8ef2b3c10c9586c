//! The KV clients' operations of a trace, each with the records of its call and return, and
//! the servers' applies of each command.

use super::index::{observations, Index};
use super::parse::u;
use kv::model::{KvInput, KvOp, KvOperation, KvOutput};
use sim::{NodeId, Time};

/// One client operation as the trace shows it.
#[derive(Clone, Debug)]
pub struct ClientOp {
    /// The client's node, and its `client` id as its observations give it.
    pub node: NodeId,
    pub client: u64,
    pub seq: u64,
    pub input: KvInput,
    /// `None`: never returned; `Some(None)`: a write's "done"; `Some(Some(v))`: a get's value.
    pub result: Option<Option<String>>,
    pub call: Time,
    pub ret: Option<Time>,
    pub call_pos: usize,
    pub ret_pos: Option<usize>,
}

impl ClientOp {
    /// The operation as the linearizability checker takes it (client = node, as the tester).
    pub fn operation(&self) -> KvOperation {
        KvOperation {
            client: self.node as u64,
            input: self.input.clone(),
            output: match &self.result {
                None => KvOutput::Unknown,
                Some(Some(v)) => KvOutput::Value(v.clone()),
                Some(None) => KvOutput::Done,
            },
            call: self.call,
            ret: self.ret,
        }
    }

    /// `append("k", "x 1 2 y")` or `get("k")`: the call alone.
    pub fn call_text(&self) -> String {
        match self.input.op {
            KvOp::Get => format!("get({:?})", self.input.key),
            op => format!(
                "{}({:?}, {})",
                op.as_str(),
                self.input.key,
                short(&self.input.value)
            ),
        }
    }

    /// `append("k", "x 1 2 y")` or `get("k") -> "…"`, values cut for people.
    pub fn describe(&self) -> String {
        let call = self.call_text();
        match &self.result {
            Some(Some(v)) => format!("{call} -> {}", short(v)),
            Some(None) => call,
            None => format!("{call} (never returned)"),
        }
    }

    /// `[1.234s (n=5), 1.240s (n=9)]`: the interval.
    pub fn interval(&self, ix: &Index) -> String {
        let ret = match self.ret_pos {
            Some(p) => super::at(ix, p),
            None => "never".into(),
        };
        format!("[{}, {ret}]", super::at(ix, self.call_pos))
    }
}

/// A value for people: quoted, long ones cut in the middle.
pub fn short(v: &str) -> String {
    let n = v.chars().count();
    if n <= 48 {
        return format!("{v:?}");
    }
    let head: String = v.chars().take(20).collect();
    let tail: String = v.chars().skip(n - 20).collect();
    format!(
        "\"{}…{}\" ({n} chars)",
        head.escape_debug(),
        tail.escape_debug()
    )
}

/// Every client operation of the trace, in call order.
pub fn client_ops(ix: &Index) -> Vec<ClientOp> {
    let mut ops: Vec<ClientOp> = vec![];
    let mut open: std::collections::BTreeMap<NodeId, usize> = Default::default();
    for (pos, _, t, node, out) in ix.steps() {
        for obs in observations(out) {
            if let Some(inv) = obs.get("invoke") {
                let Ok(op) = serde_json::from_value::<kv::Op>(inv["op"].clone()) else {
                    continue;
                };
                open.insert(node, ops.len());
                ops.push(ClientOp {
                    node,
                    client: u(inv, "client").unwrap_or(node as u64),
                    seq: u(inv, "seq").unwrap_or(0),
                    input: op.to_model_input(),
                    result: None,
                    call: t,
                    ret: None,
                    call_pos: pos,
                    ret_pos: None,
                });
            } else if let Some(c) = obs.get("complete") {
                if let Some(i) = open.remove(&node) {
                    let op = &mut ops[i];
                    op.result = Some(c.get("result").and_then(|r| r.as_str()).map(String::from));
                    op.ret = Some(t);
                    op.ret_pos = Some(pos);
                }
            }
        }
    }
    ops
}

/// A server's apply of a client command: the server, the step, index, term, and whether the
/// service saw it as a duplicate.
#[derive(Clone, Debug)]
pub struct Apply {
    pub server: NodeId,
    pub pos: usize,
    pub index: u64,
    pub term: u64,
    pub duplicate: bool,
}

/// The applies of client `client`'s command `seq`, on every server, in trace order.
pub fn applies(ix: &Index, client: u64, seq: u64) -> Vec<Apply> {
    let mut v = vec![];
    for (pos, _, _, node, out) in ix.steps() {
        for obs in observations(out) {
            let Some(a) = obs.get("applied") else {
                continue;
            };
            if u(a, "client") == Some(client) && u(a, "seq") == Some(seq) {
                v.push(Apply {
                    server: node,
                    pos,
                    index: u(a, "index").unwrap_or(0),
                    term: u(a, "term").unwrap_or(0),
                    duplicate: a
                        .get("duplicate")
                        .and_then(|d| d.as_bool())
                        .unwrap_or(false),
                });
            }
        }
    }
    v
}
