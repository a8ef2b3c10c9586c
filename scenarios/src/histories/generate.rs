//! Synthetic key/value histories of any length, for benchmarking and testing the
//! linearizability checker on long histories.
//!
//! Each client runs its operations one after another (program order), with random latencies and
//! pauses, so operations of different clients overlap in real time. Clients are grouped onto
//! keys: `clients_per_key = 1` gives every client its own key (each partition is one client's
//! sequential history), more makes the clients of a key concurrent (a harder search). Every
//! operation is given a linearization point inside its interval and the gets return what that
//! order implies, so the history is linearizable by construction; [`spoil`] then makes one read
//! stale, which no linearization explains. The same seed always gives the same history.

use kv::model::{KvInput, KvOp, KvOperation, KvOutput};
use sim::linearizability::Operation;

/// What to generate (see the module doc).
#[derive(Clone, Copy, Debug)]
pub struct LongHistory {
    /// Total number of operations (spread evenly over the clients).
    pub operations: usize,
    pub clients: usize,
    /// How many clients share each key (1: every client has its own key).
    pub clients_per_key: usize,
    pub seed: u64,
}

/// splitmix64: a tiny deterministic generator, enough for workloads.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Generates the history: the clients' operations taken in turn (roughly call order), each get
/// returning the value its linearization point implies. Mix: 50% get, 40% append, 10% put;
/// values are unique per operation and stay short (a put resets the key every ten operations
/// on average).
pub fn long_history(spec: LongHistory) -> Vec<KvOperation> {
    let clients = spec.clients.max(1);
    let per_key = spec.clients_per_key.max(1);
    let mut rng = Rng(spec.seed);
    // (linearization point, index) of every operation, to compute the gets.
    let mut ops: Vec<KvOperation> = Vec::with_capacity(spec.operations);
    let mut points: Vec<(u64, usize)> = Vec::with_capacity(spec.operations);
    let mut clock: Vec<u64> = (0..clients).map(|_| rng.range(0, 50)).collect();
    // Round robin over the clients keeps every client's virtual time close to the others'.
    for n in 0..spec.operations {
        let c = n % clients;
        let call = clock[c];
        let ret = call + rng.range(1, 100);
        clock[c] = ret + rng.range(0, 20);
        let key = format!("k{}", c / per_key);
        let roll = rng.range(0, 9);
        let input = match roll {
            0..=4 => KvInput::get(key),
            5..=8 => KvInput::append(key, format!("{c}.{n} ")),
            _ => KvInput::put(key, format!("{c}.{n} ")),
        };
        let output = match input.op {
            KvOp::Get => KvOutput::Value(String::new()),
            _ => KvOutput::Done,
        };
        // Points are spread over 4x the time resolution so that ties are rare.
        points.push((rng.range(call * 4, ret * 4), n));
        ops.push(Operation {
            client: c as u64,
            input,
            output,
            call,
            ret: Some(ret),
        });
    }
    points.sort_unstable();
    let mut values: Vec<String> = vec![String::new(); clients.div_ceil(per_key)];
    for &(_, n) in &points {
        let key = ops[n].client as usize / per_key;
        let op = &mut ops[n];
        match op.input.op {
            KvOp::Get => op.output = KvOutput::Value(values[key].clone()),
            KvOp::Put => values[key] = op.input.value.clone(),
            KvOp::Append => values[key].push_str(&op.input.value),
        }
    }
    ops
}

/// Makes the history not linearizable with a stale read: the last get `g` that has, on its
/// key, a write `w` that returned before `g` was called and a get `r` that returned before `w`
/// was called, now returns what `r` saw. Values are unique per write, so once `w` has taken
/// effect the key never holds that value again. Returns `g`, or `None` if no get qualifies.
pub fn spoil(ops: &mut [KvOperation]) -> Option<usize> {
    let ret = |op: &KvOperation| op.ret.unwrap_or(u64::MAX);
    for g in (0..ops.len()).rev() {
        if ops[g].input.op != KvOp::Get || ops[g].ret.is_none() {
            continue;
        }
        let key = &ops[g].input.key;
        let Some(w) = (0..g).rev().find(|&w| {
            ops[w].input.key == *key && ops[w].input.op != KvOp::Get && ret(&ops[w]) < ops[g].call
        }) else {
            continue;
        };
        let Some(r) = (0..w).rev().find(|&r| {
            ops[r].input.key == *key && ops[r].input.op == KvOp::Get && ret(&ops[r]) < ops[w].call
        }) else {
            continue;
        };
        ops[g].output = ops[r].output.clone();
        return Some(g);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_history() {
        let spec = LongHistory {
            operations: 500,
            clients: 7,
            clients_per_key: 2,
            seed: 3,
        };
        assert_eq!(long_history(spec), long_history(spec));
        let other = long_history(LongHistory { seed: 4, ..spec });
        assert_ne!(long_history(spec), other);
    }

    #[test]
    fn clients_are_sequential_and_overlap_each_other() {
        let ops = long_history(LongHistory {
            operations: 1000,
            clients: 10,
            clients_per_key: 1,
            seed: 1,
        });
        assert_eq!(ops.len(), 1000);
        let mut last_ret = [None::<u64>; 10];
        let mut overlaps = 0;
        for (i, op) in ops.iter().enumerate() {
            let c = op.client as usize;
            assert_eq!(op.input.key, format!("k{c}"));
            let ret = op.ret.unwrap();
            assert!(last_ret[c].is_none_or(|r| r <= op.call));
            last_ret[c] = Some(ret);
            if let Some(next) = ops.get(i + 1) {
                if next.call < ret {
                    overlaps += 1;
                }
            }
        }
        assert!(overlaps > 100, "only {overlaps} overlapping neighbours");
    }
}
