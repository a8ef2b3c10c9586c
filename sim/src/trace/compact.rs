//! The compact JSON serializer of trace payloads: serde's data model straight to JSON text
//! (the same text `serde_json` writes), except that large parts are handed to a [`Blobs`]
//! table and written as `{"$ref":ID}`:
//!
//! - a byte string (a sequence of `u8`, as serde serializes a `Vec<u8>`) of at least
//!   [`Limits::bytes`] bytes,
//! - a string of at least [`Limits::string`] bytes,
//! - an array or object whose own compact text (its large parts already replaced) is at least
//!   [`Limits::value`] bytes.
//!
//! The payload itself (the root) is never replaced, so its outer tag (`{"Raft":..}`,
//! `{"applied":..}`) stays readable in the record. Replacement works bottom-up: a large message
//! becomes a small object of references, which is then small enough to stay inline.
//!
//! Byte strings are recognized by their elements: serde serializes a `Vec<u8>` as a sequence
//! of `serialize_u8` calls, which no other element type makes, so the node types keep their
//! serde derives and their meaning.

use serde::ser::{self, Serialize};
use serde_json::Error;

/// The sizes from which parts of a payload become blobs.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub value: usize,
    pub string: usize,
    pub bytes: usize,
}

impl Limits {
    /// What the trace writer uses. Not part of the format: readers resolve any reference.
    pub const WRITER: Limits = Limits {
        value: 96,
        string: 64,
        bytes: 64,
    };
    /// Nothing becomes a blob: the text is exactly `serde_json`'s.
    pub const NONE: Limits = Limits {
        value: usize::MAX,
        string: usize::MAX,
        bytes: usize::MAX,
    };
}

/// Where large parts go. Each method returns the reference id to write, or `None` to write the
/// part inline.
pub trait Blobs {
    /// An array or object, as its compact text.
    fn value(&mut self, text: &[u8]) -> Option<u64>;
    /// A string.
    fn string(&mut self, s: &str) -> Option<u64>;
    /// A byte string.
    fn bytes(&mut self, b: &[u8]) -> Option<u64>;
}

/// A [`Blobs`] that keeps everything inline.
pub struct Inline;

impl Blobs for Inline {
    fn value(&mut self, _: &[u8]) -> Option<u64> {
        None
    }
    fn string(&mut self, _: &str) -> Option<u64> {
        None
    }
    fn bytes(&mut self, _: &[u8]) -> Option<u64> {
        None
    }
}

/// Appends the compact text of `value` to `out`.
pub fn encode<T: Serialize + ?Sized, B: Blobs>(
    value: &T,
    out: &mut Vec<u8>,
    blobs: &mut B,
    limits: Limits,
) -> Result<(), Error> {
    let mut ser = Compact {
        out,
        blobs,
        limits,
        depth: 0,
        scratch: Vec::new(),
    };
    value.serialize(&mut ser)
}

/// Writes `{"$ref":id}`.
pub fn write_ref(out: &mut Vec<u8>, id: u64) {
    out.extend_from_slice(b"{\"$ref\":");
    out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    out.push(b'}');
}

/// Writes `s` as a JSON string, escaped as `serde_json` escapes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's own escaping, so the text is the same as serde_json's.
    let mut ser = serde_json::Serializer::new(out);
    ser::Serializer::serialize_str(&mut ser, s).expect("writing to a Vec cannot fail");
}

struct Compact<'a, B> {
    out: &'a mut Vec<u8>,
    blobs: &'a mut B,
    limits: Limits,
    /// Nesting depth of the value being written (0: the payload itself).
    depth: u32,
    /// Bytes of the byte string being collected (one at a time: see [`SeqState`]).
    scratch: Vec<u8>,
}

impl<B: Blobs> Compact<'_, B> {
    fn num(&mut self, v: impl itoa::Integer) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    /// After an array or object that started at `start` (at the current depth): hands it to
    /// the blobs if it is large enough.
    fn close(&mut self, start: usize) {
        let len = self.out.len() - start;
        if self.depth == 0 || len < self.limits.value {
            return;
        }
        if let Some(id) = self.blobs.value(&self.out[start..]) {
            self.out.truncate(start);
            write_ref(self.out, id);
        }
    }

    /// A byte string, at the current depth.
    fn byte_string(&mut self, b: &[u8]) {
        if self.depth > 0 && b.len() >= self.limits.bytes {
            if let Some(id) = self.blobs.bytes(b) {
                write_ref(self.out, id);
                return;
            }
        }
        let start = self.out.len();
        self.out.push(b'[');
        for (i, x) in b.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.num(*x);
        }
        self.out.push(b']');
        self.close(start);
    }

    /// Opens a `{"variant":` wrapper; returns where it started.
    fn open_variant(&mut self, variant: &str) -> usize {
        let start = self.out.len();
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        self.depth += 1;
        start
    }

    fn close_variant(&mut self, start: usize) {
        self.out.push(b'}');
        self.depth -= 1;
        self.close(start);
    }
}

impl<'s, 'a, B: Blobs> ser::Serializer for &'s mut Compact<'a, B> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = SeqState<'s, 'a, B>;
    type SerializeTuple = SeqState<'s, 'a, B>;
    type SerializeTupleStruct = SeqState<'s, 'a, B>;
    type SerializeTupleVariant = SeqState<'s, 'a, B>;
    type SerializeMap = MapState<'s, 'a, B>;
    type SerializeStruct = MapState<'s, 'a, B>;
    type SerializeStructVariant = MapState<'s, 'a, B>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.num(v);
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.num(v);
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.num(v);
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.num(v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.num(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.num(v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.num(v);
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.num(v);
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.num(v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.num(v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, &v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, &v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        if self.depth > 0 && v.len() >= self.limits.string {
            if let Some(id) = self.blobs.string(v) {
                write_ref(self.out, id);
                return Ok(());
            }
        }
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.byte_string(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        write_str(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let start = self.open_variant(variant);
        value.serialize(&mut *self)?;
        self.close_variant(start);
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<SeqState<'s, 'a, B>, Error> {
        Ok(SeqState::open(self, None, true))
    }
    fn serialize_tuple(self, _: usize) -> Result<SeqState<'s, 'a, B>, Error> {
        Ok(SeqState::open(self, None, false))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<SeqState<'s, 'a, B>, Error> {
        Ok(SeqState::open(self, None, false))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<SeqState<'s, 'a, B>, Error> {
        let start = self.open_variant(variant);
        Ok(SeqState::open(self, Some(start), false))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapState<'s, 'a, B>, Error> {
        Ok(MapState::open(self, None))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<MapState<'s, 'a, B>, Error> {
        Ok(MapState::open(self, None))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<MapState<'s, 'a, B>, Error> {
        let start = self.open_variant(variant);
        Ok(MapState::open(self, Some(start)))
    }
}

/// An array being written. A sequence (not a tuple) starts out collecting its elements as a
/// byte string while they are all `u8`; the first other element writes the bytes collected
/// so far as numbers and carries on as an ordinary array.
pub struct SeqState<'s, 'a, B> {
    ser: &'s mut Compact<'a, B>,
    start: usize,
    /// Where the enclosing `{"variant":` started, for a tuple variant.
    variant: Option<usize>,
    /// Still collecting bytes (in `ser.scratch`, from `scratch_start`).
    bytes: bool,
    scratch_start: usize,
    /// Elements written to the text so far.
    written: usize,
}

impl<'s, 'a, B: Blobs> SeqState<'s, 'a, B> {
    fn open(ser: &'s mut Compact<'a, B>, variant: Option<usize>, bytes: bool) -> Self {
        let start = ser.out.len();
        ser.out.push(b'[');
        ser.depth += 1;
        let scratch_start = ser.scratch.len();
        SeqState {
            ser,
            start,
            variant,
            bytes,
            scratch_start,
            written: 0,
        }
    }

    /// Writes the collected bytes as numbers and stops collecting.
    fn spill(&mut self) {
        if !self.bytes {
            return;
        }
        self.bytes = false;
        let collected = self.ser.scratch.split_off(self.scratch_start);
        for b in collected {
            self.comma();
            self.ser.num(b);
        }
    }

    fn comma(&mut self) {
        if self.written > 0 {
            self.ser.out.push(b',');
        }
        self.written += 1;
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if self.bytes {
            return value.serialize(ElementSer { seq: self });
        }
        self.comma();
        value.serialize(&mut *self.ser)
    }

    fn end_seq(self) -> Result<(), Error> {
        let ser = self.ser;
        ser.depth -= 1;
        if self.bytes {
            // Every element was a u8 (or there were none): a byte string.
            let collected = ser.scratch.split_off(self.scratch_start);
            ser.out.truncate(self.start);
            if collected.is_empty() {
                ser.out.extend_from_slice(b"[]");
            } else {
                ser.byte_string(&collected);
            }
        } else {
            ser.out.push(b']');
            ser.close(self.start);
        }
        if let Some(v) = self.variant {
            ser.close_variant(v);
        }
        Ok(())
    }
}

impl<B: Blobs> ser::SerializeSeq for SeqState<'_, '_, B> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.end_seq()
    }
}

impl<B: Blobs> ser::SerializeTuple for SeqState<'_, '_, B> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.end_seq()
    }
}

impl<B: Blobs> ser::SerializeTupleStruct for SeqState<'_, '_, B> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.end_seq()
    }
}

impl<B: Blobs> ser::SerializeTupleVariant for SeqState<'_, '_, B> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.end_seq()
    }
}

/// An object being written.
pub struct MapState<'s, 'a, B> {
    ser: &'s mut Compact<'a, B>,
    start: usize,
    variant: Option<usize>,
    first: bool,
}

impl<'s, 'a, B: Blobs> MapState<'s, 'a, B> {
    fn open(ser: &'s mut Compact<'a, B>, variant: Option<usize>) -> Self {
        let start = ser.out.len();
        ser.out.push(b'{');
        ser.depth += 1;
        MapState {
            ser,
            start,
            variant,
            first: true,
        }
    }
    fn key_sep(&mut self) {
        if !self.first {
            self.ser.out.push(b',');
        }
        self.first = false;
    }
    fn end_map(self) -> Result<(), Error> {
        let ser = self.ser;
        ser.out.push(b'}');
        ser.depth -= 1;
        ser.close(self.start);
        if let Some(v) = self.variant {
            ser.close_variant(v);
        }
        Ok(())
    }
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.key_sep();
        write_str(self.ser.out, key);
        self.ser.out.push(b':');
        value.serialize(&mut *self.ser)
    }
}

impl<B: Blobs> ser::SerializeMap for MapState<'_, '_, B> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key_sep();
        // Keys are written as serde_json writes them: strings, numbers in quotes.
        let key = serde_json::to_value(key)?;
        let text = match key {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => return Err(ser::Error::custom("key must be a string")),
        };
        write_str(self.ser.out, &text);
        self.ser.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.end_map()
    }
}

impl<B: Blobs> ser::SerializeStruct for MapState<'_, '_, B> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.end_map()
    }
}

impl<B: Blobs> ser::SerializeStructVariant for MapState<'_, '_, B> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.end_map()
    }
}

/// Serializes one element of a sequence that is still collecting bytes: a `u8` is collected;
/// anything else ends the collecting and is written as usual.
struct ElementSer<'e, 's, 'a, B> {
    seq: &'e mut SeqState<'s, 'a, B>,
}

impl<'e, 's, 'a, B: Blobs> ElementSer<'e, 's, 'a, B> {
    /// Leave byte mode and return the serializer for an ordinary element.
    fn plain(self) -> &'e mut Compact<'a, B> {
        self.seq.spill();
        self.seq.comma();
        &mut *self.seq.ser
    }
}

macro_rules! plain {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $name(self, $($arg: $ty),*) -> Result<(), Error> {
            self.plain().$name($($arg),*)
        })*
    };
}

impl<'e, 's, 'a, B: Blobs> ser::Serializer for ElementSer<'e, 's, 'a, B> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = SeqState<'e, 'a, B>;
    type SerializeTuple = SeqState<'e, 'a, B>;
    type SerializeTupleStruct = SeqState<'e, 'a, B>;
    type SerializeTupleVariant = SeqState<'e, 'a, B>;
    type SerializeMap = MapState<'e, 'a, B>;
    type SerializeStruct = MapState<'e, 'a, B>;
    type SerializeStructVariant = MapState<'e, 'a, B>;

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.seq.ser.scratch.push(v);
        Ok(())
    }

    plain! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.plain().serialize_some(value)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.plain().serialize_newtype_struct(name, value)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.plain()
            .serialize_newtype_variant(name, index, variant, value)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqState<'e, 'a, B>, Error> {
        self.plain().serialize_seq(len)
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqState<'e, 'a, B>, Error> {
        self.plain().serialize_tuple(len)
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<SeqState<'e, 'a, B>, Error> {
        self.plain().serialize_tuple_struct(name, len)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqState<'e, 'a, B>, Error> {
        self.plain()
            .serialize_tuple_variant(name, index, variant, len)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapState<'e, 'a, B>, Error> {
        self.plain().serialize_map(len)
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<MapState<'e, 'a, B>, Error> {
        self.plain().serialize_struct(name, len)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapState<'e, 'a, B>, Error> {
        self.plain()
            .serialize_struct_variant(name, index, variant, len)
    }
}
