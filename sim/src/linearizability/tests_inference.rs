//! Tests of the search constraints: per-client program order and the list-append inference.

use super::*;

/// A string that puts replace, appends extend and gets read whole, with an append view.
struct Text;

#[derive(Clone, Debug)]
enum TIn {
    Put(&'static str),
    Append(&'static str),
    Get,
}

#[derive(Clone, Debug, PartialEq)]
enum TOut {
    Done,
    Value(String),
    Unknown,
}

impl Model for Text {
    type State = String;
    type Input = TIn;
    type Output = TOut;
    fn init(&self) -> String {
        String::new()
    }
    fn step(&self, state: &String, input: &TIn, output: &TOut) -> Option<String> {
        match (input, output) {
            (TIn::Put(v), TOut::Done | TOut::Unknown) => Some(v.to_string()),
            (TIn::Append(v), TOut::Done | TOut::Unknown) => Some(format!("{state}{v}")),
            (TIn::Get, TOut::Value(v)) => (v == state).then(|| state.clone()),
            (TIn::Get, TOut::Unknown) => Some(state.clone()),
            _ => None,
        }
    }
    // The search's read shortcut (PlainText leaves it out, so both paths meet the brute force).
    fn observe(&self, state: &String, input: &TIn, output: &TOut) -> Option<bool> {
        match (input, output) {
            (TIn::Get, TOut::Value(v)) => Some(v == state),
            (TIn::Get, TOut::Unknown) => Some(true),
            _ => None,
        }
    }
    fn describe(&self, input: &TIn, output: &TOut) -> String {
        format!("{input:?} -> {output:?}")
    }
    fn append_view<'a>(&self, input: &'a TIn, output: &'a TOut) -> Option<AppendView<'a>> {
        Some(match (input, output) {
            (TIn::Put(v), _) => AppendView::Put(v),
            (TIn::Append(v), _) => AppendView::Append(v),
            (TIn::Get, TOut::Value(v)) => AppendView::Read(v),
            (TIn::Get, _) => AppendView::Nothing,
        })
    }
}

/// The same model without the append view: the search on its own.
struct PlainText;

impl Model for PlainText {
    type State = String;
    type Input = TIn;
    type Output = TOut;
    fn init(&self) -> String {
        String::new()
    }
    fn step(&self, state: &String, input: &TIn, output: &TOut) -> Option<String> {
        Text.step(state, input, output)
    }
    fn describe(&self, input: &TIn, output: &TOut) -> String {
        Text.describe(input, output)
    }
}

type Op = Operation<TIn, TOut>;

fn put(client: u64, v: &'static str, call: u64, ret: Option<u64>) -> Op {
    let output = if ret.is_some() {
        TOut::Done
    } else {
        TOut::Unknown
    };
    Operation {
        client,
        input: TIn::Put(v),
        output,
        call,
        ret,
    }
}

fn app(client: u64, v: &'static str, call: u64, ret: Option<u64>) -> Op {
    Operation {
        input: TIn::Append(v),
        ..put(client, v, call, ret)
    }
}

fn get(client: u64, v: &str, call: u64, ret: u64) -> Op {
    Operation {
        client,
        input: TIn::Get,
        output: TOut::Value(v.to_string()),
        call,
        ret: Some(ret),
    }
}

fn verdict(h: &[Op]) -> Verdict {
    let with = check(&Text, h).verdict;
    let without = check(&PlainText, h).verdict;
    assert_eq!(with, without, "inference changed the verdict of {h:#?}");
    with
}

#[test]
fn a_client_that_misses_its_own_write_is_caught() {
    // The read is invoked in the very microsecond the append returned, by the same client.
    let h = [app(0, "x", 0, Some(5)), get(0, "", 5, 6)];
    assert_eq!(verdict(&h), Verdict::NotLinearizable);
    // Another client may still see the old value at that instant.
    let h = [app(0, "x", 0, Some(5)), get(1, "", 5, 6)];
    assert_eq!(verdict(&h), Verdict::Linearizable);
}

#[test]
fn a_client_that_sees_its_own_write_at_equal_times_passes() {
    let h = [
        app(0, "x", 0, Some(5)),
        get(0, "x", 5, 5),
        app(0, "y", 5, Some(9)),
        get(0, "xy", 9, 12),
    ];
    assert_eq!(verdict(&h), Verdict::Linearizable);
}

#[test]
fn a_pending_operation_does_not_order_its_clients_later_ones() {
    // The client gave up on "x" and moved on; "x" may land later or never.
    let h = [app(0, "x", 0, None), get(0, "", 5, 6), get(1, "x", 7, 8)];
    assert_eq!(verdict(&h), Verdict::Linearizable);
    let h = [app(0, "x", 0, None), get(0, "", 5, 6)];
    assert_eq!(verdict(&h), Verdict::Linearizable);
}

#[test]
fn reads_that_disagree_on_the_order_of_appends_are_caught() {
    let h = [
        app(0, "a", 0, Some(10)),
        app(1, "b", 0, Some(10)),
        get(2, "ab", 11, 12),
        get(3, "ba", 13, 14),
    ];
    assert_eq!(verdict(&h), Verdict::NotLinearizable);
    let h = [
        app(0, "a", 0, Some(10)),
        app(1, "b", 0, Some(10)),
        get(2, "ba", 1, 12),
        get(3, "ba", 13, 14),
    ];
    assert_eq!(verdict(&h), Verdict::Linearizable);
}

#[test]
fn a_lost_append_is_caught_and_reported_with_the_read() {
    // "b" was acknowledged before the read started, but the read does not contain it.
    let h = [
        app(0, "a", 0, Some(3)),
        app(1, "b", 0, Some(4)),
        get(2, "a", 5, 6),
    ];
    let report = check(&Text, &h);
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    let f = &report.failures[0];
    assert_eq!(f.longest_prefix.len(), 2, "{report}");
    assert!(f.stuck.iter().any(|s| s.op == 2 && s.rejected), "{report}");
}

#[test]
fn a_read_no_writes_can_explain_is_caught_without_search() {
    let mut h: Vec<Op> = (0..30).map(|c| app(c, "x", 0, Some(100))).collect();
    h.push(get(99, "xxy", 200, 201));
    let report = check(&Text, &h);
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    assert_eq!(report.steps, 0);
    // An append applied twice: one append of "z", a read of "zz".
    let h = [app(0, "z", 0, Some(1)), get(1, "zz", 2, 3)];
    assert_eq!(verdict(&h), Verdict::NotLinearizable);
}

#[test]
fn equal_append_values_are_not_over_interpreted() {
    // Two appends of the same string: a read may contain both, in either identity order.
    let h = [
        app(0, "a", 0, Some(10)),
        app(1, "a", 0, Some(10)),
        get(2, "a", 1, 9),
        get(2, "aa", 11, 12),
    ];
    assert_eq!(verdict(&h), Verdict::Linearizable);
    // Values that split two ways ("ab"+"c" or "a"+"bc") decide nothing on their own.
    let h = [
        app(0, "ab", 0, Some(10)),
        app(1, "c", 0, Some(10)),
        app(2, "a", 0, Some(10)),
        app(3, "bc", 0, Some(10)),
        get(4, "abc", 1, 9),
        get(4, "abcabc", 11, 12),
    ];
    assert_eq!(verdict(&h), Verdict::Linearizable);
}

#[test]
fn an_unseen_write_may_precede_a_put_that_resets_the_value() {
    // The read of "" comes after a put of "", so the append before that put is not "lost".
    let h = [
        app(0, "x", 0, Some(1)),
        put(1, "", 2, Some(3)),
        get(2, "", 4, 5),
    ];
    assert_eq!(verdict(&h), Verdict::Linearizable);
    // But an append after the put must be seen.
    let h = [
        put(1, "", 0, Some(1)),
        app(0, "x", 2, Some(3)),
        get(2, "", 4, 5),
    ];
    assert_eq!(verdict(&h), Verdict::NotLinearizable);
    // A put as the read's prefix precedes the appends after it.
    let h = [
        app(0, "y", 0, Some(10)),
        put(1, "p", 0, Some(10)),
        get(2, "py", 11, 12),
    ];
    assert_eq!(verdict(&h), Verdict::Linearizable);
    let h = [
        app(0, "y", 0, Some(1)),
        put(1, "p", 2, Some(3)),
        get(2, "py", 11, 12),
    ];
    assert_eq!(verdict(&h), Verdict::NotLinearizable);
}

#[test]
fn pending_appends_seen_by_a_read_must_have_happened() {
    let h = [app(0, "z", 0, None), get(1, "", 1, 2), get(1, "z", 3, 4)];
    assert_eq!(verdict(&h), Verdict::Linearizable);
    let h = [app(0, "z", 0, None), get(1, "z", 1, 2), get(1, "", 3, 4)];
    assert_eq!(verdict(&h), Verdict::NotLinearizable);
}

/// The shape of the lab's TestUnreliableOneKey: many concurrent appends, one final read.
fn one_key(n: u64, read: &str) -> Vec<Op> {
    let values: Vec<&'static str> = (0..n)
        .map(|i| &*Box::leak(format!("x {i} y").into_boxed_str()))
        .collect();
    let mut h = vec![put(0, "", 0, Some(1))];
    for (i, v) in values.iter().enumerate() {
        h.push(app(
            i as u64 + 1,
            v,
            2 + i as u64 % 3,
            Some(1000 + i as u64 % 5),
        ));
    }
    h.push(get(0, read, 2000, 2001));
    h
}

#[test]
fn many_concurrent_appends_and_one_read_are_decided_quickly() {
    let n = 40;
    let order: String = (0..n).rev().map(|i| format!("x {i} y")).collect();
    let report = check(&Text, &one_key(n, &order));
    assert_eq!(report.verdict, Verdict::Linearizable);
    assert!(report.steps < 10_000, "{} steps", report.steps);
    // One acknowledged append missing from the read.
    let lost: String = (1..n).rev().map(|i| format!("x {i} y")).collect();
    let report = check(&Text, &one_key(n, &lost));
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    assert!(report.steps < 10_000, "{} steps", report.steps);
    // The same history without the inference does not finish in 200,000 steps.
    let mut budget = Budget::unlimited().max_steps(200_000);
    let h = one_key(n, &order);
    let report = check_with(&PlainText, &h, &mut budget, CheckOptions::default());
    assert_eq!(report.verdict, Verdict::Unknown);
}

/// Tiny deterministic generator.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Exhaustive reference: every order that respects real time and program order (pending
/// operations optional).
fn brute_force(h: &[Op]) -> bool {
    fn blocked(h: &[Op], used: &[bool], i: usize) -> bool {
        (0..h.len()).any(|j| {
            !used[j]
                && j != i
                && h[j].ret.is_some_and(|rj| {
                    rj < h[i].call
                        || (h[j].client == h[i].client && (h[j].call, j) < (h[i].call, i))
                })
        })
    }
    fn go(h: &[Op], used: &mut Vec<bool>, state: String) -> bool {
        if h.iter()
            .zip(used.iter())
            .all(|(o, &u)| u || o.ret.is_none())
        {
            return true;
        }
        for i in 0..h.len() {
            if used[i] || blocked(h, used, i) {
                continue;
            }
            if let Some(next) = Text.step(&state, &h[i].input, &h[i].output) {
                used[i] = true;
                if go(h, used, next) {
                    return true;
                }
                used[i] = false;
            }
        }
        false
    }
    go(h, &mut vec![false; h.len()], String::new())
}

/// Random histories of up to 7 operations by 3 sequential clients. With `unique`, every write
/// has its own one-letter value (so reads split one way) and reads concatenate a few of them;
/// otherwise values repeat and overlap.
fn random_histories(seed: u64, unique: bool) {
    const VALUES: [&str; 5] = ["a", "b", "c", "ab", ""];
    const LETTERS: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let mut rng = Lcg(seed);
    let mut seen = [0usize; 2];
    for _ in 0..3000 {
        let n = 1 + rng.below(7);
        let mut h: Vec<Op> = Vec::new();
        let mut clock = [0u64; 3];
        for _ in 0..n {
            let c = rng.below(3);
            // Clients are sequential: the next call is at or after the previous return.
            let call = clock[c as usize] + rng.below(4);
            let ret = call + rng.below(6);
            clock[c as usize] = ret;
            let v = if unique {
                LETTERS[h.len()]
            } else {
                VALUES[rng.below(5) as usize]
            };
            let pending = rng.below(8) == 0;
            h.push(match rng.below(5) {
                0 => put(c, v, call, (!pending).then_some(ret)),
                1 | 2 => app(c, v, call, (!pending).then_some(ret)),
                _ => {
                    // Read something plausible: a concatenation of earlier values.
                    let mut s = String::new();
                    for _ in 0..rng.below(3) {
                        s.push_str(if unique {
                            LETTERS[rng.below(n) as usize]
                        } else {
                            VALUES[rng.below(4) as usize]
                        });
                    }
                    get(c, &s, call, ret)
                }
            });
            if pending {
                clock[c as usize] = call;
            }
        }
        let expected = brute_force(&h);
        seen[expected as usize] += 1;
        let want = if expected {
            Verdict::Linearizable
        } else {
            Verdict::NotLinearizable
        };
        assert_eq!(check(&Text, &h).verdict, want, "history: {h:#?}");
        assert_eq!(check(&PlainText, &h).verdict, want, "history: {h:#?}");
    }
    assert!(seen[0] > 200 && seen[1] > 200, "{seen:?}");
}

#[test]
fn agrees_with_brute_force_on_random_append_histories() {
    random_histories(11, false);
}

#[test]
fn agrees_with_brute_force_on_random_unique_append_histories() {
    random_histories(12, true);
}
