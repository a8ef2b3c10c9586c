//! The reader's side of blobs: the blobs a trace has defined and not yet forgotten, and the
//! resolution of `{"$ref":ID}` references against them.

use super::base64;
use super::delta::{apply, DeltaPiece};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The content of one blob.
#[derive(Clone, Debug, PartialEq)]
pub enum Blob {
    /// An array or object (which may refer to other blobs).
    Value(ValueBlob),
    /// A string.
    Str(String),
    /// A byte string (a `Vec<u8>` of the node types; JSON arrays of numbers in format 1).
    Bytes(Vec<u8>),
}

/// An array or object blob: its compact JSON text as the trace wrote it, parsed into a
/// [`Value`] only when someone asks for one (replay compares the text as it is).
#[derive(Clone, Debug)]
pub struct ValueBlob {
    text: Box<str>,
    parsed: OnceLock<Value>,
}

impl PartialEq for ValueBlob {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl ValueBlob {
    /// A blob from its text, which must be valid JSON (the reader checked it).
    fn from_text(text: &str) -> Self {
        ValueBlob {
            text: text.into(),
            parsed: OnceLock::new(),
        }
    }

    /// A blob from a parsed value; its text is the compact serialization.
    pub fn from_value(v: Value) -> Self {
        let text = serde_json::to_string(&v).expect("a JSON value serializes");
        let parsed = OnceLock::new();
        parsed.set(v).expect("a fresh cell");
        ValueBlob {
            text: text.into(),
            parsed,
        }
    }

    /// The blob's JSON text (references inside it unresolved).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The blob as a JSON value (references inside it unresolved).
    pub fn value(&self) -> &Value {
        self.parsed.get_or_init(|| {
            serde_json::from_str(&self.text).expect("a blob's text was checked as JSON")
        })
    }
}

impl Blob {
    fn size(&self) -> usize {
        match self {
            Blob::Value(v) => v.text.len() + 64,
            Blob::Str(s) => s.len(),
            Blob::Bytes(b) => b.len(),
        }
    }
}

/// The blobs in force while reading a trace.
#[derive(Default, Debug)]
pub struct BlobTable {
    blobs: HashMap<u64, Blob>,
    /// Approximate bytes held.
    size: usize,
}

/// The id of a reference `{"$ref":ID}`.
pub fn ref_id(v: &Value) -> Option<u64> {
    match v {
        Value::Object(m) if m.len() == 1 => m.get("$ref").and_then(Value::as_u64),
        _ => None,
    }
}

impl BlobTable {
    /// The blob with this id, if it is defined.
    pub fn get(&self, id: u64) -> Option<&Blob> {
        self.blobs.get(&id)
    }

    /// How many blobs are held, and about how many bytes.
    pub fn held(&self) -> (usize, usize) {
        (self.blobs.len(), self.size)
    }

    /// Reads a `blob` line from its text and holds its blob. A line as the writer writes it is
    /// read without building JSON values (a value blob is kept as text); any other line goes
    /// through [`BlobTable::define`], which also gives the precise error.
    pub fn define_text(&mut self, text: &str) -> Result<(), String> {
        if let Some((id, blob)) = self.quick_blob(text) {
            self.hold(id, blob);
            return Ok(());
        }
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        self.define(&v)
    }

    /// The blob of a well-formed `blob` line, or None (the caller then takes the long way).
    fn quick_blob(&self, text: &str) -> Option<(u64, Blob)> {
        let line: BlobLine = serde_json::from_str(text).ok()?;
        let mut kinds = [
            ("value", line.value),
            ("string", line.string),
            ("bytes", line.bytes),
            ("base64", line.base64),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)));
        let (key, raw) = kinds.next()?;
        if kinds.next().is_some() {
            return None;
        }
        let raw = raw.get();
        let blob = match (key, line.base) {
            ("value", None) if raw.starts_with(['{', '[']) => {
                self.check_text_refs(raw).ok()?;
                Blob::Value(ValueBlob::from_text(raw))
            }
            ("value", _) => return None,
            (_, None) => {
                let s: String = serde_json::from_str(raw).ok()?;
                match key {
                    "string" => Blob::Str(s),
                    "bytes" => Blob::Bytes(s.into_bytes()),
                    _ => Blob::Bytes(base64::decode(&s)?),
                }
            }
            (_, Some(b)) => {
                let base = match self.blobs.get(&b)? {
                    Blob::Str(s) => s.as_bytes(),
                    Blob::Bytes(b) => b,
                    Blob::Value(_) => return None,
                };
                let pieces: Vec<Value> = serde_json::from_str(raw).ok()?;
                let bytes = apply(base, &read_pieces(&pieces, key == "base64").ok()?).ok()?;
                match key {
                    "string" => Blob::Str(String::from_utf8(bytes).ok()?),
                    _ => Blob::Bytes(bytes),
                }
            }
        };
        Some((line.id, blob))
    }

    fn hold(&mut self, id: u64, blob: Blob) {
        self.size += blob.size();
        if let Some(old) = self.blobs.insert(id, blob) {
            self.size -= old.size();
        }
    }

    /// Checks that every reference inside the JSON text `text` names a blob in force, as
    /// [`BlobTable::check_refs`] does for a parsed value. References as the writer writes them
    /// (`{"$ref":ID}`) are found in the text; a text with any other mention of `$ref` (or a
    /// `\u` escape, which could spell one) is parsed and checked the long way.
    pub fn check_text_refs(&self, text: &str) -> Result<(), String> {
        match compact_refs(text, |id| self.blobs.contains_key(&id)) {
            Some(Ok(())) => Ok(()),
            Some(Err(id)) => Err(format!(
                "blob {id} is referred to but not defined (or was forgotten)"
            )),
            None => {
                let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
                self.check_refs(&v)
            }
        }
    }

    /// Reads a `blob` line (parsed) and holds its blob.
    pub fn define(&mut self, line: &Value) -> Result<(), String> {
        let map = line.as_object().ok_or("a blob record is an object")?;
        let id = map
            .get("ref")
            .and_then(Value::as_u64)
            .ok_or("a blob record needs a numeric `ref`")?;
        let base = match map.get("base") {
            None => None,
            Some(b) => {
                let b = b.as_u64().ok_or("`base` is a blob's ref")?;
                Some(self.blobs.get(&b).ok_or_else(|| {
                    format!("the base of blob {id}, blob {b}, is not defined (or was forgotten)")
                })?)
            }
        };
        let mut content = None;
        for (key, v) in map {
            let blob = match key.as_str() {
                "type" | "ref" | "base" => continue,
                "value" => {
                    if base.is_some() {
                        return Err("a value blob has no base".into());
                    }
                    self.check_refs(v)?;
                    Blob::Value(ValueBlob::from_value(v.clone()))
                }
                "string" | "bytes" | "base64" => {
                    let b64 = key == "base64";
                    let bytes = match (v, base) {
                        (Value::String(s), None) => literal(s, b64)?,
                        (Value::Array(pieces), Some(base)) => {
                            let base = match base {
                                Blob::Str(s) => s.as_bytes(),
                                Blob::Bytes(b) => b,
                                Blob::Value(_) => return Err("a delta's base is a string".into()),
                            };
                            apply(base, &read_pieces(pieces, b64)?)?
                        }
                        (Value::Array(_), None) => return Err("a delta needs a `base`".into()),
                        _ => return Err(format!("`{key}` is a string, or a delta with a base")),
                    };
                    if key == "string" {
                        Blob::Str(
                            String::from_utf8(bytes).map_err(|_| "a string blob is not UTF-8")?,
                        )
                    } else {
                        Blob::Bytes(bytes)
                    }
                }
                other => return Err(format!("unknown field `{other}` in a blob record")),
            };
            if content.replace(blob).is_some() {
                return Err("a blob record has one of value, string, bytes or base64".into());
            }
        }
        let blob = content.ok_or("a blob record needs a value, string, bytes or base64")?;
        self.hold(id, blob);
        Ok(())
    }

    /// Reads a `forget` line (parsed): its blobs are dropped.
    pub fn forget(&mut self, line: &Value) -> Result<(), String> {
        let refs = line
            .get("refs")
            .and_then(Value::as_array)
            .ok_or("a forget record needs `refs`, an array of blob refs")?;
        for r in refs {
            let id = r.as_u64().ok_or("a blob ref is a number")?;
            if let Some(old) = self.blobs.remove(&id) {
                self.size -= old.size();
            }
        }
        Ok(())
    }

    /// Checks that every reference inside `v` names a blob in force.
    pub fn check_refs(&self, v: &Value) -> Result<(), String> {
        match v {
            Value::Object(m) => {
                if let Some(id) = ref_id(v) {
                    if !self.blobs.contains_key(&id) {
                        return Err(format!(
                            "blob {id} is referred to but not defined (or was forgotten)"
                        ));
                    }
                    return Ok(());
                }
                m.values().try_for_each(|x| self.check_refs(x))
            }
            Value::Array(a) => a.iter().try_for_each(|x| self.check_refs(x)),
            _ => Ok(()),
        }
    }

    /// `v` with every reference replaced by its content, as format 1 wrote it (a byte string
    /// as an array of numbers). A reference to a missing blob stays as it is.
    pub fn resolve(&self, v: &Value) -> Value {
        self.resolve_with(v, usize::MAX)
    }

    /// Like [`BlobTable::resolve`], but a string longer than `max` characters is cut (ending
    /// in `… (N more characters)`) and a byte string longer than `max` bytes becomes the
    /// string `<N bytes>`: for people, who cannot read a whole snapshot anyway.
    pub fn resolve_with(&self, v: &Value, max: usize) -> Value {
        match v {
            Value::Object(m) => {
                if let Some(blob) = ref_id(v).and_then(|id| self.blobs.get(&id)) {
                    return match blob {
                        Blob::Value(inner) => self.resolve_with(inner.value(), max),
                        Blob::Str(s) => Value::String(cut(s, max)),
                        Blob::Bytes(b) => bytes_value(b, max),
                    };
                }
                let mut out = Map::with_capacity(m.len());
                for (k, x) in m {
                    out.insert(k.clone(), self.resolve_with(x, max));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.resolve_with(x, max)).collect()),
            Value::String(s) if s.len() > max => Value::String(cut(s, max)),
            _ => v.clone(),
        }
    }
}

/// A `blob` line's fields, with the content left as text.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BlobLine<'a> {
    #[serde(rename = "type")]
    _type: serde::de::IgnoredAny,
    #[serde(rename = "ref")]
    id: u64,
    #[serde(default)]
    base: Option<u64>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    string: Option<&'a RawValue>,
    #[serde(borrow, default)]
    bytes: Option<&'a RawValue>,
    #[serde(borrow, default)]
    base64: Option<&'a RawValue>,
}

/// Parses a compact reference `{"$ref":ID}` at the start of `text`: its id and length.
pub(crate) fn compact_ref(text: &[u8]) -> Option<(u64, usize)> {
    const OPEN: &[u8] = b"{\"$ref\":";
    let rest = text.strip_prefix(OPEN)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b'}') || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let id = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    Some((id, OPEN.len() + digits + 1))
}

/// Visits the references of a JSON text written compactly: `Some(Ok)` if every one is
/// `defined`, `Some(Err(id))` for the first that is not, `None` if the text mentions `$ref`
/// in any other way or has a `\u` escape (then only a parse can tell).
fn compact_refs(text: &str, defined: impl Fn(u64) -> bool) -> Option<Result<(), u64>> {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    static ESCAPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\\u"));
    static REF: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"$ref"));
    let b = text.as_bytes();
    if ESCAPE.find(b).is_some() {
        return None;
    }
    for at in REF.find_iter(b) {
        let (id, _) = at.checked_sub(2).and_then(|s| compact_ref(&b[s..]))?;
        if !defined(id) {
            return Some(Err(id));
        }
    }
    Some(Ok(()))
}

/// A byte string as format 1 wrote it, or its size if it is longer than `max`.
pub(crate) fn bytes_value(b: &[u8], max: usize) -> Value {
    if b.len() > max {
        Value::String(format!("<{} bytes>", b.len()))
    } else {
        Value::Array(b.iter().map(|&x| Value::from(x)).collect())
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let total = s.chars().count();
    if total <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    format!("{head}… ({} more characters)", total - max)
}

fn literal(s: &str, b64: bool) -> Result<Vec<u8>, String> {
    if b64 {
        base64::decode(s).ok_or_else(|| "not valid base64".to_string())
    } else {
        Ok(s.as_bytes().to_vec())
    }
}

fn read_pieces(pieces: &[Value], b64: bool) -> Result<Vec<DeltaPiece>, String> {
    pieces
        .iter()
        .map(|p| match p {
            Value::String(s) => Ok(DeltaPiece::Bytes(literal(s, b64)?)),
            Value::Array(a) if a.len() == 2 => match (a[0].as_u64(), a[1].as_u64()) {
                (Some(at), Some(len)) => Ok(DeltaPiece::Copy(at as usize, len as usize)),
                _ => Err("a copy is [offset, length]".to_string()),
            },
            _ => Err("a delta piece is [offset, length] or a literal string".to_string()),
        })
        .collect()
}
