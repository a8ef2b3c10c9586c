use super::*;

/// A register holding `None` (never written) or an integer.
struct Register;

#[derive(Clone, Debug)]
enum RegIn {
    Read,
    Write(i64),
}

#[derive(Clone, Debug, PartialEq)]
enum RegOut {
    Read(Option<i64>),
    Done,
    Unknown,
}

impl Model for Register {
    type State = Option<i64>;
    type Input = RegIn;
    type Output = RegOut;
    fn init(&self) -> Option<i64> {
        None
    }
    fn step(&self, state: &Option<i64>, input: &RegIn, output: &RegOut) -> Option<Option<i64>> {
        match (input, output) {
            (RegIn::Read, RegOut::Read(v)) => (v == state).then_some(*state),
            (RegIn::Read, RegOut::Unknown) => Some(*state),
            (RegIn::Write(v), RegOut::Done | RegOut::Unknown) => Some(Some(*v)),
            _ => None,
        }
    }
    // The search's read shortcut, so that the brute-force comparison covers it (`Kv` below
    // leaves it out).
    fn observe(&self, state: &Option<i64>, input: &RegIn, output: &RegOut) -> Option<bool> {
        match (input, output) {
            (RegIn::Read, RegOut::Read(v)) => Some(v == state),
            (RegIn::Read, RegOut::Unknown) => Some(true),
            _ => None,
        }
    }
    fn describe(&self, input: &RegIn, output: &RegOut) -> String {
        format!("{input:?} -> {output:?}")
    }
}

fn w(client: u64, v: i64, call: u64, ret: Option<u64>) -> Operation<RegIn, RegOut> {
    let output = if ret.is_some() {
        RegOut::Done
    } else {
        RegOut::Unknown
    };
    Operation {
        client,
        input: RegIn::Write(v),
        output,
        call,
        ret,
    }
}

fn r(client: u64, v: Option<i64>, call: u64, ret: u64) -> Operation<RegIn, RegOut> {
    Operation {
        client,
        input: RegIn::Read,
        output: RegOut::Read(v),
        call,
        ret: Some(ret),
    }
}

fn verdict(history: &[Operation<RegIn, RegOut>]) -> Verdict {
    check(&Register, history).verdict
}

#[test]
fn empty_history_is_linearizable() {
    let report = check(&Register, &[]);
    assert_eq!(report.verdict, Verdict::Linearizable);
    assert_eq!(report.operations, 0);
}

#[test]
fn sequential_history() {
    let h = [
        r(0, None, 0, 1),
        w(0, 1, 2, Some(3)),
        r(1, Some(1), 4, 5),
        w(1, 2, 6, Some(7)),
        r(0, Some(2), 8, 9),
    ];
    let report = check(&Register, &h);
    assert_eq!(report.verdict, Verdict::Linearizable);
    assert_eq!(report.summaries[0].linearization, vec![0, 1, 2, 3, 4]);
}

#[test]
fn stale_read_is_not_linearizable() {
    let h = [
        w(0, 1, 0, Some(1)),
        w(0, 2, 2, Some(3)),
        r(1, Some(1), 4, 5),
    ];
    assert_eq!(verdict(&h), Verdict::NotLinearizable);
}

#[test]
fn read_during_concurrent_write_may_see_either_value() {
    let old = [
        w(0, 1, 0, Some(1)),
        w(0, 2, 2, Some(10)),
        r(1, Some(1), 3, 4),
    ];
    let new = [
        w(0, 1, 0, Some(1)),
        w(0, 2, 2, Some(10)),
        r(1, Some(2), 3, 4),
    ];
    assert_eq!(verdict(&old), Verdict::Linearizable);
    assert_eq!(verdict(&new), Verdict::Linearizable);
}

#[test]
fn concurrent_writes_need_one_order() {
    // Two concurrent writes; later reads observe 1, then 2, then 1 again: impossible.
    let h = [
        w(0, 1, 0, Some(10)),
        w(1, 2, 0, Some(10)),
        r(2, Some(1), 11, 12),
        r(2, Some(2), 13, 14),
        r(2, Some(1), 15, 16),
    ];
    assert_eq!(verdict(&h), Verdict::NotLinearizable);
    // Observing 2 then 1 alone is fine (write 2 first, then write 1).
    let ok = [
        w(0, 1, 0, Some(10)),
        w(1, 2, 0, Some(10)),
        r(2, Some(2), 5, 6),
        r(2, Some(1), 11, 12),
    ];
    assert_eq!(verdict(&ok), Verdict::Linearizable);
}

#[test]
fn touching_intervals_count_as_concurrent() {
    // The read's call time equals the write's return time.
    let h = [w(0, 1, 0, Some(5)), r(1, None, 5, 6)];
    assert_eq!(verdict(&h), Verdict::Linearizable);
    let h = [w(0, 1, 0, Some(5)), r(1, None, 6, 7)];
    assert_eq!(verdict(&h), Verdict::NotLinearizable);
}

#[test]
fn pending_write_may_take_effect_late_or_never() {
    // Never observed: fine.
    assert_eq!(
        verdict(&[w(0, 1, 0, None), r(1, None, 5, 6)]),
        Verdict::Linearizable
    );
    // Observed long after its call: fine.
    assert_eq!(
        verdict(&[w(0, 1, 0, None), r(1, None, 5, 6), r(1, Some(1), 100, 101)]),
        Verdict::Linearizable
    );
    // But once observed it cannot be undone.
    assert_eq!(
        verdict(&[w(0, 1, 0, None), r(1, Some(1), 5, 6), r(1, None, 7, 8)]),
        Verdict::NotLinearizable
    );
    // And it cannot be observed before its call.
    assert_eq!(
        verdict(&[r(1, Some(1), 0, 1), w(0, 1, 2, None)]),
        Verdict::NotLinearizable
    );
}

#[test]
fn failure_report_names_prefix_and_stuck_ops() {
    let h = [
        w(0, 1, 0, Some(1)),
        w(0, 2, 2, Some(3)),
        r(1, Some(1), 4, 5),
    ];
    let report = check(&Register, &h);
    assert_eq!(report.failures.len(), 1);
    let f = &report.failures[0];
    assert_eq!(f.key, None);
    assert_eq!(f.ops.len(), 3);
    assert_eq!(f.longest_prefix, vec![0, 1]);
    assert_eq!(f.state_after_prefix, "Some(2)");
    assert_eq!(
        f.stuck,
        vec![StuckOp {
            op: 2,
            rejected: true
        }]
    );
    let text = report.to_string();
    assert!(text.starts_with("not linearizable: 3 operations in 1 partitions"));
    assert!(text.contains("longest linearizable prefix: 2 of 3 operations"));
    assert!(text.contains("#2 client 1 [4 .. 5] Read -> Read(Some(1))  <- rejected by the model"));
}

/// A key/value store with put and get, partitioned per key.
struct Kv;

#[derive(Clone, Debug)]
enum KvIn {
    Put(String, i64),
    Get(String),
}

impl Model for Kv {
    type State = i64;
    type Input = KvIn;
    type Output = i64;
    fn init(&self) -> i64 {
        0
    }
    fn step(&self, state: &i64, input: &KvIn, output: &i64) -> Option<i64> {
        match input {
            KvIn::Put(_, v) => Some(*v),
            KvIn::Get(_) => (output == state).then_some(*state),
        }
    }
    fn partition_key(&self, input: &KvIn) -> Option<String> {
        match input {
            KvIn::Put(k, _) | KvIn::Get(k) => Some(k.clone()),
        }
    }
    fn describe(&self, input: &KvIn, output: &i64) -> String {
        format!("{input:?} -> {output}")
    }
}

fn kv(client: u64, input: KvIn, output: i64, call: u64, ret: u64) -> Operation<KvIn, i64> {
    Operation {
        client,
        input,
        output,
        call,
        ret: Some(ret),
    }
}

#[test]
fn partitions_are_checked_independently() {
    let a = || "a".to_string();
    let b = || "b".to_string();
    // Per key fine; a single-register model would reject it (get a = 1 after put b 2).
    let h = vec![
        kv(0, KvIn::Put(a(), 1), 0, 0, 1),
        kv(1, KvIn::Put(b(), 2), 0, 2, 3),
        kv(0, KvIn::Get(a()), 1, 4, 5),
        kv(1, KvIn::Get(b()), 2, 6, 7),
    ];
    let report = check(&Kv, &h);
    assert_eq!(report.verdict, Verdict::Linearizable);
    assert_eq!(report.partitions, 2);
    assert_eq!(report.summaries[1].linearization, vec![1, 3]);

    let mut bad = h.clone();
    bad.push(kv(2, KvIn::Get(b()), 0, 8, 9));
    let report = check(&Kv, &bad);
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].key.as_deref(), Some("b"));
    let indices: Vec<usize> = report.failures[0].ops.iter().map(|o| o.index).collect();
    assert_eq!(indices, vec![1, 3, 4]);
    assert!(report
        .to_string()
        .contains("partition \"b\" is not linearizable"));
}

#[test]
fn check_all_partitions_reports_every_failure() {
    let h = vec![
        kv(0, KvIn::Get("a".into()), 5, 0, 1),
        kv(0, KvIn::Get("b".into()), 5, 2, 3),
    ];
    let report = check(&Kv, &h);
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.summaries[1].verdict, Verdict::Unknown);
    let report = check_with(
        &Kv,
        &h,
        &mut Budget::unlimited(),
        CheckOptions {
            check_all_partitions: true,
        },
    );
    assert_eq!(report.failures.len(), 2);
}

/// Many concurrent writes followed by an impossible read: exponentially many configurations.
fn hard_history(n: u64) -> Vec<Operation<RegIn, RegOut>> {
    let mut h: Vec<_> = (0..n).map(|i| w(i, i as i64, 0, Some(100))).collect();
    h.push(r(n, Some(-1), 200, 201));
    h
}

#[test]
fn tiny_step_budget_gives_unknown() {
    let h = hard_history(12);
    let mut budget = Budget::unlimited().max_steps(5);
    let report = check_with(&Register, &h, &mut budget, CheckOptions::default());
    assert_eq!(report.verdict, Verdict::Unknown);
    assert!(budget.exhausted());
    assert!(report.to_string().contains("undecided"));
    // With enough steps the same history is decided.
    assert_eq!(check(&Register, &h).verdict, Verdict::NotLinearizable);
}

#[test]
fn should_stop_is_polled() {
    let h = hard_history(16);
    let mut polls = 0;
    let mut stop = || {
        polls += 1;
        polls >= 3
    };
    let mut budget = Budget::with_stop(&mut stop);
    let report = check_with(&Register, &h, &mut budget, CheckOptions::default());
    assert_eq!(report.verdict, Verdict::Unknown);
    assert_eq!(report.steps, 3 * Budget::POLL_INTERVAL);
}

/// Tiny deterministic generator for the randomized cross-check.
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

/// Exhaustive reference: try every real-time-respecting order (pending ops optional).
fn brute_force(h: &[Operation<RegIn, RegOut>]) -> bool {
    fn go(h: &[Operation<RegIn, RegOut>], used: &mut Vec<bool>, state: Option<i64>) -> bool {
        if h.iter()
            .zip(used.iter())
            .all(|(o, &u)| u || o.ret.is_none())
        {
            return true;
        }
        for i in 0..h.len() {
            if used[i] {
                continue;
            }
            // Some unused op returned strictly before i was called: i cannot be next.
            let blocked =
                (0..h.len()).any(|j| !used[j] && h[j].ret.is_some_and(|rj| rj < h[i].call));
            if blocked {
                continue;
            }
            if let Some(next) = Register.step(&state, &h[i].input, &h[i].output) {
                used[i] = true;
                if go(h, used, next) {
                    return true;
                }
                used[i] = false;
            }
        }
        false
    }
    go(h, &mut vec![false; h.len()], None)
}

#[test]
fn agrees_with_brute_force_on_random_histories() {
    let mut rng = Lcg(7);
    let mut seen = [0usize; 2];
    for _ in 0..2000 {
        let n = 1 + rng.below(7);
        let h: Vec<_> = (0..n)
            .map(|c| {
                let call = rng.below(20);
                let ret = call + rng.below(8);
                if rng.below(2) == 0 {
                    let pending = rng.below(6) == 0;
                    w(c, rng.below(3) as i64, call, (!pending).then_some(ret))
                } else {
                    let v = rng.below(4);
                    r(c, (v < 3).then_some(v as i64), call, ret)
                }
            })
            .collect();
        let expected = brute_force(&h);
        seen[expected as usize] += 1;
        let got = verdict(&h);
        let want = if expected {
            Verdict::Linearizable
        } else {
            Verdict::NotLinearizable
        };
        assert_eq!(got, want, "history: {h:#?}");
    }
    assert!(seen[0] > 100 && seen[1] > 100, "{seen:?}");
}
