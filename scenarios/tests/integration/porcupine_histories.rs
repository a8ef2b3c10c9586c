//! The linearizability checker against histories with known verdicts, plus the history loaders'
//! error messages and format detection.

use kv::model::{KvInput, KvOutput};
use scenarios::histories::cmd::{run, LincheckArgs};
use scenarios::histories::{
    check_history, detect_format, load, parse, write_sim_history, History, HistoryFormat,
};
use sim::linearizability::{Operation, Verdict};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the shared porcupine histories live: `$DETSIM_SHARED`, or next to the workspace.
fn shared_dir() -> PathBuf {
    match std::env::var_os("DETSIM_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/histories/porcupine"
        )),
    }
}

#[test]
fn shared_histories_match_their_verdicts() {
    let dir = shared_dir();
    let Ok(verdicts) = std::fs::read_to_string(dir.join("verdicts.tsv")) else {
        println!("SKIPPED: shared histories not found at {}", dir.display());
        return;
    };
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in verdicts.lines().filter(|l| !l.trim().is_empty()) {
        let (name, expected) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("bad verdicts.tsv line: {line:?}"));
        let want = match expected.trim() {
            "ok" => Verdict::Linearizable,
            "bad" => Verdict::NotLinearizable,
            other => panic!("unknown expected verdict {other:?} for {name}"),
        };
        let (_, history) = load(&dir.join(name), None).unwrap_or_else(|e| panic!("{name}: {e}"));
        let report = check_history(&history, Duration::from_secs(120));
        if report.verdict != want {
            wrong.push(format!("{name}: expected {want}, got {}", report.verdict));
        }
        checked += 1;
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
    assert!(checked >= 100, "only {checked} histories listed");
}

/// A scratch file under the system temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("detsim-lincheck-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn load_error(name: &str, contents: &str) -> (String, String) {
    let file = TempFile::new(name, contents);
    let err = load(&file.0, None).unwrap_err().to_string();
    (file.0.display().to_string(), err)
}

#[test]
fn malformed_etcd_log_names_file_and_line() {
    // 16 good lines (8 operations), then a bad event type on line 17.
    let mut text = String::new();
    for _ in 0..8 {
        text.push_str("INFO  jepsen.util - 0\t:invoke\t:read\tnil\n");
        text.push_str("INFO  jepsen.util - 0\t:ok\t:read\tnil\n");
    }
    text.push_str("INFO  jepsen.util - 1\t:foo\t:read\tnil\n");
    let (path, err) = load_error("bad.log", &text);
    assert_eq!(
        err,
        format!("{path}:17: expected ':invoke', ':ok', ':fail' or ':info', found ':foo'")
    );
}

#[test]
fn malformed_kv_and_sim_lines_name_file_and_line() {
    let (path, err) = load_error(
        "bad.txt",
        "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n{:process 0, :type :ok, :f :get, :key \"1\" :value 3.5}\n",
    );
    assert_eq!(
        err,
        format!("{path}:2: expected a string, keyword, integer or nil, found '3' at column 50")
    );
    let (path, err) = load_error(
        "bad.jsonl",
        "{\"client\":0,\"call\":1,\"ret\":2,\"op\":\"get\",\"key\":\"k\",\"value\":null}\n",
    );
    assert_eq!(err, format!("{path}:1: missing field `output` (column 63)"));
}

#[test]
fn missing_and_undetectable_files_are_errors() {
    let missing = Path::new("/nonexistent/detsim/history.log");
    let err = load(missing, None).unwrap_err().to_string();
    assert!(
        err.starts_with("/nonexistent/detsim/history.log: No such file"),
        "{err}"
    );
    let (path, err) = load_error("odd.txt", "hello\n");
    assert!(
        err.starts_with(&format!("{path}: cannot detect the history format")),
        "{err}"
    );
    let args = LincheckArgs {
        file: missing.to_path_buf(),
        format: None,
        time_limit: 10.0,
    };
    assert_eq!(run(&args), 2);
}

#[test]
fn formats_are_detected_from_contents() {
    let p = Path::new("x.log");
    assert_eq!(
        detect_format(p, "noise\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\n"),
        Some(HistoryFormat::Etcd)
    );
    assert_eq!(
        detect_format(
            Path::new("x.txt"),
            "\n{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n"
        ),
        Some(HistoryFormat::PorcupineKv)
    );
    assert_eq!(
        detect_format(Path::new("x.jsonl"), "{\"client\":0}\n"),
        Some(HistoryFormat::Sim)
    );
    assert_eq!(detect_format(Path::new("x.txt"), ""), None);
    assert_eq!(detect_format(Path::new("x.txt"), "INFO something\n"), None);
    // An explicit format wins over detection.
    let file = TempFile::new("empty.log", "");
    let (format, history) = load(&file.0, Some(HistoryFormat::Sim)).unwrap();
    assert_eq!(format, HistoryFormat::Sim);
    assert!(history.is_empty());
    let History::Register(ops) = parse(
        HistoryFormat::Etcd,
        "INFO  jepsen.util - 0\t:invoke\t:write\t1\n",
    )
    .unwrap() else {
        panic!("etcd parses to a register history")
    };
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].ret, None);
}

fn kv_op(
    client: u64,
    input: KvInput,
    output: KvOutput,
    call: u64,
    ret: u64,
) -> Operation<KvInput, KvOutput> {
    Operation {
        client,
        input,
        output,
        call,
        ret: Some(ret),
    }
}

#[test]
fn lincheck_command_exit_codes() {
    let ok = vec![
        kv_op(0, KvInput::put("k", "a"), KvOutput::Done, 0, 10),
        kv_op(1, KvInput::get("k"), KvOutput::Value("a".into()), 20, 30),
    ];
    let mut bad = ok.clone();
    bad.push(kv_op(
        2,
        KvInput::get("k"),
        KvOutput::Value("".into()),
        40,
        50,
    ));
    // Many concurrent appends of one value and a read missing one of them: reads of repeated
    // values teach the search nothing, so it takes far more than one poll interval.
    let mut hard: Vec<_> = (0..14)
        .map(|c| kv_op(c, KvInput::append("k", "a,"), KvOutput::Done, 0, 100))
        .collect();
    hard.push(kv_op(
        99,
        KvInput::get("k"),
        KvOutput::Value("a,".repeat(13)),
        200,
        300,
    ));

    let exit = |ops: &[Operation<KvInput, KvOutput>], time_limit: f64| {
        let file = TempFile::new("h.jsonl", &write_sim_history(ops));
        run(&LincheckArgs {
            file: file.0.clone(),
            format: None,
            time_limit,
        })
    };
    assert_eq!(exit(&ok, 10.0), 0);
    assert_eq!(exit(&bad, 10.0), 1);
    assert_eq!(exit(&hard, 0.0), 3);
    assert_eq!(exit(&hard, 60.0), 1);
    assert_eq!(exit(&ok, -1.0), 2);
}

/// Each client's operations are sequential whatever the timestamps: a client that invokes a get
/// in the microsecond its append returned must see that append.
#[test]
fn program_order_holds_at_equal_timestamps() {
    let sees = vec![
        kv_op(0, KvInput::append("k", "x"), KvOutput::Done, 0, 5),
        kv_op(0, KvInput::get("k"), KvOutput::Value("x".into()), 5, 5),
        kv_op(0, KvInput::append("k", "y"), KvOutput::Done, 5, 8),
        kv_op(1, KvInput::get("k"), KvOutput::Value("x".into()), 8, 9),
    ];
    let misses = vec![
        kv_op(0, KvInput::append("k", "x"), KvOutput::Done, 0, 5),
        kv_op(0, KvInput::get("k"), KvOutput::Value("".into()), 5, 6),
    ];
    let other_client = vec![
        kv_op(0, KvInput::append("k", "x"), KvOutput::Done, 0, 5),
        kv_op(1, KvInput::get("k"), KvOutput::Value("".into()), 5, 6),
    ];
    let verdict = |ops: &[Operation<KvInput, KvOutput>]| {
        let text = write_sim_history(ops);
        let history = parse(HistoryFormat::Sim, &text).unwrap();
        check_history(&history, Duration::from_secs(10)).verdict
    };
    assert_eq!(verdict(&sees), Verdict::Linearizable);
    assert_eq!(verdict(&misses), Verdict::NotLinearizable);
    assert_eq!(verdict(&other_client), Verdict::Linearizable);
}

/// Jepsen gives a process a fresh id after an `:info`, and the op stays open; if a log reuses the
/// id anyway, the open op still does not order the process's later ones (it may land late).
#[test]
fn an_info_op_stays_open_past_its_process_next_ops() {
    let log = "\
INFO  jepsen.util - 0\t:invoke\t:write\t1
INFO  jepsen.util - 0\t:info\t:write\t:timed-out
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:read\tnil
INFO  jepsen.util - 5\t:invoke\t:read\tnil
INFO  jepsen.util - 5\t:ok\t:read\t1
";
    let history = parse(HistoryFormat::Etcd, log).unwrap();
    let report = check_history(&history, Duration::from_secs(10));
    assert_eq!(report.verdict, Verdict::Linearizable);
    // But a returned write orders the same process's next read.
    let log = log.replace(":info\t:write\t:timed-out", ":ok\t:write\t1");
    let history = parse(HistoryFormat::Etcd, &log).unwrap();
    let report = check_history(&history, Duration::from_secs(10));
    assert_eq!(report.verdict, Verdict::NotLinearizable);
}

/// TestUnreliableOneKey's histories (50 concurrent appends to one key, one final read) used to
/// exhaust any search budget; what the read reveals about the appends decides them at once.
#[test]
fn unreliable_one_key_histories_are_decided() {
    use kv::model::KvModel;
    use scenarios::histories::trace_format::run_kv_history;
    use scenarios::kv::tester::LINEARIZABILITY_STEPS;
    use scenarios::scenario::Scenario;
    use sim::linearizability::{check_with, Budget, CheckOptions};
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/kv/unreliable-one-key.json"
    ));
    let sc = Scenario::load(path).unwrap();
    let check = |ops: &[Operation<KvInput, KvOutput>]| {
        let mut budget = Budget::unlimited().max_steps(LINEARIZABILITY_STEPS);
        check_with(&KvModel, ops, &mut budget, CheckOptions::default())
    };
    for seed in 1..=3 {
        let ops = run_kv_history(&sc, seed, "unreliable-one-key").unwrap();
        assert_eq!(ops.len(), 52);
        let report = check(&ops);
        assert_eq!(report.verdict, Verdict::Linearizable, "seed {seed}");
        assert!(report.steps < 1_000, "seed {seed}: {} steps", report.steps);
        // A broken service that loses one acknowledged append from the final read.
        let mut lost = ops.clone();
        let read = lost
            .iter_mut()
            .rev()
            .find(|o| o.input.key == "k" && matches!(o.output, KvOutput::Value(_)))
            .unwrap();
        let KvOutput::Value(v) = &read.output else {
            unreachable!()
        };
        read.output = KvOutput::Value(v.replacen("x 2 5 y", "", 1));
        let report = check(&lost);
        assert_eq!(report.verdict, Verdict::NotLinearizable, "seed {seed}");
        // One that applies an append twice.
        let mut twice = ops.clone();
        let read = twice
            .iter_mut()
            .rev()
            .find(|o| matches!(o.output, KvOutput::Value(_)))
            .unwrap();
        let KvOutput::Value(v) = &read.output else {
            unreachable!()
        };
        read.output = KvOutput::Value(format!("{v}x 1 9 y"));
        assert_eq!(
            check(&twice).verdict,
            Verdict::NotLinearizable,
            "seed {seed}"
        );
    }
}
