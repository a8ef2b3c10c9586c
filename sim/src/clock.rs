//! Per-node clocks. The world's virtual time is the one true time: the queue, traces, faults,
//! the harness and every checker run on it. Each node sees its own clock instead
//! ([`Ctx::now`](crate::Ctx::now)), which runs at its own rate (drift, in parts per million)
//! and can be stepped forward or back (a jump), as a real node's clock does.
//!
//! The model, for a node with drift `p` ppm:
//! - its *monotonic* time advances `1 + p / 1e6` local µs per true µs (rounded down to whole
//!   µs, deterministically); a drift change ([`Fault::ClockDrift`]) changes the rate from
//!   that true time on, without a step;
//! - its *local* time, what `Ctx::now` returns, is the monotonic time plus the sum of the
//!   jumps so far ([`Fault::ClockJump`]), never below 0. A backward jump makes `now` go
//!   backwards: a protocol must survive that (no `now - earlier` that underflows);
//! - a timer set for `after` µs fires once `after` µs of the node's *monotonic* time have
//!   passed (the first true µs at which they have), as a timer of a real monotonic clock
//!   does: jumps never move a pending timer, so none fires in the past or never. A node that
//!   keeps absolute deadlines in local time (Raft's election deadline) sees a jump through
//!   `now` when its timer fires: after a backward jump it finds its deadline not yet reached
//!   and waits again, after a forward one it finds it passed. The true time of a timer is
//!   fixed when it is set, at the rate then in force (a later drift change does not move it).
//!
//! A perfect clock (drift 0, no jumps: the default) is the identity: `now` is the true time
//! and a timer fires exactly `after` µs later, with no extra arithmetic on the run's random
//! streams, so runs without clocks settings are what they always were.
//!
//! [`Fault::ClockDrift`]: crate::Fault::ClockDrift
//! [`Fault::ClockJump`]: crate::Fault::ClockJump

use crate::engine::World;
use crate::node::{Node, NodeId, Time};
use serde::{Deserialize, Serialize};

/// Parts per million.
const PPM: i128 = 1_000_000;

/// The largest drift a clock may have, either way, in ppm: the rate stays within [0.1, 1.9].
pub const MAX_DRIFT_PPM: i64 = 900_000;

/// A node's clock at the start of a run (part of its [`NodeSpec`](crate::NodeSpec), so the
/// trace header carries it and a replay rebuilds it). Perfect by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    /// Rate error in parts per million: positive runs fast, negative slow. Within
    /// ±[`MAX_DRIFT_PPM`].
    pub drift_ppm: i64,
}

impl ClockSpec {
    /// No drift: the node's clock is the true time.
    pub fn is_perfect(&self) -> bool {
        self.drift_ppm == 0
    }
    /// Checks the drift's range; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        check_drift(self.drift_ppm)
    }
}

/// A drift within ±[`MAX_DRIFT_PPM`].
pub fn check_drift(ppm: i64) -> Result<(), String> {
    if ppm.abs() <= MAX_DRIFT_PPM {
        Ok(())
    } else {
        Err(format!(
            "drift_ppm {ppm} is out of range (at most {MAX_DRIFT_PPM} either way)"
        ))
    }
}

/// One node's clock during a run: piecewise linear in true time. Invariant: only queried at
/// true times at or after `base_true` (time never goes back in the world).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeClock {
    /// True time of the last drift change (0 at the start).
    base_true: Time,
    /// The node's monotonic time then.
    base_mono: Time,
    drift_ppm: i64,
    /// The sum of the jumps so far, µs: local time minus monotonic time.
    offset: i64,
}

impl NodeClock {
    /// The clock of `spec` at true time 0 (it reads 0 then).
    pub fn new(spec: ClockSpec) -> Self {
        NodeClock {
            base_true: 0,
            base_mono: 0,
            drift_ppm: spec.drift_ppm,
            offset: 0,
        }
    }
    /// A perfect clock: it reads the true time.
    pub fn perfect() -> Self {
        NodeClock::new(ClockSpec::default())
    }
    /// The node's monotonic time at true time `t` (jumps left out).
    fn mono(&self, t: Time) -> Time {
        debug_assert!(t >= self.base_true, "a clock read in its past");
        let d = t.saturating_sub(self.base_true);
        if self.drift_ppm == 0 {
            return self.base_mono.saturating_add(d);
        }
        let d = i128::from(d);
        let extra = (d * i128::from(self.drift_ppm)).div_euclid(PPM);
        clamp(i128::from(self.base_mono) + d + extra)
    }
    /// What the node's clock reads at true time `t`.
    pub fn local(&self, t: Time) -> Time {
        let mono = self.mono(t);
        if self.offset == 0 {
            return mono;
        }
        clamp(i128::from(mono) + i128::from(self.offset))
    }
    /// The true time at which a timer set at true time `t` for `after` µs of this clock fires:
    /// the first true µs at which `after` µs of its monotonic time have passed.
    pub fn timer_at(&self, t: Time, after: Time) -> Time {
        if self.drift_ppm == 0 {
            return t.saturating_add(after);
        }
        let start = self.mono(t);
        let elapsed = |d: Time| self.mono(t.saturating_add(d)) - start;
        // The estimate is within a µs or two of the answer; walk to it.
        let rate = PPM + i128::from(self.drift_ppm);
        let mut d = clamp((i128::from(after) * PPM + rate - 1) / rate);
        while elapsed(d) < after && d < Time::MAX - t {
            d += 1;
        }
        while d > 0 && elapsed(d - 1) >= after {
            d -= 1;
        }
        t.saturating_add(d)
    }
    /// From true time `t` on, the clock runs at `drift_ppm` (no step at `t`).
    pub fn set_drift(&mut self, t: Time, drift_ppm: i64) {
        self.base_mono = self.mono(t);
        self.base_true = t;
        self.drift_ppm = drift_ppm;
    }
    /// The clock steps by `by_us` (forward if positive): its local time, not its timers.
    pub fn jump(&mut self, by_us: i64) {
        self.offset = self.offset.saturating_add(by_us);
    }
}

fn clamp(x: i128) -> Time {
    x.clamp(0, i128::from(Time::MAX)) as Time
}

/// A jump's size in whole µs (rounded to the nearest).
pub fn jump_us(by_ms: f64) -> i64 {
    (by_ms * 1000.0).round() as i64
}

impl<N: Node> World<N> {
    /// What node `id`'s clock reads now.
    pub fn local_time(&self, id: NodeId) -> Time {
        self.slots[id].clock.local(self.now)
    }
    /// A clock fault: `node`'s drift changes, or its clock jumps, now.
    pub(crate) fn clock_drift(&mut self, node: NodeId, drift_ppm: i64) {
        let now = self.now;
        self.slots[node].clock.set_drift(now, drift_ppm);
    }
    /// `node`'s clock steps by `by_ms` now.
    pub(crate) fn clock_jump(&mut self, node: NodeId, by_ms: f64) {
        self.slots[node].clock.jump(jump_us(by_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_clock_is_the_true_time() {
        let c = NodeClock::perfect();
        for t in [0, 1, 999, 123_456_789] {
            assert_eq!(c.local(t), t);
            assert_eq!(c.timer_at(t, 300_000), t + 300_000);
        }
        assert_eq!(c.timer_at(5, Time::MAX), Time::MAX);
    }

    #[test]
    fn drift_changes_the_rate_and_timers_follow_it() {
        let fast = NodeClock::new(ClockSpec { drift_ppm: 1000 });
        assert_eq!(fast.local(1_000_000), 1_001_000);
        let slow = NodeClock::new(ClockSpec {
            drift_ppm: -500_000,
        });
        assert_eq!(slow.local(1_000_000), 500_000);
        for clock in [fast, slow] {
            for (t, after) in [(0, 1), (17, 300_000), (999_999, 3), (5, 0)] {
                let at = clock.timer_at(t, after);
                let elapsed = clock.local(at) - clock.local(t);
                assert!(elapsed >= after, "{clock:?} {t} {after}");
                // ...and not a µs later than needed.
                if at > t {
                    assert!(clock.local(at - 1) - clock.local(t) < after);
                }
            }
        }
        // A slow clock's timer takes longer in true time, a fast one's less.
        assert_eq!(slow.timer_at(0, 100_000), 200_000);
        assert!(fast.timer_at(0, 100_000) < 100_000);
    }

    #[test]
    fn jumps_move_the_local_time_but_not_the_timers() {
        let mut c = NodeClock::new(ClockSpec { drift_ppm: 2000 });
        let before = c.timer_at(10_000, 50_000);
        c.jump(-7_000);
        assert_eq!(c.local(10_000), 10_020 - 7_000);
        assert_eq!(c.timer_at(10_000, 50_000), before);
        c.jump(-1_000_000);
        assert_eq!(c.local(10_000), 0, "never below 0");
        // A drift change keeps the reading continuous.
        let mut d = NodeClock::new(ClockSpec { drift_ppm: 100_000 });
        let at = d.local(1_000_000);
        d.set_drift(1_000_000, -100_000);
        assert_eq!(d.local(1_000_000), at);
        assert_eq!(d.local(2_000_000), at + 900_000);
    }

    #[test]
    fn drift_bounds_are_checked() {
        assert!(check_drift(MAX_DRIFT_PPM).is_ok());
        assert!(check_drift(-MAX_DRIFT_PPM - 1)
            .unwrap_err()
            .contains("out of range"));
    }
}
