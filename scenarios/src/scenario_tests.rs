//! The scenario parser's tests: good files parse, every bad one fails with one clear line.

use super::*;

const GOOD: &str = r#"{
    "name": "t", "system": "pingpong", "servers": 3, "duration_ms": 1000,
    "pingpong": {"interval_ms": 10}
}"#;

fn err(text: &str) -> String {
    Scenario::parse(text, "x.json").unwrap_err().to_string()
}

#[test]
fn parses_a_good_file() {
    let sc = Scenario::parse(GOOD, "x.json").unwrap();
    assert_eq!(sc.nodes(), 3);
    assert_eq!(sc.deadline(), 1_000_000);
}

#[test]
fn malformed_json_names_line_and_column() {
    assert_eq!(
        err("{\n  \"name\": \"t\",\n  \"system\": \n}"),
        "x.json: system (line 4 column 1): expected value"
    );
}

#[test]
fn unknown_field_is_an_error() {
    let text = GOOD.replace("\"servers\"", "\"severs\": 1, \"servers\"");
    let e = err(&text);
    assert!(e.starts_with("x.json: "), "{e}");
    assert!(e.contains("unknown field `severs`"), "{e}");
}

#[test]
fn nested_unknown_field_names_its_path() {
    let text = GOOD.replace("\"interval_ms\"", "\"intervall\": 1, \"interval_ms\"");
    let e = err(&text);
    assert!(
        e.contains("pingpong.intervall") || e.contains("pingpong"),
        "{e}"
    );
    assert!(e.contains("unknown field `intervall`"), "{e}");
}

#[test]
fn impossible_probability_is_rejected() {
    let text = GOOD.replace(
        "\"servers\"",
        "\"network\": {\"drop_request\": 1.5}, \"servers\"",
    );
    assert_eq!(
        err(&text),
        "x.json: network: drop_request: a probability must be between 0 and 1, got 1.5"
    );
}

#[test]
fn wrong_type_names_the_field() {
    let text = GOOD.replace("\"servers\": 3", "\"servers\": \"three\"");
    let e = err(&text);
    assert!(e.starts_with("x.json: servers (line"), "{e}");
    assert!(e.contains("invalid type: string \"three\""), "{e}");
}

#[test]
fn fault_on_missing_node_is_rejected() {
    let text = GOOD.replace(
        "\"servers\"",
        "\"faults\": {\"schedule\": [{\"at_ms\": 5, \"fault\": {\"crash\": 7}}]}, \"servers\"",
    );
    assert_eq!(
        err(&text),
        "x.json: faults.schedule[0]: node 7 does not exist (the cluster has nodes 0..3)"
    );
}

/// A replaced schedule (what `sim explore` writes) is checked like a hand-written one, and a
/// good one is taken.
#[test]
fn replaced_schedule_is_validated_like_the_schedule() {
    let with =
        |faults: &str| GOOD.replace("\"servers\"", &format!("\"faults\": {faults}, \"servers\""));
    let bad = with(
        r#"{"replace_schedule": [{"at_ms": 5, "fault": "heal"}, {"at_ms": 6, "fault": {"crash": 7}}]}"#,
    );
    assert_eq!(
        err(&bad),
        "x.json: faults.replace_schedule[1]: node 7 does not exist (the cluster has nodes 0..3)"
    );
    let good = with(r#"{"replace_schedule": [{"at_ms": 5, "fault": {"crash": 1}}]}"#);
    let sc = Scenario::parse(&good, "x.json").unwrap();
    assert_eq!(sc.faults.replace_schedule.map(|f| f.len()), Some(1));
}

#[test]
fn missing_system_section_is_rejected() {
    let text = GOOD.replace("\"pingpong\": {\"interval_ms\": 10}", "\"clients\": 0");
    assert!(err(&text).contains("needs a \"pingpong\" section"));
}

const RAFT: &str = r#"{
    "name": "t", "system": "raft", "servers": 3, "duration_ms": 1000,
    "raft": {"pre_vote": true, "check_quorum": true}
}"#;

const KV: &str = r#"{
    "name": "t", "system": "kv", "servers": 3, "clients": 1, "duration_ms": 1000,
    "kv": {"read": "read_index", "pre_vote": true}
}"#;

#[test]
fn feature_switches_parse_and_stay_out_of_the_header_when_off() {
    let sc = Scenario::parse(RAFT, "x.json").unwrap();
    let r = sc.raft.as_ref().unwrap();
    assert!(r.pre_vote && r.check_quorum);
    let sc = Scenario::parse(KV, "x.json").unwrap();
    let k = sc.kv.as_ref().unwrap();
    assert_eq!(
        (k.read, k.pre_vote, k.check_quorum),
        (ReadSetting::ReadIndex, true, false)
    );
    let json = serde_json::to_string(k).unwrap();
    assert!(
        json.contains(r#""read":"read_index""#) && !json.contains("check_quorum"),
        "{json}"
    );
    // Off (the default), none of them is written: the lab scenarios' headers do not change.
    let json = serde_json::to_string(&KvSettings::default()).unwrap();
    assert!(
        !json.contains("read") && !json.contains("pre_vote"),
        "{json}"
    );
    let json = serde_json::to_string(&RaftSettings::default()).unwrap();
    assert!(
        !json.contains("pre_vote") && !json.contains("check_quorum"),
        "{json}"
    );
}

#[test]
fn bad_feature_settings_are_one_line_errors() {
    let e = err(&RAFT.replace(r#""pre_vote": true"#, r#""pre_vote": "yes""#));
    assert!(e.starts_with("x.json: raft.pre_vote (line"), "{e}");
    assert!(
        e.contains("invalid type: string \"yes\", expected a boolean"),
        "{e}"
    );
    let e = err(&RAFT.replace(r#""pre_vote""#, r#""prevote""#));
    assert!(e.contains("unknown field `prevote`"), "{e}");
    let e = err(&KV.replace(r#""read_index""#, r#""leases""#));
    assert!(e.starts_with("x.json: kv.read (line"), "{e}");
    assert!(
        e.contains("unknown variant `leases`, expected one of `log`, `read_index`, `lease`"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    // Leases parse, with a drift bound below 100%, which only lease reads take.
    let lease = KV.replace(r#""read_index""#, r#""lease", "max_drift_ppm": 200000"#);
    let sc = Scenario::parse(&lease, "x.json").unwrap();
    let k = sc.kv.as_ref().unwrap();
    assert_eq!((k.read, k.max_drift_ppm), (ReadSetting::Lease, 200_000));
    let e = err(&lease.replace("200000", "1000000"));
    assert!(
        e.starts_with("x.json: kv.max_drift_ppm: must be below 1000000"),
        "{e}"
    );
    let e = err(&KV.replace(r#""read_index""#, r#""read_index", "max_drift_ppm": 5"#));
    assert!(e.contains("it needs \"read\": \"lease\""), "{e}");
}

#[test]
fn read_bugs_need_a_kv_scenario() {
    let text = RAFT.replace(
        r#""name""#,
        r#""bugs": ["read-index-no-heartbeat"], "name""#,
    );
    let e = err(&text);
    assert!(
        e.starts_with("x.json: bugs[0]: read-index-no-heartbeat is a bug of the KV service"),
        "{e}"
    );
    let text = KV.replace(
        r#""name""#,
        r#""bugs": ["read-index-no-heartbeat"], "name""#,
    );
    Scenario::parse(&text, "x.json").unwrap();
}
