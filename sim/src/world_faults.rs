//! Faults applied to the world: crash, restart, connectivity, network changes, holds.

use crate::engine::{StepIn, World};
use crate::faults::Fault;
use crate::network::{ms_to_us, NetworkModel};
use crate::node::Node;
use crate::reactive::ActiveHold;
use crate::rng::{stream, Purpose};
use crate::trace::Record;

impl<N: Node> World<N> {
    /// Apply a fault now. Crash drops the incarnation (its timers and volatile state); restart
    /// builds a new one from the durable state and runs its start step.
    pub fn apply_fault(&mut self, fault: Fault) {
        self.apply_fault_from(fault, false);
    }

    /// Apply a fault now; `reactive` if a reactive rule made it happen (the trace says so).
    pub(crate) fn apply_fault_from(&mut self, fault: Fault, reactive: bool) {
        let n = self.next_event_no();
        self.stats.faults += 1;
        let noop = match &fault {
            Fault::Crash(id) => {
                let slot = &mut self.slots[*id];
                let up = slot.node.take().is_some();
                if up {
                    slot.inc += 1;
                    slot.live_timers.clear();
                    self.stats.crashes += 1;
                }
                !up
            }
            Fault::Restart(id) => self.slots[*id].node.is_some(),
            Fault::Disconnect(id) => {
                self.conn.set_isolated(*id, true);
                false
            }
            Fault::Reconnect(id) => {
                self.conn.set_isolated(*id, false);
                false
            }
            Fault::Partition(groups) => {
                self.conn.partition(groups);
                false
            }
            Fault::Cut { from, to } => {
                self.conn.cut(*from, *to);
                false
            }
            Fault::Heal => {
                self.conn.heal();
                false
            }
            Fault::Network(cfg) => {
                self.network = cfg.clone();
                self.model = NetworkModel::new(cfg);
                false
            }
            Fault::Hold {
                node,
                for_ms,
                release_on,
                same_node,
                max_ms,
            } => {
                let key = self.next_hold_key;
                self.next_hold_key += 1;
                let deadline = self.now + ms_to_us(*max_ms).max(ms_to_us(*for_ms));
                self.holds.push((
                    key,
                    ActiveHold {
                        node: *node,
                        window_end: self.now + ms_to_us(*for_ms),
                        release_on: release_on.clone(),
                        same_node: *same_node,
                        deadline,
                    },
                ));
                self.hold_deadline = self.hold_deadline.min(deadline);
                false
            }
            Fault::ClockJump { node, by_ms } => {
                self.clock_jump(*node, *by_ms);
                false
            }
            Fault::ClockDrift { node, drift_ppm } => {
                self.clock_drift(*node, *drift_ppm);
                false
            }
            Fault::Release => {
                let keys: Vec<u64> = self.holds.iter().map(|(k, _)| *k).collect();
                let released = !keys.is_empty() || !self.held.is_empty();
                for key in keys {
                    self.release_hold(key);
                }
                !released
            }
        };
        let t = self.now;
        if reactive && !noop {
            self.reactive_faults.push((t, fault.clone()));
        }
        self.trace(|| Record::Fault {
            n,
            t,
            fault: fault.clone(),
            noop,
            reactive,
        });
        if let (Fault::Restart(id), false) = (&fault, noop) {
            let id = *id;
            self.stats.restarts += 1;
            let slot = &mut self.slots[id];
            slot.rng = stream(
                self.stream_seed,
                Purpose::Node {
                    id,
                    incarnation: slot.inc,
                },
            );
            slot.next_timer = 0;
            self.step(id, StepIn::Start);
        }
        if !noop {
            self.faults_applied.push(fault);
        }
    }
}
