//! The `disk` section of a scenario: the lab's Persister (the default) or a realistic disk
//! (`sim/src/disk.rs`), and the per-seed draws of a swarm profile.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sim::{ms_to_us, DiskConfig, Knob};

/// Which disk model the servers run on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskMode {
    /// 6.824's Persister: every write durable the moment it is made; syncs are no-ops.
    #[default]
    Persister,
    /// Writes are durable only once synced; a crash loses unsynced ones (keeping a random
    /// prefix, the first lost one possibly torn).
    Realistic,
}

/// `"disk": {"mode": "realistic", "latency_ms": [0.1, 2], "torn": 0.5}`; with `swarm`, each
/// seed draws its own `latency_max_ms` (the upper end of the latency range: a slow disk) and
/// `torn` from ranges.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskSettings {
    pub mode: DiskMode,
    /// Each sync takes a latency drawn from `[lo, hi]` ms (default `[0, 0]`).
    pub latency_ms: [f64; 2],
    /// The probability that a crash that loses writes tears the first one it loses.
    pub torn: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm: Option<DiskSwarm>,
}

/// Per-seed disk draws (each a number or a range).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskSwarm {
    pub latency_max_ms: Knob,
    pub torn: Knob,
    /// For each of a minority of servers (at most `(servers - 1) / 2` in all, each hit at
    /// most once), the probability that it crashes, three blocks of its disk are damaged,
    /// and it restarts, at a time drawn in the swarm window.
    pub corrupt: Knob,
    /// The same, for losing the whole disk (it restarts with an empty one).
    pub lose: Knob,
}

/// The stream the disk's per-seed settings are drawn from (its own, so nothing else moves).
const DISK_KNOBS_STREAM: u64 = 0xd15c;
/// The stream the disk faults of a seed are drawn from.
const DISK_FAULTS_STREAM: u64 = 0xd15d;

impl DiskSettings {
    /// Semantic checks; the error is (place, problem).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let [lo, hi] = self.latency_ms;
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
            return Err((
                "disk.latency_ms".into(),
                format!("must be [lo, hi] with 0 <= lo <= hi, got [{lo}, {hi}]"),
            ));
        }
        if !(0.0..=1.0).contains(&self.torn) {
            return Err((
                "disk.torn".into(),
                format!("must be a probability, got {}", self.torn),
            ));
        }
        if let Some(s) = &self.swarm {
            s.latency_max_ms
                .check("latency_max_ms", 0.0, 10_000.0)
                .map_err(|e| ("disk.swarm".to_string(), e))?;
            for (name, k) in [
                ("torn", &s.torn),
                ("corrupt", &s.corrupt),
                ("lose", &s.lose),
            ] {
                k.check(name, 0.0, 1.0)
                    .map_err(|e| ("disk.swarm".to_string(), e))?;
            }
        }
        let realistic_only =
            self.latency_ms != [0.0, 0.0] || self.torn > 0.0 || self.swarm.is_some();
        if self.mode == DiskMode::Persister && realistic_only {
            return Err((
                "disk".into(),
                "latency, torn writes and swarm draws need \"mode\": \"realistic\" (the Persister syncs every write at once)".into(),
            ));
        }
        Ok(())
    }

    /// The engine's disk for this seed (None: the Persister) and what the seed drew.
    pub fn config(&self, seed: u64) -> (Option<DiskConfig>, Value) {
        if self.mode == DiskMode::Persister {
            return (None, Value::Null);
        }
        let mut latency = self.latency_ms;
        let mut torn = self.torn;
        let mut drawn = Value::Null;
        if let Some(s) = &self.swarm {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(DISK_KNOBS_STREAM);
            latency[1] = latency[0].max(s.latency_max_ms.draw(&mut rng));
            torn = s.torn.draw(&mut rng);
            drawn = json!({"latency_ms": latency, "torn": torn});
        }
        (
            Some(DiskConfig {
                latency_us: (ms_to_us(latency[0]), ms_to_us(latency[1])),
                torn,
            }),
            drawn,
        )
    }
}

impl DiskSettings {
    /// The disk faults this seed draws (see [`DiskSwarm::corrupt`], [`DiskSwarm::lose`])
    /// between `from` and `until` (µs), and what it drew. At most a minority of `servers`
    /// is hit, so a majority keeps its disks.
    pub fn draw_faults(
        &self,
        seed: u64,
        servers: usize,
        (from, until): (sim::Time, sim::Time),
    ) -> (Vec<(sim::Time, sim::Fault)>, Value) {
        use rand::Rng;
        use sim::Fault;
        let Some(s) = self
            .swarm
            .as_ref()
            .filter(|_| self.mode == DiskMode::Realistic)
        else {
            return (Vec::new(), Value::Null);
        };
        if s.corrupt == Knob::default() && s.lose == Knob::default() {
            return (Vec::new(), Value::Null);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(DISK_FAULTS_STREAM);
        let (p_corrupt, p_lose) = (s.corrupt.draw(&mut rng), s.lose.draw(&mut rng));
        let mut healthy: Vec<usize> = (0..servers).collect();
        let mut faults = Vec::new();
        let mut hit = Vec::new();
        let last = until.saturating_sub(1_000_000).max(from + 1);
        for _ in 0..servers.saturating_sub(1) / 2 {
            let what = match rng.random::<f64>() {
                x if x < p_corrupt => "corrupt",
                x if x < p_corrupt + p_lose => "lose",
                _ => continue,
            };
            let v = healthy.swap_remove(rng.random_range(0..healthy.len()));
            let t = rng.random_range(from..last);
            faults.push((t, Fault::Crash(v)));
            if what == "corrupt" {
                faults.extend((0..3).map(|_| (t, Fault::Corrupt(v))));
            } else {
                faults.push((t, Fault::LoseDisk(v)));
            }
            faults.push((t + 200_000, Fault::Restart(v)));
            hit.push(json!([v, what, t / 1000]));
        }
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let drawn = json!({"corrupt": round(p_corrupt), "lose": round(p_lose), "hit": hit});
        (faults, drawn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::Fault;

    fn settings(corrupt: f64, lose: f64) -> DiskSettings {
        DiskSettings {
            mode: DiskMode::Realistic,
            swarm: Some(DiskSwarm {
                corrupt: Knob::Fixed(corrupt),
                lose: Knob::Fixed(lose),
                ..DiskSwarm::default()
            }),
            ..DiskSettings::default()
        }
    }

    #[test]
    fn disk_faults_hit_a_minority_each_at_most_once_and_are_repaired() {
        let window = (1_000_000, 30_000_000);
        for seed in 1..200 {
            let (faults, _) = settings(0.5, 0.5).draw_faults(seed, 5, window);
            let hit: std::collections::BTreeSet<usize> = faults
                .iter()
                .filter_map(|(_, f)| match f {
                    Fault::Corrupt(n) | Fault::LoseDisk(n) => Some(*n),
                    _ => None,
                })
                .collect();
            assert_eq!(
                hit.len(),
                2,
                "seed {seed}: both slots of a 5-server minority"
            );
            for n in &hit {
                let restarts = faults
                    .iter()
                    .filter(|(_, f)| *f == Fault::Restart(*n))
                    .count();
                assert_eq!(restarts, 1, "seed {seed}: s{n} comes back once");
            }
            assert!(faults.iter().all(|(t, _)| (window.0..window.1).contains(t)));
            assert_eq!(faults, settings(0.5, 0.5).draw_faults(seed, 5, window).0);
        }
        assert!(settings(0.0, 0.0).draw_faults(1, 5, window).0.is_empty());
        assert!(
            settings(1.0, 0.0).draw_faults(1, 2, window).0.is_empty(),
            "2 servers: no minority"
        );
        let persister = DiskSettings::default();
        assert!(persister.validate().is_ok());
        assert!(persister.draw_faults(1, 5, window).0.is_empty());
        let mut bad = settings(0.5, 0.5);
        bad.mode = DiskMode::Persister;
        assert!(bad.validate().is_err(), "swarm draws need a realistic disk");
    }
}
