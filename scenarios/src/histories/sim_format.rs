//! The simulator's own history format: JSON Lines, one key/value operation per line.
//!
//! ```text
//! {"client":0,"call":1200,"ret":3400,"op":"append","key":"k1","value":"x 0 1 y","output":null}
//! {"client":1,"call":1300,"ret":3500,"op":"get","key":"k1","value":null,"output":"x 0 1 y"}
//! {"client":2,"call":1400,"ret":null,"op":"put","key":"k2","value":"v","output":null}
//! ```
//!
//! Times are virtual microseconds. `ret: null` marks an operation that never returned (its
//! outcome is unknown). A client's operations are sequential (program order): the checker
//! linearizes each returned operation before the same client's next one even when the next is
//! called in the same microsecond, so a client may not call again before its previous operation
//! returned (after one that never returned it may: that one stays open, as in Jepsen). A get has `value: null` and, once returned, a string `output`; put and
//! append have a string `value` and `output: null`.

use super::ParseError;
use kv::model::{KvInput, KvOp, KvOperation, KvOutput};
use serde::{Deserialize, Serialize};
use sim::linearizability::Operation;
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    client: u64,
    call: u64,
    // `deserialize_with` makes these fields required (they must be present, possibly null).
    #[serde(deserialize_with = "Option::deserialize")]
    ret: Option<u64>,
    op: KvOp,
    key: String,
    #[serde(deserialize_with = "Option::deserialize")]
    value: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    output: Option<String>,
}

/// Renders a key/value history, one JSON object per line (each line ends with `\n`).
/// A returned get whose output is `Unknown` is written as pending (it had no effect either way).
pub fn write_sim_history(ops: &[KvOperation]) -> String {
    let mut out = String::new();
    for op in ops {
        let (value, output, ret) = match (op.input.op, &op.output) {
            (KvOp::Get, KvOutput::Value(v)) => (None, Some(v.clone()), op.ret),
            (KvOp::Get, _) => (None, None, None),
            (_, _) => (Some(op.input.value.clone()), None, op.ret),
        };
        let line = Line {
            client: op.client,
            call: op.call,
            ret,
            op: op.input.op,
            key: op.input.key.clone(),
            value,
            output,
        };
        // Serializing plain strings and integers cannot fail.
        out.push_str(&serde_json::to_string(&line).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    format!("{message} (column {})", e.column())
}

fn convert(line: Line) -> Result<KvOperation, String> {
    if let Some(ret) = line.ret {
        if ret < line.call {
            return Err(format!("\"ret\" {ret} is before \"call\" {}", line.call));
        }
    }
    let name = line.op.as_str();
    let (value, output) = match (line.op, line.value, line.output) {
        (KvOp::Get, Some(_), _) => return Err("a get must have \"value\": null".to_string()),
        (KvOp::Get, None, Some(out)) if line.ret.is_some() => (String::new(), KvOutput::Value(out)),
        (KvOp::Get, None, None) if line.ret.is_some() => {
            return Err("a returned get needs a string \"output\"".to_string())
        }
        (KvOp::Get, None, Some(_)) => {
            return Err("a pending get (\"ret\": null) must have \"output\": null".to_string())
        }
        (KvOp::Get, None, None) => (String::new(), KvOutput::Unknown),
        (_, None, _) => return Err(format!("a {name} needs a string \"value\"")),
        (_, Some(_), Some(_)) => return Err(format!("a {name} must have \"output\": null")),
        (_, Some(v), None) if line.ret.is_some() => (v, KvOutput::Done),
        (_, Some(v), None) => (v, KvOutput::Unknown),
    };
    Ok(Operation {
        client: line.client,
        input: KvInput {
            op: line.op,
            key: line.key,
            value,
        },
        output,
        call: line.call,
        ret: line.ret,
    })
}

/// Parses a history in the simulator's format (blank lines are skipped).
pub fn parse_sim_history(text: &str) -> Result<Vec<KvOperation>, ParseError> {
    let mut ops = Vec::new();
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let fail = |m: String| ParseError::new(index + 1, m);
        let line: Line = serde_json::from_str(raw).map_err(|e| fail(json_error(&e)))?;
        ops.push(convert(line).map_err(fail)?);
        lines.push(index + 1);
    }
    check_program_order(&ops, &lines)?;
    Ok(ops)
}

/// A client's operations are sequential: none is called before the client's previous returned
/// operation (in call order) returned.
fn check_program_order(ops: &[KvOperation], lines: &[usize]) -> Result<(), ParseError> {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].client, ops[i].call, i));
    // The latest returned operation of the current client.
    let mut busy: BTreeMap<u64, usize> = BTreeMap::new();
    for i in order {
        let op = &ops[i];
        if let Some(&j) = busy.get(&op.client) {
            let ret = ops[j].ret.unwrap_or(0);
            if op.call < ret {
                return Err(ParseError::new(
                    lines[i],
                    format!(
                        "client {} calls at {} before its operation on line {} returned (at {ret}); a client's operations are sequential",
                        op.client, op.call, lines[j]
                    ),
                ));
            }
        }
        if op.ret.is_some() {
            busy.insert(op.client, i);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<KvOperation> {
        vec![
            Operation {
                client: 0,
                input: KvInput::append("k1", "x 0 1 y"),
                output: KvOutput::Done,
                call: 1200,
                ret: Some(3400),
            },
            Operation {
                client: 1,
                input: KvInput::get("k1"),
                output: KvOutput::Value("x 0 1 y".into()),
                call: 1300,
                ret: Some(3500),
            },
            Operation {
                client: 2,
                input: KvInput::put("k2", "v"),
                output: KvOutput::Unknown,
                call: 1400,
                ret: None,
            },
        ]
    }

    #[test]
    fn writes_the_documented_shape() {
        let text = write_sim_history(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"client":0,"call":1200,"ret":3400,"op":"append","key":"k1","value":"x 0 1 y","output":null}"#
        );
        assert_eq!(
            lines[1],
            r#"{"client":1,"call":1300,"ret":3500,"op":"get","key":"k1","value":null,"output":"x 0 1 y"}"#
        );
        assert_eq!(
            lines[2],
            r#"{"client":2,"call":1400,"ret":null,"op":"put","key":"k2","value":"v","output":null}"#
        );
    }

    #[test]
    fn round_trips() {
        let ops = sample();
        assert_eq!(parse_sim_history(&write_sim_history(&ops)).unwrap(), ops);
    }

    #[test]
    fn rejects_malformed_lines() {
        let err = |text: &str| parse_sim_history(text).unwrap_err().to_string();
        assert_eq!(
            err("\n{\"client\":0,\"call\":1,\"ret\":2,\"op\":\"get\",\"key\":\"k\",\"value\":null,\"output\":\"a\",\"x\":1}"),
            "2: unknown field `x`, expected one of `client`, `call`, `ret`, `op`, `key`, `value`, `output` (column 79)"
        );
        assert_eq!(
            err(r#"{"client":0,"call":5,"ret":2,"op":"get","key":"k","value":null,"output":"a"}"#),
            "1: \"ret\" 2 is before \"call\" 5"
        );
        assert_eq!(
            err(r#"{"client":0,"call":1,"ret":2,"op":"cas","key":"k","value":null,"output":"a"}"#),
            "1: unknown variant `cas`, expected one of `get`, `put`, `append` (column 39)"
        );
        assert_eq!(
            err(r#"{"client":0,"call":1,"ret":2,"op":"get","key":"k","value":null,"output":null}"#),
            "1: a returned get needs a string \"output\""
        );
        assert_eq!(
            err(r#"{"client":0,"call":1,"ret":2,"op":"put","key":"k","value":"v","output":"v"}"#),
            "1: a put must have \"output\": null"
        );
        assert!(err("{\"client\":0").starts_with("1: EOF while parsing"));
        assert_eq!(
            err(concat!(
                r#"{"client":3,"call":1,"ret":9,"op":"get","key":"k","value":null,"output":""}"#,
                "\n",
                r#"{"client":3,"call":5,"ret":7,"op":"get","key":"k","value":null,"output":""}"#
            )),
            "2: client 3 calls at 5 before its operation on line 1 returned (at 9); a client's operations are sequential"
        );
    }
}
