//! The KV service as engine nodes: servers (a `kv::KvServer` on Raft) and clients (a
//! `kv::Clerk`), one node type so they share the network.

use super::replicas::{command_id, op_id};
use crate::marks::RaftWatch;
use crate::raft::checks::{RaftEvent, RaftEvents};
use crate::raft::node::{log_change, LogChange};
use crate::wire::{DeadlineTimer, RaftDurable, Wire};
use kv::{Clerk, KvCommand, KvMessage, KvServer, Op, ServerEvent};
use raft::{Event, StorageOp};
use serde::{Deserialize, Serialize};
use sim::{Ctx, Node, NodeId, Time, TimerId};

/// A KV message on the simulated network.
pub type KvMsg = Wire<KvMessage>;

/// A node's durable state (servers' Raft state; clients keep none).
pub type KvDurable = RaftDurable<KvCommand>;

/// How every node of a KV run is built.
#[derive(Clone, Debug)]
pub struct KvNodeConfig {
    /// Servers are nodes 0..servers; clients follow.
    pub servers: usize,
    pub election_timeout_us: (Time, Time),
    pub heartbeat_us: Time,
    /// Snapshot when the persisted Raft state nears this many bytes; None never (6.824's -1).
    pub maxraftstate: Option<usize>,
    /// How long a clerk waits for a reply before trying the next server.
    pub retry_timeout_us: Time,
    /// Raft's PreVote and CheckQuorum (`raft::Config`), off in the lab scenarios.
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// How servers answer `Get`s (through the log in the lab scenarios).
    pub read_mode: kv::ReadMode,
    /// With lease reads: the clock drift bound the leases are shortened for, ppm.
    pub max_drift_ppm: u64,
    /// Deliberate Raft bugs in the servers' Raft (none outside power campaigns).
    pub raft_bugs: raft::Bugs,
    /// Deliberate service and clerk bugs (none outside power campaigns).
    pub bugs: kv::Bugs,
}

/// A harness request: clients take operations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvInput {
    Invoke(Op),
}

/// What KV nodes report. Servers report their Raft events (for the Raft safety checker; log
/// entries are identified by [`command_id`]) and every applied state's digest (for replica
/// agreement). Clients report `invoke`/`complete` (the viewer draws them as operation
/// intervals; the linearizability checker builds its history from them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvObs {
    /// A server incarnation started with this commit index (its snapshot's last index).
    Boot {
        commit_index: u64,
    },
    Role {
        role: String,
        term: u64,
    },
    /// The commit index grew; `term` is the server's current term then.
    Commit {
        commit_index: u64,
        term: u64,
    },
    /// A durable log write (entries as `(index, term, command_id)`).
    Log(LogChange),
    /// The entry at `index` (of `term`) was applied; `state` is the service state's digest after.
    Applied {
        index: u64,
        term: u64,
        client: u64,
        seq: u64,
        op: Op,
        duplicate: bool,
        state: u64,
    },
    Snapshot {
        index: u64,
        bytes: usize,
    },
    /// A snapshot through `index` (of `term`) was restored; `state` is its digest.
    Restored {
        index: u64,
        term: u64,
        state: u64,
    },
    Invoke {
        client: u64,
        seq: u64,
        op: Op,
    },
    Complete {
        client: u64,
        seq: u64,
        op: Op,
        result: Option<String>,
    },
}

/// A server or a client.
#[allow(clippy::large_enum_variant)]
pub enum KvActor {
    Server {
        server: KvServer,
        timer: DeadlineTimer,
        /// Raft's last log index and leadership after the previous call (for marks).
        last_index: u64,
        was_leader: bool,
    },
    Client {
        clerk: Clerk,
        op: Option<(u64, Op)>,
        timer: DeadlineTimer,
    },
}

impl KvActor {
    /// The server, if this node is one.
    pub fn server(&self) -> Option<&KvServer> {
        match self {
            KvActor::Server { server, .. } => Some(server),
            KvActor::Client { .. } => None,
        }
    }
    /// Is this client in the middle of an operation?
    pub fn busy(&self) -> bool {
        matches!(self, KvActor::Client { op: Some(_), .. })
    }

    fn flush(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            KvActor::Server {
                server,
                timer,
                last_index,
                was_leader,
            } => {
                let deposed = *was_leader && !server.raft().is_leader();
                let mut failed_pending = false;
                while server.has_ready() {
                    let ready = server.take_ready();
                    for (to, m) in ready.messages {
                        failed_pending |= deposed
                            && matches!(m, KvMessage::Reply(kv::ClientReply::WrongLeader { .. }));
                        ctx.send(to, Wire(m));
                    }
                    // Storage writes and events, merged in the order they happened.
                    let leader = server.raft().is_leader();
                    let raft = server.raft();
                    let in_flight = raft.last_index().saturating_sub(raft.commit_index());
                    let mut storage = ready.storage.into_iter();
                    let mut stored = 0;
                    for (e, before) in ready.events.into_iter().zip(ready.stored_before) {
                        for op in storage.by_ref().take(before - stored) {
                            persist(ctx, op, leader, *last_index, in_flight);
                        }
                        stored = stored.max(before);
                        let term = server.raft().current_term();
                        let (mark, context) = server_mark(&e, server);
                        ctx.mark_with(mark, context);
                        ctx.observe(server_obs(e, term));
                    }
                    for op in storage {
                        persist(ctx, op, leader, *last_index, in_flight);
                    }
                }
                if failed_pending {
                    ctx.mark("kv-lost-pending");
                }
                *last_index = server.raft().last_index();
                *was_leader = server.raft().is_leader();
                let deadline = server.next_deadline().max(ctx.now());
                timer.arm(ctx, deadline);
            }
            KvActor::Client { clerk, op, timer } => {
                let ready = clerk.take_ready();
                for (to, m) in ready.messages {
                    ctx.send(to, Wire(m));
                }
                if let Some(at) = ready.timer {
                    timer.arm(ctx, at);
                }
                if let Some((seq, result)) = ready.completed {
                    let (s, done) = op.take().expect("a completion answers the outstanding op");
                    debug_assert_eq!(s, seq);
                    ctx.observe(KvObs::Complete {
                        client: clerk.id(),
                        seq,
                        op: done,
                        result,
                    });
                }
            }
        }
    }
}

/// Observe the log change a durable write makes, then persist it.
fn persist(
    ctx: &mut Ctx<'_, KvActor>,
    op: StorageOp<KvCommand>,
    leader: bool,
    last_index: u64,
    in_flight: u64,
) {
    if let Some((mark, context)) = crate::marks::storage_mark(&op, leader, last_index, in_flight) {
        ctx.mark_with(mark, context);
    }
    if let Some(change) = log_change(&op, command_id) {
        ctx.observe(KvObs::Log(change));
    }
    ctx.persist(op);
}

/// The mark of a server event, with its context.
fn server_mark(e: &ServerEvent, server: &KvServer) -> (&'static str, u32) {
    match e {
        ServerEvent::Raft(e) => crate::marks::event_mark(e, server.raft()),
        ServerEvent::Applied {
            duplicate: true, ..
        } => ("kv-duplicate", 0),
        ServerEvent::Applied { .. } => ("kv-apply", 0),
        ServerEvent::SnapshotTaken { .. } => ("kv-snapshot", 0),
        ServerEvent::SnapshotRestored { .. } => ("kv-restore", u32::from(server.dedup_len() > 0)),
    }
}

/// The observation of a server event; `term` is the server's current term.
fn server_obs(e: ServerEvent, term: u64) -> KvObs {
    match e {
        ServerEvent::Raft(Event::BecameLeader { term }) => role("leader", term),
        ServerEvent::Raft(Event::BecameCandidate { term }) => role("candidate", term),
        ServerEvent::Raft(Event::BecameFollower { term }) => role("follower", term),
        ServerEvent::Raft(Event::CommitAdvanced { commit_index }) => {
            KvObs::Commit { commit_index, term }
        }
        ServerEvent::Applied {
            index,
            term,
            client,
            seq,
            op,
            duplicate,
            state,
        } => KvObs::Applied {
            index,
            term,
            client,
            seq,
            op,
            duplicate,
            state,
        },
        ServerEvent::SnapshotTaken { index, bytes } => KvObs::Snapshot { index, bytes },
        ServerEvent::SnapshotRestored { index, term, state } => {
            KvObs::Restored { index, term, state }
        }
    }
}

impl RaftEvents for KvActor {
    fn hard_state(durable: &KvDurable) -> (u64, Option<NodeId>) {
        (durable.0.current_term, durable.0.voted_for)
    }

    fn raft_event(obs: &KvObs) -> Option<RaftEvent<'_>> {
        Some(match obs {
            KvObs::Boot { commit_index } => RaftEvent::Boot {
                commit_index: *commit_index,
            },
            KvObs::Role { role, term } => RaftEvent::Role {
                leader: role == "leader",
                term: *term,
            },
            KvObs::Commit { commit_index, term } => RaftEvent::Commit {
                commit_index: *commit_index,
                term: *term,
            },
            KvObs::Log(change) => RaftEvent::Log(change),
            KvObs::Applied {
                index,
                term,
                client,
                seq,
                op,
                ..
            } => RaftEvent::Applied {
                index: *index,
                term: *term,
                entry: op_id(*client, *seq, op),
            },
            KvObs::Restored { index, term, .. } => RaftEvent::Restored {
                index: *index,
                term: *term,
                entries: None,
            },
            KvObs::Snapshot { .. } | KvObs::Invoke { .. } | KvObs::Complete { .. } => return None,
        })
    }
}

fn role(name: &str, term: u64) -> KvObs {
    KvObs::Role {
        role: name.to_string(),
        term,
    }
}

impl Node for KvActor {
    type Config = KvNodeConfig;
    type Msg = KvMsg;
    type Input = KvInput;
    type Reply = Option<u64>;
    type Obs = KvObs;
    type Durable = KvDurable;

    fn start(cfg: &KvNodeConfig, ctx: &mut Ctx<'_, Self>, durable: &KvDurable) -> Self {
        let id = ctx.id();
        let now = ctx.now();
        let mut node = if id < cfg.servers {
            let mut config = raft::Config::new(id, (0..cfg.servers).collect());
            config.election_timeout_min = cfg.election_timeout_us.0;
            config.election_timeout_max = cfg.election_timeout_us.1;
            config.heartbeat_interval = cfg.heartbeat_us;
            config.pre_vote = cfg.pre_vote;
            config.check_quorum = cfg.check_quorum;
            config.lease_reads = cfg.read_mode == kv::ReadMode::Lease;
            config.max_drift_ppm = cfg.max_drift_ppm;
            config.bugs = cfg.raft_bugs;
            let mut server = KvServer::new(config, &durable.0, cfg.maxraftstate, now, ctx.rng());
            server.set_bugs(cfg.bugs);
            server.set_read_mode(cfg.read_mode);
            ctx.observe(KvObs::Boot {
                commit_index: server.raft().commit_index(),
            });
            KvActor::Server {
                last_index: server.raft().last_index(),
                was_leader: false,
                server,
                timer: DeadlineTimer::default(),
            }
        } else {
            let mut clerk = Clerk::new(id as u64, (0..cfg.servers).collect(), cfg.retry_timeout_us);
            clerk.set_bugs(cfg.bugs);
            KvActor::Client {
                clerk,
                op: None,
                timer: DeadlineTimer::default(),
            }
        };
        node.flush(ctx);
        node
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: KvMsg) {
        let now = ctx.now();
        match self {
            KvActor::Server { server, .. } => {
                let raft_msg = match &msg.0 {
                    KvMessage::Raft(m) => Some(m),
                    _ => None,
                };
                let watch = RaftWatch::before(server.raft(), raft_msg);
                server.handle_message(now, ctx.rng(), from, msg.0);
                watch.after(ctx, server.raft());
            }
            KvActor::Client { clerk, .. } => {
                if let KvMessage::Reply(reply) = msg.0 {
                    clerk.handle_reply(now, from, reply);
                }
            }
        }
        self.flush(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, id: TimerId, _tag: u64) {
        let now = ctx.now();
        match self {
            KvActor::Server { server, timer, .. } => {
                timer.fired(id);
                let watch = RaftWatch::before(server.raft(), None);
                server.tick(now, ctx.rng());
                watch.after(ctx, server.raft());
            }
            KvActor::Client { clerk, timer, .. } => {
                timer.fired(id);
                clerk.on_timeout(now);
            }
        }
        self.flush(ctx);
    }

    fn durable_lag(&self, durable: &KvDurable) -> Option<String> {
        let server = self.server()?;
        crate::raft::durable::durable_lag(server.raft(), &durable.0)
    }

    fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, input: KvInput) -> Option<u64> {
        let KvInput::Invoke(new_op) = input;
        let KvActor::Client { clerk, op, .. } = self else {
            return None;
        };
        if op.is_some() {
            return None;
        }
        let seq = clerk.invoke(ctx.now(), new_op.clone());
        ctx.observe(KvObs::Invoke {
            client: clerk.id(),
            seq,
            op: new_op.clone(),
        });
        *op = Some((seq, new_op));
        self.flush(ctx);
        Some(seq)
    }
}
