//! The weft wire format: [postcard](https://postcard.jamesmunns.com/wire-format) bytes, as
//! specified in `docs/module-abi.md` ("Values"), implemented as a serde serializer and
//! deserializer.
//!
//! | interface type | Rust type | bytes |
//! |---|---|---|
//! | `bool` | `bool` | `00` or `01` |
//! | `s8`, `u8` | `i8`, `u8` | one raw byte |
//! | `u16`, `u32`, `u64` | `u16`, `u32`, `u64` | unsigned LEB128 varint |
//! | `s16`, `s32`, `s64` | `i16`, `i32`, `i64` | varint of the zigzag encoding |
//! | `f32`, `f64` | `f32`, `f64` | 4 / 8 bytes, little-endian |
//! | `string` | `String` | varint length, then UTF-8 |
//! | `bytes` | `Vec<u8>` | varint length, then the bytes |
//! | `optional<T>` | `Option<T>` | `00`, or `01` then the value |
//! | `array<T>` | `Vec<T>` | varint count, then the elements |
//! | record | a struct | the fields in order, nothing else |
//!
//! Beyond the interface types it also handles what postcard does for the rest of serde's data
//! model (enums as a varint variant index, maps as a count of key-value pairs, tuples as their
//! elements, `char` as a one-character string, `i128`/`u128` as varints), so that modules can use
//! the same functions for their own data.
//!
//! ```
//! let bytes = weft_sdk::wire::to_vec(&("Ann", 30u8, None::<String>, vec![1i32, -2, 300], true)).unwrap();
//! assert_eq!(bytes, [0x03, 0x41, 0x6e, 0x6e, 0x1e, 0x00, 0x03, 0x02, 0x03, 0xd8, 0x04, 0x01]);
//! let back: (String, u8, Option<String>, Vec<i32>, bool) = weft_sdk::wire::from_bytes(&bytes).unwrap();
//! assert_eq!(back.3, [1, -2, 300]);
//! ```

mod de;
mod error;
mod ser;

pub use de::Deserializer;
pub use error::Error;
pub use ser::Serializer;

use serde::{Deserialize, Serialize};

/// How deeply present optionals, arrays, maps, records, tuples and enums may nest when decoding
/// (weft checks values against 64 levels by default before they reach a module).
pub const MAX_DEPTH: usize = 128;

/// Encodes `value`.
///
/// # Errors
///
/// Only for values the format cannot express: sequences or maps of unknown length, or errors a
/// `Serialize` implementation raises itself. Values of the interface types always encode.
pub fn to_vec<T: ?Sized + Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    write_into(&mut out, value)?;
    Ok(out)
}

/// Encodes `value` at the end of `out`.
///
/// # Errors
///
/// As [`to_vec`]; on error `out` may hold part of the value.
pub fn write_into<T: ?Sized + Serialize>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    value.serialize(&mut Serializer::new(out))
}

/// Decodes a `T` that takes exactly the whole of `bytes`.
///
/// # Errors
///
/// Malformed or truncated input, or [`Error::TrailingBytes`] if bytes remain after the value.
pub fn from_bytes<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Error> {
    let mut de = Deserializer::new(bytes);
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Decodes a `T` from the start of `bytes` and returns it with the bytes after it.
///
/// # Errors
///
/// Malformed or truncated input.
pub fn take_from_bytes<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<(T, &'de [u8]), Error> {
    let mut de = Deserializer::new(bytes);
    let value = T::deserialize(&mut de)?;
    Ok((value, de.remaining()))
}

#[cfg(test)]
mod tests;
