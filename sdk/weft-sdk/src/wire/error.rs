use std::fmt;

/// Why a value could not be encoded or decoded.
///
/// Offsets count bytes from the start of the input given to the [`Deserializer`](super::Deserializer)
/// (for a call, the start of the arguments or results).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ended while a value was being read.
    Truncated {
        /// Where the value that could not be read starts.
        offset: usize,
        /// What was being read, e.g. `"a string length"`.
        what: &'static str,
    },
    /// Bytes remain after the value (or after the last argument).
    TrailingBytes {
        /// Where the trailing bytes start.
        offset: usize,
        /// How many there are.
        count: usize,
    },
    /// A `bool` byte other than `00` or `01`.
    InvalidBool {
        /// Where the byte is.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// An `optional` tag other than `00` or `01`.
    InvalidOptionTag {
        /// Where the tag is.
        offset: usize,
        /// The tag.
        byte: u8,
    },
    /// A varint longer than its type allows, or whose value does not fit the type.
    InvalidVarint {
        /// Where the varint starts.
        offset: usize,
        /// The type being read, e.g. `"u16"`.
        ty: &'static str,
    },
    /// A string that is not UTF-8 (or a `char` that is not exactly one character).
    InvalidUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// A length or count larger than the bytes that remain can hold.
    LengthTooLarge {
        /// Where the length starts.
        offset: usize,
        /// The length read.
        len: u64,
        /// The bytes that remain after the length.
        remaining: usize,
    },
    /// Optionals, arrays, records and tuples nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    TooDeep {
        /// Where the value that is too deep starts.
        offset: usize,
    },
    /// A serde feature the wire format cannot express, e.g. a sequence of unknown length or
    /// `deserialize_any` (the format is not self-describing).
    Unsupported(&'static str),
    /// An error raised by a `Serialize` or `Deserialize` implementation.
    Custom(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { offset, what } => write!(f, "truncated at byte {} while reading {}", offset, what),
            Error::TrailingBytes { offset, count } => {
                write!(f, "{} trailing byte{} at byte {}", count, if *count == 1 { "" } else { "s" }, offset)
            }
            Error::InvalidBool { offset, byte } => {
                write!(f, "invalid bool 0x{:02x} at byte {}; a bool is 0 or 1", byte, offset)
            }
            Error::InvalidOptionTag { offset, byte } => write!(
                f,
                "invalid optional tag 0x{:02x} at byte {}; the tag is 0 (null) or 1 (a value follows)",
                byte, offset
            ),
            Error::InvalidVarint { offset, ty } => {
                write!(f, "varint at byte {} is too long or overflows a {}", offset, ty)
            }
            Error::InvalidUtf8 { offset } => write!(f, "string at byte {} is not valid UTF-8", offset),
            Error::LengthTooLarge { offset, len, remaining } => write!(
                f,
                "length {} at byte {} needs more than the {} byte{} that remain",
                len,
                offset,
                remaining,
                if *remaining == 1 { "" } else { "s" }
            ),
            Error::TooDeep { offset } => {
                write!(f, "value at byte {} is nested deeper than {} levels", offset, super::MAX_DEPTH)
            }
            Error::Unsupported(what) => write!(f, "the weft wire format does not support {}", what),
            Error::Custom(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Custom(msg.to_string())
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Custom(msg.to_string())
    }
}
