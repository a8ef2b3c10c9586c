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
}

/// The stream the disk's per-seed settings are drawn from (its own, so nothing else moves).
const DISK_KNOBS_STREAM: u64 = 0xd15c;

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
            s.torn
                .check("torn", 0.0, 1.0)
                .map_err(|e| ("disk.swarm".to_string(), e))?;
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
