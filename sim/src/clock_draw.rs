//! The clocks of a scenario (`"clocks"`): each server's drift drawn per seed (a faulty share
//! of them far off), fixed drifts of named nodes, and clock jumps drawn as faults. Everything
//! is drawn from the seed's own `Clocks` stream, so a scenario without clocks settings draws
//! nothing and keeps its runs, and one with them keeps every other draw.

use crate::clock::{check_drift, ClockSpec};
use crate::faults::Fault;
use crate::network::ms_to_us;
use crate::node::{NodeId, Time};
use crate::swarm::Knob;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Clock settings; every field is optional (perfect clocks, no jumps).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockProfile {
    /// Each server's drift in ppm: a number (every server runs at it) or a range `[lo, hi]`
    /// each server draws its own value from, per seed.
    pub drift_ppm: Knob,
    /// The chance that a server's clock is faulty: it draws its drift from
    /// `faulty_drift_ppm` instead (a knob too).
    #[serde(skip_serializing_if = "is_off")]
    pub faulty: Knob,
    #[serde(skip_serializing_if = "is_off")]
    pub faulty_drift_ppm: Knob,
    /// Fixed drifts of named nodes (servers or clients), over what was drawn.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeDrift>,
    /// Clock jumps per second over all servers (a knob), between `from_ms` and `until_ms`:
    /// each steps one server's clock by a size drawn from `jump_ms` (negative: backwards).
    #[serde(skip_serializing_if = "is_off")]
    pub jumps_per_s: Knob,
    pub jump_ms: [f64; 2],
    pub from_ms: f64,
    pub until_ms: f64,
}

/// A node's fixed drift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDrift {
    pub node: NodeId,
    pub drift_ppm: i64,
}

fn is_off(k: &Knob) -> bool {
    *k == Knob::default()
}

/// What one seed drew.
#[derive(Clone, Debug, PartialEq)]
pub struct ClockDraw {
    /// Every node's clock (servers, then clients), for the node table.
    pub clocks: Vec<ClockSpec>,
    /// The drawn jumps, as faults.
    pub faults: Vec<(Time, Fault)>,
    /// The draws, for the summary and the trace header.
    pub drawn: Value,
}

impl ClockProfile {
    /// Checks every setting against a cluster of `nodes` nodes; errors are (field, problem).
    pub fn validate(&self, nodes: usize) -> Result<(), (String, String)> {
        let max = crate::clock::MAX_DRIFT_PPM as f64;
        let knob = |name: &str, k: &Knob, lo: f64, hi: f64| {
            k.check(name, lo, hi).map_err(|e| (name.to_string(), e))
        };
        knob("drift_ppm", &self.drift_ppm, -max, max)?;
        knob("faulty", &self.faulty, 0.0, 1.0)?;
        knob("faulty_drift_ppm", &self.faulty_drift_ppm, -max, max)?;
        knob("jumps_per_s", &self.jumps_per_s, 0.0, 1e4)?;
        knob("jump_ms", &Knob::Range(self.jump_ms), -1e7, 1e7)?;
        for (i, nd) in self.nodes.iter().enumerate() {
            let place = format!("nodes[{i}]");
            if nd.node >= nodes {
                let problem = format!(
                    "node {} does not exist (the cluster has nodes 0..{nodes})",
                    nd.node
                );
                return Err((place, problem));
            }
            check_drift(nd.drift_ppm).map_err(|e| (place, e))?;
        }
        let window = self.from_ms.is_finite()
            && self.until_ms.is_finite()
            && 0.0 <= self.from_ms
            && self.from_ms <= self.until_ms;
        if !window {
            return Err((
                "until_ms".into(),
                format!(
                    "need 0 <= from_ms <= until_ms, got {} and {}",
                    self.from_ms, self.until_ms
                ),
            ));
        }
        if !is_off(&self.jumps_per_s) && self.until_ms <= self.from_ms {
            return Err((
                "until_ms".into(),
                "jumps need a window: until_ms after from_ms".into(),
            ));
        }
        Ok(())
    }

    /// This seed's clocks for `servers` servers and `clients` clients (clients keep perfect
    /// clocks unless named in `nodes`), and its jumps.
    pub fn draw(&self, servers: usize, clients: usize, rng: &mut ChaCha8Rng) -> ClockDraw {
        let mut clocks = vec![ClockSpec::default(); servers + clients];
        let share = self.faulty.draw(rng).clamp(0.0, 1.0);
        for clock in clocks.iter_mut().take(servers) {
            let normal = self.drift_ppm.draw(rng);
            let faulty = rng.random_bool(share);
            let ppm = if faulty {
                self.faulty_drift_ppm.draw(rng)
            } else {
                normal
            };
            clock.drift_ppm = ppm.round() as i64;
        }
        for nd in &self.nodes {
            clocks[nd.node].drift_ppm = nd.drift_ppm;
        }
        let rate = self.jumps_per_s.draw(rng);
        let (from, until) = (ms_to_us(self.from_ms), ms_to_us(self.until_ms));
        let mut faults = Vec::new();
        if rate > 0.0 && servers > 0 {
            let mut t = from as f64;
            loop {
                // Poisson: exponential gaps with mean 1/rate s.
                let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
                t += -u.ln() / rate * 1e6;
                if t >= until as f64 {
                    break;
                }
                let node = rng.random_range(0..servers);
                let [lo, hi] = self.jump_ms;
                let by = if hi > lo {
                    rng.random_range(lo..=hi)
                } else {
                    lo
                };
                let by_ms = (by * 1000.0).round() / 1000.0;
                faults.push((t as Time, Fault::ClockJump { node, by_ms }));
            }
        }
        let drawn = json!({
            "drift_ppm": clocks[..servers].iter().map(|c| c.drift_ppm).collect::<Vec<_>>(),
            "jumps": faults.len(),
        });
        ClockDraw {
            clocks,
            faults,
            drawn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};

    #[test]
    fn each_seed_draws_its_servers_drifts_and_jumps() {
        let p = ClockProfile {
            drift_ppm: Knob::Range([-1000.0, 1000.0]),
            faulty: Knob::Fixed(0.2),
            faulty_drift_ppm: Knob::Range([-200_000.0, 200_000.0]),
            nodes: vec![NodeDrift {
                node: 5,
                drift_ppm: 7,
            }],
            jumps_per_s: Knob::Fixed(2.0),
            jump_ms: [-300.0, 300.0],
            from_ms: 1000.0,
            until_ms: 11_000.0,
        };
        p.validate(6).unwrap();
        let mut faulty = 0;
        let mut jumps = 0;
        for seed in 0..50 {
            let d = p.draw(5, 1, &mut stream(seed, Purpose::Clocks));
            assert_eq!(d, p.draw(5, 1, &mut stream(seed, Purpose::Clocks)));
            assert_eq!(d.clocks[5].drift_ppm, 7, "a named client's drift");
            faulty += d.clocks[..5]
                .iter()
                .filter(|c| c.drift_ppm.abs() > 1000)
                .count();
            for (t, f) in &d.faults {
                assert!((1_000_000..11_000_000).contains(t));
                let Fault::ClockJump { node, by_ms } = f else {
                    panic!("{f:?}")
                };
                assert!(*node < 5 && by_ms.abs() <= 300.0);
            }
            jumps += d.faults.len();
        }
        // 250 servers, a fifth faulty (most of them far off); about 20 jumps a seed.
        assert!((30..70).contains(&faulty), "{faulty}");
        assert!((700..1300).contains(&jumps), "{jumps}");
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = |p: ClockProfile| p.validate(3).unwrap_err().0;
        let p = ClockProfile {
            drift_ppm: Knob::Range([0.0, 2e6]),
            ..ClockProfile::default()
        };
        assert_eq!(bad(p), "drift_ppm");
        let p = ClockProfile {
            nodes: vec![NodeDrift {
                node: 3,
                drift_ppm: 0,
            }],
            ..ClockProfile::default()
        };
        assert_eq!(bad(p), "nodes[0]");
        let p = ClockProfile {
            jumps_per_s: Knob::Fixed(1.0),
            ..ClockProfile::default()
        };
        assert_eq!(bad(p), "until_ms");
    }
}
