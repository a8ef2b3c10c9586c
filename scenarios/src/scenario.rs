//! The scenario file format: JSON, validated strictly. A scenario names the system under test,
//! the cluster, the network and how it changes, the faults, the workload or test steps, the
//! virtual duration and the checks. See docs/ARCHITECTURE.md for the full reference.

use crate::steps::validate::validate_steps;
use crate::steps::Step;
use serde::{Deserialize, Serialize};
use sim::{
    ms_to_us, ClockProfile, Fault, FaultProfile, Knob, NetworkConfig, ScheduledFault, SwarmProfile,
    Time,
};
use std::path::Path;

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, e.g. "raft/initial-election".
    pub name: String,
    /// What the scenario exercises and where it comes from.
    #[serde(default)]
    pub description: String,
    /// Which system runs on the nodes.
    pub system: SystemKind,
    /// Number of server nodes (ids 0..servers).
    pub servers: usize,
    /// Number of client nodes (ids servers..servers+clients).
    #[serde(default)]
    pub clients: usize,
    /// The run stops at this virtual time.
    pub duration_ms: f64,
    /// The network model at the start.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Fixed and random faults.
    #[serde(default)]
    pub faults: Faults,
    /// The nodes' clocks: drift per server (drawn per seed or fixed), and jumps. Perfect
    /// clocks without it (see `sim::clock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clocks: Option<ClockProfile>,
    /// Settings of the ping-pong example system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pingpong: Option<PingPongSettings>,
    /// Settings of Raft servers (system "raft").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft: Option<RaftSettings>,
    /// Settings of the KV service (system "kv").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<KvSettings>,
    /// Deliberate bugs to switch on, by catalog id (`sim power --list`); none by default.
    /// Raft bugs apply to Raft and KV scenarios, KV bugs to KV scenarios.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bugs: Vec<String>,
    /// The test driver's program (see `steps`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Branch points (`sim explore` writes them): after event `at_event`, every random stream
    /// of the run is drawn from `seed` instead. In event order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<sim::Branch>,
}

/// Raft settings; every field has the 6.824-compatible default shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSettings {
    /// Election timeouts are drawn from `[min, max)` ms (default [300, 600]).
    pub election_timeout_ms: [f64; 2],
    /// Leader heartbeat period in ms (default 100: at most 10 per second).
    pub heartbeat_ms: f64,
    /// Cap on entries in one AppendEntries (default 512).
    pub max_entries_per_append: usize,
    /// The tester's service snapshots every this many applied entries (6.824 2D: 10).
    pub snapshot_every: Option<u64>,
    /// Fail as soon as a server persists more Raft state than this (6.824 2D: 2000 bytes).
    pub max_raft_state_bytes: Option<u64>,
    /// Raft's PreVote (thesis §9.6); off by default, like Figure 2.
    #[serde(skip_serializing_if = "is_false")]
    pub pre_vote: bool,
    /// Raft's CheckQuorum (thesis §6.2); off by default.
    #[serde(skip_serializing_if = "is_false")]
    pub check_quorum: bool,
    /// Settings drawn per seed instead (swarm testing of the configuration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SystemKnobs>,
}

/// Raft settings drawn per seed, each a number or a range `[lo, hi]`: a seed with election
/// timeouts close together splits votes and runs rival candidates in one term; one with slow
/// heartbeats leaves followers on the edge of an election; one with small AppendEntries
/// batches feeds a lagging follower a piece of the log at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemKnobs {
    /// The election timeout's lower end, ms.
    pub election_timeout_min_ms: Knob,
    /// How much wider the upper end is, ms (the timeouts are drawn in `[min, min + spread)`).
    pub election_timeout_spread_ms: Knob,
    /// The leader's heartbeat period, ms (at most the drawn minimum election timeout).
    pub heartbeat_ms: Knob,
    /// Raft only: the tester's service snapshots every this many applied entries (rounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_every: Option<Knob>,
    /// Raft only: the cap on entries in one AppendEntries (rounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries_per_append: Option<Knob>,
}

/// The settings one seed drew.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrawnSettings {
    pub election_timeout_ms: [f64; 2],
    pub heartbeat_ms: f64,
    pub snapshot_every: Option<u64>,
    pub max_entries_per_append: Option<usize>,
}

impl SystemKnobs {
    /// Checks the knobs; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        self.election_timeout_min_ms
            .check("election_timeout_min_ms", 1.0, 1e6)?;
        self.election_timeout_spread_ms
            .check("election_timeout_spread_ms", 1.0, 1e6)?;
        self.heartbeat_ms.check("heartbeat_ms", 1.0, 1e6)?;
        if let Some(k) = &self.snapshot_every {
            k.check("snapshot_every", 1.0, 1e6)?;
        }
        if let Some(k) = &self.max_entries_per_append {
            k.check("max_entries_per_append", 1.0, 1e6)?;
        }
        Ok(())
    }

    /// This seed's settings (from their own stream, so nothing else a seed draws changes).
    pub fn draw(&self, seed: u64) -> DrawnSettings {
        let mut rng = sim::rng::stream(seed, sim::rng::Purpose::SystemKnobs);
        let ms = |x: f64| (x * 1000.0).round() / 1000.0;
        let min = ms(self.election_timeout_min_ms.draw(&mut rng));
        let spread = ms(self.election_timeout_spread_ms.draw(&mut rng));
        let heartbeat = ms(self.heartbeat_ms.draw(&mut rng)).min(min);
        let snapshot_every = self
            .snapshot_every
            .as_ref()
            .map(|k| k.draw(&mut rng).round().max(1.0) as u64);
        let max_entries_per_append = self
            .max_entries_per_append
            .as_ref()
            .map(|k| k.draw(&mut rng).round().max(1.0) as usize);
        DrawnSettings {
            election_timeout_ms: [min, min + spread],
            heartbeat_ms: heartbeat,
            snapshot_every,
            max_entries_per_append,
        }
    }
}

/// KV service settings; every field has the default shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KvSettings {
    /// Snapshot when the persisted Raft state nears this many bytes; -1 never (default -1).
    pub maxraftstate: i64,
    /// Raft election timeouts, `[min, max)` ms (default [300, 600]).
    pub election_timeout_ms: [f64; 2],
    /// Raft heartbeat period, ms (default 100).
    pub heartbeat_ms: f64,
    /// How long a clerk waits for an answer before trying the next server, ms (default 100,
    /// like labrpc's quick failure of calls to unreachable KV servers).
    pub retry_timeout_ms: f64,
    /// Check the whole history for linearizability at the end (default true).
    pub linearizability: bool,
    /// How servers answer `Get`s: `"log"` (default: a log entry, as in 6.824),
    /// `"read_index"` (Raft thesis §6.4: a round of leadership checks, no log entry) or
    /// `"lease"` (thesis §6.4.1: no message while the leader's lease holds).
    #[serde(skip_serializing_if = "ReadSetting::is_log")]
    pub read: ReadSetting,
    /// With `"lease"`: the clock drift bound (ppm) the leases are safe within (default 1000).
    #[serde(skip_serializing_if = "is_default_drift")]
    pub max_drift_ppm: u64,
    /// The servers' Raft runs PreVote (thesis §9.6); off by default.
    #[serde(skip_serializing_if = "is_false")]
    pub pre_vote: bool,
    /// The servers' Raft runs CheckQuorum (thesis §6.2); off by default.
    #[serde(skip_serializing_if = "is_false")]
    pub check_quorum: bool,
    /// Raft settings drawn per seed instead (`snapshot_every` and `max_entries_per_append`
    /// do not apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SystemKnobs>,
}

impl Default for KvSettings {
    fn default() -> Self {
        KvSettings {
            maxraftstate: -1,
            election_timeout_ms: [300.0, 600.0],
            heartbeat_ms: 100.0,
            retry_timeout_ms: 100.0,
            linearizability: true,
            read: ReadSetting::Log,
            max_drift_ppm: DEFAULT_MAX_DRIFT_PPM,
            pre_vote: false,
            check_quorum: false,
            swarm: None,
        }
    }
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            election_timeout_ms: [300.0, 600.0],
            heartbeat_ms: 100.0,
            max_entries_per_append: 512,
            snapshot_every: None,
            max_raft_state_bytes: None,
            pre_vote: false,
            check_quorum: false,
            swarm: None,
        }
    }
}

/// How KV servers answer `Get`s (`kv.read`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadSetting {
    /// Through the log, like every other operation.
    #[default]
    Log,
    /// By ReadIndex: leadership confirmed by a majority, no log entry.
    ReadIndex,
    /// By the leader's lease (ReadIndex when it does not hold).
    Lease,
}

/// The drift bound of leases unless a scenario names one: 1000 ppm, a common bound for
/// crystal clocks kept by NTP.
pub const DEFAULT_MAX_DRIFT_PPM: u64 = 1000;

fn is_default_drift(p: &u64) -> bool {
    *p == DEFAULT_MAX_DRIFT_PPM
}

impl ReadSetting {
    fn is_log(&self) -> bool {
        *self == ReadSetting::Log
    }
}

/// Leaves a switch that is off out of the normalized scenario, so files that do not name it
/// keep the header they always had.
fn is_false(b: &bool) -> bool {
    !*b
}

/// The systems this build can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemKind {
    /// The engine's ping-pong example.
    Pingpong,
    /// Raft servers driven by the 6.824 tester's steps.
    Raft,
    /// The key/value service on Raft, with clients.
    Kv,
}

/// Faults of a scenario: a fixed schedule and/or a random profile the seed draws from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    #[serde(default)]
    pub schedule: Vec<ScheduledFault>,
    #[serde(default)]
    pub random: Option<FaultProfile>,
    /// Swarm testing: each seed draws its own rates and network from ranges.
    #[serde(default)]
    pub swarm: Option<SwarmProfile>,
    /// The run's whole fault schedule, fixed: it replaces `schedule` and the schedules that
    /// `random` and `swarm` draw, while their other draws (the network, reactive rules) stay.
    /// `sim explore` writes it when it edits a run's faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_schedule: Option<Vec<ScheduledFault>>,
}

/// Ping-pong settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingPongSettings {
    /// Mean time between one node's pings.
    pub interval_ms: f64,
    /// Inject the double-counting bug.
    #[serde(default)]
    pub bug: bool,
    /// A node panics when about to count its N-th pong (tests of the panic path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic_at_pong: Option<u64>,
    /// The pong-count checker checks at most this many pongs and leaves the rest undecided
    /// (tests of the "unknown" verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_budget: Option<u64>,
}

/// A scenario error: where (a dotted path inside the file, possibly with line and column) and
/// what. Displayed as one line: `FILE: PLACE: PROBLEM`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub file: String,
    pub place: String,
    pub problem: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.place.is_empty() {
            write!(f, "{}: {}", self.file, self.problem)
        } else {
            write!(f, "{}: {}: {}", self.file, self.place, self.problem)
        }
    }
}

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            place: String::new(),
            problem: format!("cannot read: {e}"),
        })?;
        Scenario::parse(&text, &file)
    }

    /// Parses and validates scenario text; `file` is only used in messages.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let sc: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let place = if path == "." || path.is_empty() {
                format!("line {} column {}", inner.line(), inner.column())
            } else {
                format!("{path} (line {} column {})", inner.line(), inner.column())
            };
            // serde_json appends " at line L column C" to its messages; we give the place.
            let msg = inner.to_string();
            let problem = match msg.rfind(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            ScenarioError {
                file: file.to_string(),
                place,
                problem,
            }
        })?;
        sc.validate().map_err(|(place, problem)| ScenarioError {
            file: file.to_string(),
            place,
            problem,
        })?;
        Ok(sc)
    }

    /// Total nodes: servers then clients.
    pub fn nodes(&self) -> usize {
        self.servers + self.clients
    }

    /// The run's virtual deadline.
    pub fn deadline(&self) -> Time {
        ms_to_us(self.duration_ms)
    }

    /// Semantic checks serde cannot express. Errors are (place, problem).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |place: &str, problem: String| Err((place.to_string(), problem));
        if self.servers == 0 {
            return err("servers", "a scenario needs at least one server".into());
        }
        if self.nodes() > 1 << 20 {
            return err(
                "servers",
                format!("{} nodes is more than the engine supports", self.nodes()),
            );
        }
        if !(self.duration_ms.is_finite() && self.duration_ms > 0.0) {
            return err(
                "duration_ms",
                format!("must be a positive number, got {}", self.duration_ms),
            );
        }
        if let Err(e) = self.network.validate() {
            return err("network", e);
        }
        for (i, id) in self.bugs.iter().enumerate() {
            let place = format!("bugs[{i}]");
            match id.parse::<crate::catalog::CatalogBug>() {
                Err(e) => return err(&place, e),
                Ok(bug) if self.system == SystemKind::Pingpong => {
                    return err(
                        &place,
                        format!("{bug} is not a bug of the ping-pong system"),
                    )
                }
                Ok(bug) if bug.kv_only() && self.system != SystemKind::Kv => {
                    return err(
                        &place,
                        format!(
                            "{bug} is a bug of the KV service (or of the reads it serves); this is a {:?} scenario",
                            self.system
                        ),
                    )
                }
                Ok(_) => {}
            }
        }
        let fixed = self.faults.replace_schedule.iter().flatten();
        let listed = self.faults.schedule.iter().map(|sf| ("schedule", sf));
        for (i, (field, sf)) in listed
            .enumerate()
            .chain(fixed.map(|sf| ("replace_schedule", sf)).enumerate())
        {
            let place = format!("faults.{field}[{i}]");
            if !(sf.at_ms.is_finite() && sf.at_ms >= 0.0) {
                return err(
                    &place,
                    format!("at_ms must be a non-negative number, got {}", sf.at_ms),
                );
            }
            if sf.at_ms > self.duration_ms {
                return err(
                    &place,
                    format!(
                        "at_ms {} is after the end of the run ({} ms)",
                        sf.at_ms, self.duration_ms
                    ),
                );
            }
            if let Err(e) = sf.fault.validate(self.nodes()) {
                return err(&place, e);
            }
        }
        crate::clocks::validate(self)?;
        if let Some(p) = &self.faults.random {
            if let Err(e) = p.validate() {
                return err("faults.random", e);
            }
        }
        if let Some(p) = &self.faults.swarm {
            if let Err(e) = p.validate() {
                return err("faults.swarm", e);
            }
            if let Some(r) = &p.reactive {
                let known: &[&str] = match self.system {
                    SystemKind::Pingpong => &[],
                    SystemKind::Raft | SystemKind::Kv => crate::marks::MARKS,
                };
                for (i, rule) in r.rules.iter().enumerate() {
                    for (field, name) in [
                        ("mark", Some(&rule.mark)),
                        ("release_on", rule.release_on.as_ref()),
                    ] {
                        let Some(name) = name else { continue };
                        if !known.contains(&name.as_str()) {
                            return err(
                                &format!("faults.swarm.reactive.rules[{i}].{field}"),
                                format!(
                                    "no such mark {name:?} (this system reports: {})",
                                    known.join(", ")
                                ),
                            );
                        }
                    }
                }
            }
            if p.until_ms > self.duration_ms {
                return err(
                    "faults.swarm.until_ms",
                    format!(
                        "{} is after the end of the run ({} ms)",
                        p.until_ms, self.duration_ms
                    ),
                );
            }
        }
        match self.system {
            SystemKind::Pingpong => {
                let Some(pp) = &self.pingpong else {
                    return err(
                        "pingpong",
                        "system \"pingpong\" needs a \"pingpong\" section".into(),
                    );
                };
                if !(pp.interval_ms.is_finite() && pp.interval_ms >= 0.002) {
                    return err(
                        "pingpong.interval_ms",
                        format!("must be at least 0.002, got {}", pp.interval_ms),
                    );
                }
                if !self.steps.is_empty() {
                    return err("steps", "the pingpong system takes no steps".into());
                }
            }
            SystemKind::Raft => {
                let r = self.raft.clone().unwrap_or_default();
                let [lo, hi] = r.election_timeout_ms;
                if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo < hi) {
                    return err(
                        "raft.election_timeout_ms",
                        format!("need 0 < min < max, got [{lo}, {hi}]"),
                    );
                }
                if !(r.heartbeat_ms.is_finite() && r.heartbeat_ms > 0.0) {
                    return err(
                        "raft.heartbeat_ms",
                        format!("must be positive, got {}", r.heartbeat_ms),
                    );
                }
                if r.max_entries_per_append == 0 {
                    return err("raft.max_entries_per_append", "must be at least 1".into());
                }
                if r.snapshot_every == Some(0) {
                    return err("raft.snapshot_every", "must be at least 1".into());
                }
                if let Some(t) = &r.swarm {
                    if let Err(e) = t.validate() {
                        return err(
                            &format!("raft.swarm.{}", e.split(':').next().unwrap_or("")),
                            e,
                        );
                    }
                }
                if self.clients != 0 {
                    return err(
                        "clients",
                        "the raft system has no client nodes (the tester calls servers directly)"
                            .into(),
                    );
                }
            }
            SystemKind::Kv => {
                let k = self.kv.clone().unwrap_or_default();
                let [lo, hi] = k.election_timeout_ms;
                if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo < hi) {
                    return err(
                        "kv.election_timeout_ms",
                        format!("need 0 < min < max, got [{lo}, {hi}]"),
                    );
                }
                for (name, v) in [
                    ("kv.heartbeat_ms", k.heartbeat_ms),
                    ("kv.retry_timeout_ms", k.retry_timeout_ms),
                ] {
                    if !(v.is_finite() && v > 0.0) {
                        return err(name, format!("must be positive, got {v}"));
                    }
                }
                if k.maxraftstate == 0 || k.maxraftstate < -1 {
                    return err(
                        "kv.maxraftstate",
                        format!(
                            "must be positive or -1 (no snapshots), got {}",
                            k.maxraftstate
                        ),
                    );
                }
                if let Some(t) = &k.swarm {
                    if t.snapshot_every.is_some() || t.max_entries_per_append.is_some() {
                        return err(
                            "kv.swarm",
                            "snapshot_every and max_entries_per_append are Raft tester settings; the KV service snapshots by maxraftstate".into(),
                        );
                    }
                    if let Err(e) = t.validate() {
                        return err(
                            &format!("kv.swarm.{}", e.split(':').next().unwrap_or("")),
                            e,
                        );
                    }
                }
                if self.clients == 0 {
                    return err("clients", "a KV scenario needs at least one client".into());
                }
                crate::clocks::validate_lease(&k)?;
            }
        }
        validate_steps(&self.steps, self.system, self.servers)?;
        Ok(())
    }

    /// The fixed schedule in engine form.
    pub fn scheduled_faults(&self) -> Vec<(Time, Fault)> {
        self.faults
            .schedule
            .iter()
            .map(|sf| (ms_to_us(sf.at_ms), sf.fault.clone()))
            .collect()
    }
}

#[cfg(test)]
#[path = "scenario_tests.rs"]
mod tests;
