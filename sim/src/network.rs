//! The network model: latency, loss, duplication, long delays (reordering), partitions and
//! one-way link cuts. Every decision is drawn from the run's network stream.

use crate::node::{NodeId, Time};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How messages travel. Times are in milliseconds (fractions allowed) in scenario files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Uniform delivery latency range `[min, max]` in ms. Random latency also reorders messages.
    pub latency_ms: [f64; 2],
    /// Probability that a request (a message that is not a reply) is lost.
    pub drop_request: f64,
    /// Probability that a reply is lost.
    pub drop_reply: f64,
    /// Probability that a delivered message is delivered twice.
    pub duplicate: f64,
    /// Rare long delays, e.g. labrpc's "long reordering".
    pub long_delay: Option<LongDelay>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig::reliable()
    }
}

/// How a long delay's length is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelayShape {
    /// Uniform in `[min_ms, max_ms]`.
    Uniform,
    /// `min + rand(1 + rand(max - min))`: skewed towards short, as labrpc draws it.
    Nested,
}

/// Extra delay added to some messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongDelay {
    /// Chance that a message gets the extra delay.
    pub probability: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Only replies are delayed (labrpc delays replies only).
    #[serde(default)]
    pub replies_only: bool,
    #[serde(default = "uniform")]
    pub shape: DelayShape,
}

fn uniform() -> DelayShape {
    DelayShape::Uniform
}

/// Milliseconds (possibly fractional) to integer microseconds.
pub fn ms_to_us(ms: f64) -> Time {
    (ms * 1000.0).round() as Time
}

impl NetworkConfig {
    /// Immediate, lossless delivery.
    pub fn reliable() -> Self {
        NetworkConfig {
            latency_ms: [0.0, 0.0],
            drop_request: 0.0,
            drop_reply: 0.0,
            duplicate: 0.0,
            long_delay: None,
        }
    }

    /// The 6.824 labrpc reliable network as the Raft lab tests see it: nothing is lost, but a
    /// message still takes 2-10 ms. labrpc hands every RPC through goroutines, channels and gob
    /// encoding, so on a real machine the tester's millisecond sleeps (Figure 8 crashes the
    /// leader 0-12 ms after `Start`) interleave with deliveries; an instantaneous network never
    /// lets a leader die with an entry only it holds, and so never forms Figure 8's logs.
    pub fn labrpc_reliable() -> Self {
        NetworkConfig {
            latency_ms: [2.0, 10.0],
            ..NetworkConfig::reliable()
        }
    }

    /// The 6.824 labrpc unreliable network: 0–26 ms per request, 10% of requests and 10% of
    /// replies lost.
    pub fn labrpc_unreliable() -> Self {
        NetworkConfig {
            latency_ms: [0.0, 26.0],
            drop_request: 0.1,
            drop_reply: 0.1,
            ..NetworkConfig::reliable()
        }
    }

    /// labrpc's long reordering: about 600 of 900 replies wait 200 + rand(1 + rand(2000)) ms.
    pub fn labrpc_long_reordering() -> LongDelay {
        LongDelay {
            probability: 600.0 / 900.0,
            min_ms: 200.0,
            max_ms: 2200.0,
            replies_only: true,
            shape: DelayShape::Nested,
        }
    }

    /// Checks every setting; the error names the field (relative to this object) and the problem.
    pub fn validate(&self) -> Result<(), String> {
        let [lo, hi] = self.latency_ms;
        if !(lo.is_finite() && hi.is_finite() && lo >= 0.0 && lo <= hi) {
            return Err(format!(
                "latency_ms: need 0 <= min <= max, got [{lo}, {hi}]"
            ));
        }
        for (name, p) in [
            ("drop_request", self.drop_request),
            ("drop_reply", self.drop_reply),
            ("duplicate", self.duplicate),
        ] {
            check_probability(name, p)?;
        }
        if let Some(ld) = &self.long_delay {
            check_probability("long_delay.probability", ld.probability)?;
            if !(ld.min_ms.is_finite()
                && ld.max_ms.is_finite()
                && ld.min_ms >= 0.0
                && ld.min_ms <= ld.max_ms)
            {
                return Err(format!(
                    "long_delay: need 0 <= min_ms <= max_ms, got {} and {}",
                    ld.min_ms, ld.max_ms
                ));
            }
        }
        Ok(())
    }
}

/// A probability must lie in [0, 1].
pub fn check_probability(name: &str, p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!(
            "{name}: a probability must be between 0 and 1, got {p}"
        ))
    }
}

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropCause {
    /// Lost at random (drop probability).
    Random,
    /// The link was cut (partition, disconnect, one-way cut) at send or at delivery time.
    Partition,
    /// The destination was down at delivery time.
    Crashed,
    /// The sender crashed before the sync the message waited for completed (a realistic
    /// disk): it never left.
    Unsynced,
}

/// Who can talk to whom. A node listed in no partition group talks to every group (clients, by
/// default); isolation and one-way cuts apply on top.
#[derive(Clone, Debug, Default)]
pub struct Connectivity {
    group: Vec<Option<usize>>,
    isolated: Vec<bool>,
    cuts: BTreeSet<(NodeId, NodeId)>,
}

impl Connectivity {
    /// Everyone connected.
    pub fn new(nodes: usize) -> Self {
        Connectivity {
            group: vec![None; nodes],
            isolated: vec![false; nodes],
            cuts: BTreeSet::new(),
        }
    }
    /// Can a message from `from` reach `to` right now?
    #[inline]
    pub fn connected(&self, from: NodeId, to: NodeId) -> bool {
        if self.isolated[from] || self.isolated[to] {
            return false;
        }
        if let (Some(a), Some(b)) = (self.group[from], self.group[to]) {
            if a != b {
                return false;
            }
        }
        self.cuts.is_empty() || !self.cuts.contains(&(from, to))
    }
    /// Split into groups; nodes in no group keep talking to all.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.group.iter_mut().for_each(|g| *g = None);
        for (i, members) in groups.iter().enumerate() {
            for &n in members {
                self.group[n] = Some(i);
            }
        }
    }
    /// Is `node` cut off from everyone?
    pub fn isolated(&self, node: NodeId) -> bool {
        self.isolated[node]
    }
    /// Cut every link of `node` (6.824's disconnect).
    pub fn set_isolated(&mut self, node: NodeId, isolated: bool) {
        self.isolated[node] = isolated;
    }
    /// Cut the link from `from` to `to` only.
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cuts.insert((from, to));
    }
    /// Remove partitions and one-way cuts (isolated nodes stay isolated until reconnected).
    pub fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = None);
        self.cuts.clear();
    }
    /// The current partition groups, for traces and the viewer.
    pub fn groups(&self) -> Vec<Vec<NodeId>> {
        let mut out: Vec<Vec<NodeId>> = Vec::new();
        for (n, g) in self.group.iter().enumerate() {
            if let Some(g) = *g {
                if out.len() <= g {
                    out.resize(g + 1, Vec::new());
                }
                out[g].push(n);
            }
        }
        out.retain(|g| !g.is_empty());
        out
    }
}

/// The fate of one sent message, drawn at send time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Lost,
    /// Delivered after these delays (a second one if duplicated).
    Deliver {
        delay: Time,
        duplicate: Option<Time>,
    },
}

/// A [`NetworkConfig`] turned into integer thresholds and µs, so that drawing a message's fate
/// costs a few integer compares (this runs once per message).
#[derive(Clone, Debug)]
pub struct NetworkModel {
    drop_request: u64,
    drop_reply: u64,
    duplicate: u64,
    latency: (Time, Time),
    long_delay: Option<(u64, Time, Time, bool, DelayShape)>,
}

/// `p` as a threshold for a uniform u64 draw; 0 never fires, 1 always does.
fn threshold(p: f64) -> u64 {
    if p >= 1.0 {
        u64::MAX
    } else {
        (p * 18_446_744_073_709_551_616.0) as u64
    }
}

#[inline]
fn chance(rng: &mut ChaCha8Rng, threshold: u64) -> bool {
    threshold != 0 && (threshold == u64::MAX || rng.next_u64() < threshold)
}

impl NetworkModel {
    /// Compiles a validated config.
    pub fn new(cfg: &NetworkConfig) -> Self {
        NetworkModel {
            drop_request: threshold(cfg.drop_request),
            drop_reply: threshold(cfg.drop_reply),
            duplicate: threshold(cfg.duplicate),
            latency: (ms_to_us(cfg.latency_ms[0]), ms_to_us(cfg.latency_ms[1])),
            long_delay: cfg.long_delay.as_ref().map(|ld| {
                (
                    threshold(ld.probability),
                    ms_to_us(ld.min_ms),
                    ms_to_us(ld.max_ms),
                    ld.replies_only,
                    ld.shape,
                )
            }),
        }
    }

    /// Draws the fate of a message from the network stream.
    #[inline]
    pub fn draw_fate(&self, rng: &mut ChaCha8Rng, is_reply: bool) -> Fate {
        let drop = if is_reply {
            self.drop_reply
        } else {
            self.drop_request
        };
        if chance(rng, drop) {
            return Fate::Lost;
        }
        let delay = self.draw_delay(rng, is_reply);
        let duplicate = chance(rng, self.duplicate).then(|| self.draw_delay(rng, is_reply));
        Fate::Deliver { delay, duplicate }
    }

    #[inline]
    fn draw_delay(&self, rng: &mut ChaCha8Rng, is_reply: bool) -> Time {
        let (lo, hi) = self.latency;
        let mut delay = if hi > lo {
            rng.random_range(lo..=hi)
        } else {
            lo
        };
        if let Some((p, min, max, replies_only, shape)) = self.long_delay {
            if (is_reply || !replies_only) && chance(rng, p) {
                let span = max - min;
                delay += min
                    + match shape {
                        DelayShape::Uniform => rng.random_range(0..=span),
                        DelayShape::Nested => {
                            let inner = rng.random_range(0..=span);
                            rng.random_range(0..=inner)
                        }
                    };
            }
        }
        delay
    }
}

/// Draws the fate of a message from the network stream (compiles `cfg` each call: for tests).
pub fn draw_fate(cfg: &NetworkConfig, rng: &mut ChaCha8Rng, is_reply: bool) -> Fate {
    NetworkModel::new(cfg).draw_fate(rng, is_reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};

    #[test]
    fn partitions_cuts_and_isolation() {
        let mut c = Connectivity::new(4);
        assert!(c.connected(0, 1));
        c.partition(&[vec![0, 1], vec![2]]);
        assert!(c.connected(0, 1));
        assert!(!c.connected(0, 2));
        assert!(c.connected(3, 2), "a node in no group reaches every group");
        assert!(c.connected(0, 3));
        c.cut(0, 1);
        assert!(!c.connected(0, 1));
        assert!(c.connected(1, 0), "a cut is one-way");
        c.set_isolated(3, true);
        assert!(!c.connected(3, 2));
        c.heal();
        assert!(c.connected(0, 2) && c.connected(0, 1));
        assert!(
            !c.connected(2, 3),
            "heal does not reconnect an isolated node"
        );
        assert_eq!(c.groups(), Vec::<Vec<usize>>::new());
    }

    #[test]
    fn labrpc_unreliable_rates() {
        let cfg = NetworkConfig::labrpc_unreliable();
        let mut rng = stream(1, Purpose::Network);
        let n = 20_000;
        let mut lost = 0;
        let mut max_delay = 0;
        for _ in 0..n {
            match draw_fate(&cfg, &mut rng, false) {
                Fate::Lost => lost += 1,
                Fate::Deliver { delay, duplicate } => {
                    assert!(duplicate.is_none());
                    max_delay = max_delay.max(delay);
                }
            }
        }
        let rate = lost as f64 / n as f64;
        assert!((0.09..0.11).contains(&rate), "drop rate {rate}");
        assert!(max_delay <= 26_000 && max_delay > 25_000);
    }

    #[test]
    fn long_reordering_delays_only_replies() {
        let mut cfg = NetworkConfig::reliable();
        cfg.long_delay = Some(NetworkConfig::labrpc_long_reordering());
        let mut rng = stream(2, Purpose::Network);
        let mut delayed = 0;
        for _ in 0..3000 {
            assert_eq!(
                draw_fate(&cfg, &mut rng, false),
                Fate::Deliver {
                    delay: 0,
                    duplicate: None
                }
            );
            if let Fate::Deliver { delay, .. } = draw_fate(&cfg, &mut rng, true) {
                if delay > 0 {
                    assert!((200_000..=2_200_000).contains(&delay));
                    delayed += 1;
                }
            }
        }
        assert!(
            (1800..2200).contains(&delayed),
            "{delayed} of 3000 replies delayed"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let mut cfg = NetworkConfig::reliable();
        cfg.drop_request = 1.5;
        assert_eq!(
            cfg.validate().unwrap_err(),
            "drop_request: a probability must be between 0 and 1, got 1.5"
        );
        let mut cfg = NetworkConfig::reliable();
        cfg.latency_ms = [5.0, 1.0];
        assert!(cfg.validate().unwrap_err().starts_with("latency_ms"));
    }
}
