use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::{Error, MAX_DEPTH};

/// Reads values in the weft wire format (postcard) from a byte slice.
///
/// Every malformed input is an [`Error`]: truncation, invalid `bool`s and `optional` tags,
/// over-long or overflowing varints, lengths beyond the input, invalid UTF-8 and nesting deeper
/// than [`MAX_DEPTH`]. Nothing is allocated for a length before the bytes it announces are known
/// to be there. Most code calls [`from_bytes`](super::from_bytes) instead.
#[derive(Debug)]
pub struct Deserializer<'de> {
    input: &'de [u8],
    pos: usize,
    depth: usize,
}

/// Counts above this are refused when they exceed the remaining bytes. A count at most the
/// remaining bytes is always accepted; larger ones only make sense for elements that encode to
/// nothing (empty records), and are capped so that a hostile count cannot loop for long.
const MAX_EMPTY_ELEMENTS: u64 = 1 << 16;

impl<'de> Deserializer<'de> {
    /// A deserializer reading `input` from its start.
    pub fn new(input: &'de [u8]) -> Self {
        Deserializer { input, pos: 0, depth: 0 }
    }

    /// The offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> &'de [u8] {
        &self.input[self.pos..]
    }

    /// Checks that the whole input was read.
    ///
    /// # Errors
    ///
    /// [`Error::TrailingBytes`] if bytes remain.
    pub fn end(&self) -> Result<(), Error> {
        let count = self.input.len() - self.pos;
        if count == 0 {
            Ok(())
        } else {
            Err(Error::TrailingBytes { offset: self.pos, count })
        }
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, Error> {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(Error::Truncated { offset: self.pos, what }),
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'de [u8], Error> {
        if self.input.len() - self.pos < n {
            return Err(Error::Truncated { offset: self.pos, what });
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// An unsigned LEB128 varint of a `bits`-bit integer: at most ⌈bits/7⌉ bytes, the last one
    /// carrying only the bits that remain.
    fn varint(&mut self, bits: u32, ty: &'static str, what: &'static str) -> Result<u64, Error> {
        let start = self.pos;
        let max_bytes = (bits + 6) / 7;
        let last_max = (1u32 << (bits - 7 * (max_bytes - 1))) - 1;
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = match self.byte(what) {
                Ok(b) => b,
                Err(_) => return Err(Error::Truncated { offset: start, what }),
            };
            if i == max_bytes - 1 && u32::from(b) > last_max {
                return Err(Error::InvalidVarint { offset: start, ty });
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        unreachable!("the last byte was checked against last_max < 0x80")
    }

    fn varint128(&mut self, ty: &'static str) -> Result<u128, Error> {
        let start = self.pos;
        let mut value = 0u128;
        for i in 0..19 {
            let b = match self.byte("a varint") {
                Ok(b) => b,
                Err(_) => return Err(Error::Truncated { offset: start, what: ty }),
            };
            if i == 18 && b > 0x03 {
                return Err(Error::InvalidVarint { offset: start, ty });
            }
            value |= u128::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        unreachable!("the last byte was checked against 0x03")
    }

    fn zigzag(&mut self, bits: u32, ty: &'static str, what: &'static str) -> Result<i64, Error> {
        let n = self.varint(bits, ty, what)?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    /// A length of `len` bytes that must all be there.
    fn byte_len(&mut self, what: &'static str) -> Result<usize, Error> {
        let start = self.pos;
        let len = self.varint(64, "length", what)?;
        let remaining = self.input.len() - self.pos;
        if len > remaining as u64 {
            return Err(Error::LengthTooLarge { offset: start, len, remaining });
        }
        Ok(len as usize)
    }

    /// A count of elements that take at least one byte each (unless they encode to nothing).
    fn count(&mut self, what: &'static str) -> Result<usize, Error> {
        let start = self.pos;
        let count = self.varint(64, "count", what)?;
        let remaining = self.input.len() - self.pos;
        if count > remaining as u64 && count > MAX_EMPTY_ELEMENTS {
            return Err(Error::LengthTooLarge { offset: start, len: count, remaining });
        }
        Ok(count as usize)
    }

    fn str(&mut self) -> Result<&'de str, Error> {
        let len = self.byte_len("a string length")?;
        let start = self.pos;
        let bytes = self.take(len, "a string")?;
        std::str::from_utf8(bytes).map_err(|_| Error::InvalidUtf8 { offset: start })
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::TooDeep { offset: self.pos });
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(Error::Unsupported("deserialize_any (the format is not self-describing)"))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let offset = self.pos;
        match self.byte("a bool")? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            byte => Err(Error::InvalidBool { offset, byte }),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i8(self.byte("an s8")? as i8)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i16(self.zigzag(16, "s16", "an s16")? as i16)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i32(self.zigzag(32, "s32", "an s32")? as i32)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i64(self.zigzag(64, "s64", "an s64")?)
    }
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let n = self.varint128("i128")?;
        visitor.visit_i128(((n >> 1) as i128) ^ -((n & 1) as i128))
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u8(self.byte("a u8")?)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u16(self.varint(16, "u16", "a u16")? as u16)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u32(self.varint(32, "u32", "a u32")? as u32)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(self.varint(64, "u64", "a u64")?)
    }
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u128(self.varint128("u128")?)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let b = self.take(4, "an f32")?;
        visitor.visit_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let b = self.take(8, "an f64")?;
        visitor.visit_f64(f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let offset = self.pos;
        let s = self.str()?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(Error::InvalidUtf8 { offset }),
        }
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.str()?)
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let len = self.byte_len("a bytes length")?;
        visitor.visit_borrowed_bytes(self.take(len, "bytes")?)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let offset = self.pos;
        match self.byte("an optional tag")? {
            0 => visitor.visit_none(),
            1 => {
                self.pos = offset; // TooDeep names the tag's offset
                self.nested(|de| {
                    de.pos += 1;
                    visitor.visit_some(de)
                })
            }
            byte => Err(Error::InvalidOptionTag { offset, byte }),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.nested(|de| {
            let len = de.count("an array count")?;
            visitor.visit_seq(Seq { de, len })
        })
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.nested(|de| visitor.visit_seq(Seq { de, len }))
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.nested(|de| {
            let len = de.count("a map count")?;
            visitor.visit_map(Seq { de, len })
        })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(fields.len(), visitor)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.nested(|de| visitor.visit_enum(de))
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u32(self.varint(32, "u32", "a variant index")? as u32)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(Error::Unsupported("ignoring values (the format is not self-describing)"))
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements of an array, tuple or record, or the entries of a map.
struct Seq<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    len: usize,
}

impl<'a, 'de> de::SeqAccess<'de> for Seq<'a, 'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        if self.len == 0 {
            return Ok(None);
        }
        self.len -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        // Never promise more elements than bytes remain, so that a preallocation stays bounded.
        Some(self.len.min(self.de.input.len() - self.de.pos))
    }
}

impl<'a, 'de> de::MapAccess<'de> for Seq<'a, 'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        if self.len == 0 {
            return Ok(None);
        }
        self.len -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(&mut *self.de)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.len.min(self.de.input.len() - self.de.pos))
    }
}

impl<'de> de::EnumAccess<'de> for &mut Deserializer<'de> {
    type Error = Error;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let index = self.varint(32, "u32", "a variant index")? as u32;
        let value = seed.deserialize(IntoDeserializer::<Error>::into_deserializer(index))?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Deserializer<'de> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_tuple(self, fields.len(), visitor)
    }
}
