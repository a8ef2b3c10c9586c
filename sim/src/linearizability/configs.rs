//! The search's memo of explored configurations, in memory proportional to what it holds.
//!
//! A configuration is a set of linearized operations and a model state. The set is not stored
//! as a bitset of the whole partition (that made a long partition's memo quadratic in its
//! length) but relative to an order of the operations, completed ones by return time, then
//! those that never returned: the longest linearized prefix of that order (the *base*, a count)
//! and the linearized operations beyond it (the *extra* ones, as their places in the order).
//! The pair is determined by the set and determines it, so two configurations are equal exactly
//! when their (base, extra, state) are. In the just-in-time search the base is every completed
//! operation that returned before the first unlinearized one, so the extra operations are the
//! few that were in flight at that return, plus the pending ones that were linearized: an entry
//! is small whatever the partition's length. States are interned elsewhere; here a state is its
//! number.
//!
//! The table is open addressing with linear probing over indices into one entry list, and the
//! extra sets of all entries share one array, so an entry costs a few words plus its extra
//! operations. Nothing here iterates in hash order, so the search stays deterministic.

use super::hasher::MixHasher;
use std::hash::Hasher;

const EMPTY: u32 = u32::MAX;

/// One configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    /// Length of the linearized prefix of the order.
    pub(crate) base: u32,
    /// Interned model state.
    pub(crate) state: u32,
    /// This configuration's extra operations: `extra[start..start + len]`, sorted.
    start: usize,
    len: u32,
    hash: u32,
}

/// The set of configurations seen so far.
pub(crate) struct Configs {
    entries: Vec<Config>,
    extra: Vec<u32>,
    /// Indices into `entries`; a power of two long, at most half full.
    slots: Vec<u32>,
}

fn hash(base: u32, extra: &[u32], state: u32) -> u64 {
    let mut h = MixHasher::default();
    h.write_u32(base);
    h.write_u32(state);
    for &x in extra {
        h.write_u32(x);
    }
    h.finish()
}

impl Configs {
    pub(crate) fn new() -> Self {
        Configs {
            entries: Vec::new(),
            extra: Vec::new(),
            slots: vec![EMPTY; 16],
        }
    }

    /// The configuration with number `index`.
    #[inline]
    pub(crate) fn get(&self, index: u32) -> &Config {
        &self.entries[index as usize]
    }

    /// The extra operations of configuration `index`.
    #[inline]
    pub(crate) fn extra(&self, index: u32) -> &[u32] {
        let c = &self.entries[index as usize];
        &self.extra[c.start..c.start + c.len as usize]
    }

    /// Number of configurations held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds the configuration unless it is there already: `Some(its new number)`, or `None`
    /// if it was seen before.
    pub(crate) fn insert(&mut self, base: u32, extra: &[u32], state: u32) -> Option<u32> {
        let h = hash(base, extra, state);
        let mask = self.slots.len() - 1;
        let mut slot = h as usize & mask;
        loop {
            let e = self.slots[slot];
            if e == EMPTY {
                break;
            }
            let c = &self.entries[e as usize];
            if c.hash == h as u32
                && c.base == base
                && c.state == state
                && self.extra[c.start..c.start + c.len as usize] == *extra
            {
                return None;
            }
            slot = (slot + 1) & mask;
        }
        let index = self.entries.len() as u32;
        self.entries.push(Config {
            base,
            state,
            start: self.extra.len(),
            len: extra.len() as u32,
            hash: h as u32,
        });
        self.extra.extend_from_slice(extra);
        self.slots[slot] = index;
        if self.entries.len() * 2 > self.slots.len() {
            self.grow();
        }
        Some(index)
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        let mask = size - 1;
        let mut slots = vec![EMPTY; size];
        for (index, c) in self.entries.iter().enumerate() {
            // The stored hash is the low 32 bits of the full one, enough to place the entry
            // while the table has at most 2^32 slots.
            let mut slot = c.hash as usize & mask;
            while slots[slot] != EMPTY {
                slot = (slot + 1) & mask;
            }
            slots[slot] = index as u32;
        }
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_what_was_inserted() {
        let mut c = Configs::new();
        let mut numbers = Vec::new();
        for base in 0..50u32 {
            for state in 0..4u32 {
                let extra: Vec<u32> = (base + 1..base + 1 + state).collect();
                numbers.push(c.insert(base, &extra, state).expect("new"));
            }
        }
        assert_eq!(c.len(), 200);
        for base in 0..50u32 {
            for state in 0..4u32 {
                let extra: Vec<u32> = (base + 1..base + 1 + state).collect();
                assert_eq!(c.insert(base, &extra, state), None);
                // Same base and state, another extra set: a different configuration.
                let other: Vec<u32> = (base + 2..base + 2 + state).collect();
                if state > 0 {
                    assert!(c.insert(base, &other, state).is_some());
                }
            }
        }
        let n = numbers[4 * 7 + 2];
        assert_eq!((c.get(n).base, c.get(n).state), (7, 2));
        assert_eq!(c.extra(n), &[8, 9]);
    }
}
