//! Faults that react to the run instead of to the clock.
//!
//! A clock-driven schedule almost never crashes a node in the microsecond after it wrote its
//! vote, or cuts a leader off just after it appended an entry nobody else has: the windows that
//! expose persistence and replication bugs are a few microseconds wide. Reactive faults watch
//! what nodes do and strike at those moments:
//! - right after a server step that wrote durable state, or that answered a request, the server
//!   may crash (and come back after a short "flash" down time, or a long one);
//! - right after a server reports a [`Mark`](crate::node::Mark) named by a rule (a protocol's
//!   adapter reports e.g. "leader" or "append"), it may crash, be cut off from everyone, or have
//!   every message it sends and receives for a while held back and delivered only after the
//!   next occurrence of a release mark (e.g. after the next election), so that one term's
//!   messages arrive in the next.
//!
//! Each seed draws its own probabilities from the profile's ranges (swarm testing), and the
//! decisions come from their own random stream, so a run stays a pure function of its seed.
//! Reactive faults happen only inside the storm window and only to servers; every crash is
//! followed by its restart, every isolation by its reconnection, and every hold is released,
//! by the end of the window.

use crate::network::ms_to_us;
use crate::node::{NodeId, Time};
use crate::swarm::Knob;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The reactive part of a swarm profile: knobs (a number or a range per seed) for each way of
/// striking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReactiveProfile {
    /// Chance that a server crashes right after a step in which it wrote durable state.
    pub crash_after_persist: Knob,
    /// Chance that a server crashes right after a step in which it answered a request.
    pub crash_after_reply: Knob,
    /// How long those crashes keep the server down, `[min, max]` ms. Short ("flash") crashes
    /// restart the node before anything else changed; long ones let the cluster move on.
    pub down_ms: [f64; 2],
    /// Share of those crashes that are flash crashes of `flash_ms` instead of `down_ms`.
    pub flash: Knob,
    /// The flash crashes' down time, `[min, max]` ms.
    pub flash_ms: [f64; 2],
    /// Faults triggered by marks.
    pub rules: Vec<MarkRuleProfile>,
    /// A hold releases its messages at the latest this long after it started, ms.
    pub max_hold_ms: f64,
}

impl Default for ReactiveProfile {
    fn default() -> Self {
        ReactiveProfile {
            crash_after_persist: Knob::default(),
            crash_after_reply: Knob::default(),
            down_ms: [50.0, 2000.0],
            flash: Knob::Fixed(0.5),
            flash_ms: [0.1, 20.0],
            rules: Vec::new(),
            max_hold_ms: 5000.0,
        }
    }
}

/// What may happen to a server right after it reports the mark `mark`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRuleProfile {
    /// The mark's name, as the system's adapter reports it (e.g. "leader").
    pub mark: String,
    /// Chance that the server crashes right then (and restarts after `for_ms`).
    #[serde(default)]
    pub crash: Knob,
    /// Chance that it is cut off from every node right then, for `for_ms`.
    #[serde(default)]
    pub isolate: Knob,
    /// Chance that every message it sends or receives in the next `for_ms` is held back and
    /// delivered only after the next `release_on` mark.
    #[serde(default)]
    pub hold: Knob,
    /// The duration of the fault, `[min, max]` ms.
    #[serde(default = "default_for_ms")]
    pub for_ms: [f64; 2],
    /// How long after the mark the fault strikes, `[min, max]` ms (default: at once, 1 µs
    /// after the step). A delay of about a message's latency strikes while the step's
    /// messages are on their way: some have arrived, some not.
    #[serde(default, skip_serializing_if = "is_at_once")]
    pub after_ms: [f64; 2],
    /// The mark that releases held messages (default: this rule's mark).
    #[serde(default)]
    pub release_on: Option<String>,
    /// Chance that a hold waits for the same server to report the release mark (its next term
    /// as leader, say) rather than any server.
    #[serde(default)]
    pub release_same_node: Knob,
}

fn default_for_ms() -> [f64; 2] {
    [50.0, 1500.0]
}

fn is_at_once(r: &[f64; 2]) -> bool {
    *r == [0.0, 0.0]
}

/// One rule with this seed's probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct MarkRule {
    pub mark: String,
    pub crash: f64,
    pub isolate: f64,
    pub hold: f64,
    pub for_us: (Time, Time),
    pub after_us: (Time, Time),
    pub release_on: String,
    pub release_same_node: f64,
}

/// A reactive profile with this seed's probabilities, and the window it acts in.
#[derive(Clone, Debug, PartialEq)]
pub struct Reactive {
    pub crash_after_persist: f64,
    pub crash_after_reply: f64,
    pub down_us: (Time, Time),
    pub flash: f64,
    pub flash_us: (Time, Time),
    pub rules: Vec<MarkRule>,
    pub max_hold_us: Time,
    /// Reactive faults start no earlier than this...
    pub from: Time,
    /// ...and are all repaired by this time.
    pub until: Time,
}

fn check_range(name: &str, [lo, hi]: [f64; 2]) -> Result<(), String> {
    if lo.is_finite() && hi.is_finite() && lo >= 0.0 && lo <= hi {
        Ok(())
    } else {
        Err(format!("{name}: need 0 <= min <= max, got [{lo}, {hi}]"))
    }
}

fn range_us([lo, hi]: [f64; 2]) -> (Time, Time) {
    (ms_to_us(lo), ms_to_us(hi))
}

impl ReactiveProfile {
    /// Checks every knob and range; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, k) in [
            ("crash_after_persist", &self.crash_after_persist),
            ("crash_after_reply", &self.crash_after_reply),
            ("flash", &self.flash),
        ] {
            k.validate(name, 0.0, 1.0)?;
        }
        check_range("down_ms", self.down_ms)?;
        check_range("flash_ms", self.flash_ms)?;
        if !(self.max_hold_ms.is_finite() && self.max_hold_ms >= 0.0) {
            return Err(format!(
                "max_hold_ms: must be a non-negative number, got {}",
                self.max_hold_ms
            ));
        }
        for (i, r) in self.rules.iter().enumerate() {
            let at = |e: String| format!("rules[{i}].{e}");
            if r.mark.is_empty() {
                return Err(at("mark: must name a mark".into()));
            }
            for (name, k) in [
                ("crash", &r.crash),
                ("isolate", &r.isolate),
                ("hold", &r.hold),
                ("release_same_node", &r.release_same_node),
            ] {
                k.validate(name, 0.0, 1.0).map_err(at)?;
            }
            check_range("for_ms", r.for_ms).map_err(at)?;
            check_range("after_ms", r.after_ms).map_err(at)?;
        }
        Ok(())
    }

    /// This seed's probabilities (drawn from `rng`, the swarm stream), for the window
    /// `[from, until)`; also the drawn values, for the summary and the trace header.
    pub fn draw(&self, from: Time, until: Time, rng: &mut ChaCha8Rng) -> (Reactive, Value) {
        let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
        let crash_after_persist = self.crash_after_persist.draw(rng);
        let crash_after_reply = self.crash_after_reply.draw(rng);
        let flash = self.flash.draw(rng);
        let mut drawn_rules = Vec::new();
        let rules = self
            .rules
            .iter()
            .map(|r| {
                let rule = MarkRule {
                    mark: r.mark.clone(),
                    crash: r.crash.draw(rng),
                    isolate: r.isolate.draw(rng),
                    hold: r.hold.draw(rng),
                    for_us: range_us(r.for_ms),
                    after_us: range_us(r.after_ms),
                    release_on: r.release_on.clone().unwrap_or_else(|| r.mark.clone()),
                    release_same_node: r.release_same_node.draw(rng),
                };
                drawn_rules.push(json!({
                    "mark": rule.mark,
                    "crash": round(rule.crash),
                    "isolate": round(rule.isolate),
                    "hold": round(rule.hold),
                    "release_same_node": round(rule.release_same_node),
                }));
                rule
            })
            .collect();
        let drawn = json!({
            "crash_after_persist": round(crash_after_persist),
            "crash_after_reply": round(crash_after_reply),
            "flash": round(flash),
            "rules": drawn_rules,
        });
        let reactive = Reactive {
            crash_after_persist,
            crash_after_reply,
            down_us: range_us(self.down_ms),
            flash,
            flash_us: range_us(self.flash_ms),
            rules,
            max_hold_us: ms_to_us(self.max_hold_ms),
            from,
            until,
        };
        (reactive, drawn)
    }
}

/// What a server did in one step, as far as reactive faults care.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StepSummary {
    pub persisted: bool,
    pub replied: bool,
}

/// A fault the engine must apply because of what a node just did, `delay` µs after the step
/// (plus the 1 µs that puts it after the step).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Strike {
    pub delay: Time,
    pub what: StrikeKind,
}

/// What a [`Strike`] does.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StrikeKind {
    /// Crash `node` now and restart it after `down` µs.
    Crash { node: NodeId, down: Time },
    /// Cut `node` off now and reconnect it after `len` µs.
    Isolate { node: NodeId, len: Time },
    /// Hold `node`'s messages for `len` µs; release on `release_on` (by `node` only if
    /// `same_node`), at the latest after `max` µs.
    Hold {
        node: NodeId,
        len: Time,
        release_on: String,
        same_node: bool,
        max: Time,
    },
}

/// The engine's reactive state for one run.
pub(crate) struct ReactiveState {
    pub cfg: Reactive,
    pub rng: ChaCha8Rng,
    /// Per node: no new reactive fault before this time (one at a time per node).
    pub busy_until: Vec<Time>,
}

impl ReactiveState {
    pub fn new(cfg: Reactive, rng: ChaCha8Rng, nodes: usize) -> Self {
        ReactiveState {
            cfg,
            rng,
            busy_until: vec![0; nodes],
        }
    }

    fn active(&self, node: NodeId, now: Time) -> bool {
        now >= self.cfg.from && now < self.cfg.until && now >= self.busy_until[node]
    }

    fn draw_us(&mut self, (lo, hi): (Time, Time)) -> Time {
        if hi > lo {
            self.rng.random_range(lo..=hi)
        } else {
            lo
        }
    }

    /// Faults `node` (a server) suffers right after a step with these effects and marks.
    pub fn after_step(
        &mut self,
        node: NodeId,
        now: Time,
        step: StepSummary,
        marks: &[&'static str],
    ) -> Option<Strike> {
        if !self.active(node, now) {
            return None;
        }
        let mut crash = false;
        if step.persisted && self.cfg.crash_after_persist > 0.0 {
            crash |= self.rng.random_bool(self.cfg.crash_after_persist);
        }
        if step.replied && self.cfg.crash_after_reply > 0.0 {
            crash |= self.rng.random_bool(self.cfg.crash_after_reply);
        }
        if crash {
            let flash = self.cfg.flash > 0.0 && self.rng.random_bool(self.cfg.flash);
            let down = self.draw_us(if flash {
                self.cfg.flash_us
            } else {
                self.cfg.down_us
            });
            return Some(self.strike(now, 0, StrikeKind::Crash { node, down }));
        }
        for &mark in marks {
            for i in 0..self.cfg.rules.len() {
                if self.cfg.rules[i].mark != mark {
                    continue;
                }
                let rule = self.cfg.rules[i].clone();
                let len = self.draw_us(rule.for_us);
                let delay = if rule.after_us == (0, 0) {
                    0
                } else {
                    self.draw_us(rule.after_us)
                };
                if rule.crash > 0.0 && self.rng.random_bool(rule.crash) {
                    return Some(self.strike(now, delay, StrikeKind::Crash { node, down: len }));
                }
                if rule.isolate > 0.0 && self.rng.random_bool(rule.isolate) {
                    return Some(self.strike(now, delay, StrikeKind::Isolate { node, len }));
                }
                if rule.hold > 0.0 && self.rng.random_bool(rule.hold) {
                    let same_node = rule.release_same_node > 0.0
                        && self.rng.random_bool(rule.release_same_node);
                    let max = self.cfg.max_hold_us.max(len);
                    return Some(self.strike(
                        now,
                        delay,
                        StrikeKind::Hold {
                            node,
                            len,
                            release_on: rule.release_on,
                            same_node,
                            max,
                        },
                    ));
                }
            }
        }
        None
    }

    /// Clamps the strike to the window and marks the node busy until it is over.
    fn strike(&mut self, now: Time, delay: Time, mut what: StrikeKind) -> Strike {
        let delay = delay.min(self.cfg.until.saturating_sub(now + 1));
        let at = now + 1 + delay;
        let room = self.cfg.until.saturating_sub(at);
        let (node, end) = match &mut what {
            StrikeKind::Crash { node, down } => {
                *down = (*down).min(room);
                (*node, at + *down)
            }
            StrikeKind::Isolate { node, len } => {
                *len = (*len).min(room);
                (*node, at + *len)
            }
            StrikeKind::Hold { node, len, max, .. } => {
                *len = (*len).min(room);
                *max = (*max).min(room);
                (*node, at + *max)
            }
        };
        self.busy_until[node] = end;
        Strike { delay, what }
    }
}

/// One hold in force: messages to or from `node` sent before `window_end` are held until the
/// release.
#[derive(Clone, Debug)]
pub(crate) struct ActiveHold {
    pub node: NodeId,
    pub window_end: Time,
    pub release_on: String,
    pub same_node: bool,
    pub deadline: Time,
}

/// A message held back: delivered `delay` µs after its release (the delay the network drew
/// when it was sent), and its duplicate, if any, `dup` µs after.
pub(crate) struct Held<M> {
    pub hold: u64,
    pub from: NodeId,
    pub to: NodeId,
    pub id: u64,
    pub msg: M,
    pub delay: Time,
    pub dup: Option<Time>,
}

/// Which active hold (by key) captures a message from `from` to `to` now, if any. Held
/// messages still obey connectivity when they are finally delivered.
pub(crate) fn capturing_hold(
    holds: &[(u64, ActiveHold)],
    from: NodeId,
    to: NodeId,
    now: Time,
) -> Option<u64> {
    holds
        .iter()
        .find(|(_, h)| now < h.window_end && (h.node == from || h.node == to))
        .map(|(k, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};

    fn profile() -> ReactiveProfile {
        ReactiveProfile {
            crash_after_persist: Knob::Fixed(1.0),
            rules: vec![MarkRuleProfile {
                mark: "leader".into(),
                crash: Knob::Fixed(0.0),
                isolate: Knob::Fixed(0.0),
                hold: Knob::Fixed(1.0),
                for_ms: [100.0, 100.0],
                after_ms: [0.0, 0.0],
                release_on: None,
                release_same_node: Knob::Fixed(1.0),
            }],
            ..ReactiveProfile::default()
        }
    }

    #[test]
    fn strikes_only_inside_the_window_and_one_at_a_time_per_node() {
        let p = profile();
        p.validate().unwrap();
        let (cfg, drawn) = p.draw(1_000, 1_000_000, &mut stream(1, Purpose::Swarm));
        assert_eq!(drawn["crash_after_persist"], json!(1.0));
        let mut st = ReactiveState::new(cfg, stream(1, Purpose::Reactive), 3);
        let wrote = StepSummary {
            persisted: true,
            replied: false,
        };
        assert_eq!(st.after_step(0, 500, wrote, &[]), None, "before the window");
        let Some(Strike {
            delay: 0,
            what: StrikeKind::Crash { node: 0, down },
        }) = st.after_step(0, 2_000, wrote, &[])
        else {
            panic!("a write in the window crashes the node")
        };
        assert!(down <= 2_000_000);
        assert_eq!(
            st.after_step(0, 2_000, wrote, &[]),
            None,
            "busy until restarted"
        );
        assert_eq!(st.after_step(1, 2_000, StepSummary::default(), &[]), None);
        let Some(Strike {
            what:
                StrikeKind::Hold {
                    node: 1,
                    len: 100_000,
                    release_on,
                    same_node: true,
                    ..
                },
            ..
        }) = st.after_step(1, 2_000, StepSummary::default(), &["append", "leader"])
        else {
            panic!("the leader mark holds the node's messages")
        };
        assert_eq!(release_on, "leader");
        assert_eq!(
            st.after_step(2, 1_000_000, wrote, &[]),
            None,
            "after the window"
        );
    }

    #[test]
    fn strikes_end_by_the_end_of_the_window() {
        let mut p = profile();
        p.down_ms = [5_000.0, 5_000.0];
        p.flash = Knob::Fixed(0.0);
        let (cfg, _) = p.draw(0, 1_000_000, &mut stream(1, Purpose::Swarm));
        let mut st = ReactiveState::new(cfg, stream(1, Purpose::Reactive), 1);
        let s = st.after_step(
            0,
            999_000,
            StepSummary {
                persisted: true,
                replied: false,
            },
            &[],
        );
        assert_eq!(
            s,
            Some(Strike {
                delay: 0,
                what: StrikeKind::Crash { node: 0, down: 999 }
            })
        );
    }

    #[test]
    fn a_rule_may_strike_a_while_after_its_mark() {
        let mut p = profile();
        p.crash_after_persist = Knob::Fixed(0.0);
        p.rules[0].hold = Knob::Fixed(0.0);
        p.rules[0].isolate = Knob::Fixed(1.0);
        p.rules[0].after_ms = [5.0, 5.0];
        p.validate().unwrap();
        let (cfg, _) = p.draw(0, 1_000_000, &mut stream(1, Purpose::Swarm));
        let mut st = ReactiveState::new(cfg, stream(1, Purpose::Reactive), 1);
        let s = st.after_step(0, 10_000, StepSummary::default(), &["leader"]);
        assert_eq!(
            s,
            Some(Strike {
                delay: 5_000,
                what: StrikeKind::Isolate {
                    node: 0,
                    len: 100_000
                }
            })
        );
        assert_eq!(st.busy_until[0], 10_000 + 1 + 5_000 + 100_000);
    }

    #[test]
    fn bad_profiles_are_named() {
        let mut p = profile();
        p.rules[0].hold = Knob::Range([0.0, 2.0]);
        assert!(p.validate().unwrap_err().starts_with("rules[0].hold"));
        let mut p = profile();
        p.flash_ms = [3.0, 1.0];
        assert!(p.validate().unwrap_err().starts_with("flash_ms"));
    }
}
