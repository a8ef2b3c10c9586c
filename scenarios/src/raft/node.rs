//! The adapter that makes a `raft::Raft` an engine node, with the 6.824 tester's service on
//! top: it applies committed commands, reports them, and (for the snapshot tests) hands Raft
//! a snapshot every `snapshot_every` applied entries.

use super::checks::{RaftEvent, RaftEvents};
use crate::marks::RaftWatch;
use crate::wire::{DeadlineTimer, RaftDurable, Wire};
use raft::{Apply, Event, Raft, Role, StorageOp};
use serde::{Deserialize, Serialize};
use sim::{Ctx, Node, NodeId, Time, TimerId};

/// A tester command: a value, plus padding that stands for a large payload (the RPC byte count
/// test sends 5000-byte commands) without holding the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cmd {
    pub value: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pad: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl crate::disk_state::Garble for Cmd {
    /// A damaged record reads as another value (so a server that trusts it applies a
    /// command nobody submitted).
    fn garble(&self) -> Self {
        Cmd {
            value: self.value ^ 0x9e37_79b9_7f4a_7c15,
            pad: self.pad,
        }
    }
}

impl raft::Command for Cmd {
    fn size_bytes(&self) -> usize {
        8 + self.pad as usize
    }
}

/// A Raft message on the simulated network.
pub type RaftMsg = Wire<raft::Message<Cmd>>;

/// A Raft server's durable state.
pub type ServerDurable = RaftDurable<Cmd>;

/// How the adapter builds each server.
#[derive(Clone, Debug)]
pub struct RaftNodeConfig {
    /// Servers are nodes 0..servers.
    pub servers: usize,
    pub election_timeout_us: (Time, Time),
    pub heartbeat_us: Time,
    pub max_entries_per_append: usize,
    /// The service snapshots when the applied index is a multiple of this (6.824: 10).
    pub snapshot_every: Option<u64>,
    /// Raft's PreVote and CheckQuorum (`raft::Config`), off in the lab scenarios.
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Deliberate bugs to switch on (none outside power campaigns).
    pub bugs: raft::Bugs,
}

/// A harness request to a server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RaftInput {
    /// Raft's `Start(command)`.
    Start(Cmd),
}

/// The answer to [`RaftInput::Start`]: `(index, term)` if this server is leader.
pub type RaftReply = Option<(u64, u64)>;

/// One change of a server's durable log, as checkers mirror it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogChange {
    /// Entries at and after `from` are gone.
    Truncate { from: u64 },
    /// `(index, term, value)` appended.
    Append { entries: Vec<(u64, u64, u64)> },
    /// The log now starts after a snapshot through `index` (of `term`).
    Snapshot { index: u64, term: u64 },
}

/// What a server reports to the checkers and the harness.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RaftObs {
    /// A new incarnation started with this commit index (its snapshot's index).
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
    /// The service applied a command.
    Applied {
        index: u64,
        term: u64,
        value: u64,
    },
    /// The service restored a snapshot holding the values of entries 1..=index.
    Restored {
        index: u64,
        term: u64,
        values: Vec<u64>,
    },
    Log(LogChange),
}

/// The tester's service state: every applied value, in order (entry i at position i-1).
#[derive(Default)]
struct Service {
    values: Vec<u64>,
}

fn encode(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn decode(data: &[u8]) -> Vec<u64> {
    data.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// One Raft server with its tester service.
pub struct RaftNode {
    raft: Raft<Cmd>,
    service: Service,
    snapshot_every: Option<u64>,
    /// The timer waiting for Raft's next deadline.
    timer: DeadlineTimer,
    /// Raft's last log index after the previous call (for the `truncate` mark's depth).
    last_index: u64,
    /// It lost synced state and serves nothing (`crate::disk_state::boot`): to the others it
    /// is down.
    halted: bool,
}

impl RaftNode {
    /// The Raft state machine, for the harness's `GetState` and checks.
    pub fn raft(&self) -> &Raft<Cmd> {
        &self.raft
    }
    /// The value the service applied at `index`, if any (before a snapshot it was restored).
    pub fn applied(&self, index: u64) -> Option<u64> {
        let i = usize::try_from(index).ok()?.checked_sub(1)?;
        self.service.values.get(i).copied()
    }
    /// Did it halt after finding synced state lost (`crate::disk_state::boot`)?
    pub fn halted(&self) -> bool {
        self.halted
    }
    /// How many entries the service has applied.
    pub fn applied_len(&self) -> u64 {
        self.service.values.len() as u64
    }

    /// Route everything Raft produced, then re-arm the timer for its next deadline.
    fn flush(&mut self, ctx: &mut Ctx<'_, Self>) {
        while self.raft.has_ready() {
            let ready = self.raft.take_ready();
            // Raft's order within one Ready: role changes, log writes, commit, applies.
            let (roles, commits): (Vec<Event>, Vec<Event>) = ready
                .events
                .into_iter()
                .partition(|e| !matches!(e, Event::CommitAdvanced { .. }));
            for event in roles {
                let (mark, context) = crate::marks::event_mark(&event, &self.raft);
                ctx.mark_with(mark, context);
                ctx.observe(match event {
                    Event::BecameFollower { term } => role("follower", term),
                    Event::BecameCandidate { term } => role("candidate", term),
                    Event::BecameLeader { term } => role("leader", term),
                    Event::CommitAdvanced { .. } => unreachable!("partitioned out"),
                });
            }
            let leader = self.raft.is_leader();
            let wrote = !ready.storage.is_empty();
            for op in ready.storage {
                let in_flight = self
                    .raft
                    .last_index()
                    .saturating_sub(self.raft.commit_index());
                if let Some((mark, context)) =
                    crate::marks::storage_mark(&op, leader, self.last_index, in_flight)
                {
                    ctx.mark_with(mark, context);
                }
                if let Some(change) = log_change(&op, |c: &Cmd| c.value) {
                    ctx.observe(RaftObs::Log(change));
                }
                ctx.persist(op.into());
            }
            let bugs = self.raft.config().bugs;
            crate::wire::sync_then_send(ctx, wrote, ready.messages, bugs, |m| m);
            let term = self.raft.current_term();
            for event in commits {
                if let Event::CommitAdvanced { commit_index } = event {
                    ctx.mark("commit");
                    ctx.observe(RaftObs::Commit { commit_index, term });
                }
            }
            for apply in ready.applies {
                self.apply(ctx, apply);
            }
        }
        self.last_index = self.raft.last_index();
        self.timer.arm(ctx, self.raft.next_deadline());
    }

    fn apply(&mut self, ctx: &mut Ctx<'_, Self>, apply: Apply<Cmd>) {
        match apply {
            Apply::Command {
                index,
                term,
                command,
            } => {
                debug_assert_eq!(
                    index,
                    self.service.values.len() as u64 + 1,
                    "applies are consecutive"
                );
                self.service.values.push(command.value);
                ctx.observe(RaftObs::Applied {
                    index,
                    term,
                    value: command.value,
                });
                if let Some(every) = self.snapshot_every {
                    if index % every == 0 {
                        self.raft.snapshot(index, encode(&self.service.values));
                    }
                }
            }
            Apply::Snapshot { snapshot } => {
                ctx.mark("install");
                let values = decode(&snapshot.data);
                self.service.values = values.clone();
                ctx.observe(RaftObs::Restored {
                    index: snapshot.last_included_index,
                    term: snapshot.last_included_term,
                    values,
                });
            }
        }
    }
}

fn role(name: &str, term: u64) -> RaftObs {
    RaftObs::Role {
        role: name.to_string(),
        term,
    }
}

/// The change a durable write makes to the log, each appended command named by
/// `command_id`; None for term and vote. Shared by the Raft and KV adapters.
pub fn log_change<C>(op: &StorageOp<C>, command_id: impl Fn(&C) -> u64) -> Option<LogChange> {
    Some(match op {
        StorageOp::HardState { .. } => return None,
        StorageOp::TruncateFrom { index } => LogChange::Truncate { from: *index },
        StorageOp::Append { entries } => LogChange::Append {
            entries: entries
                .iter()
                .map(|e| (e.index, e.term, command_id(&e.command)))
                .collect(),
        },
        StorageOp::Snapshot { snapshot } => LogChange::Snapshot {
            index: snapshot.last_included_index,
            term: snapshot.last_included_term,
        },
    })
}

impl Node for RaftNode {
    type Config = RaftNodeConfig;
    type Msg = RaftMsg;
    type Input = RaftInput;
    type Reply = RaftReply;
    type Obs = RaftObs;
    type Durable = ServerDurable;

    fn start(cfg: &RaftNodeConfig, ctx: &mut Ctx<'_, Self>, durable: &ServerDurable) -> Self {
        let mut config = raft::Config::new(ctx.id(), (0..cfg.servers).collect());
        config.election_timeout_min = cfg.election_timeout_us.0;
        config.election_timeout_max = cfg.election_timeout_us.1;
        config.heartbeat_interval = cfg.heartbeat_us;
        config.max_entries_per_append = cfg.max_entries_per_append;
        config.pre_vote = cfg.pre_vote;
        config.check_quorum = cfg.check_quorum;
        config.bugs = cfg.bugs;
        let now = ctx.now();
        let boot = crate::disk_state::boot(durable, cfg.bugs);
        let raft = Raft::new(config, &boot.storage, now, ctx.rng());
        ctx.observe(RaftObs::Boot {
            commit_index: raft.commit_index(),
        });
        if !boot.writes.is_empty() {
            for w in boot.writes {
                ctx.persist(w);
            }
            ctx.sync();
        }
        let mut node = RaftNode {
            last_index: raft.last_index(),
            raft,
            service: Service::default(),
            snapshot_every: cfg.snapshot_every,
            timer: DeadlineTimer::default(),
            halted: boot.halt,
        };
        if !node.halted {
            node.flush(ctx);
        }
        node
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: RaftMsg) {
        if self.halted {
            return;
        }
        let now = ctx.now();
        let watch = RaftWatch::before(&self.raft, Some(&msg.0));
        self.raft.handle_message(now, ctx.rng(), from, msg.0);
        watch.after(ctx, &self.raft);
        self.flush(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: TimerId, _tag: u64) {
        self.timer.fired(timer);
        if self.halted {
            return;
        }
        let now = ctx.now();
        let watch = RaftWatch::before(&self.raft, None);
        self.raft.tick(now, ctx.rng());
        watch.after(ctx, &self.raft);
        self.flush(ctx);
    }

    fn durable_lag(&self, durable: &ServerDurable) -> Option<String> {
        self.lag(durable)
    }

    fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, input: RaftInput) -> RaftReply {
        match input {
            RaftInput::Start(_) if self.halted => None,
            RaftInput::Start(cmd) => {
                let now = ctx.now();
                let res = self.raft.start(now, ctx.rng(), cmd);
                self.flush(ctx);
                res
            }
        }
    }
}

impl RaftNode {
    fn lag(&self, durable: &ServerDurable) -> Option<String> {
        super::durable::durable_lag(&self.raft, &durable.recovered())
    }
}

impl RaftEvents for RaftNode {
    fn hard_state(durable: &ServerDurable) -> (u64, Option<NodeId>) {
        let s = durable.recovered();
        (s.current_term, s.voted_for)
    }

    fn durable_log(durable: &ServerDurable) -> (u64, u64, Vec<(u64, u64)>) {
        crate::raft::checks::storage_log(&durable.recovered(), |c: &Cmd| c.value)
    }

    fn raft_event(obs: &RaftObs) -> Option<RaftEvent<'_>> {
        Some(match obs {
            RaftObs::Boot { commit_index } => RaftEvent::Boot {
                commit_index: *commit_index,
            },
            RaftObs::Role { role, term } => RaftEvent::Role {
                leader: role == "leader",
                term: *term,
            },
            RaftObs::Commit { commit_index, term } => RaftEvent::Commit {
                commit_index: *commit_index,
                term: *term,
            },
            RaftObs::Applied { index, term, value } => RaftEvent::Applied {
                index: *index,
                term: *term,
                entry: *value,
            },
            RaftObs::Restored {
                index,
                term,
                values,
            } => RaftEvent::Restored {
                index: *index,
                term: *term,
                entries: Some(values),
            },
            RaftObs::Log(change) => RaftEvent::Log(change),
        })
    }
}

/// The role of a server as the tester sees it.
pub fn is_leader(node: &RaftNode) -> bool {
    node.raft.role() == Role::Leader
}
