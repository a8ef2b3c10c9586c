//! The step language: how a scenario file states what the test driver does, as data.
//!
//! A scenario's `steps` run as a program with threads, loops, random choices and variables;
//! system steps (start a command, wait until N servers committed it, expect one leader...)
//! take node selectors and expressions. See docs/ARCHITECTURE.md for the reference.

use serde::{Deserialize, Serialize};
use sim::NetworkConfig;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A list of steps, shared cheaply by loop iterations, threads and fuzz workers.
pub type Block = Arc<[Step]>;

/// An integer: a literal, a variable (`"$name"`), `"random"` (a fresh random value from the
/// harness stream), or arithmetic on expressions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expr {
    Int(i64),
    Name(String),
    Calc(Box<Calc>),
}

/// Arithmetic: `{"add": [a, b]}`, `{"sub": [a, b]}`, `{"mul": [a, b]}`, `{"mod": [a, b]}`,
/// `{"rand_below": n}` (uniform in 0..n), `{"len": "list"}` (length of a collected list).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Calc {
    Add([Expr; 2]),
    Sub([Expr; 2]),
    Mul([Expr; 2]),
    Mod([Expr; 2]),
    RandBelow(Expr),
    Len(String),
}

/// A virtual duration in ms: a number, or `[lo, hi]` drawn uniformly from lo..hi (hi excluded).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Span {
    Fixed(f64),
    Range([f64; 2]),
}

/// Which servers a step acts on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Sel {
    /// One server id.
    Id(usize),
    /// `"$var"` (a server id held in a variable) or `"all"` (every server).
    Name(String),
    /// A random server from a pool, optionally excluding some.
    Random(RandomSel),
    /// `(base + by) mod servers`, e.g. the server after the leader.
    Next(NextSel),
    /// Every server of a pool, e.g. `{"all": "down"}`.
    All(AllSel),
    /// A client node (KV scenarios), by client index: `{"client": 0}`.
    Client(ClientSel),
}

/// `{"client": E}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSel {
    pub client: Expr,
}

/// `{"all": "up"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllSel {
    pub all: Pool,
}

/// `{"random": "connected", "except": ["$leader"], "count": 2}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSel {
    pub random: Pool,
    #[serde(default)]
    pub except: Vec<Sel>,
    /// How many distinct servers (default 1; fewer if the pool is smaller).
    #[serde(default)]
    pub count: Option<Expr>,
    /// Draw with repetition, as the 6.824 ManyElections test does.
    #[serde(default)]
    pub repeat: bool,
    /// Keep a drawn server only if it is also in this pool (6.824 Figure 8: pick any server,
    /// act only if it is down).
    #[serde(default)]
    pub only: Option<Pool>,
}

/// `{"next": "$leader", "by": 1}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextSel {
    pub next: Box<Sel>,
    pub by: i64,
}

/// Server pools for random selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    Server,
    Connected,
    Disconnected,
    Up,
    Down,
}

/// Network presets or a full model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NetSpec {
    /// `"reliable"` (no loss, 2-10 ms a message) or `"unreliable"` (6.824 labrpc).
    Preset(String),
    Config(NetworkConfig),
}

/// One step. Control flow first, then faults, then the system's steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Pause this thread.
    SleepMs(Span),
    /// Repeat `steps`; `times` absent means until the thread is stopped.
    Loop(Loop),
    /// Run `then` if the variable is non-zero, else `else`.
    If(If),
    /// Run one of the choices, drawn by weight.
    Choose(Vec<Choice>),
    /// Start `count` threads running `steps` (each sees `$thread` = 0..count); with `wait`
    /// (the default) continue when all finished.
    Spawn(Spawn),
    /// End every other thread (the lab's "stop" flag for background clients).
    StopThreads {},
    /// Run `steps`; if a step aborts (a term changed under a wait), pause and try again, at
    /// most `times` times; failing every time fails the run.
    Attempts(Attempts),
    /// Set variables: `{"x": "random", "n": 3, "m": "$n"}`.
    Set(BTreeMap<String, Expr>),
    /// Leave a remark in the trace.
    Note(String),
    /// Store the virtual time in ms (rounded down) in a variable.
    Now(String),
    /// Fail the run with this reason (after an `if` found something wrong).
    Fail(String),
    /// Abort the current attempt (see `attempts`) with this reason.
    Abort(String),
    /// Wait until every thread this thread spawned without `wait` has ended.
    Join {},
    /// Store the first selected server in a variable (-1 if the selection is empty).
    Pick(Pick),
    /// Store how many servers a selector names.
    Count(Count),
    /// 6.824 crash1: disconnect the server and kill it (durable state is kept).
    Crash(Sel),
    /// 6.824 start1: a new incarnation from the durable state (killing a running one first);
    /// it stays disconnected until `connect`.
    Restart(Sel),
    Disconnect(Sel),
    Connect(Sel),
    /// Split servers into groups (servers in no group talk to all).
    Partition(Vec<Vec<Sel>>),
    /// Cut every one-way link from each `from` server to each `to` server (a server's link to
    /// itself stays): `{"cut": {"from": {"all": "server"}, "to": "$l"}}` cuts a leader's
    /// incoming links and leaves its outgoing ones. `heal` repairs them.
    Cut(CutLinks),
    /// Remove partitions and one-way cuts.
    Heal {},
    /// Change the selected servers' clocks now: `{"clock": {"node": "$l", "drift_ppm":
    /// -300000}}` sets their drift from now on, `"jump_ms": -500` steps them (see
    /// `sim::clock`); both may be given (the drift first).
    Clock(ClockChange),
    /// 6.824's partitioner: every server joins one of `groups` groups at random.
    PartitionRandom {
        groups: u32,
    },
    /// Change the network model.
    Network(NetSpec),
    /// Turn the 6.824 long reordering of replies on or off.
    LongReordering(bool),
    /// Record the RPC and byte counters under a name, for `check_rpcs` / `check_bytes`.
    Mark(String),
    /// RPCs (requests) sent since a mark must lie within bounds.
    CheckRpcs(CheckCount),
    /// Request bytes sent since a mark must lie within bounds.
    CheckBytes(CheckCount),

    // ---- Raft (6.824 Lab 2 tester) ----
    /// checkOneLeader: up to 10 rounds of 450–550 ms; exactly one leader in the newest term.
    CheckOneLeader(Store),
    /// No connected server claims to lead.
    CheckNoLeader {},
    /// All connected servers agree on the term; optionally store it or compare with a stored one.
    CheckTerms(CheckTerms),
    /// Store the highest current term of any live server.
    MaxTerm(Store),
    /// one(cmd, servers, retry): submit until a leader accepts, wait until `servers` applied it.
    One(One),
    /// Raft's Start(cmd) on the selected servers (each in turn until one accepts, or all).
    Submit(Submit),
    /// wait(index, n, term): until `servers` applied `index`; abort if the term moved past `term`.
    WaitCommitted(WaitCommitted),
    /// nCommitted(index) must equal `servers` right now.
    CheckCommitted(CheckCommitted),
    /// Every value in a collected list was applied by at least `servers` servers.
    CheckCollected(CheckCollected),
    /// Every server's persisted Raft state is at most `max_bytes` now.
    CheckPersistedSize {
        max_bytes: u64,
    },
    /// Catch-up after a healed, quiet end: once a leader is seen, every live server's commit
    /// and applied index must reach the leader's commit index (as it was then) within `within_ms`.
    CheckCaughtUp(Within),

    // ---- KV (6.824 Lab 3 tester) ----
    /// Start the GenericTest loop on every client: Put its own key to "", then repeatedly
    /// Append "x CLIENT N y" (50%) or Get and compare with what it expects; with
    /// `random_keys`, random keys and 5% Puts, no expectations.
    KvClientsStart(KvClientsStart),
    /// Clients issue no new operations (each finishes the one it has).
    KvClientsStop {},
    /// Wait until no client has an operation outstanding.
    KvClientsWait(Within),
    /// Read every key clients appended to since `kv_clients_start`: each client's appends must
    /// appear exactly once and in the order it made them.
    KvCheckAppends(Within),
    /// After a healed, quiet end (every server up and connected, clients stopped): within
    /// `within_ms`, every server's applied index reaches the leader's commit index and its
    /// service state (map and duplicate table) equals the leader's.
    KvCheckReplicas(Within),
    /// One operation by one client; with `wait` (default), until it completes.
    KvOp(KvOp),
    /// Wait until the client's outstanding operation completes.
    KvWait(KvWait),
    /// The client's operation must still be outstanding (no progress).
    KvExpectPending {
        client: Expr,
    },
    /// Persisted Raft state and snapshot sizes of every server are within bounds.
    KvCheckSize(KvCheckSize),
    /// Like `check_one_leader`, over the KV servers' Raft: store the leader.
    KvLeader(Store),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvClientsStart {
    #[serde(default)]
    pub random_keys: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Within {
    pub within_ms: f64,
}

/// The operations a client can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvOpKind {
    Get,
    Put,
    Append,
}

/// `key`, `value` and `expect` are templates: `{$i}` is replaced by the variable's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvOp {
    pub client: Expr,
    pub op: KvOpKind,
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default = "yes")]
    pub wait: bool,
    /// With `wait`: how long it may take (default 10 s).
    #[serde(default = "ten_seconds")]
    pub within_ms: f64,
    /// A Get must return this.
    #[serde(default)]
    pub expect: Option<String>,
}

fn ten_seconds() -> f64 {
    10_000.0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvWait {
    pub client: Expr,
    pub within_ms: f64,
    #[serde(default)]
    pub expect: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvCheckSize {
    #[serde(default)]
    pub max_raft_state: Option<u64>,
    #[serde(default)]
    pub max_snapshot: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loop {
    #[serde(default)]
    pub times: Option<Expr>,
    /// Variable holding the iteration number (0-based).
    #[serde(default)]
    pub var: Option<String>,
    pub steps: Block,
}

/// The change of a `clock` step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockChange {
    pub node: Sel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_ppm: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump_ms: Option<f64>,
}

/// The links of a `cut` step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutLinks {
    /// The senders whose messages are lost.
    pub from: Sel,
    /// The receivers that no longer hear them.
    pub to: Sel,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pick {
    pub from: Sel,
    #[serde(rename = "as")]
    pub store: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Count {
    pub of: Sel,
    #[serde(rename = "as")]
    pub store: String,
}

/// The condition is on one variable: non-zero by default, or compared with `below`,
/// `at_least` or `equals`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct If {
    pub var: String,
    #[serde(default)]
    pub below: Option<Expr>,
    #[serde(default)]
    pub at_least: Option<Expr>,
    #[serde(default)]
    pub equals: Option<Expr>,
    #[serde(default = "empty")]
    pub then: Block,
    #[serde(default = "empty", rename = "else")]
    pub otherwise: Block,
}

fn empty() -> Block {
    Arc::from(Vec::new())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub weight: f64,
    pub steps: Block,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spawn {
    pub count: Expr,
    pub steps: Block,
    #[serde(default = "yes")]
    pub wait: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attempts {
    pub times: u32,
    #[serde(default)]
    pub pause_ms: f64,
    pub steps: Block,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckCount {
    pub since: String,
    #[serde(default)]
    pub min: Option<Expr>,
    #[serde(default)]
    pub max: Option<Expr>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    #[serde(default, rename = "as")]
    pub store: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckTerms {
    #[serde(default, rename = "as")]
    pub store: Option<String>,
    /// Fail unless the term equals this variable's value.
    #[serde(default)]
    pub same_as: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct One {
    pub cmd: Expr,
    pub servers: Expr,
    #[serde(default)]
    pub retry: bool,
    /// Bytes of padding the command stands for (the RPC byte count test sends 5000).
    #[serde(default)]
    pub pad: u32,
    /// Store the index it committed at.
    #[serde(default, rename = "as")]
    pub store: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    pub on: Sel,
    pub cmd: Expr,
    #[serde(default)]
    pub pad: u32,
    /// `first`: stop at the first server that accepts (default); `all`: submit to every one.
    #[serde(default)]
    pub to_all: bool,
    /// Store the index (-1 if no one accepted).
    #[serde(default, rename = "as")]
    pub store: Option<String>,
    #[serde(default)]
    pub term_as: Option<String>,
    /// Store 1 if a leader accepted, 0 if not.
    #[serde(default)]
    pub ok_as: Option<String>,
    /// Store the id of the (last) server that accepted, -1 if none.
    #[serde(default)]
    pub leader_as: Option<String>,
    /// Fail the run unless a server accepts (`true`) or unless none does (`false`).
    #[serde(default)]
    pub expect_leader: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitCommitted {
    pub index: Expr,
    pub servers: Expr,
    pub within_ms: f64,
    /// Abort (retry the enclosing `attempts`) if some server's term passed this.
    #[serde(default)]
    pub term: Option<Expr>,
    /// The value expected at the index; with `collect`, append it to that list on success.
    #[serde(default)]
    pub cmd: Option<Expr>,
    #[serde(default)]
    pub collect: Option<String>,
    /// Fail the run on timeout (default); otherwise just continue.
    #[serde(default = "yes")]
    pub required: bool,
    /// Fail the run if the value applied at the index is not `cmd`.
    #[serde(default)]
    pub expect_cmd: bool,
    /// Store 1 if enough servers applied the index in time, else 0.
    #[serde(default)]
    pub ok_as: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckCommitted {
    pub index: Expr,
    pub servers: Expr,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckCollected {
    pub list: String,
    pub servers: Expr,
}

/// A step as one short line of JSON, for messages.
pub fn describe(step: &Step) -> String {
    let json = serde_json::to_string(step).unwrap_or_default();
    let short: String = json.chars().take(120).collect();
    if short.len() < json.len() {
        short + " ..."
    } else {
        short
    }
}
