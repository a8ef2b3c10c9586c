//! The reader's side of blobs: the blobs a trace has defined and not yet forgotten, and the
//! resolution of `{"$ref":ID}` references against them.

use super::base64;
use super::delta::{apply, DeltaPiece};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The content of one blob.
#[derive(Clone, Debug, PartialEq)]
pub enum Blob {
    /// An array or object (which may refer to other blobs).
    Value(Value),
    /// A string.
    Str(String),
    /// A byte string (a `Vec<u8>` of the node types; JSON arrays of numbers in format 1).
    Bytes(Vec<u8>),
}

impl Blob {
    fn size(&self) -> usize {
        match self {
            Blob::Value(_) => 256,
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
                    Blob::Value(v.clone())
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
        self.size += blob.size();
        if let Some(old) = self.blobs.insert(id, blob) {
            self.size -= old.size();
        }
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
                        Blob::Value(inner) => self.resolve_with(inner, max),
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
