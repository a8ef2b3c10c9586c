//! Decoding a payload of a trace into the node's own types, resolving `{"$ref":ID}` references
//! on the way: a referenced byte string is handed to serde as a sequence of `u8` straight from
//! the blob, so a snapshot is never turned into a JSON array of numbers first.

use super::table::{ref_id, Blob, BlobTable};
use serde::de::value::{BorrowedStrDeserializer, U8Deserializer};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Value};

/// Decodes `v` (which may refer to blobs of `table`) into a `T`.
pub fn decode<T: DeserializeOwned>(v: &Value, table: &BlobTable) -> Result<T, String> {
    T::deserialize(Res { v, t: table }).map_err(|e| e.to_string())
}

/// A payload value being decoded.
#[derive(Clone, Copy)]
struct Res<'a> {
    v: &'a Value,
    t: &'a BlobTable,
}

enum Target<'a> {
    Value(&'a Value),
    Str(&'a str),
    Bytes(&'a [u8]),
}

impl<'a> Res<'a> {
    /// What `v` stands for, following references.
    fn target(&self) -> Result<Target<'a>, Error> {
        let mut v = self.v;
        loop {
            let Some(id) = ref_id(v) else {
                return Ok(Target::Value(v));
            };
            match self.t.get(id) {
                Some(Blob::Value(inner)) => v = inner.value(),
                Some(Blob::Str(s)) => return Ok(Target::Str(s)),
                Some(Blob::Bytes(b)) => return Ok(Target::Bytes(b)),
                None => {
                    return Err(de::Error::custom(format!(
                        "blob {id} is referred to but not defined"
                    )))
                }
            }
        }
    }
}

impl<'de> de::Deserializer<'de> for Res<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let v = match self.target()? {
            Target::Str(s) => return visitor.visit_borrowed_str(s),
            Target::Bytes(b) => return visitor.visit_seq(ByteSeq { b, i: 0 }),
            Target::Value(v) => v,
        };
        match v {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(a) => visitor.visit_seq(ArraySeq {
                it: a.iter(),
                t: self.t,
            }),
            Value::Object(m) => visitor.visit_map(ObjectMap {
                it: m.iter(),
                value: None,
                t: self.t,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.v {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.target()? {
            Target::Str(s) => visitor.visit_enum(BorrowedStrDeserializer::<Error>::new(s)),
            Target::Value(Value::String(s)) => {
                visitor.visit_enum(BorrowedStrDeserializer::<Error>::new(s))
            }
            Target::Value(Value::Object(m)) if m.len() == 1 => {
                let (variant, value) = m.iter().next().expect("one entry");
                visitor.visit_enum(Enum {
                    variant,
                    value,
                    t: self.t,
                })
            }
            _ => Err(de::Error::custom(
                "expected an enum: a string or an object with one key",
            )),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct ByteSeq<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'de> de::SeqAccess<'de> for ByteSeq<'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(&b) = self.b.get(self.i) else {
            return Ok(None);
        };
        self.i += 1;
        let d: U8Deserializer<Error> = b.into_deserializer();
        seed.deserialize(d).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.b.len() - self.i)
    }
}

struct ArraySeq<'a> {
    it: std::slice::Iter<'a, Value>,
    t: &'a BlobTable,
}

impl<'de> de::SeqAccess<'de> for ArraySeq<'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.it.next() {
            Some(v) => seed.deserialize(Res { v, t: self.t }).map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.it.len())
    }
}

struct ObjectMap<'a> {
    it: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
    t: &'a BlobTable,
}

impl<'de> de::MapAccess<'de> for ObjectMap<'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.it.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(BorrowedStrDeserializer::<Error>::new(k))
                    .map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let v = self
            .value
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("a value without a key"))?;
        seed.deserialize(Res { v, t: self.t })
    }
}

struct Enum<'a> {
    variant: &'a str,
    value: &'a Value,
    t: &'a BlobTable,
}

impl<'de> de::EnumAccess<'de> for Enum<'de> {
    type Error = Error;
    type Variant = Res<'de>;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Res<'de>), Error> {
        let variant = seed.deserialize(BorrowedStrDeserializer::<Error>::new(self.variant))?;
        Ok((
            variant,
            Res {
                v: self.value,
                t: self.t,
            },
        ))
    }
}

impl<'de> de::VariantAccess<'de> for Res<'de> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        match self.v {
            Value::Null => Ok(()),
            _ => Err(de::Error::custom("expected a unit variant")),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}
