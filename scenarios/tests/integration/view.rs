//! Tests of the trace viewer: the HTML page generator, the view model and the text timeline.

use crate::common::{root, sim, tmp};
use scenarios::scenario::Scenario;
use scenarios::view::{html_page, page_data, text_timeline};
use serde_json::Value;
use sim::trace::Trace;

/// Runs a scenario through the library and returns its trace text.
fn record(scenario: &str, seed: u64, name: &str) -> String {
    let path = root().join(scenario);
    let sc = Scenario::load(&path).expect("scenario loads");
    let file = tmp(name);
    let out = std::fs::File::create(&file).unwrap();
    let w: Box<dyn std::io::Write> = Box::new(std::io::BufWriter::new(out));
    scenarios::run::run_scenario(&sc, seed, scenario, Some(w)).expect("the run completes");
    std::fs::read_to_string(&file).unwrap()
}

fn buggy() -> Trace {
    Trace::parse(&record("scenarios/pingpong/buggy.json", 1, "buggy.jsonl")).unwrap()
}

/// The JSON blob embedded in a page, and the page with the blob cut out.
fn split_page(page: &str) -> (Value, String) {
    let open = "<script type=\"application/json\" id=\"trace-data\">";
    let start = page.find(open).expect("the data tag") + open.len();
    let len = page[start..]
        .find("</script>")
        .expect("the data tag closes");
    let blob = &page[start..start + len];
    let rest = format!("{}{}", &page[..start], &page[start + len..]);
    (serde_json::from_str(blob).expect("the blob is JSON"), rest)
}

#[test]
fn page_is_self_contained_with_data_and_banner() {
    let page = html_page(&buggy(), "buggy run");
    let (data, rest) = split_page(&page);
    for id in [
        "id=\"lanes\"",
        "id=\"banner\"",
        "id=\"jump\"",
        "id=\"details\"",
        "id=\"filters\"",
    ] {
        assert!(rest.contains(id), "page lacks {id}");
    }
    assert!(rest.contains("<title>buggy run"));
    assert!(rest.contains("window.detsimView"));
    for bad in [
        "http://",
        "https://",
        "<script src",
        "<link",
        "@import",
        "url(",
    ] {
        assert!(
            !rest.contains(bad),
            "page (outside its data) contains {bad}"
        );
    }
    assert_eq!(data["nodes"].as_array().unwrap().len(), 5);
    assert!(!data["msgs"].as_array().unwrap().is_empty());
    let kinds: Vec<&str> = data["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"ping") && kinds.contains(&"pong"),
        "{kinds:?}"
    );
    let v = &data["violation"];
    assert_eq!(v["property"], "pong count");
    assert_eq!(v["event"], 16);
    assert_eq!(v["names"][0], "s1");
    let rec = v["rec"].as_u64().unwrap() as usize;
    assert_eq!(
        data["recs"][rec]["n"], 16,
        "the violation points at its record"
    );
    assert_eq!(data["meta"]["verdict"], "violation");
}

#[test]
fn script_data_cannot_close_its_tag() {
    let text = record("scenarios/pingpong/buggy.json", 1, "escape.jsonl");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let note =
        r#"{"type":"note","n":17,"t":34806,"text":"</script><script>alert(1)</script><!-- & 'x'"}"#;
    lines.insert(lines.len() - 1, note.to_string());
    let trace = Trace::parse(&lines.join("\n")).unwrap();
    let page = html_page(&trace, "</title><b>x</b>");
    assert_eq!(
        page.matches("</script>").count(),
        2,
        "only the two real closing tags"
    );
    assert!(!page.contains("<!--"));
    assert!(!page.contains("<b>x</b>"), "the title is escaped");
    let (data, _) = split_page(&page);
    let notes: Vec<&Value> = data["recs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "note")
        .collect();
    assert_eq!(
        notes[0]["text"],
        "</script><script>alert(1)</script><!-- & 'x'"
    );
}

/// A hand-written trace with every kind of thing the viewer draws.
const RICH: &str = r#"{"type":"header","format":1,"seed":9,"scenario":{"name":"hand/rich"},"source":"hand.json","nodes":[{"name":"s0","client":false},{"name":"s1","client":false},{"name":"s2","client":false},{"name":"c0","client":true}],"network":NETWORK,"drawn":{}}
{"type":"step","n":1,"t":0,"node":0,"inc":0,"input":{"kind":"start"},"out":[{"obs":{"role":{"role":"follower","term":0}}}]}
{"type":"step","n":2,"t":1000,"node":0,"inc":0,"input":{"kind":"timer","id":0,"tag":0},"out":[{"obs":{"role":{"role":"candidate","term":1}}},{"send":{"to":1,"msg":{"RequestVote":{"term":1}},"id":0}},{"send":{"to":2,"msg":{"RequestVote":{"term":1}},"id":1,"lost":"random"}},{"send":{"to":1,"msg":{"RequestVote":{"term":1}},"id":2,"dup":true}}]}
{"type":"step","n":3,"t":2000,"node":1,"inc":0,"input":{"kind":"deliver","from":0,"id":0,"msg":{"RequestVote":{"term":1}}},"out":[{"send":{"to":0,"msg":{"Vote":{"granted":true}},"id":3}}]}
{"type":"step","n":4,"t":2500,"node":1,"inc":0,"input":{"kind":"deliver","from":0,"id":2,"msg":{"RequestVote":{"term":1}}},"out":[]}
{"type":"step","n":5,"t":3000,"node":1,"inc":0,"input":{"kind":"deliver","from":0,"id":2,"msg":{"RequestVote":{"term":1}}},"out":[]}
{"type":"step","n":6,"t":3000,"node":0,"inc":0,"input":{"kind":"deliver","from":1,"id":3,"msg":{"Vote":{"granted":true}}},"out":[{"obs":{"role":{"role":"leader","term":1}}},{"obs":{"role":{"role":"leader","term":1}}},{"send":{"to":2,"msg":{"AppendEntries":{"term":1}},"id":4}},{"send":{"to":1,"msg":{"AppendEntries":{"term":1}},"id":5}}]}
{"type":"fault","n":7,"t":4000,"fault":{"partition":[[0,1],[2,3]]}}
{"type":"drop","n":8,"t":4100,"from":0,"to":2,"id":4,"cause":"partition","kind":"AppendEntries"}
{"type":"step","n":9,"t":5000,"node":3,"inc":0,"input":{"kind":"input","input":{"put":{"k":"a","v":"1"}}},"out":[{"obs":{"invoke":{"op":{"put":{"k":"a","v":"1"}}}}}]}
{"type":"step","n":10,"t":60000,"node":1,"inc":0,"input":{"kind":"deliver","from":0,"id":5,"msg":{"AppendEntries":{"term":1}}},"out":[{"obs":{"commit":{"commit_index":1}}},{"obs":{"applied":{"index":1,"term":1,"value":7}}},{"obs":{"log":{"append":{"entries":[[1,1,7]]}}}}]}
{"type":"fault","n":11,"t":61000,"fault":"heal"}
{"type":"fault","n":12,"t":62000,"fault":{"crash":2}}
{"type":"step","n":13,"t":63000,"node":3,"inc":0,"input":{"kind":"timer","id":1,"tag":0},"out":[{"obs":{"complete":{"op":{"put":{"k":"a","v":"1"}},"result":"ok"}}}]}
{"type":"note","n":14,"t":64000,"text":"one leader: s0 (term 1)"}
{"type":"fault","n":15,"t":65000,"fault":{"restart":2}}
{"type":"result","verdict":"violation","violation":{"property":"linearizability","nodes":[3],"detail":"history not linearizable: {\"key\":\"a\",\"ops\":[{\"index\":0,\"client\":0,\"call\":5000,\"ret\":63000,\"description\":\"put(a, 1)\"}],\"longest_prefix\":[],\"state_after_prefix\":\"{}\",\"stuck\":[{\"op\":0,\"rejected\":true}]}","time":65000,"event":15},"end_time":70000,"stats":STATS}
"#;

/// RICH with the network and stats of a real trace (their fields belong to the engine).
fn rich() -> Trace {
    let real = record("scenarios/pingpong/buggy.json", 1, "rich-src.jsonl");
    let first: Value = serde_json::from_str(real.lines().next().unwrap()).unwrap();
    let last: Value = serde_json::from_str(real.lines().last().unwrap()).unwrap();
    let text = RICH
        .replace("NETWORK", &first["network"].to_string())
        .replace("STATS", &last["stats"].to_string());
    Trace::parse(&text).expect("the hand-written trace parses")
}

#[test]
fn model_pairs_messages_and_marks_fates() {
    let data = page_data(&rich(), "rich");
    let kinds = &data["kinds"];
    assert_eq!(kinds[0], "RequestVote");
    assert_eq!(kinds[1], "Vote");
    assert_eq!(kinds[2], "AppendEntries");
    // [from, to, t_send, t_end, fate, flags, kind, rec_send, rec_end, id]
    let msgs = data["msgs"].as_array().unwrap();
    let by_id = |id: u64| -> Vec<&Value> { msgs.iter().filter(|m| m[9] == id).collect() };
    assert_eq!(by_id(0)[0][4], 0, "delivered");
    assert_eq!(by_id(0)[0][3], 2000);
    assert_eq!(by_id(1)[0][4], 1, "lost at send");
    let dup = by_id(2);
    assert_eq!(dup.len(), 2, "a duplicate has two arrows");
    assert!(dup.iter().all(|m| m[5].as_u64().unwrap() & 1 == 1));
    assert_eq!(by_id(4)[0][4], 2, "dropped at delivery");
    let slow = by_id(5)[0];
    assert_eq!(slow[5].as_u64().unwrap() & 2, 2, "long-delayed: {slow}");
    assert_eq!(by_id(0)[0][5], 0);

    // role changes only, not repeats
    let roles = data["roles"].as_array().unwrap();
    let s0: Vec<(&str, u64)> = roles
        .iter()
        .filter(|r| r[0] == 0)
        .map(|r| (r[2].as_str().unwrap(), r[3].as_u64().unwrap()))
        .collect();
    assert_eq!(s0, vec![("follower", 0), ("candidate", 1), ("leader", 1)]);
    let marks = data["marks"].as_array().unwrap();
    assert_eq!(marks.len(), 2);
    assert_eq!(marks[0][2], "commit");
    assert_eq!(marks[1][2], "applied");
    let dots = data["dots"].as_array().unwrap();
    assert_eq!(dots.len(), 1);
    assert_eq!(dots[0][2], "log");
    // client op from invoke to complete
    let ops = data["ops"].as_array().unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(
        (ops[0][0].as_u64(), ops[0][1].as_u64(), ops[0][2].as_u64()),
        (Some(3), Some(5000), Some(63000))
    );
    assert!(
        ops[0][5].as_str().unwrap().ends_with("→ ok"),
        "{}",
        ops[0][5]
    );
    // crash → restart, partition → heal
    let down = data["down"].as_array().unwrap();
    assert_eq!(down.len(), 1);
    assert_eq!(
        (
            down[0][0].as_u64(),
            down[0][1].as_u64(),
            down[0][2].as_u64()
        ),
        (Some(2), Some(62000), Some(65000))
    );
    let periods = data["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 1);
    assert_eq!(periods[0][2], "partition {s0,s1} {s2,c0}");
    assert_eq!(
        (periods[0][0].as_u64(), periods[0][1].as_u64()),
        (Some(4000), Some(61000))
    );
    // the linearizability report embedded in the violation's detail
    let lin = &data["lin"];
    assert_eq!(lin["key"], "a");
    assert_eq!(lin["ops"][0]["call"], 5000);
    assert_eq!(data["meta"]["end"], 70000);
}

#[test]
fn text_timeline_of_a_hand_written_trace() {
    let text = text_timeline(&rich(), 0);
    let expected = r#"trace     hand/rich (hand.json), seed 9
nodes     s0 s1 s2 c0 (3 servers, 1 clients)
    time  event  node  what
  0.000s  n=1    s0    follower term 0
  0.001s  n=2    s0    candidate term 1
  0.003s  n=6    s0    leader term 1
  0.004s  n=7    -     partition {s0,s1} {s2,c0}
  0.005s  n=9    c0    invoke {"put":{"k":"a","v":"1"}}
  0.060s  n=10   s1    commit 1
  0.061s  n=11   -     heal
  0.062s  n=12   s2    crash
  0.063s  n=13   c0    complete {"put":{"k":"a","v":"1"}} -> ok
  0.064s  n=14   -     note: one leader: s0 (term 1)
  0.065s  n=15   s2    restart
  0.065s  n=15   c0    VIOLATION linearizability: history not linearizable: {"key":"a","ops":[{"index":0,"client":0,"call":5000,"ret":63000,"description":"put(a, 1)"}],"longest_prefix":[],"state_after_prefix":"{}","stuck":[{"op":0,"rejected":true}]} (nodes c0)
verdict   VIOLATION: linearizability at 0.065s (event 15)
"#;
    assert_eq!(text, expected);
    let narrow = text_timeline(&rich(), 40);
    assert!(narrow.lines().all(|l| l.chars().count() <= 40), "{narrow}");
}

#[test]
fn text_timeline_is_deterministic_and_names_the_violation() {
    let a = text_timeline(&buggy(), 100);
    let b = text_timeline(
        &Trace::parse(&record("scenarios/pingpong/buggy.json", 1, "again.jsonl")).unwrap(),
        100,
    );
    assert_eq!(a, b);
    assert!(a.starts_with("trace     pingpong/buggy"), "{a}");
    assert!(
        a.contains("VIOLATION pong count: node 1 counted 2 pongs"),
        "{a}"
    );
    let last = a.lines().last().unwrap();
    assert_eq!(last, "verdict   VIOLATION: pong count at 0.034s (event 16)");
}

#[test]
fn sim_view_writes_a_page_and_prints_a_timeline() {
    let trace = tmp("cli.jsonl");
    std::fs::write(
        &trace,
        record("scenarios/pingpong/basic.json", 7, "cli-src.jsonl"),
    )
    .unwrap();
    let page = tmp("cli.html");
    let o = sim(&[
        "view",
        trace.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    let (data, _) = split_page(&html);
    assert_eq!(data["meta"]["verdict"], "ok");
    assert!(data["violation"].is_null());
    assert!(
        data["periods"].as_array().unwrap().len() >= 2,
        "partition and cut"
    );
    let o = sim(&["view", "--text", trace.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains(" s1    crash"), "{text}");
    assert!(text.ends_with("verdict   ok: all checks held\n"), "{text}");
}

#[test]
fn bad_traces_exit_2_with_one_line() {
    let good = record("scenarios/pingpong/buggy.json", 1, "good.jsonl");
    let mut lines: Vec<&str> = good.lines().collect();
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty.jsonl", String::new(), "line 1:"),
        ("garbage.jsonl", "not json\n".into(), "line 1:"),
        (
            "noheader.jsonl",
            lines[1..].join("\n"),
            "line 1: a trace must start with a header",
        ),
        (
            "badline.jsonl",
            {
                lines.insert(3, "{\"type\":\"step\",\"n\":\"x\"}");
                lines.join("\n")
            },
            "line 4:",
        ),
        (
            "badnode.jsonl",
            good.replacen("\"node\":2,", "\"node\":9,", 1),
            "node 9 does not exist",
        ),
    ];
    for (name, text, want) in cases {
        let path = tmp(name);
        std::fs::write(&path, text).unwrap();
        for args in [vec!["view", "--text"], vec!["view"]] {
            let mut args = args.clone();
            args.push(path.to_str().unwrap());
            let o = sim(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{name}: {err}");
            assert_eq!(err.lines().count(), 1, "{name}: {err}");
            assert!(
                err.starts_with(&format!("error: {}: ", path.display())),
                "{name}: {err}"
            );
            assert!(err.contains(want), "{name}: {err}");
        }
    }
    let o = sim(&["view", "--text", "/nonexistent/trace.jsonl"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
}
