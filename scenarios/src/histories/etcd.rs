//! Jepsen etcd logs: a single register with read, write and compare-and-swap.
//!
//! Only lines containing `jepsen.util` matter; after `jepsen.util - ` come, separated by tabs or
//! spaces, the process id, the event type (`:invoke`, `:ok`, `:fail`, `:info`), the function
//! (`:read`, `:write`, `:cas`) and the value (`nil`, an integer, or `[from to]` for cas).
//! A `:fail` of a cas means the comparison failed; a `:fail` of a read or write, or any `:fail`
//! with value `:timed-out`, had no effect and is dropped; an `:info` leaves the operation open
//! to the end of the history (outcome unknown). The register starts as `nil`. The process id is
//! the client: its returned operations are sequential (program order); Jepsen gives a process a
//! fresh id after an `:info`, and an open operation never orders its process's later ones.

use super::{Completion, OpBuilder, ParseError};
use sim::linearizability::{Model, Operation};

/// A register operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    Read,
    Write(i64),
    Cas { from: i64, to: i64 },
}

/// What the client observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOutput {
    /// A read returned this value (`None`: nil, never written).
    Read(Option<i64>),
    /// A write completed.
    Written,
    /// A cas completed; true if it swapped.
    Cas(bool),
    /// Never completed (timed out): may or may not have taken effect.
    Unknown,
}

pub type RegisterOperation = Operation<RegisterInput, RegisterOutput>;

/// The register model (state `None` = nil).
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterModel;

impl Model for RegisterModel {
    type State = Option<i64>;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(
        &self,
        state: &Option<i64>,
        input: &RegisterInput,
        output: &RegisterOutput,
    ) -> Option<Option<i64>> {
        use RegisterInput as I;
        use RegisterOutput as O;
        match (*input, *output) {
            (I::Read, O::Read(v)) => (v == *state).then_some(*state),
            (I::Read, O::Unknown) => Some(*state),
            (I::Write(v), O::Written | O::Unknown) => Some(Some(v)),
            (I::Cas { from, to }, O::Cas(true)) => (*state == Some(from)).then_some(Some(to)),
            (I::Cas { from, .. }, O::Cas(false)) => (*state != Some(from)).then_some(*state),
            (I::Cas { from, to }, O::Unknown) => Some(if *state == Some(from) {
                Some(to)
            } else {
                *state
            }),
            _ => None,
        }
    }

    fn describe(&self, input: &RegisterInput, output: &RegisterOutput) -> String {
        let call = match input {
            RegisterInput::Read => "read".to_string(),
            RegisterInput::Write(v) => format!("write({v})"),
            RegisterInput::Cas { from, to } => format!("cas({from}, {to})"),
        };
        match output {
            RegisterOutput::Read(Some(v)) => format!("{call} -> {v}"),
            RegisterOutput::Read(None) => format!("{call} -> nil"),
            RegisterOutput::Written => call,
            RegisterOutput::Cas(true) => format!("{call} -> ok"),
            RegisterOutput::Cas(false) => format!("{call} -> fail"),
            RegisterOutput::Unknown => format!("{call} -> ?"),
        }
    }
}

fn found(token: Option<&str>) -> String {
    match token {
        Some(t) if !t.is_empty() => format!("'{t}'"),
        _ => "the end of the line".to_string(),
    }
}

fn parse_int(value: &str, what: &str, line: usize) -> Result<i64, ParseError> {
    value.parse().map_err(|_| {
        ParseError::new(
            line,
            format!(
                "expected an integer for {what}, found {}",
                found(Some(value))
            ),
        )
    })
}

fn parse_cas(value: &str, line: usize) -> Result<(i64, i64), ParseError> {
    let bad = || {
        ParseError::new(
            line,
            format!(
                "expected '[from to]' for :cas, found {}",
                found(Some(value))
            ),
        )
    };
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .ok_or_else(bad)?;
    let mut parts = inner.split_whitespace();
    let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    match (a.parse(), b.parse()) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        _ => Err(bad()),
    }
}

/// Parses a Jepsen etcd log.
pub fn parse_etcd(text: &str) -> Result<Vec<RegisterOperation>, ParseError> {
    let mut builder = OpBuilder::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let Some((_, rest)) = raw.split_once("jepsen.util") else {
            continue;
        };
        let rest = rest.trim_start();
        let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
        // Other jepsen.util messages (not operation events) are noise.
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let mut tokens = rest.split_whitespace();
        let process_token = tokens.next().unwrap_or("");
        let process: u64 = process_token.parse().map_err(|_| {
            ParseError::new(
                line,
                format!(
                    "expected a process number, found {}",
                    found(Some(process_token))
                ),
            )
        })?;
        let kind = match tokens.next() {
            Some(k @ (":invoke" | ":ok" | ":fail" | ":info")) => k,
            other => {
                return Err(ParseError::new(
                    line,
                    format!(
                        "expected ':invoke', ':ok', ':fail' or ':info', found {}",
                        found(other)
                    ),
                ))
            }
        };
        let f_token = tokens.next();
        let value = tokens.collect::<Vec<_>>().join(" ");
        let f: &'static str = match f_token {
            Some(":read") => "read",
            Some(":write") => "write",
            Some(":cas") => "cas",
            other => {
                return Err(ParseError::new(
                    line,
                    format!(
                        "expected ':read', ':write' or ':cas', found {}",
                        found(other)
                    ),
                ))
            }
        };
        match kind {
            ":invoke" => {
                let input = match f {
                    "read" => RegisterInput::Read,
                    "write" => RegisterInput::Write(parse_int(&value, ":write", line)?),
                    _ => {
                        let (from, to) = parse_cas(&value, line)?;
                        RegisterInput::Cas { from, to }
                    }
                };
                builder.invoke(line, process, f, input)?;
            }
            ":ok" => {
                let output = match f {
                    "read" if value == "nil" => RegisterOutput::Read(None),
                    "read" => RegisterOutput::Read(Some(parse_int(&value, ":read", line)?)),
                    "write" => RegisterOutput::Written,
                    _ => RegisterOutput::Cas(true),
                };
                builder.complete(line, process, f, Completion::Returned(output))?;
            }
            ":fail" => {
                let completion = if f == "cas" && value != ":timed-out" {
                    Completion::Returned(RegisterOutput::Cas(false))
                } else {
                    Completion::NoEffect
                };
                builder.complete(line, process, f, completion)?;
            }
            _ => {
                // A read has no effect, so one with an unknown outcome can be dropped.
                let completion = if f == "read" {
                    Completion::NoEffect
                } else {
                    Completion::Unknown
                };
                builder.complete(line, process, f, completion)?;
            }
        }
    }
    Ok(builder.finish(RegisterOutput::Unknown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::linearizability::{check, Verdict};

    const LOG: &str = "\
noise line
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 1   :invoke :write  4
INFO  jepsen.util - 0\t:ok\t:read\tnil
INFO  jepsen.util - 1\t:ok\t:write\t4
INFO  jepsen.util - 2\t:invoke\t:cas\t[4 1]
INFO  jepsen.util - 3\t:invoke\t:cas\t[0 2]
INFO  jepsen.util - 2\t:ok\t:cas\t[4 1]
INFO  jepsen.util - 3\t:fail\t:cas\t[0 2]
INFO  jepsen.util - 4\t:invoke\t:write\t7
INFO  jepsen.util - 4\t:info\t:write\t:timed-out
INFO  jepsen.util - 5\t:invoke\t:read\tnil
INFO  jepsen.util - 5\t:fail\t:read\t:timed-out
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:read\t7
";

    #[test]
    fn parses_a_log() {
        let ops = parse_etcd(LOG).unwrap();
        let shape: Vec<_> = ops
            .iter()
            .map(|o| (o.client, o.input, o.output, o.ret.is_some()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, RegisterInput::Read, RegisterOutput::Read(None), true),
                (1, RegisterInput::Write(4), RegisterOutput::Written, true),
                (
                    2,
                    RegisterInput::Cas { from: 4, to: 1 },
                    RegisterOutput::Cas(true),
                    true
                ),
                (
                    3,
                    RegisterInput::Cas { from: 0, to: 2 },
                    RegisterOutput::Cas(false),
                    true
                ),
                (4, RegisterInput::Write(7), RegisterOutput::Unknown, false),
                (0, RegisterInput::Read, RegisterOutput::Read(Some(7)), true),
            ]
        );
        assert_eq!((ops[0].call, ops[0].ret), (1, Some(3)));
        assert_eq!(check(&RegisterModel, &ops).verdict, Verdict::Linearizable);
    }

    #[test]
    fn detects_a_bad_read() {
        let log = LOG.replace(":ok\t:read\t7", ":ok\t:read\t4");
        let ops = parse_etcd(&log).unwrap();
        assert_eq!(
            check(&RegisterModel, &ops).verdict,
            Verdict::NotLinearizable
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = |text: &str| parse_etcd(text).unwrap_err().to_string();
        assert_eq!(
            err("x\nINFO  jepsen.util - 2\t:foo\t:read\tnil\n"),
            "2: expected ':invoke', ':ok', ':fail' or ':info', found ':foo'"
        );
        assert_eq!(
            err("INFO  jepsen.util - 2\t:invoke\t:swap\t1\n"),
            "1: expected ':read', ':write' or ':cas', found ':swap'"
        );
        assert_eq!(
            err("INFO  jepsen.util - 2\t:invoke\t:cas\t[1]\n"),
            "1: expected '[from to]' for :cas, found '[1]'"
        );
        assert_eq!(
            err("INFO  jepsen.util - 2\t:invoke\t:write\tx\n"),
            "1: expected an integer for :write, found 'x'"
        );
        assert_eq!(
            err("INFO  jepsen.util - 2\t:ok\t:write\t1\n"),
            "1: process 2 completes :write but has no open operation"
        );
        assert_eq!(
            err("INFO  jepsen.util - 2\t:invoke\t:write\t1\nINFO  jepsen.util - 2\t:invoke\t:read\tnil\n"),
            "2: process 2 invokes :read while its :write from line 1 is still open"
        );
        assert_eq!(
            err(
                "INFO  jepsen.util - 2\t:invoke\t:write\t1\nINFO  jepsen.util - 2\t:ok\t:read\t1\n"
            ),
            "2: process 2 completes :read but its open operation (line 1) is :write"
        );
        assert_eq!(
            err("INFO  jepsen.util - 2\n"),
            "1: expected ':invoke', ':ok', ':fail' or ':info', found the end of the line"
        );
    }

    #[test]
    fn register_model_cas() {
        let m = RegisterModel;
        let cas = RegisterInput::Cas { from: 1, to: 2 };
        assert_eq!(
            m.step(&Some(1), &cas, &RegisterOutput::Cas(true)),
            Some(Some(2))
        );
        assert_eq!(m.step(&Some(3), &cas, &RegisterOutput::Cas(true)), None);
        assert_eq!(
            m.step(&Some(3), &cas, &RegisterOutput::Cas(false)),
            Some(Some(3))
        );
        assert_eq!(m.step(&Some(1), &cas, &RegisterOutput::Cas(false)), None);
        assert_eq!(
            m.step(&Some(1), &cas, &RegisterOutput::Unknown),
            Some(Some(2))
        );
        assert_eq!(m.step(&None, &cas, &RegisterOutput::Unknown), Some(None));
        assert_eq!(
            m.describe(&cas, &RegisterOutput::Cas(false)),
            "cas(1, 2) -> fail"
        );
    }
}
