//! Swarm testing: instead of one fixed mix of faults, each seed first draws its own rates and
//! network settings from ranges (one seed calm with long partitions, the next lossy with many
//! crashes), then its own fault schedule from those rates. A single fixed mix hides bugs that
//! only an unusual mix shows.

use crate::faults::{Fault, FaultProfile};
use crate::network::{ms_to_us, DelayShape, LongDelay, NetworkConfig};
use crate::node::{NodeId, Time};
use crate::reactive::{Reactive, ReactiveProfile};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A setting: a fixed number, or `[lo, hi]` from which each seed draws its own value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Knob {
    Fixed(f64),
    Range([f64; 2]),
}

impl Default for Knob {
    fn default() -> Self {
        Knob::Fixed(0.0)
    }
}

impl Knob {
    /// Both ends finite, within `[min, max]`, and lo <= hi; the error names the setting.
    pub fn check(&self, name: &str, min: f64, max: f64) -> Result<(), String> {
        self.validate(name, min, max)
    }

    /// This seed's value.
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> f64 {
        match *self {
            Knob::Fixed(v) => v,
            Knob::Range([lo, hi]) if hi > lo => rng.random_range(lo..=hi),
            Knob::Range([lo, _]) => lo,
        }
    }
    fn bounds(&self) -> (f64, f64) {
        match *self {
            Knob::Fixed(v) => (v, v),
            Knob::Range([lo, hi]) => (lo, hi),
        }
    }
    /// Both ends finite, within `[min, max]`, and lo <= hi.
    pub(crate) fn validate(&self, name: &str, min: f64, max: f64) -> Result<(), String> {
        let (lo, hi) = self.bounds();
        if lo.is_finite() && hi.is_finite() && lo <= hi && lo >= min && hi <= max {
            Ok(())
        } else {
            Err(format!("{name}: need a number or a range [lo, hi] with {min} <= lo <= hi <= {max}, got {self:?}"))
        }
    }
}

/// A fault profile with ranges. Between `from_ms` and `until_ms` the seed's own network
/// replaces the scenario's, and its own crashes and partitions happen; at `until_ms`
/// everything is repaired and the scenario's network returns, so liveness can be checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SwarmProfile {
    pub crashes_per_s: Knob,
    pub down_ms: [f64; 2],
    pub partitions_per_s: Knob,
    pub partition_ms: [f64; 2],
    /// Share of partitions that are one-way cuts of a single link.
    pub one_way: Knob,
    /// Loss probability of requests and of replies.
    pub drop: Knob,
    pub duplicate: Knob,
    /// The upper end of the latency range (the lower end is 0).
    pub latency_max_ms: Knob,
    /// Probability of a long delay of any message: requests as well as replies (unlike
    /// labrpc, which delays only replies), so a request can arrive after its sender has moved
    /// to a later term.
    pub long_delay: Knob,
    /// The long delay's window `[min, max]` in ms, drawn with labrpc's shape (skewed towards
    /// short); default labrpc's 200 ms to 2.2 s.
    pub long_delay_ms: [f64; 2],
    /// Share of crashes that are flash crashes (down for `flash_ms` only).
    #[serde(skip_serializing_if = "is_off")]
    pub flash: Knob,
    /// Down time of a flash crash, `[min, max]` ms.
    #[serde(skip_serializing_if = "crate::faults::is_default_flash_ms")]
    pub flash_ms: [f64; 2],
    /// Faults that react to what the nodes do (see `reactive.rs`), in the same window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reactive: Option<ReactiveProfile>,
    pub from_ms: f64,
    pub until_ms: f64,
}

impl Default for SwarmProfile {
    fn default() -> Self {
        SwarmProfile {
            crashes_per_s: Knob::default(),
            down_ms: [100.0, 2000.0],
            partitions_per_s: Knob::default(),
            partition_ms: [100.0, 2000.0],
            one_way: Knob::default(),
            drop: Knob::default(),
            duplicate: Knob::default(),
            latency_max_ms: Knob::default(),
            long_delay: Knob::default(),
            long_delay_ms: [200.0, 2200.0],
            flash: Knob::default(),
            flash_ms: crate::faults::DEFAULT_FLASH_MS,
            reactive: None,
            from_ms: 0.0,
            until_ms: 0.0,
        }
    }
}

impl SwarmProfile {
    /// Checks every knob; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        self.crashes_per_s.validate("crashes_per_s", 0.0, 1e6)?;
        self.partitions_per_s
            .validate("partitions_per_s", 0.0, 1e6)?;
        self.latency_max_ms.validate("latency_max_ms", 0.0, 1e7)?;
        for (name, k) in [
            ("one_way", self.one_way),
            ("drop", self.drop),
            ("duplicate", self.duplicate),
            ("long_delay", self.long_delay),
            ("flash", self.flash),
        ] {
            k.validate(name, 0.0, 1.0)?;
        }
        Knob::Range(self.long_delay_ms).validate("long_delay_ms", 0.0, 1e7)?;
        Knob::Range(self.flash_ms).validate("flash_ms", 0.0, 1e7)?;
        if let Some(r) = &self.reactive {
            r.validate().map_err(|e| format!("reactive.{e}"))?;
        }
        self.concrete(&Knob::bounds_low).validate()
    }

    fn concrete(&self, pick: &dyn Fn(&Knob) -> f64) -> FaultProfile {
        FaultProfile {
            crashes_per_s: pick(&self.crashes_per_s),
            down_ms: self.down_ms,
            flash: pick(&self.flash),
            flash_ms: self.flash_ms,
            partitions_per_s: pick(&self.partitions_per_s),
            partition_ms: self.partition_ms,
            one_way: pick(&self.one_way),
            from_ms: self.from_ms,
            until_ms: self.until_ms,
        }
    }

    /// Draws this seed's settings (from `swarm_rng`) and its schedule (from `fault_rng`).
    /// Returns the faults, and the drawn settings for the summary and the trace header.
    pub fn draw(
        &self,
        base: &NetworkConfig,
        servers: &[NodeId],
        swarm_rng: &mut ChaCha8Rng,
        fault_rng: &mut ChaCha8Rng,
    ) -> (Vec<(Time, Fault)>, Value) {
        let d = self.draw_all(base, servers, swarm_rng, fault_rng);
        (d.faults, d.drawn)
    }

    /// [`SwarmProfile::draw`], plus this seed's reactive faults if the profile has them.
    pub fn draw_all(
        &self,
        base: &NetworkConfig,
        servers: &[NodeId],
        swarm_rng: &mut ChaCha8Rng,
        fault_rng: &mut ChaCha8Rng,
    ) -> SwarmDraw {
        let mut draw = |k: &Knob| k.draw(swarm_rng);
        let crashes = draw(&self.crashes_per_s);
        let partitions = draw(&self.partitions_per_s);
        let one_way = draw(&self.one_way);
        let drop = draw(&self.drop);
        let duplicate = draw(&self.duplicate);
        let latency = draw(&self.latency_max_ms);
        let long = draw(&self.long_delay);
        // Drawn after everything older profiles draw, so their seeds keep their settings.
        let flash = draw(&self.flash);
        let profile = FaultProfile {
            crashes_per_s: crashes,
            partitions_per_s: partitions,
            one_way,
            flash,
            ..self.concrete(&|_| 0.0)
        };
        let network = NetworkConfig {
            latency_ms: [0.0, latency],
            drop_request: drop,
            drop_reply: drop,
            duplicate,
            long_delay: (long > 0.0).then_some(LongDelay {
                probability: long,
                min_ms: self.long_delay_ms[0],
                max_ms: self.long_delay_ms[1],
                replies_only: false,
                shape: DelayShape::Nested,
            }),
        };
        let (from, until) = (ms_to_us(self.from_ms), ms_to_us(self.until_ms));
        let reactive = self
            .reactive
            .as_ref()
            .map(|r| r.draw(from, until, swarm_rng));
        let mut faults = vec![(from, Fault::Network(network.clone()))];
        faults.extend(profile.draw(servers, fault_rng));
        if reactive.is_some() {
            // Whatever a hold still has is delivered when the storm ends.
            faults.push((until, Fault::Release));
        }
        faults.push((until, Fault::Network(base.clone())));
        faults.sort_by_key(|(t, _)| *t);
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let mut drawn = json!({
            "crashes_per_s": round(crashes),
            "partitions_per_s": round(partitions),
            "one_way": round(one_way),
            "drop": round(drop),
            "duplicate": round(duplicate),
            "latency_max_ms": round(latency),
            "long_delay": round(long),
            "faults": faults.len() - 2 - usize::from(reactive.is_some()),
        });
        if self.flash != Knob::default() {
            drawn["flash"] = json!(round(flash));
        }
        let reactive = reactive.map(|(r, v)| {
            drawn["reactive"] = v;
            r
        });
        SwarmDraw {
            faults,
            drawn,
            reactive,
        }
    }
}

fn is_off(k: &Knob) -> bool {
    *k == Knob::default()
}

/// What one seed drew from a swarm profile.
#[derive(Clone, Debug)]
pub struct SwarmDraw {
    /// The fault schedule, network changes included.
    pub faults: Vec<(Time, Fault)>,
    /// The drawn settings, for the summary and the trace header.
    pub drawn: Value,
    /// The reactive faults with this seed's probabilities.
    pub reactive: Option<Reactive>,
}

impl Knob {
    fn bounds_low(&self) -> f64 {
        self.bounds().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};

    fn profile() -> SwarmProfile {
        SwarmProfile {
            crashes_per_s: Knob::Range([0.0, 2.0]),
            partitions_per_s: Knob::Range([0.0, 1.0]),
            drop: Knob::Range([0.0, 0.3]),
            latency_max_ms: Knob::Range([1.0, 50.0]),
            until_ms: 20_000.0,
            ..SwarmProfile::default()
        }
    }

    #[test]
    fn each_seed_draws_its_own_mix_and_the_network_returns() {
        let p = profile();
        p.validate().unwrap();
        let base = NetworkConfig::reliable();
        let mut mixes = Vec::new();
        for seed in 1..20 {
            let (faults, drawn) = p.draw(
                &base,
                &[0, 1, 2, 3, 4],
                &mut stream(seed, Purpose::Swarm),
                &mut stream(seed, Purpose::Faults),
            );
            assert_eq!(
                faults.last().unwrap(),
                &(20_000_000, Fault::Network(base.clone()))
            );
            let d = drawn["drop"].as_f64().unwrap();
            assert!((0.0..=0.3).contains(&d));
            mixes.push(drawn.to_string());
            let again = p.draw(
                &base,
                &[0, 1, 2, 3, 4],
                &mut stream(seed, Purpose::Swarm),
                &mut stream(seed, Purpose::Faults),
            );
            assert_eq!((faults, drawn), again);
        }
        mixes.sort();
        mixes.dedup();
        assert_eq!(mixes.len(), 19, "every seed drew a different mix");
    }

    #[test]
    fn long_delays_hit_requests_too_in_the_profile_window() {
        let p = SwarmProfile {
            long_delay: Knob::Fixed(0.3),
            long_delay_ms: [50.0, 1500.0],
            ..profile()
        };
        p.validate().unwrap();
        let (faults, drawn) = p.draw(
            &NetworkConfig::reliable(),
            &[0, 1, 2],
            &mut stream(3, Purpose::Swarm),
            &mut stream(3, Purpose::Faults),
        );
        assert_eq!(drawn["long_delay"].as_f64(), Some(0.3));
        let Fault::Network(net) = &faults[0].1 else {
            panic!("the storm starts with the seed's network: {faults:?}")
        };
        let ld = net.long_delay.as_ref().expect("long delays on");
        assert_eq!(
            (ld.min_ms, ld.max_ms, ld.replies_only),
            (50.0, 1500.0, false)
        );
        // Files without the window keep labrpc's.
        let old: SwarmProfile = serde_json::from_str(r#"{"long_delay": 0.1}"#).unwrap();
        assert_eq!(old.long_delay_ms, [200.0, 2200.0]);
    }

    #[test]
    fn bad_knobs_are_named() {
        let p = SwarmProfile {
            drop: Knob::Range([0.5, 1.5]),
            ..profile()
        };
        assert!(p.validate().unwrap_err().starts_with("drop:"));
        let p = SwarmProfile {
            crashes_per_s: Knob::Range([2.0, 1.0]),
            ..profile()
        };
        assert!(p.validate().unwrap_err().starts_with("crashes_per_s:"));
        let p = SwarmProfile {
            long_delay_ms: [900.0, 50.0],
            ..profile()
        };
        assert!(p.validate().unwrap_err().starts_with("long_delay_ms:"));
    }
}
