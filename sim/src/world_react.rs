//! What the world does with marks: counts them (coverage), releases holds waiting for them,
//! and lets reactive rules strike (`reactive.rs`); and how held messages are let go.

use crate::engine::{MarkStat, World};
use crate::faults::Fault;
use crate::node::{Mark, Node, NodeId, Time};
use crate::queue::Event;
use crate::reactive::{StepSummary, StrikeKind};
use crate::rng::{stream, Purpose};
use crate::trace::Record;

impl<N: Node> World<N> {
    pub(crate) fn count_mark(&mut self, mark: Mark) {
        match self.marks.binary_search_by(|s| s.mark.cmp(&mark)) {
            Ok(i) => self.marks[i].count += 1,
            Err(i) => self.marks.insert(
                i,
                MarkStat {
                    mark,
                    count: 1,
                    first_event: self.event_no,
                    first_time: self.now,
                },
            ),
        }
    }

    /// Takes the branch to `seed`: every random stream is drawn from it from now on (the
    /// trace records the moment, so a replay reseeds the nodes at the same point).
    pub(crate) fn branch(&mut self, seed: u64) {
        let n = self.next_event_no();
        self.stream_seed = seed;
        self.net_rng = stream(seed, Purpose::Network);
        self.harness_rng = stream(seed, Purpose::Harness);
        if let Some(r) = &mut self.reactive {
            r.rng = stream(seed, Purpose::Reactive);
        }
        if let Some(d) = &mut self.disks {
            d.rng = stream(seed, Purpose::Disk);
        }
        for (id, slot) in self.slots.iter_mut().enumerate() {
            slot.rng = stream(
                seed,
                Purpose::Node {
                    id,
                    incarnation: slot.inc,
                },
            );
        }
        let t = self.now;
        self.trace(|| Record::Branch { n, t, seed });
    }

    /// After a step of `id`: release holds waiting for one of its marks, then let the reactive
    /// rules strike (servers only).
    pub(crate) fn react(&mut self, id: NodeId, summary: StepSummary) {
        let marks = std::mem::take(&mut self.step_marks);
        if !self.holds.is_empty() {
            for &mark in &marks {
                let due: Vec<u64> = self
                    .holds
                    .iter()
                    .filter(|(_, h)| h.release_on == mark && (!h.same_node || h.node == id))
                    .map(|(k, _)| *k)
                    .collect();
                for key in due {
                    let name = self.specs[id].name.clone();
                    let count = self.release_hold(key);
                    self.note(|| {
                        format!("released {count} held messages on mark {mark:?} of {name}")
                    });
                }
            }
        }
        let strike = match &mut self.reactive {
            Some(r) if !self.specs[id].client && self.slots[id].node.is_some() => {
                r.after_step(id, self.now, summary, &marks)
            }
            _ => None,
        };
        self.step_marks = marks;
        self.step_marks.clear();
        let Some(strike) = strike else { return };
        let at = self.now + 1 + strike.delay;
        let schedule = |world: &mut Self, t: Time, fault: Fault| {
            world.push(
                t,
                Event::Fault {
                    fault: Box::new(fault),
                    reactive: true,
                },
            );
        };
        let us_to_ms = |us: Time| us as f64 / 1000.0;
        match strike.what {
            StrikeKind::Crash { node, down } => {
                schedule(self, at, Fault::Crash(node));
                schedule(self, at + down, Fault::Restart(node));
            }
            StrikeKind::Isolate { node, len } => {
                schedule(self, at, Fault::Disconnect(node));
                schedule(self, at + len, Fault::Reconnect(node));
            }
            StrikeKind::Hold {
                node,
                len,
                release_on,
                same_node,
                max,
            } => schedule(
                self,
                at,
                Fault::Hold {
                    node,
                    for_ms: us_to_ms(len),
                    release_on,
                    same_node,
                    max_ms: us_to_ms(max),
                },
            ),
        }
    }

    /// Ends the hold `key`: its messages are queued, each after the delay the network drew for
    /// it. Returns how many were held.
    pub(crate) fn release_hold(&mut self, key: u64) -> usize {
        self.holds.retain(|(k, _)| *k != key);
        self.hold_deadline = self
            .holds
            .iter()
            .map(|(_, h)| h.deadline)
            .min()
            .unwrap_or(Time::MAX);
        let held = std::mem::take(&mut self.held);
        let mut count = 0;
        for h in held {
            if h.hold != key {
                self.held.push(h);
                continue;
            }
            count += 1;
            if let Some(d2) = h.dup {
                let copy = h.msg.clone();
                self.push(
                    self.now + d2,
                    Event::Deliver {
                        from: h.from,
                        to: h.to,
                        id: h.id,
                        msg: copy,
                    },
                );
            }
            self.push(
                self.now + h.delay,
                Event::Deliver {
                    from: h.from,
                    to: h.to,
                    id: h.id,
                    msg: h.msg,
                },
            );
        }
        count
    }

    /// Releases the holds whose deadline has come.
    pub(crate) fn release_due_holds(&mut self) {
        let due: Vec<u64> = self
            .holds
            .iter()
            .filter(|(_, h)| h.deadline <= self.now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let node = self
                .holds
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, h)| h.node);
            let count = self.release_hold(key);
            if let Some(node) = node {
                let name = self.specs[node].name.clone();
                self.note(|| {
                    format!("released {count} held messages of {name}: the hold's time is up")
                });
            }
        }
    }
}
