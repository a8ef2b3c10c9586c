//! A static byte trie of the values written in one partition, for the append inference.
//!
//! The trie is built once from all the values, sorted, and laid out breadth first: the children
//! of a node are consecutive nodes, in byte order, so finding a child scans one short run of
//! adjacent nodes, and a node's counts sit in the same record as its links. (An incrementally
//! built trie with first-child / next-sibling lists was the inference's hotspot on long
//! histories: one client's values share long prefixes whose nodes have ten digit children
//! each, and each sibling step was a cache miss; a hash table of edges halved that but still
//! missed the cache once per byte.)

const NONE: u32 = u32::MAX;

/// One node: where its children are, the byte that leads to it, and the values ending at it.
#[derive(Clone, Copy, Debug)]
struct Node {
    first_child: u32,
    children: u32,
    byte: u8,
    /// How many values end here, and the first operation (lowest index) among them.
    ends: u32,
    first_end: u32,
}

/// The trie; node 0 is the root (the empty value).
pub(crate) struct Trie {
    nodes: Vec<Node>,
    /// The root's children indexed by byte (`NONE`: no value starts with it).
    root: Box<[u32; 256]>,
}

impl Trie {
    /// The trie of `values`, each `(value, operation)`.
    pub(crate) fn build(mut values: Vec<(&[u8], u32)>) -> Self {
        // Sorted by (value, operation). The comparison looks at a copy of each value's first
        // 16 bytes before the bytes themselves: the values are scattered over the heap, and a
        // comparison that loads two of them was most of the build's time.
        let head = |v: &[u8]| {
            let mut buf = [0u8; 16];
            let n = v.len().min(16);
            buf[..n].copy_from_slice(&v[..n]);
            u128::from_be_bytes(buf)
        };
        let mut keyed: Vec<(u128, &[u8], u32)> =
            values.iter().map(|&(v, op)| (head(v), v, op)).collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| (a.1, a.2).cmp(&(b.1, b.2))));
        values.clear();
        values.extend(keyed.into_iter().map(|(_, v, op)| (v, op)));
        let empty = Node {
            first_child: NONE,
            children: 0,
            byte: 0,
            ends: 0,
            first_end: NONE,
        };
        let mut nodes = vec![empty];
        // The values under each node, a range of `values`; the node's depth is the length
        // of the prefix they share.
        let mut ranges: Vec<(u32, u32)> = vec![(0, values.len() as u32)];
        let mut depth: Vec<u32> = vec![0];
        let mut k = 0;
        while k < nodes.len() {
            let (lo, hi) = (ranges[k].0 as usize, ranges[k].1 as usize);
            let d = depth[k] as usize;
            // Values that end here sort first (a prefix before its extensions), lowest
            // operation first.
            let mut j = lo;
            while j < hi && values[j].0.len() == d {
                j += 1;
            }
            if j > lo {
                nodes[k].ends = (j - lo) as u32;
                nodes[k].first_end = values[lo].1;
            }
            nodes[k].first_child = nodes.len() as u32;
            while j < hi {
                let b = values[j].0[d];
                let start = j;
                while j < hi && values[j].0[d] == b {
                    j += 1;
                }
                nodes.push(Node { byte: b, ..empty });
                ranges.push((start as u32, j as u32));
                depth.push(d as u32 + 1);
            }
            nodes[k].children = nodes.len() as u32 - nodes[k].first_child;
            k += 1;
        }
        let mut root = Box::new([NONE; 256]);
        let first = nodes[0].first_child;
        for c in first..first + nodes[0].children {
            root[nodes[c as usize].byte as usize] = c;
        }
        Trie { nodes, root }
    }

    #[inline]
    fn child(&self, node: u32, b: u8) -> u32 {
        if node == 0 {
            return self.root[b as usize];
        }
        let n = &self.nodes[node as usize];
        let first = n.first_child as usize;
        let run = &self.nodes[first..first + n.children as usize];
        // Children are in byte order: a short run, scanned until the byte is passed.
        for (k, c) in run.iter().enumerate() {
            if c.byte >= b {
                return if c.byte == b {
                    (first + k) as u32
                } else {
                    NONE
                };
            }
        }
        NONE
    }

    /// How many values end at `node`.
    #[inline]
    pub(crate) fn ends(&self, node: u32) -> u32 {
        self.nodes[node as usize].ends
    }

    /// The lowest operation among the values ending at `node` (`NONE` if none does).
    #[inline]
    pub(crate) fn first_end(&self, node: u32) -> u32 {
        self.nodes[node as usize].first_end
    }

    /// The node of `value`, if it is a value of the trie.
    pub(crate) fn find(&self, value: &[u8]) -> Option<u32> {
        let mut node = 0u32;
        for &b in value {
            node = self.child(node, b);
            if node == NONE {
                return None;
            }
        }
        (self.ends(node) > 0).then_some(node)
    }

    /// Calls `f(length, node)` for every node on `text`'s path where a value ends (the root,
    /// length 0, included).
    #[inline]
    pub(crate) fn prefixes_of(&self, text: &[u8], mut f: impl FnMut(usize, u32)) {
        if self.nodes[0].ends > 0 {
            f(0, 0);
        }
        let mut node = 0u32;
        for (k, &b) in text.iter().enumerate() {
            node = self.child(node, b);
            if node == NONE {
                return;
            }
            if self.nodes[node as usize].ends > 0 {
                f(k + 1, node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_values_and_their_prefixes_in_text() {
        let values: Vec<(&[u8], u32)> = vec![
            (b"ab", 3),
            (b"a", 5),
            (b"ab", 1),
            (b"b", 2),
            (b"abc", 0),
            (b"", 7),
            (b"\xff\x00", 4),
        ];
        let t = Trie::build(values);
        let ab = t.find(b"ab").expect("ab is a value");
        assert_eq!((t.ends(ab), t.first_end(ab)), (2, 1));
        assert_eq!(t.find(b"abcd"), None);
        assert_eq!(t.find(b"\xff"), None, "a prefix of a value is not one");
        assert!(t.find(b"\xff\x00").is_some());
        let root = t.find(b"").expect("the empty value");
        assert_eq!((t.ends(root), t.first_end(root)), (1, 7));
        let mut seen = Vec::new();
        t.prefixes_of(b"abcab", |len, node| seen.push((len, t.first_end(node))));
        assert_eq!(seen, vec![(0, 7), (1, 5), (2, 1), (3, 0)]);
        seen.clear();
        t.prefixes_of(b"ba", |len, node| seen.push((len, t.first_end(node))));
        assert_eq!(seen, vec![(0, 7), (1, 2)]);
    }

    #[test]
    fn long_values_sharing_their_first_sixteen_bytes_stay_apart() {
        let a = b"0123456789abcdefX".as_slice();
        let b = b"0123456789abcdef".as_slice();
        let c = b"0123456789abcdef\0".as_slice();
        let t = Trie::build(vec![(a, 0), (c, 1), (b, 2), (a, 3)]);
        assert_eq!(t.ends(t.find(a).unwrap()), 2);
        assert_eq!(t.first_end(t.find(b).unwrap()), 2);
        assert_eq!(t.first_end(t.find(c).unwrap()), 1);
        let mut seen = Vec::new();
        t.prefixes_of(b"0123456789abcdefX", |len, node| {
            seen.push((len, t.first_end(node)))
        });
        assert_eq!(seen, vec![(16, 2), (17, 0)]);
    }

    #[test]
    fn an_empty_trie_matches_nothing() {
        let t = Trie::build(Vec::new());
        assert_eq!(t.find(b""), None);
        let mut any = false;
        t.prefixes_of(b"abc", |_, _| any = true);
        assert!(!any);
    }

    #[test]
    fn wide_nodes_find_every_child() {
        let owned: Vec<Vec<u8>> = (0..=255u8).rev().map(|b| vec![b'x', b]).collect();
        let values = owned
            .iter()
            .enumerate()
            .map(|(i, v)| (&v[..], i as u32))
            .collect();
        let t = Trie::build(values);
        for b in 0..=255u8 {
            let node = t.find(&[b'x', b]).expect("every child");
            assert_eq!(t.first_end(node), 255 - u32::from(b));
        }
    }
}
