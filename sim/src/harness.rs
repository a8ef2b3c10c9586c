//! The harness: the test driver and workload of a run (the 6.824 tester's role). It is not a
//! node: it has no network address, it calls nodes synchronously through [`World::input`], it
//! may inspect any node, and it injects faults. It draws randomness only from its own stream.

use crate::checker::Failure;
use crate::engine::World;
use crate::node::{Node, NodeId};

/// A test driver. All callbacks run inside the single simulation thread.
pub trait Harness<N: Node> {
    /// The run starts (all nodes already started).
    fn start(&mut self, world: &mut World<N>);
    /// A wake-up the harness asked for with [`World::wake_after`].
    fn on_wake(&mut self, world: &mut World<N>, tag: u64);
    /// A node reported something (after the checkers saw it).
    fn on_observation(&mut self, _world: &mut World<N>, _node: NodeId, _obs: &N::Obs) {}
    /// The run reached its end (deadline, empty queue or stop) without a violation: check
    /// end-of-run properties such as liveness.
    fn finish(&mut self, _world: &mut World<N>) -> Result<(), Failure> {
        Ok(())
    }
}

/// A harness that does nothing: the nodes run on their own.
pub struct Idle;

impl<N: Node> Harness<N> for Idle {
    fn start(&mut self, _world: &mut World<N>) {}
    fn on_wake(&mut self, _world: &mut World<N>, _tag: u64) {}
}
