//! `--long`: times the check of long synthetic KV histories ([`generate::long_history`]) and
//! prints each beside porcupine's figure from the project's speed issue.
//!
//! `cargo bench -p scenarios --bench lincheck -- --long [--sizes 10000,100000] [--clients 100]
//! [--shared-sizes 10000,100000] [--per-key 4] [--seed 1] [--limit 10]`
//!
//! Two cases: every client on its own key (`own`, sizes 10k, 100k, 500k, 1M by default), and
//! keys shared by `--per-key` clients (`shared`, 10k and 100k). Each size is checked as generated
//! (linearizable by construction) and with one stale read ([`generate::spoil`], not
//! linearizable). `--limit` is the wall-clock limit of each check in seconds, as in the issue.
//! `seconds` is wall-clock time (what the speedup is computed from), `cpu s` the checking
//! thread's time on a CPU (the same on an idle machine; less when other work shares the core).
//! The memory columns are the process's resident set before the check and its peak during it
//! (Linux only). Each check runs in a process of its own, so that they are that check's alone.

use scenarios::histories::check_kv;
use scenarios::histories::generate::{long_history, spoil, LongHistory};
use std::time::{Duration, Instant};

/// Porcupine's figure from the issue: 1,000,000 operations decided in 10 s on one core, i.e.
/// 10 µs per operation. Porcupine is Go and is not run here; the reference for other sizes is
/// that rate scaled linearly.
const PORCUPINE_SECS_PER_OP: f64 = 10.0 / 1_000_000.0;

fn option(args: &[String], name: &str) -> Option<String> {
    let k = args.iter().position(|a| a == name)?;
    args.get(k + 1).cloned()
}

fn sizes(args: &[String], name: &str, default: &[usize]) -> Vec<usize> {
    match option(args, name) {
        Some(list) => list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("sizes: comma-separated integers"))
            .collect(),
        None => default.to_vec(),
    }
}

/// Kilobytes from a `/proc/self/status` line such as `VmHWM:   1234 kB`.
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The calling thread's time on a CPU so far, from `/proc/thread-self/schedstat` (Linux only):
/// on a shared machine the wall-clock figure also counts the time other processes held the
/// core, this one does not.
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or("-".to_string(), |kb| format!("{:.0}", kb as f64 / 1024.0))
}

pub fn main(args: &[String]) {
    let clients: usize = option(args, "--clients").map_or(100, |s| s.parse().unwrap());
    let per_key: usize = option(args, "--per-key").map_or(4, |s| s.parse().unwrap());
    let seed: u64 = option(args, "--seed").map_or(1, |s| s.parse().unwrap());
    let limit =
        Duration::from_secs_f64(option(args, "--limit").map_or(10.0, |s| s.parse().unwrap()));
    if let Some(k) = args.iter().position(|a| a == "--one") {
        return one(args, &args[k + 1], &args[k + 2], limit);
    }
    let own = sizes(args, "--sizes", &[10_000, 100_000, 500_000, 1_000_000]);
    let shared = sizes(args, "--shared-sizes", &[10_000, 100_000]);
    println!(
        "porcupine (Go) cannot run here: its column is the issue's figure, 1,000,000 operations \
         in 10 s on one core, scaled linearly. Limit per check: {:.0} s.",
        limit.as_secs_f64()
    );
    println!(
        "{:<7} {:>7} {:>7} {:>9} {:>17} {:>8} {:>9} {:>7} {:>10} {:>7} {:>8} {:>8}",
        "case",
        "clients",
        "per key",
        "ops",
        "verdict",
        "expected",
        "seconds",
        "cpu s",
        "porcupine",
        "speedup",
        "rss MB",
        "peak MB"
    );
    let cases = own
        .iter()
        .map(|&n| ("own", n, 1))
        .chain(shared.iter().map(|&n| ("shared", n, per_key)));
    let exe = std::env::current_exe().expect("the bench's own path");
    for (case, operations, clients_per_key) in cases {
        for expected in ["ok", "bad"] {
            // One process per check, so that the memory figures are that check's alone.
            let status = std::process::Command::new(&exe)
                .args(["--long", "--one", case, expected])
                .args(["--ops", &operations.to_string()])
                .args(["--clients", &clients.to_string()])
                .args(["--per-key", &clients_per_key.to_string()])
                .args(["--seed", &seed.to_string()])
                .args(["--limit", &limit.as_secs_f64().to_string()])
                .status()
                .expect("run the bench for one size");
            assert!(status.success(), "{case} {operations} {expected}: {status}");
        }
    }
}

/// One row of the table: generates the history and checks it.
fn one(args: &[String], case: &str, expected: &str, limit: Duration) {
    let number = |name: &str| -> usize { option(args, name).unwrap().parse().unwrap() };
    let spec = LongHistory {
        operations: number("--ops"),
        clients: number("--clients"),
        clients_per_key: number("--per-key"),
        seed: number("--seed") as u64,
    };
    let mut history = long_history(spec);
    if expected == "bad" && spoil(&mut history).is_none() {
        return;
    }
    let rss = status_kb("VmRSS:");
    let cpu_start = cpu_secs();
    let start = Instant::now();
    let report = check_kv(&history, limit);
    let took = start.elapsed().as_secs_f64();
    let cpu = cpu_secs()
        .zip(cpu_start)
        .map_or("-".to_string(), |(end, start)| {
            format!("{:.3}", end - start)
        });
    let peak = status_kb("VmHWM:");
    let porcupine = spec.operations as f64 * PORCUPINE_SECS_PER_OP;
    println!(
        "{:<7} {:>7} {:>7} {:>9} {:>17} {:>8} {:>9.3} {:>7} {:>10.3} {:>6.1}x {:>8} {:>8}",
        case,
        spec.clients,
        spec.clients_per_key,
        spec.operations,
        report.verdict.to_string(),
        expected,
        took,
        cpu,
        porcupine,
        porcupine / took,
        mb(rss),
        mb(peak),
    );
}
