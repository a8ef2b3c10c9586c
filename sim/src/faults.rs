//! Node and network faults: fixed schedules and random fault profiles drawn from the seed.

use crate::network::{check_probability, ms_to_us, NetworkConfig};
use crate::node::{NodeId, Time};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One fault or repair, applied by the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The node dies: volatile state and pending timers are gone; durable state is kept.
    Crash(NodeId),
    /// A new incarnation starts from the durable state (no-op if the node is up).
    Restart(NodeId),
    /// Cut every link of the node.
    Disconnect(NodeId),
    /// Restore the node's links (partitions and cuts still apply).
    Reconnect(NodeId),
    /// Split nodes into groups that cannot talk to each other.
    Partition(Vec<Vec<NodeId>>),
    /// Cut the one-way link `from` → `to`.
    Cut { from: NodeId, to: NodeId },
    /// Remove partitions and cuts.
    Heal,
    /// Change the network model.
    Network(NetworkConfig),
    /// Hold back every message `node` sends or receives in the next `for_ms`; release them
    /// (each after the delay the network drew for it) at the first `release_on` mark reported
    /// after this point, by `node` itself if `same_node`, else by any node; at the latest
    /// after `max_ms`.
    Hold {
        node: NodeId,
        for_ms: f64,
        release_on: String,
        #[serde(default)]
        same_node: bool,
        max_ms: f64,
    },
    /// Release every held message now.
    Release,
    /// The node's clock steps by `by_ms` (forward if positive): its local time, not its
    /// pending timers (see `clock.rs`).
    ClockJump { node: NodeId, by_ms: f64 },
    /// The node's clock runs at `drift_ppm` from now on.
    ClockDrift { node: NodeId, drift_ppm: i64 },
}

impl Fault {
    /// The nodes a fault names, for validation.
    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            Fault::Crash(n) | Fault::Restart(n) | Fault::Disconnect(n) | Fault::Reconnect(n) => {
                vec![*n]
            }
            Fault::Partition(groups) => groups.iter().flatten().copied().collect(),
            Fault::Cut { from, to } => vec![*from, *to],
            Fault::Hold { node, .. }
            | Fault::ClockJump { node, .. }
            | Fault::ClockDrift { node, .. } => vec![*node],
            Fault::Heal | Fault::Network(_) | Fault::Release => vec![],
        }
    }

    /// Checks node ids and settings; the error says what is wrong.
    pub fn validate(&self, nodes: usize) -> Result<(), String> {
        if let Some(n) = self.nodes().into_iter().find(|&n| n >= nodes) {
            return Err(format!(
                "node {n} does not exist (the cluster has nodes 0..{nodes})"
            ));
        }
        if let Fault::Partition(groups) = self {
            let mut seen = vec![false; nodes];
            for n in groups.iter().flatten() {
                if std::mem::replace(&mut seen[*n], true) {
                    return Err(format!("node {n} is in two partition groups"));
                }
            }
        }
        if let Fault::Network(cfg) = self {
            cfg.validate()?;
        }
        match self {
            Fault::ClockJump { by_ms, .. } if !by_ms.is_finite() || by_ms.abs() > 1e9 => {
                return Err(format!(
                    "clock_jump.by_ms: must be a number of ms within ±1e9, got {by_ms}"
                ));
            }
            Fault::ClockDrift { drift_ppm, .. } => {
                crate::clock::check_drift(*drift_ppm).map_err(|e| format!("clock_drift: {e}"))?
            }
            _ => {}
        }
        if let Fault::Hold { for_ms, max_ms, .. } = self {
            for (name, v) in [("for_ms", for_ms), ("max_ms", max_ms)] {
                if !(v.is_finite() && *v >= 0.0) {
                    return Err(format!(
                        "hold.{name}: must be a non-negative number, got {v}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A fault at a fixed virtual time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledFault {
    pub at_ms: f64,
    pub fault: Fault,
}

/// A random fault profile: rates the seed draws a schedule from. Faults stop at `until_ms` and
/// everything is repaired then, so liveness can be checked afterwards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultProfile {
    /// Mean crashes per second of virtual time, over the whole cluster.
    pub crashes_per_s: f64,
    /// How long a crashed node stays down, `[min, max]` ms.
    pub down_ms: [f64; 2],
    /// Share of crashes that are flash crashes, down for `flash_ms` instead: the node is back
    /// before the cluster noticed, with only what it had made durable.
    #[serde(skip_serializing_if = "is_zero")]
    pub flash: f64,
    /// Down time of a flash crash, `[min, max]` ms.
    #[serde(skip_serializing_if = "is_default_flash_ms")]
    pub flash_ms: [f64; 2],
    /// Mean partitions per second.
    pub partitions_per_s: f64,
    /// How long a partition lasts, `[min, max]` ms.
    pub partition_ms: [f64; 2],
    /// Chance that a partition is a one-way cut of a single link rather than a split.
    pub one_way: f64,
    /// Faults start after this time.
    pub from_ms: f64,
    /// No new fault after this time; all are repaired by then.
    pub until_ms: f64,
}

impl Default for FaultProfile {
    fn default() -> Self {
        FaultProfile {
            crashes_per_s: 0.0,
            down_ms: [100.0, 2000.0],
            flash: 0.0,
            flash_ms: DEFAULT_FLASH_MS,
            partitions_per_s: 0.0,
            partition_ms: [100.0, 2000.0],
            one_way: 0.0,
            from_ms: 0.0,
            until_ms: 0.0,
        }
    }
}

impl FaultProfile {
    /// Checks rates and ranges; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("crashes_per_s", self.crashes_per_s),
            ("partitions_per_s", self.partitions_per_s),
            ("from_ms", self.from_ms),
            ("until_ms", self.until_ms),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name}: must be a non-negative number, got {v}"));
            }
        }
        for (name, [lo, hi]) in [
            ("down_ms", self.down_ms),
            ("flash_ms", self.flash_ms),
            ("partition_ms", self.partition_ms),
        ] {
            if !(lo.is_finite() && hi.is_finite() && lo >= 0.0 && lo <= hi) {
                return Err(format!("{name}: need 0 <= min <= max, got [{lo}, {hi}]"));
            }
        }
        check_probability("one_way", self.one_way)?;
        check_probability("flash", self.flash)?;
        if self.until_ms < self.from_ms {
            return Err(format!(
                "until_ms: {} is before from_ms {}",
                self.until_ms, self.from_ms
            ));
        }
        Ok(())
    }

    /// Draws a concrete schedule over `servers` (only they crash or get partitioned). Each crash
    /// gets its restart and each partition its heal, all no later than `until_ms`.
    pub fn draw(&self, servers: &[NodeId], rng: &mut ChaCha8Rng) -> Vec<(Time, Fault)> {
        let mut out = Vec::new();
        let (from, until) = (ms_to_us(self.from_ms), ms_to_us(self.until_ms));
        if servers.is_empty() || until <= from {
            return out;
        }
        // Poisson arrivals: exponential gaps between events.
        let mut t = from;
        let mut down_until = vec![0 as Time; servers.len()];
        let crashing = self.crashes_per_s > 0.0;
        while crashing && t < until {
            t += exp_gap(rng, self.crashes_per_s);
            if t >= until {
                break;
            }
            let i = rng.random_range(0..servers.len());
            let mut down = draw_range(rng, self.down_ms);
            // Drawn only when flash crashes are on, so older profiles keep their schedules.
            if self.flash > 0.0 && rng.random_bool(self.flash) {
                down = draw_range(rng, self.flash_ms);
            }
            if down_until[i] > t {
                continue; // already down
            }
            let back = (t + down).min(until);
            down_until[i] = back;
            out.push((t, Fault::Crash(servers[i])));
            out.push((back, Fault::Restart(servers[i])));
        }
        let mut t = from;
        let mut healed_at = 0;
        let partitioning = self.partitions_per_s > 0.0;
        while partitioning && t < until {
            t += exp_gap(rng, self.partitions_per_s);
            if t >= until {
                break;
            }
            let len = draw_range(rng, self.partition_ms);
            if t < healed_at {
                continue; // one partition at a time keeps heals unambiguous
            }
            let fault = if servers.len() >= 2 && rng.random_bool(self.one_way) {
                let a = rng.random_range(0..servers.len());
                let b = (a + rng.random_range(1..servers.len())) % servers.len();
                Fault::Cut {
                    from: servers[a],
                    to: servers[b],
                }
            } else {
                Fault::Partition(random_split(servers, rng))
            };
            healed_at = (t + len).min(until);
            out.push((t, fault));
            out.push((healed_at, Fault::Heal));
        }
        out.sort_by_key(|(t, _)| *t);
        out
    }
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// The default down time of a flash crash, `[0.1, 20]` ms.
pub const DEFAULT_FLASH_MS: [f64; 2] = [0.1, 20.0];

pub(crate) fn is_default_flash_ms(r: &[f64; 2]) -> bool {
    *r == DEFAULT_FLASH_MS
}

fn exp_gap(rng: &mut ChaCha8Rng, rate_per_s: f64) -> Time {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    ((-u.ln() / rate_per_s) * 1e6) as Time
}

fn draw_range(rng: &mut ChaCha8Rng, [lo, hi]: [f64; 2]) -> Time {
    let (lo, hi) = (ms_to_us(lo), ms_to_us(hi));
    if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

/// A random majority/minority split of `servers` (the minority may be a single node).
pub fn random_split(servers: &[NodeId], rng: &mut ChaCha8Rng) -> Vec<Vec<NodeId>> {
    let mut shuffled = servers.to_vec();
    for i in (1..shuffled.len()).rev() {
        let j = rng.random_range(0..=i);
        shuffled.swap(i, j);
    }
    let minority = rng.random_range(1..=(servers.len().saturating_sub(1) / 2).max(1));
    let mut a = shuffled[minority..].to_vec();
    let mut b = shuffled[..minority].to_vec();
    a.sort_unstable();
    b.sort_unstable();
    vec![a, b]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};

    #[test]
    fn drawn_schedule_repairs_everything_by_until() {
        let p = FaultProfile {
            crashes_per_s: 2.0,
            partitions_per_s: 1.0,
            one_way: 0.3,
            until_ms: 10_000.0,
            ..FaultProfile::default()
        };
        p.validate().unwrap();
        let sched = p.draw(&[0, 1, 2, 3, 4], &mut stream(3, Purpose::Faults));
        assert!(sched.len() > 10);
        let mut down = [false; 5];
        let mut split = false;
        for (t, f) in &sched {
            assert!(*t <= 10_000_000);
            match f {
                Fault::Crash(n) => {
                    assert!(!down[*n]);
                    down[*n] = true
                }
                Fault::Restart(n) => down[*n] = false,
                Fault::Partition(g) => {
                    assert!(g[0].len() > g[1].len());
                    split = true
                }
                Fault::Cut { .. } => split = true,
                Fault::Heal => split = false,
                _ => unreachable!(),
            }
        }
        assert_eq!(down, [false; 5]);
        assert!(!split);
        assert_eq!(
            sched,
            p.draw(&[0, 1, 2, 3, 4], &mut stream(3, Purpose::Faults))
        );
    }

    #[test]
    fn validation() {
        assert!(Fault::Crash(5)
            .validate(5)
            .unwrap_err()
            .contains("node 5 does not exist"));
        assert!(Fault::Partition(vec![vec![0, 1], vec![1]])
            .validate(3)
            .unwrap_err()
            .contains("two partition groups"));
        let p = FaultProfile {
            down_ms: [5.0, 1.0],
            ..FaultProfile::default()
        };
        assert!(p.validate().unwrap_err().starts_with("down_ms"));
    }
}
