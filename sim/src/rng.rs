//! Seeded random streams. Every purpose gets its own ChaCha stream derived from the run seed, so
//! an extra draw in one place (say, one more network decision) never reshuffles another (say,
//! the fault schedule or a node's election timeouts).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a random stream is for. Each maps to a distinct ChaCha stream id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Latency, drops, duplicates of messages.
    Network,
    /// The random fault schedule.
    Faults,
    /// The harness (test driver / workload generator).
    Harness,
    /// Settings drawn per seed from ranges ("swarm testing").
    Swarm,
    /// The fault schedule drawn from those settings.
    SwarmFaults,
    /// Decisions of the faults that react to the run (`reactive.rs`).
    Reactive,
    /// Settings of the system under test drawn per seed (its timeouts, say).
    SystemKnobs,
    /// The nodes' clocks drawn per seed: drifts and jumps (`clock_draw.rs`).
    Clocks,
    /// One node incarnation.
    Node { id: usize, incarnation: u32 },
}

impl Purpose {
    fn stream_id(self) -> u64 {
        match self {
            Purpose::Network => 1,
            Purpose::Faults => 2,
            Purpose::Harness => 3,
            Purpose::Swarm => 4,
            Purpose::SwarmFaults => 5,
            Purpose::Reactive => 6,
            Purpose::SystemKnobs => 7,
            Purpose::Clocks => 8,
            Purpose::Node { id, incarnation } => {
                debug_assert!(id < (1 << 24));
                (1 << 56) | ((id as u64) << 24) | u64::from(incarnation)
            }
        }
    }
}

/// The stream for `purpose` in the run with this `seed`.
pub fn stream(seed: u64, purpose: Purpose) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose.stream_id());
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a: u64 = stream(7, Purpose::Network).random();
        let b: u64 = stream(7, Purpose::Faults).random();
        let c: u64 = stream(7, Purpose::Network).random();
        let d: u64 = stream(8, Purpose::Network).random();
        assert_ne!(a, b);
        assert_eq!(a, c);
        assert_ne!(a, d);
        let n0: u64 = stream(
            7,
            Purpose::Node {
                id: 0,
                incarnation: 0,
            },
        )
        .random();
        let n1: u64 = stream(
            7,
            Purpose::Node {
                id: 0,
                incarnation: 1,
            },
        )
        .random();
        assert_ne!(n0, n1);
    }
}
