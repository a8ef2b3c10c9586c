//! Replay's slow path: a recorded payload and a replayed one compared as JSON values, with
//! references resolved on the way. It decides whenever the texts differ
//! ([`crate::trace::same_text`]), and it gives the values a divergence shows.

use crate::trace::compact::{Blobs, Limits};
use crate::trace::same_text::LOCAL;
use crate::trace::table::{bytes_value, ref_id, Blob, BlobTable};
use serde_json::Value;

/// How much of a long string or byte string a divergence shows.
pub(super) const SHOWN: usize = 2000;

/// Keeps a replayed output's large strings and byte strings aside.
pub(super) struct Local<'a>(pub(super) &'a mut Vec<Blob>);

impl Blobs for Local<'_> {
    fn value(&mut self, _: &[u8]) -> Option<u64> {
        None
    }
    fn string(&mut self, s: &str) -> Option<u64> {
        self.0.push(Blob::Str(s.to_string()));
        Some(LOCAL + self.0.len() as u64 - 1)
    }
    fn bytes(&mut self, b: &[u8]) -> Option<u64> {
        self.0.push(Blob::Bytes(b.to_vec()));
        Some(LOCAL + self.0.len() as u64 - 1)
    }
}

/// The JSON text of a reply (inline: replies are compared whole).
pub(super) fn encode<T: serde::Serialize>(v: &T, buf: &mut Vec<u8>) -> Vec<u8> {
    crate::trace::compact::encode(v, buf, &mut crate::trace::compact::Inline, Limits::NONE)
        .expect("a reply serializes");
    std::mem::take(buf)
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    v: &Value,
    blobs: &BlobTable,
) -> Result<T, String> {
    crate::trace::table_decode(v, blobs).map_err(|e| format!("cannot read payload: {e}"))
}

pub(super) fn brief(v: &Value, blobs: &BlobTable) -> Value {
    blobs.resolve_with(v, SHOWN)
}

pub(super) fn brief_local(v: &Value, local: &[Blob]) -> Value {
    match v {
        Value::Object(m) => match local_blob(v, local) {
            Some(Blob::Str(s)) => brief(&Value::String(s.clone()), &BlobTable::default()),
            Some(Blob::Bytes(b)) => bytes_value(b, SHOWN),
            _ => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), brief_local(x, local)))
                    .collect(),
            ),
        },
        Value::Array(a) => Value::Array(a.iter().map(|x| brief_local(x, local)).collect()),
        _ => brief(v, &BlobTable::default()),
    }
}

fn local_blob<'a>(v: &Value, local: &'a [Blob]) -> Option<&'a Blob> {
    let id = ref_id(v)?.checked_sub(LOCAL)?;
    local.get(usize::try_from(id).ok()?)
}

/// What a value stands for once references are followed.
enum Target<'a> {
    Value(&'a Value),
    Str(&'a str),
    Bytes(&'a [u8]),
}

fn target<'a>(mut v: &'a Value, blobs: &'a BlobTable, local: &'a [Blob]) -> Target<'a> {
    loop {
        let blob = match ref_id(v) {
            Some(id) if id >= LOCAL => local_blob(v, local),
            Some(id) => blobs.get(id),
            None => None,
        };
        match blob {
            Some(Blob::Value(inner)) => v = inner.value(),
            Some(Blob::Str(s)) => return Target::Str(s),
            Some(Blob::Bytes(b)) => return Target::Bytes(b),
            None => return Target::Value(v),
        }
    }
}

/// Whether a recorded value and a replayed one are the same JSON once their references are
/// resolved (the recorded side's in the trace's blobs, the replayed side's in `local`). Objects
/// compare as sets of fields, as `serde_json` values do.
pub(super) fn same(recorded: &Value, replayed: &Value, blobs: &BlobTable, local: &[Blob]) -> bool {
    let bytes_eq = |b: &[u8], a: &[Value]| {
        b.len() == a.len()
            && b.iter()
                .zip(a)
                .all(|(x, y)| y.as_u64() == Some(u64::from(*x)))
    };
    match (
        target(recorded, blobs, local),
        target(replayed, blobs, local),
    ) {
        (Target::Value(x), Target::Value(y)) => match (x, y) {
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.get(k).is_some_and(|w| same(v, w, blobs, local)))
            }
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(v, w)| same(v, w, blobs, local))
            }
            (x, y) => x == y,
        },
        (Target::Str(s), Target::Str(t)) => s == t,
        (Target::Str(s), Target::Value(Value::String(t)))
        | (Target::Value(Value::String(t)), Target::Str(s)) => s == t,
        (Target::Bytes(b), Target::Bytes(c)) => b == c,
        (Target::Bytes(b), Target::Value(Value::Array(a)))
        | (Target::Value(Value::Array(a)), Target::Bytes(b)) => bytes_eq(b, a),
        _ => false,
    }
}
