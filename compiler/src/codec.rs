//! The host-side value codec: JSON values ↔ the postcard bytes a module's functions take and return.
//!
//! Values cross into a module as [postcard](https://postcard.jamesmunns.com/wire-format) bytes; the
//! arguments of a call are the encoding of the tuple of its parameters (their encodings
//! concatenated, in order), its results likewise. Outside, in AIR and on the command line, values
//! are JSON. A [`Codec`] built once per [`Interface`] converts between the two for any exported
//! function or import ([`Signature`]), and checks raw bytes that the host copies from one module to
//! another ([`Codec::check_args`], [`Codec::check_results`]). The wire format and the JSON mapping
//! are specified in `docs/module-abi.md`.
//!
//! Decoding reads untrusted bytes and encoding reads untrusted JSON: nesting is capped
//! ([`Limits::max_depth`]), every count is checked against the bytes that remain before anything is
//! allocated for it, and the decoded JSON value's approximate size is capped
//! ([`Limits::max_output`]). Errors say which function, which parameter or result, where inside
//! the value and, when decoding, at which byte offset.
//!
//! ```
//! use serde_json::json;
//! use weft_compiler::codec::Codec;
//! use weft_compiler::interface::{Function, Interface, Type};
//!
//! let iface = Interface {
//!     functions: vec![Function {
//!         name: "greet".into(),
//!         params: vec![("name".into(), Type::String)],
//!         results: vec![Type::String],
//!     }],
//!     ..Interface::default()
//! };
//! let codec = Codec::new(&iface);
//! let greet = iface.function("greet").unwrap();
//! assert_eq!(codec.encode_args(greet, &json!(["weft"])).unwrap(), b"\x04weft");
//! assert_eq!(codec.encode_args(greet, &json!({ "name": "weft" })).unwrap(), b"\x04weft");
//! assert_eq!(codec.decode_results(greet, b"\x02hi").unwrap(), json!("hi"));
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Number, Value};

use crate::interface::{Function, Import, Interface, Type};

/// Default [`Limits::max_depth`].
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Default [`Limits::max_output`]: 128 MiB.
pub const DEFAULT_MAX_OUTPUT: usize = 128 << 20;

/// Most elements reserved up front for a decoded array whose elements are zero-sized.
const PREALLOC_CAP: usize = 4096;

/// What one JSON value costs against [`Limits::max_output`], besides its string bytes.
const NODE: usize = std::mem::size_of::<Value>();

/// What one record field costs against [`Limits::max_output`] (its key's `String` and map entry),
/// besides the key's bytes and the value.
const FIELD: usize = std::mem::size_of::<String>() + NODE;

/// Caps that protect the host from hostile bytes and JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of `optional` (present), `array` and record values, in both directions.
    /// The codec recurses once per level: keep this in the hundreds at most.
    pub max_depth: usize,
    /// Largest decoded JSON value, in approximate bytes of memory: each value counts
    /// `size_of::<serde_json::Value>()` plus its string bytes, each record field its key as well.
    /// A `bytes` value costs about 32 bytes of memory per byte as JSON.
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: DEFAULT_MAX_DEPTH, max_output: DEFAULT_MAX_OUTPUT }
    }
}

/// A function's signature: an exported [`Function`] or an [`Import`], as the codec sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature<'s> {
    /// The providing module for an import; `None` for a function the module exports.
    pub module: Option<&'s str>,
    /// The function's name.
    pub name: &'s str,
    /// Named parameters, in order.
    pub params: &'s [(String, Type)],
    /// Results, in order.
    pub results: &'s [Type],
}

impl<'s> From<&'s Function> for Signature<'s> {
    fn from(f: &'s Function) -> Self {
        Signature { module: None, name: &f.name, params: &f.params, results: &f.results }
    }
}

impl<'s> From<&'s Import> for Signature<'s> {
    fn from(i: &'s Import) -> Self {
        Signature { module: Some(&i.module), name: &i.name, params: &i.params, results: &i.results }
    }
}

impl Signature<'_> {
    /// `greet`, or `module.name` for an import.
    fn label(&self) -> String {
        match self.module {
            Some(module) => format!("{module}.{}", self.name),
            None => self.name.to_owned(),
        }
    }

    fn params_text(&self) -> String {
        let mut s = String::from("(");
        for (i, (name, ty)) in self.params.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&format!("{name}: {ty}"));
        }
        s.push(')');
        s
    }

    fn results_text(&self) -> String {
        let types: Vec<String> = self.results.iter().map(Type::to_string).collect();
        format!("({})", types.join(", "))
    }

    fn error(&self, target: Option<Target>, fail: Fail) -> Error {
        Error::new(self.label(), target, fail)
    }

    fn fail(&self, kind: ErrorKind) -> Error {
        Error::new(self.label(), None, Fail { path: Vec::new(), kind })
    }
}

/// Where in a call an error is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// The arguments as a whole (their shape, or trailing bytes after the last one).
    Arguments,
    /// The results as a whole.
    Results,
    /// One parameter, by name.
    Parameter(String),
    /// One result, by index.
    Result(usize),
    /// A lone value ([`Codec::encode`], [`Codec::decode`]).
    Value,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Arguments => f.write_str("arguments"),
            Target::Results => f.write_str("results"),
            Target::Parameter(name) => write!(f, "parameter {name:?}"),
            Target::Result(index) => write!(f, "result {index}"),
            Target::Value => f.write_str("value"),
        }
    }
}

/// One step into a value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Segment {
    /// A record field.
    Field(String),
    /// An array (or bytes) element.
    Index(usize),
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Field(name) if is_identifier(name) => write!(f, ".{name}"),
            Segment::Field(name) => write!(f, "[{name:?}]"),
            Segment::Index(index) => write!(f, "[{index}]"),
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A parameter or result and the path inside it: `parameter "user".friends[3].age`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The parameter or result.
    pub target: Target,
    /// The steps from it to the offending value, outermost first.
    pub path: Vec<Segment>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.target.fmt(f)?;
        self.path.iter().try_for_each(|segment| segment.fmt(f))
    }
}

/// Why a value could not be encoded or decoded:
/// `greet: parameter "user".friends[3].age: expected u8 (0..=255), got 300`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", Head(&.0.function, .0.place.as_ref()), .0.kind)]
pub struct Error(Box<Detail>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Detail {
    function: String,
    place: Option<Place>,
    kind: ErrorKind,
}

impl Error {
    fn new(function: String, target: Option<Target>, fail: Fail) -> Self {
        let Fail { mut path, kind } = fail;
        path.reverse();
        Error(Box::new(Detail { function, place: target.map(|target| Place { target, path }), kind }))
    }

    /// The function: `greet`, or `module.name` for an import; empty for a lone value.
    pub fn function(&self) -> &str {
        &self.0.function
    }

    /// The parameter or result and the path inside it, if the error is about one value.
    pub fn place(&self) -> Option<&Place> {
        self.0.place.as_ref()
    }

    /// What is wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }
}

/// `greet: parameter "name": `
struct Head<'a>(&'a str, Option<&'a Place>);

impl fmt::Display for Head<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.is_empty() {
            write!(f, "{}: ", self.0)?;
        }
        if let Some(place) = self.1 {
            write!(f, "{place}: ")?;
        }
        Ok(())
    }
}

/// What is wrong with a value; see [`Error`] for where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A JSON value does not fit the type.
    #[error("expected {expected}, got {got}")]
    Expected {
        /// The type and the JSON it takes: `u8 (0..=255)`.
        expected: String,
        /// The value found, abbreviated: `300`, `"abc"`, `an object`.
        got: String,
    },
    /// A JSON object lacks a field of the record.
    #[error("missing field {field:?} of record `{record}`")]
    MissingField {
        /// The record.
        record: String,
        /// The missing field.
        field: String,
    },
    /// A JSON object has fields the record does not declare.
    #[error("unknown field{} {} of record `{record}`; its fields are {fields}", plural(.unknown), quoted(.unknown))]
    UnknownFields {
        /// The record.
        record: String,
        /// The fields that are not the record's.
        unknown: Vec<String>,
        /// The record's fields: `(name: string, age: u8)`.
        fields: String,
    },
    /// A type refers to a record the interface does not declare (the interface was not checked).
    #[error("record `{record}` is not declared by the interface")]
    UnknownRecord {
        /// The record's name.
        record: String,
    },
    /// Values nest deeper than [`Limits::max_depth`].
    #[error("nested deeper than {limit} levels of optional, array and record")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// Positional arguments, or results, of the wrong number.
    #[error("expected {expected} {what}{} {list}, got {got}", if *.expected == 1 { "" } else { "s" })]
    Count {
        /// `argument` or `result`.
        what: &'static str,
        /// How many the signature has.
        expected: usize,
        /// How many were given.
        got: usize,
        /// What the signature expects: `(name: string, age: u8)`, `(string, u8)`.
        list: String,
    },
    /// Named arguments lack a parameter.
    #[error("missing argument {name:?}; the parameters are {params}")]
    MissingArgument {
        /// The parameter.
        name: String,
        /// The parameters: `(name: string, age: u8)`.
        params: String,
    },
    /// Named arguments include names that are not parameters.
    #[error("unknown argument{} {}; the parameters are {params}", plural(.unknown), quoted(.unknown))]
    UnknownArguments {
        /// The names that are not parameters.
        unknown: Vec<String>,
        /// The parameters: `(name: string, age: u8)`.
        params: String,
    },
    /// The bytes end in the middle of a value.
    #[error("truncated at byte {offset} while reading {what}")]
    Truncated {
        /// Offset of the item that could not be read whole.
        offset: usize,
        /// What was being read: `a string length`.
        what: &'static str,
    },
    /// A varint has more bytes than its type allows, or a value too large for it.
    #[error("varint at byte {offset} is over-long or too large for {ty}")]
    BadVarint {
        /// Offset of the varint's first byte.
        offset: usize,
        /// What it encodes: `a u16`, `an array count`.
        ty: &'static str,
    },
    /// A bool byte other than 0 or 1.
    #[error("invalid bool {byte:#04x} at byte {offset}; a bool is 0 or 1")]
    BadBool {
        /// Offset of the byte.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// An optional tag other than 0 or 1.
    #[error("invalid optional tag {byte:#04x} at byte {offset}; the tag is 0 (null) or 1 (a value follows)")]
    BadOptionalTag {
        /// Offset of the tag.
        offset: usize,
        /// The tag.
        byte: u8,
    },
    /// A string that is not UTF-8.
    #[error("invalid utf-8 at byte {offset} in a string")]
    BadUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// A length or count larger than the remaining bytes can hold.
    #[error("{what} {count} at byte {offset} needs at least {needed} bytes but only {remaining} remain")]
    TooLong {
        /// Offset of the length or count.
        offset: usize,
        /// `string length`, `bytes length` or `array count`.
        what: &'static str,
        /// The length or count.
        count: u64,
        /// The fewest bytes its contents take (saturating).
        needed: u64,
        /// The bytes left after it.
        remaining: usize,
    },
    /// Bytes left over after the last value.
    #[error("{count} trailing byte{} from byte {offset} after the last value", if *.count == 1 { "" } else { "s" })]
    Trailing {
        /// Offset of the first trailing byte.
        offset: usize,
        /// How many there are.
        count: usize,
    },
    /// The decoded JSON would exceed [`Limits::max_output`].
    #[error("decoded value exceeds the {limit}-byte output limit at byte {offset}")]
    TooLarge {
        /// Offset reached when the limit was hit.
        offset: usize,
        /// The limit.
        limit: usize,
    },
}

fn plural(names: &[String]) -> &'static str {
    if names.len() == 1 { "" } else { "s" }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

/// An error on its way out of the recursion: the path is collected innermost first.
#[derive(Debug)]
struct Fail {
    path: Vec<Segment>,
    kind: ErrorKind,
}

type Res<T> = Result<T, Box<Fail>>;

impl Fail {
    fn new(kind: ErrorKind) -> Box<Self> {
        Box::new(Fail { path: Vec::new(), kind })
    }
}

trait At {
    fn at(self, segment: impl FnOnce() -> Segment) -> Self;
}

impl<T> At for Res<T> {
    #[inline]
    fn at(self, segment: impl FnOnce() -> Segment) -> Self {
        self.map_err(|mut fail| {
            fail.path.push(segment());
            fail
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct RecordInfo<'a> {
    fields: &'a [(String, Type)],
    /// The fewest bytes a value of the record encodes to; `usize::MAX` if it has no finite value
    /// (it contains itself through fields that are records, without an optional or array between).
    min_size: usize,
}

/// Converts between JSON values and postcard bytes for the functions of one [`Interface`].
///
/// Build it once per interface and keep it: it indexes the records by name. It expects an
/// interface that passed [`Interface::check`] (every decoded interface has); a reference to an
/// undeclared record is reported as [`ErrorKind::UnknownRecord`] when a value reaches it.
#[derive(Clone, Debug)]
pub struct Codec<'a> {
    records: HashMap<&'a str, RecordInfo<'a>>,
    limits: Limits,
}

impl<'a> Codec<'a> {
    /// A codec for `iface` with the default [`Limits`].
    pub fn new(iface: &'a Interface) -> Self {
        Self::with_limits(iface, Limits::default())
    }

    /// A codec for `iface` with `limits`.
    pub fn with_limits(iface: &'a Interface, limits: Limits) -> Self {
        let records = &iface.records;
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            index.entry(r.name.as_str()).or_insert(i);
        }
        // Fewest bytes per record, in dependency order (Kahn): a record waits for the records its
        // fields are directly (not through an optional or array, which take one byte at least).
        // Records left waiting are in a cycle of direct references and have no finite value.
        let mut waiting = vec![0usize; records.len()];
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); records.len()];
        for (i, r) in records.iter().enumerate() {
            for (_, ty) in &r.fields {
                if let Type::Record(name) = ty
                    && let Some(&dep) = index.get(name.as_str())
                {
                    waiting[i] += 1;
                    users[dep].push(i);
                }
            }
        }
        let mut min_size = vec![usize::MAX; records.len()];
        let mut ready: Vec<usize> = (0..records.len()).filter(|&i| waiting[i] == 0).collect();
        while let Some(i) = ready.pop() {
            let size = records[i].fields.iter().fold(0usize, |sum, (_, ty)| {
                let field = match ty {
                    Type::Record(name) => index.get(name.as_str()).map_or(1, |&dep| min_size[dep]),
                    other => scalar_min_size(other),
                };
                sum.saturating_add(field)
            });
            min_size[i] = size;
            for &user in &users[i] {
                waiting[user] -= 1;
                if waiting[user] == 0 {
                    ready.push(user);
                }
            }
        }
        let records = index
            .into_iter()
            .map(|(name, i)| (name, RecordInfo { fields: &records[i].fields, min_size: min_size[i] }))
            .collect();
        Codec { records, limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Encodes the arguments of a call: a JSON array (positional) or an object keyed by parameter
    /// name; `null` also stands for no arguments.
    ///
    /// # Errors
    /// A wrong number of arguments, a missing or unknown name, or a value that does not fit its
    /// parameter's type.
    pub fn encode_args<'s>(&self, sig: impl Into<Signature<'s>>, args: &Value) -> Result<Vec<u8>, Error> {
        let sig = sig.into();
        let mut out = Vec::with_capacity(64);
        let param = |(name, _): &(String, Type)| Some(Target::Parameter(name.clone()));
        match args {
            Value::Array(items) => {
                if items.len() != sig.params.len() {
                    let (expected, got, list) = (sig.params.len(), items.len(), sig.params_text());
                    return Err(sig.fail(ErrorKind::Count { what: "argument", expected, got, list }));
                }
                for (p, value) in sig.params.iter().zip(items) {
                    self.put(&p.1, value, &mut out, 0).map_err(|f| sig.error(param(p), *f))?;
                }
            }
            Value::Object(map) => {
                for p in sig.params {
                    let Some(value) = map.get(&p.0) else { return Err(argument_names(&sig, map)) };
                    self.put(&p.1, value, &mut out, 0).map_err(|f| sig.error(param(p), *f))?;
                }
                if map.len() != sig.params.len() {
                    return Err(argument_names(&sig, map));
                }
            }
            Value::Null if sig.params.is_empty() => {}
            other => {
                let expected = "a JSON array of arguments or an object keyed by parameter name".to_owned();
                let fail = Fail::new(ErrorKind::Expected { expected, got: describe(other) });
                return Err(sig.error(Some(Target::Arguments), *fail));
            }
        }
        Ok(out)
    }

    /// Decodes the results of a call: `null` for no results, the value for one, an array for
    /// several.
    ///
    /// # Errors
    /// Bytes that are not the postcard encoding of the results (see [`ErrorKind`]), or a decoded
    /// value larger than [`Limits::max_output`].
    pub fn decode_results<'s>(&self, sig: impl Into<Signature<'s>>, bytes: &[u8]) -> Result<Value, Error> {
        self.read_tuple::<Build>(&sig.into(), Side::Results, bytes)
    }

    /// Decodes the arguments of a call as a JSON array (for a host-provided import).
    ///
    /// # Errors
    /// As [`Codec::decode_results`].
    pub fn decode_args<'s>(&self, sig: impl Into<Signature<'s>>, bytes: &[u8]) -> Result<Value, Error> {
        self.read_tuple::<Build>(&sig.into(), Side::Args, bytes)
    }

    /// Encodes the results of a call (for a host-provided import): `null` for no results, the value
    /// for one, an array for several.
    ///
    /// # Errors
    /// A wrong shape or number of results, or a value that does not fit its type.
    pub fn encode_results<'s>(&self, sig: impl Into<Signature<'s>>, results: &Value) -> Result<Vec<u8>, Error> {
        let sig = sig.into();
        let mut out = Vec::with_capacity(64);
        let result = |i| Some(Target::Result(i));
        match (sig.results, results) {
            ([], Value::Null) => {}
            ([ty], value) => self.put(ty, value, &mut out, 0).map_err(|f| sig.error(result(0), *f))?,
            (types, Value::Array(items)) if types.len() > 1 => {
                if items.len() != types.len() {
                    let (expected, got, list) = (types.len(), items.len(), sig.results_text());
                    return Err(sig.fail(ErrorKind::Count { what: "result", expected, got, list }));
                }
                for (i, (ty, value)) in types.iter().zip(items).enumerate() {
                    self.put(ty, value, &mut out, 0).map_err(|f| sig.error(result(i), *f))?;
                }
            }
            (types, other) => {
                let expected = if types.is_empty() {
                    "null (no results)".to_owned()
                } else {
                    format!("an array of {} results", types.len())
                };
                let fail = Fail::new(ErrorKind::Expected { expected, got: describe(other) });
                return Err(sig.error(Some(Target::Results), *fail));
            }
        }
        Ok(out)
    }

    /// Checks that `bytes` are valid arguments for `sig` without decoding them into JSON: what the
    /// host does before copying arguments from a calling module into the callee.
    ///
    /// # Errors
    /// As [`Codec::decode_args`], except that the output limit applies only to the number of
    /// elements of arrays of empty records.
    pub fn check_args<'s>(&self, sig: impl Into<Signature<'s>>, bytes: &[u8]) -> Result<(), Error> {
        self.read_tuple::<Check>(&sig.into(), Side::Args, bytes)
    }

    /// Checks that `bytes` are valid results for `sig` without decoding them into JSON.
    ///
    /// # Errors
    /// As [`Codec::check_args`].
    pub fn check_results<'s>(&self, sig: impl Into<Signature<'s>>, bytes: &[u8]) -> Result<(), Error> {
        self.read_tuple::<Check>(&sig.into(), Side::Results, bytes)
    }

    /// Appends the encoding of one value of type `ty` to `out`.
    ///
    /// # Errors
    /// The value does not fit the type; `out` may then hold part of it.
    pub fn encode(&self, ty: &Type, value: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
        self.put(ty, value, out, 0).map_err(|f| lone(*f))
    }

    /// Decodes one value of type `ty` from the start of `bytes`; returns it and the number of bytes
    /// it took (the rest is not looked at).
    ///
    /// # Errors
    /// As [`Codec::decode_results`], except trailing bytes, which are allowed.
    pub fn decode(&self, ty: &Type, bytes: &[u8]) -> Result<(Value, usize), Error> {
        let mut reader = Reader::new(bytes, self.limits.max_output);
        let value = self.get::<Build>(&mut reader, ty, 0).map_err(|f| lone(*f))?;
        Ok((value, reader.pos))
    }

    // ---- encoding ----

    fn deeper(&self, depth: usize) -> Res<usize> {
        if depth >= self.limits.max_depth {
            return Err(Fail::new(ErrorKind::TooDeep { limit: self.limits.max_depth }));
        }
        Ok(depth + 1)
    }

    fn record(&self, name: &str) -> Res<&RecordInfo<'a>> {
        self.records.get(name).ok_or_else(|| Fail::new(ErrorKind::UnknownRecord { record: name.to_owned() }))
    }

    /// Appends `value` as a `ty`; `depth` is the number of optional/array/record levels around it.
    fn put(&self, ty: &Type, value: &Value, out: &mut Vec<u8>, depth: usize) -> Res<()> {
        let mismatch = || Fail::new(ErrorKind::Expected { expected: expected(ty), got: describe(value) });
        match ty {
            Type::Bool => match value {
                Value::Bool(b) => out.push(u8::from(*b)),
                _ => return Err(mismatch()),
            },
            Type::S8 => out.push(int(value, i8::MIN.into(), i8::MAX.into()).ok_or_else(mismatch)? as i8 as u8),
            Type::S16 => put_varint(out, zigzag(int(value, i16::MIN.into(), i16::MAX.into()).ok_or_else(mismatch)?)),
            Type::S32 => put_varint(out, zigzag(int(value, i32::MIN.into(), i32::MAX.into()).ok_or_else(mismatch)?)),
            Type::S64 => put_varint(out, zigzag(int(value, i64::MIN, i64::MAX).ok_or_else(mismatch)?)),
            Type::U8 => out.push(uint(value, u8::MAX.into()).ok_or_else(mismatch)? as u8),
            Type::U16 => put_varint(out, uint(value, u16::MAX.into()).ok_or_else(mismatch)?),
            Type::U32 => put_varint(out, uint(value, u32::MAX.into()).ok_or_else(mismatch)?),
            Type::U64 => put_varint(out, uint(value, u64::MAX).ok_or_else(mismatch)?),
            Type::F32 => {
                let x = float(value).ok_or_else(mismatch)?;
                let narrow = if x.is_nan() { f32::NAN } else { x as f32 };
                if x.is_finite() && !narrow.is_finite() {
                    return Err(mismatch());
                }
                out.extend_from_slice(&narrow.to_le_bytes());
            }
            Type::F64 => out.extend_from_slice(&float(value).ok_or_else(mismatch)?.to_le_bytes()),
            Type::String => match value {
                Value::String(s) => put_bytes(out, s.as_bytes()),
                _ => return Err(mismatch()),
            },
            Type::Bytes => match value {
                Value::Array(items) => {
                    put_varint(out, items.len() as u64);
                    out.reserve(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let Some(byte) = item.as_u64().filter(|&b| b <= 255) else {
                            let kind = ErrorKind::Expected { expected: expected(&Type::U8), got: describe(item) };
                            return Err(Fail::new(kind)).at(|| Segment::Index(i));
                        };
                        out.push(byte as u8);
                    }
                }
                _ => return Err(mismatch()),
            },
            Type::Optional(inner) => {
                if value.is_null() {
                    out.push(0);
                } else {
                    let depth = self.deeper(depth)?;
                    out.push(1);
                    self.put(inner, value, out, depth).map_err(|mut fail| {
                        if let (true, ErrorKind::Expected { expected, .. }) = (fail.path.is_empty(), &mut fail.kind)
                            && !expected.starts_with("null or ")
                        {
                            *expected = format!("null or {expected}");
                        }
                        fail
                    })?;
                }
            }
            Type::Array(inner) => match value {
                Value::Array(items) => {
                    let depth = self.deeper(depth)?;
                    put_varint(out, items.len() as u64);
                    for (i, item) in items.iter().enumerate() {
                        self.put(inner, item, out, depth).at(|| Segment::Index(i))?;
                    }
                }
                _ => return Err(mismatch()),
            },
            Type::Record(name) => {
                let record = self.record(name)?;
                let Value::Object(map) = value else { return Err(mismatch()) };
                let depth = self.deeper(depth)?;
                for (field, fty) in record.fields {
                    let Some(fvalue) = map.get(field) else {
                        return Err(field_names(name, record.fields, map));
                    };
                    self.put(fty, fvalue, out, depth).at(|| Segment::Field(field.clone()))?;
                }
                if map.len() != record.fields.len() {
                    return Err(field_names(name, record.fields, map));
                }
            }
        }
        Ok(())
    }

    // ---- decoding ----

    fn read_tuple<S: Sink>(&self, sig: &Signature<'_>, side: Side, bytes: &[u8]) -> Result<S::Out, Error> {
        let mut reader = Reader::new(bytes, self.limits.max_output);
        let out = match (side, sig.results) {
            (Side::Results, []) => S::null(),
            (Side::Results, [ty]) => {
                self.get::<S>(&mut reader, ty, 0).map_err(|f| sig.error(Some(Target::Result(0)), *f))?
            }
            (Side::Results, types) => {
                let mut seq = S::seq(types.len());
                for (i, ty) in types.iter().enumerate() {
                    let value =
                        self.get::<S>(&mut reader, ty, 0).map_err(|f| sig.error(Some(Target::Result(i)), *f))?;
                    S::push(&mut seq, value);
                }
                S::end_seq(seq)
            }
            (Side::Args, _) => {
                let mut seq = S::seq(sig.params.len());
                for (name, ty) in sig.params {
                    let value = self
                        .get::<S>(&mut reader, ty, 0)
                        .map_err(|f| sig.error(Some(Target::Parameter(name.clone())), *f))?;
                    S::push(&mut seq, value);
                }
                S::end_seq(seq)
            }
        };
        if reader.pos != bytes.len() {
            let kind = ErrorKind::Trailing { offset: reader.pos, count: bytes.len() - reader.pos };
            let target = match side {
                Side::Args => Target::Arguments,
                Side::Results => Target::Results,
            };
            return Err(sig.error(Some(target), *Fail::new(kind)));
        }
        Ok(out)
    }

    fn min_size(&self, ty: &Type) -> usize {
        match ty {
            Type::Record(name) => self.records.get(name.as_str()).map_or(1, |r| r.min_size),
            other => scalar_min_size(other),
        }
    }

    /// Reads a `ty`; `depth` is the number of optional/array/record levels around it.
    fn get<S: Sink>(&self, r: &mut Reader<'_>, ty: &Type, depth: usize) -> Res<S::Out> {
        if S::BUILDS {
            r.charge(NODE)?;
        }
        Ok(match ty {
            Type::Bool => {
                let at = r.pos;
                match r.byte("a bool")? {
                    0 => S::bool(false),
                    1 => S::bool(true),
                    byte => return Err(Fail::new(ErrorKind::BadBool { offset: at, byte })),
                }
            }
            Type::S8 => S::int(i64::from(r.byte("an s8")? as i8)),
            Type::S16 => S::int(unzigzag(r.varint("an s16", 16)?)),
            Type::S32 => S::int(unzigzag(r.varint("an s32", 32)?)),
            Type::S64 => S::int(unzigzag(r.varint("an s64", 64)?)),
            Type::U8 => S::uint(r.byte("a u8")?.into()),
            Type::U16 => S::uint(r.varint("a u16", 16)?),
            Type::U32 => S::uint(r.varint("a u32", 32)?),
            Type::U64 => S::uint(r.varint("a u64", 64)?),
            Type::F32 => S::f32(f32::from_le_bytes(r.array("an f32")?)),
            Type::F64 => S::f64(f64::from_le_bytes(r.array("an f64")?)),
            Type::String => {
                let body = r.counted("a string length", "string length")?;
                let start = r.pos - body.len();
                let s = std::str::from_utf8(body)
                    .map_err(|e| Fail::new(ErrorKind::BadUtf8 { offset: start + e.valid_up_to() }))?;
                if S::BUILDS {
                    r.charge(s.len())?;
                }
                S::string(s)
            }
            Type::Bytes => {
                let body = r.counted("a bytes length", "bytes length")?;
                if S::BUILDS {
                    r.charge(body.len().saturating_mul(NODE))?;
                }
                S::bytes(body)
            }
            Type::Optional(inner) => {
                let at = r.pos;
                match r.byte("an optional tag")? {
                    0 => S::null(),
                    1 => {
                        let depth = self.deeper(depth)?;
                        self.get::<S>(r, inner, depth)?
                    }
                    byte => return Err(Fail::new(ErrorKind::BadOptionalTag { offset: at, byte })),
                }
            }
            Type::Array(inner) => {
                let depth = self.deeper(depth)?;
                let min = self.min_size(inner);
                let count = r.count(min)?;
                if S::BUILDS && count.saturating_mul(NODE) > r.budget {
                    return Err(r.too_large());
                }
                if min == 0 && !S::BUILDS {
                    // Empty records: nothing to read or check, but their count is bounded only by
                    // the output limit, so checking refuses what decoding would.
                    if count.saturating_mul(NODE) > r.limit {
                        return Err(r.too_large());
                    }
                    return Ok(S::end_seq(S::seq(0)));
                }
                let mut seq = S::seq(if min == 0 { count.min(PREALLOC_CAP) } else { count });
                for i in 0..count {
                    S::push(&mut seq, self.get::<S>(r, inner, depth).at(|| Segment::Index(i))?);
                }
                S::end_seq(seq)
            }
            Type::Record(name) => {
                let record = self.record(name)?;
                let depth = self.deeper(depth)?;
                let mut map = S::map();
                for (field, fty) in record.fields {
                    if S::BUILDS {
                        r.charge(FIELD + field.len())?;
                    }
                    let value = self.get::<S>(r, fty, depth).at(|| Segment::Field(field.clone()))?;
                    S::insert(&mut map, field, value);
                }
                S::end_map(map)
            }
        })
    }
}

/// Encodes the arguments of a call to `func`; see [`Codec::encode_args`]. Builds a [`Codec`] for
/// each call: keep one instead where calls are frequent.
///
/// # Errors
/// As [`Codec::encode_args`].
pub fn encode_args(iface: &Interface, func: &Function, args: &Value) -> Result<Vec<u8>, Error> {
    Codec::new(iface).encode_args(func, args)
}

/// Decodes the results of a call to `func`; see [`Codec::decode_results`]. Builds a [`Codec`] for
/// each call: keep one instead where calls are frequent.
///
/// # Errors
/// As [`Codec::decode_results`].
pub fn decode_results(iface: &Interface, func: &Function, bytes: &[u8]) -> Result<Value, Error> {
    Codec::new(iface).decode_results(func, bytes)
}

fn lone(fail: Fail) -> Error {
    Error::new(String::new(), Some(Target::Value), fail)
}

/// The error for named arguments that are not exactly the parameters: unknown names first (a
/// misspelt name is also a missing one), then the first missing parameter.
fn argument_names(sig: &Signature<'_>, map: &Map<String, Value>) -> Error {
    let unknown: Vec<String> = map.keys().filter(|k| !sig.params.iter().any(|(p, _)| p == *k)).cloned().collect();
    let params = sig.params_text();
    if !unknown.is_empty() {
        return sig.fail(ErrorKind::UnknownArguments { unknown, params });
    }
    let name = sig.params.iter().find(|(p, _)| !map.contains_key(p)).map(|(p, _)| p.clone()).unwrap_or_default();
    sig.fail(ErrorKind::MissingArgument { name, params })
}

/// The error for an object whose keys are not exactly the record's fields; as [`argument_names`].
fn field_names(record: &str, fields: &[(String, Type)], map: &Map<String, Value>) -> Box<Fail> {
    let unknown: Vec<String> = map.keys().filter(|k| !fields.iter().any(|(f, _)| f == *k)).cloned().collect();
    let record = record.to_owned();
    if !unknown.is_empty() {
        let fields = Signature { module: None, name: "", params: fields, results: &[] }.params_text();
        return Fail::new(ErrorKind::UnknownFields { record, unknown, fields });
    }
    let field = fields.iter().find(|(f, _)| !map.contains_key(f)).map(|(f, _)| f.clone()).unwrap_or_default();
    Fail::new(ErrorKind::MissingField { record, field })
}

/// What a type takes, for errors.
fn expected(ty: &Type) -> String {
    const FLOAT: &str = r#"(a number, "NaN", "inf" or "-inf")"#;
    let text: Cow<'static, str> = match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8 (-128..=127)".into(),
        Type::S16 => "s16 (-32768..=32767)".into(),
        Type::S32 => "s32 (-2147483648..=2147483647)".into(),
        Type::S64 => "s64 (-9223372036854775808..=9223372036854775807)".into(),
        Type::U8 => "u8 (0..=255)".into(),
        Type::U16 => "u16 (0..=65535)".into(),
        Type::U32 => "u32 (0..=4294967295)".into(),
        Type::U64 => "u64 (0..=18446744073709551615)".into(),
        Type::F32 => format!("f32 {FLOAT}").into(),
        Type::F64 => format!("f64 {FLOAT}").into(),
        Type::String => "string".into(),
        Type::Bytes => "bytes (an array of numbers 0..=255)".into(),
        Type::Optional(_) => format!("{ty} (null or the value)").into(),
        Type::Array(_) => format!("{ty} (an array)").into(),
        Type::Record(name) => format!("record `{name}` (an object)").into(),
    };
    text.into_owned()
}

/// A JSON value, abbreviated, for errors.
fn describe(value: &Value) -> String {
    const MAX_CHARS: usize = 32;
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > MAX_CHARS => {
            let head: String = s.chars().take(MAX_CHARS).collect();
            format!("{head:?}…")
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => {
            format!("an array of {} element{}", items.len(), if items.len() == 1 { "" } else { "s" })
        }
        Value::Object(_) => "an object".to_owned(),
    }
}

fn int(value: &Value, min: i64, max: i64) -> Option<i64> {
    value.as_i64().filter(|n| (min..=max).contains(n))
}

fn uint(value: &Value, max: u64) -> Option<u64> {
    value.as_u64().filter(|&n| n <= max)
}

/// A JSON number, or one of the strings `"NaN"`, `"inf"`, `"-inf"`.
fn float(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// The JSON for a float: a number if finite, else `"NaN"`, `"inf"` or `"-inf"`.
fn float_value(x: f64) -> Value {
    match Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => Value::String("NaN".to_owned()),
        None if x > 0.0 => Value::String("inf".to_owned()),
        None => Value::String("-inf".to_owned()),
    }
}

/// An f32 as the f64 nearest its shortest decimal form, so `0.1f32` shows as `0.1`, not
/// `0.10000000149011612`; it converts back to the same f32.
fn widen(x: f32) -> f64 {
    use std::io::Write;
    if !x.is_finite() {
        return f64::from(x);
    }
    let mut buf = [0u8; 32];
    let mut rest = &mut buf[..];
    if write!(rest, "{x:e}").is_err() {
        return f64::from(x);
    }
    let len = 32 - rest.len();
    std::str::from_utf8(&buf[..len]).ok().and_then(|s| s.parse().ok()).unwrap_or(f64::from(x))
}

fn scalar_min_size(ty: &Type) -> usize {
    match ty {
        Type::F32 => 4,
        Type::F64 => 8,
        // Unresolved records: anything positive keeps counts honest until the lookup fails.
        _ => 1,
    }
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Args,
    Results,
}

struct Reader<'b> {
    bytes: &'b [u8],
    pos: usize,
    /// What is left of [`Limits::max_output`].
    budget: usize,
    /// [`Limits::max_output`], for errors.
    limit: usize,
}

impl<'b> Reader<'b> {
    fn new(bytes: &'b [u8], limit: usize) -> Self {
        Reader { bytes, pos: 0, budget: limit, limit }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    #[inline]
    fn byte(&mut self, what: &'static str) -> Res<u8> {
        let b = *self.bytes.get(self.pos).ok_or_else(|| Fail::new(ErrorKind::Truncated { offset: self.pos, what }))?;
        self.pos += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Res<[u8; N]> {
        let at = self.pos;
        let chunk = self.bytes.get(at..at + N).ok_or_else(|| Fail::new(ErrorKind::Truncated { offset: at, what }))?;
        self.pos += N;
        Ok(chunk.try_into().expect("N bytes"))
    }

    /// An unsigned LEB128 varint for a `bits`-bit integer, as postcard reads them: at most
    /// `ceil(bits / 7)` bytes, and the value must fit (non-minimal encodings are accepted;
    /// [`weft_abi::varint::get`]).
    #[inline]
    fn varint(&mut self, ty: &'static str, bits: u32) -> Res<u64> {
        let start = self.pos;
        match weft_abi::varint::get(self.bytes.get(start..).unwrap_or_default(), bits) {
            Ok((value, n)) => {
                self.pos += n;
                Ok(value)
            }
            Err(weft_abi::varint::Refused::Truncated) => {
                Err(Fail::new(ErrorKind::Truncated { offset: start, what: ty }))
            }
            Err(weft_abi::varint::Refused::Invalid) => Err(Fail::new(ErrorKind::BadVarint { offset: start, ty })),
        }
    }

    /// A length or count whose items take at least `min` bytes each, checked against the rest.
    fn count_of(&mut self, what: &'static str, name: &'static str, min: usize) -> Res<usize> {
        let start = self.pos;
        let count = self.varint(what, 64)?;
        let needed = count.saturating_mul(min as u64);
        if needed > self.remaining() as u64 {
            let remaining = self.remaining();
            return Err(Fail::new(ErrorKind::TooLong { offset: start, what: name, count, needed, remaining }));
        }
        // Fits in usize: at most the remaining bytes, unless `min` is 0; then it is capped elsewhere.
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    fn count(&mut self, min: usize) -> Res<usize> {
        self.count_of("an array count", "array count", min)
    }

    /// A length-prefixed run of bytes.
    fn counted(&mut self, what: &'static str, name: &'static str) -> Res<&'b [u8]> {
        let len = self.count_of(what, name, 1)?;
        let body = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(body)
    }

    #[inline]
    fn charge(&mut self, cost: usize) -> Res<()> {
        match self.budget.checked_sub(cost) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(self.too_large()),
        }
    }

    fn too_large(&self) -> Box<Fail> {
        Fail::new(ErrorKind::TooLarge { offset: self.pos, limit: self.limit })
    }
}

/// What decoding produces: JSON values ([`Build`]) or nothing, only checking ([`Check`]).
trait Sink {
    type Out;
    type Seq;
    type Map;
    /// Whether values are built (and charged against the output limit).
    const BUILDS: bool;
    fn null() -> Self::Out;
    fn bool(b: bool) -> Self::Out;
    fn int(n: i64) -> Self::Out;
    fn uint(n: u64) -> Self::Out;
    fn f32(x: f32) -> Self::Out;
    fn f64(x: f64) -> Self::Out;
    fn string(s: &str) -> Self::Out;
    fn bytes(b: &[u8]) -> Self::Out;
    fn seq(capacity: usize) -> Self::Seq;
    fn push(seq: &mut Self::Seq, value: Self::Out);
    fn end_seq(seq: Self::Seq) -> Self::Out;
    fn map() -> Self::Map;
    fn insert(map: &mut Self::Map, key: &str, value: Self::Out);
    fn end_map(map: Self::Map) -> Self::Out;
}

struct Build;

impl Sink for Build {
    type Out = Value;
    type Seq = Vec<Value>;
    type Map = Map<String, Value>;
    const BUILDS: bool = true;
    fn null() -> Value {
        Value::Null
    }
    fn bool(b: bool) -> Value {
        Value::Bool(b)
    }
    fn int(n: i64) -> Value {
        Value::from(n)
    }
    fn uint(n: u64) -> Value {
        Value::from(n)
    }
    fn f32(x: f32) -> Value {
        float_value(widen(x))
    }
    fn f64(x: f64) -> Value {
        float_value(x)
    }
    fn string(s: &str) -> Value {
        Value::String(s.to_owned())
    }
    fn bytes(b: &[u8]) -> Value {
        Value::Array(b.iter().map(|&x| Value::from(x)).collect())
    }
    fn seq(capacity: usize) -> Vec<Value> {
        Vec::with_capacity(capacity)
    }
    fn push(seq: &mut Vec<Value>, value: Value) {
        seq.push(value);
    }
    fn end_seq(seq: Vec<Value>) -> Value {
        Value::Array(seq)
    }
    fn map() -> Map<String, Value> {
        Map::new()
    }
    fn insert(map: &mut Map<String, Value>, key: &str, value: Value) {
        map.insert(key.to_owned(), value);
    }
    fn end_map(map: Map<String, Value>) -> Value {
        Value::Object(map)
    }
}

struct Check;

impl Sink for Check {
    type Out = ();
    type Seq = ();
    type Map = ();
    const BUILDS: bool = false;
    fn null() {}
    fn bool(_: bool) {}
    fn int(_: i64) {}
    fn uint(_: u64) {}
    fn f32(_: f32) {}
    fn f64(_: f64) {}
    fn string(_: &str) {}
    fn bytes(_: &[u8]) {}
    fn seq(_: usize) {}
    fn push(_: &mut (), _: ()) {}
    fn end_seq(_: ()) {}
    fn map() {}
    fn insert(_: &mut (), _: &str, _: ()) {}
    fn end_map(_: ()) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interface::Record;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for (bits, values) in [
            (16, &[0, 127, 128, 16_383, 16_384, 65_535][..]),
            (32, &[0, 300, u64::from(u32::MAX)][..]),
            (64, &[0, 1 << 63, u64::MAX][..]),
        ] {
            for &value in values {
                let mut out = Vec::new();
                put_varint(&mut out, value);
                let mut reader = Reader::new(&out, 0);
                assert_eq!(reader.varint("x", bits).unwrap(), value, "{bits} bits");
                assert_eq!(reader.pos, out.len());
            }
        }
        for n in [0, 1, -1, 2, -2, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(n)), n);
        }
        assert_eq!([zigzag(0), zigzag(-1), zigzag(1), zigzag(-2)], [0, 1, 2, 3]);
    }

    #[test]
    fn record_min_sizes() {
        let record = |name: &str, fields: &[(&str, Type)]| Record {
            name: name.into(),
            fields: fields.iter().map(|(n, t)| ((*n).to_owned(), t.clone())).collect(),
        };
        let iface = Interface {
            records: vec![
                record("outer", &[("p", Type::record("point")), ("e", Type::record("empty"))]),
                record("point", &[("x", Type::F64), ("y", Type::F32), ("z", Type::U8)]),
                record("empty", &[]),
                record("nested_empty", &[("a", Type::record("empty")), ("b", Type::record("empty"))]),
                record("a", &[("b", Type::record("b"))]),
                record("b", &[("a", Type::record("a")), ("s", Type::String)]),
                record("uses_a", &[("a", Type::record("a"))]),
                record("list", &[("next", Type::optional(Type::record("list")))]),
            ],
            ..Interface::default()
        };
        let codec = Codec::new(&iface);
        let min = |name: &str| codec.records[name].min_size;
        assert_eq!(min("point"), 13);
        assert_eq!(min("outer"), 13);
        assert_eq!(min("empty"), 0);
        assert_eq!(min("nested_empty"), 0);
        assert_eq!((min("a"), min("b"), min("uses_a")), (usize::MAX, usize::MAX, usize::MAX));
        assert_eq!(min("list"), 1);
    }
}
