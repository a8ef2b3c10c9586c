//! Key/value histories as Clojure maps, one event per line:
//!
//! ```text
//! {:process 0, :type :invoke, :f :append, :key "4", :value "x 0 1 y"}
//! {:process 0, :type :ok, :f :append, :key "4", :value "x 0 1 y"}
//! {:process 3, :type :invoke, :f :get, :key "6", :value nil}
//! {:process 3, :type :ok, :f :get, :key "6", :value "x 3 0 yx 1 2 y"}
//! ```
//!
//! `:ok` of a get carries the value read (`nil` = empty). `:fail` means no effect (dropped);
//! `:info` leaves the operation open to the end (outcome unknown). Other keys (e.g. `:time`) are
//! ignored. `:process` is the client: its returned operations are sequential (program order).

use super::{Completion, OpBuilder, ParseError};
use kv::model::{KvInput, KvOp, KvOperation, KvOutput};

/// A value in a Clojure map.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Nil,
    Int(i64),
    Str(String),
    Keyword(String),
}

impl Value {
    fn show(&self) -> String {
        match self {
            Value::Nil => "nil".to_string(),
            Value::Int(i) => i.to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::Keyword(k) => format!("':{k}'"),
        }
    }
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_separators(&mut self) {
        while self.peek().is_some_and(|c| c.is_whitespace() || c == ',') {
            self.bump();
        }
    }

    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| !c.is_whitespace() && !matches!(c, ',' | '{' | '}' | '"'))
        {
            self.bump();
        }
        &self.text[start..self.pos]
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "the end of the line".to_string(),
            Some(c) => format!(
                "'{c}' at column {}",
                self.text[..self.pos].chars().count() + 1
            ),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err("unterminated string".to_string()),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(c @ ('"' | '\\')) => out.push(c),
                    Some(c) => return Err(format!("unsupported escape '\\{c}' in a string")),
                    None => return Err("unterminated string".to_string()),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some('"') => {
                self.bump();
                Ok(Value::Str(self.string()?))
            }
            Some(':') => {
                self.bump();
                Ok(Value::Keyword(self.word().to_string()))
            }
            Some(_) => {
                let here = self.describe_here();
                let word = self.word();
                if word == "nil" {
                    Ok(Value::Nil)
                } else if let Ok(i) = word.parse() {
                    Ok(Value::Int(i))
                } else {
                    Err(format!(
                        "expected a string, keyword, integer or nil, found {here}"
                    ))
                }
            }
            None => Err("expected a value, found the end of the line".to_string()),
        }
    }
}

/// Parses one `{:key value, ...}` line into its entries.
fn parse_map(text: &str) -> Result<Vec<(String, Value)>, String> {
    let mut c = Cursor { text, pos: 0 };
    c.skip_separators();
    if c.bump() != Some('{') {
        return Err("expected '{' at the start of the line".to_string());
    }
    let mut entries = Vec::new();
    loop {
        c.skip_separators();
        match c.peek() {
            Some('}') => {
                c.bump();
                break;
            }
            Some(':') => {
                c.bump();
                let key = c.word().to_string();
                c.skip_separators();
                let value = c.value()?;
                entries.push((key, value));
            }
            _ => {
                return Err(format!(
                    "expected a :keyword or '}}', found {}",
                    c.describe_here()
                ))
            }
        }
    }
    c.skip_separators();
    if c.peek().is_some() {
        return Err(format!("unexpected text after '}}': {}", c.describe_here()));
    }
    Ok(entries)
}

fn field<'e>(entries: &'e [(String, Value)], key: &str) -> Result<&'e Value, String> {
    entries
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .ok_or_else(|| format!("missing :{key}"))
}

fn parse_line(
    builder: &mut OpBuilder<KvInput, KvOutput>,
    line: usize,
    text: &str,
) -> Result<(), String> {
    let entries = parse_map(text)?;
    let process = match field(&entries, "process")? {
        Value::Int(p) if *p >= 0 => *p as u64,
        other => return Err(format!("expected a process number, found {}", other.show())),
    };
    let kind = match field(&entries, "type")? {
        Value::Keyword(k) if matches!(k.as_str(), "invoke" | "ok" | "fail" | "info") => k.as_str(),
        other => {
            return Err(format!(
                "expected ':invoke', ':ok', ':fail' or ':info', found {}",
                other.show()
            ))
        }
    };
    let (op, f) = match field(&entries, "f")? {
        Value::Keyword(k) if k == "get" => (KvOp::Get, "get"),
        Value::Keyword(k) if k == "put" => (KvOp::Put, "put"),
        Value::Keyword(k) if k == "append" => (KvOp::Append, "append"),
        other => {
            return Err(format!(
                "expected ':get', ':put' or ':append', found {}",
                other.show()
            ))
        }
    };
    let key = match field(&entries, "key")? {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => return Err(format!("expected a string :key, found {}", other.show())),
    };
    let value = match field(&entries, "value")? {
        Value::Str(s) => Some(s.clone()),
        Value::Nil => None,
        other => {
            return Err(format!(
                "expected a string or nil :value, found {}",
                other.show()
            ))
        }
    };
    let err = |e: ParseError| e.message;
    match kind {
        "invoke" => {
            let value = match (op, value) {
                (KvOp::Get, _) => String::new(),
                (_, Some(v)) => v,
                (_, None) => return Err(format!("expected a string :value for :{f}, found nil")),
            };
            builder
                .invoke(line, process, f, KvInput { op, key, value })
                .map_err(err)
        }
        "ok" => {
            let output = match op {
                KvOp::Get => KvOutput::Value(value.unwrap_or_default()),
                KvOp::Put | KvOp::Append => KvOutput::Done,
            };
            builder
                .complete(line, process, f, Completion::Returned(output))
                .map_err(err)
        }
        "fail" => builder
            .complete(line, process, f, Completion::NoEffect)
            .map_err(err),
        _ => {
            let completion = if op == KvOp::Get {
                Completion::NoEffect
            } else {
                Completion::Unknown
            };
            builder.complete(line, process, f, completion).map_err(err)
        }
    }
}

/// Parses a porcupine-style key/value history.
pub fn parse_porcupine_kv(text: &str) -> Result<Vec<KvOperation>, ParseError> {
    let mut builder = OpBuilder::new();
    for (index, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        parse_line(&mut builder, index + 1, raw).map_err(|m| ParseError::new(index + 1, m))?;
    }
    Ok(builder.finish(KvOutput::Unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maps() {
        let entries =
            parse_map(r#"{:process 3, :type :ok, :f :get, :key "6", :value "a \"b\""}"#).unwrap();
        assert_eq!(entries[0], ("process".to_string(), Value::Int(3)));
        assert_eq!(
            entries[1],
            ("type".to_string(), Value::Keyword("ok".into()))
        );
        assert_eq!(
            entries[4],
            ("value".to_string(), Value::Str("a \"b\"".into()))
        );
    }

    #[test]
    fn parses_a_history() {
        let text = r#"
{:process 0, :type :invoke, :f :append, :key "4", :value "x 0 1 y"}
{:process 1, :type :invoke, :f :get, :key "4", :value nil}
{:process 0, :type :ok, :f :append, :key "4", :value "x 0 1 y"}
{:process 1, :type :ok, :f :get, :key "4", :value "x 0 1 y"}
{:process 2, :type :invoke, :f :put, :key "5", :value "z"}
{:process 2, :type :info, :f :put, :key "5", :value "z"}
{:process 3, :type :invoke, :f :get, :key "5", :value nil}
{:process 3, :type :ok, :f :get, :key "5", :value nil}
"#;
        let ops = parse_porcupine_kv(text).unwrap();
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0].input, KvInput::append("4", "x 0 1 y"));
        assert_eq!((ops[0].call, ops[0].ret), (1, Some(3)));
        assert_eq!(ops[1].output, KvOutput::Value("x 0 1 y".into()));
        assert_eq!(ops[2].output, KvOutput::Unknown);
        assert_eq!(ops[2].ret, None);
        assert_eq!(ops[3].output, KvOutput::Value(String::new()));
    }

    #[test]
    fn errors_name_the_line() {
        let err = |text: &str| parse_porcupine_kv(text).unwrap_err().to_string();
        assert_eq!(
            err("\n{:process 0, :type :foo, :f :get, :key \"1\", :value nil}"),
            "2: expected ':invoke', ':ok', ':fail' or ':info', found ':foo'"
        );
        assert_eq!(
            err("{:process 0, :type :ok, :f :get, :key \"1\"}"),
            "1: missing :value"
        );
        assert_eq!(
            err("{:process 0, :type :invoke, :f :get, :key \"1, :value nil}"),
            "1: unterminated string"
        );
        assert_eq!(
            err("{:process 0 :type :invoke} x"),
            "1: unexpected text after '}': 'x' at column 28"
        );
        assert_eq!(
            err("{:process 0, :type :invoke, :f :cas, :key \"1\", :value nil}"),
            "1: expected ':get', ':put' or ':append', found ':cas'"
        );
    }
}
