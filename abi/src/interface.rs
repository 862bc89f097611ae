//! The `weft-interface` custom section: a module's typed interface.
//!
//! The section payload is a concatenation of **entries**, so a linker may concatenate the entries
//! that an SDK emits per function. Each entry is `[format version: u8 = 1][postcard-encoded Item]`.
//! A [`Type`] travels as a flat prefix sequence of tags (`optional<array<u8>>` is
//! `[optional, array, u8]`), rebuilt here without recursion and with a depth cap. The byte-level
//! format is specified in `docs/interface-section.md`; this module is its reference implementation.
//!
//! Decoding reads untrusted bytes: every count and length is checked against a cap before anything
//! is allocated for it, and every error names the byte offset (within the section payload) of what
//! was wrong.

use std::collections::HashSet;
use std::fmt;

/// The name of the custom section.
pub const SECTION_NAME: &str = "weft-interface";

/// The entry format version this crate writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// Deepest nesting of `optional`/`array` around a type.
pub const MAX_DEPTH: usize = 32;

/// Longest name (function, record, field, parameter, import module or name), in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// Most entries in one section.
pub const MAX_ITEMS: usize = 4096;

/// Most parameters, results or fields of one item.
pub const MAX_MEMBERS: usize = 1024;

/// A value type of weft's module ABI.
///
/// Exhaustive on purpose: a new type is a new type tag and a new entry format version
/// (docs/interface-section.md, *Evolution*), and every codec matching on it must handle it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// `bool`
    Bool,
    /// `s8`
    S8,
    /// `s16`
    S16,
    /// `s32`
    S32,
    /// `s64`
    S64,
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `string` (UTF-8)
    String,
    /// `bytes`
    Bytes,
    /// `optional<T>`: null or a `T`
    Optional(Box<Type>),
    /// `array<T>`
    Array(Box<Type>),
    /// A record declared in the same interface, by name.
    Record(String),
}

impl Type {
    /// `optional<inner>`.
    pub fn optional(inner: Type) -> Self {
        Type::Optional(Box::new(inner))
    }

    /// `array<inner>`.
    pub fn array(inner: Type) -> Self {
        Type::Array(Box::new(inner))
    }

    /// A reference to the record `name`.
    pub fn record(name: impl Into<String>) -> Self {
        Type::Record(name.into())
    }

    /// The innermost type and the number of `optional`/`array` layers around it.
    fn leaf(&self) -> (&Type, usize) {
        let mut ty = self;
        let mut depth = 0;
        while let Type::Optional(inner) | Type::Array(inner) = ty {
            ty = inner;
            depth += 1;
        }
        (ty, depth)
    }

    fn scalar_name(&self) -> Option<&'static str> {
        Some(match self {
            Type::Bool => "bool",
            Type::S8 => "s8",
            Type::S16 => "s16",
            Type::S32 => "s32",
            Type::S64 => "s64",
            Type::U8 => "u8",
            Type::U16 => "u16",
            Type::U32 => "u32",
            Type::U64 => "u64",
            Type::F32 => "f32",
            Type::F64 => "f64",
            Type::String => "string",
            Type::Bytes => "bytes",
            Type::Optional(_) | Type::Array(_) | Type::Record(_) => return None,
        })
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ty = self;
        let mut open = 0;
        loop {
            match ty {
                Type::Optional(_) => f.write_str("optional<")?,
                Type::Array(_) => f.write_str("array<")?,
                Type::Record(name) => f.write_str(name)?,
                scalar => f.write_str(scalar.scalar_name().unwrap_or("?"))?,
            }
            match ty {
                Type::Optional(inner) | Type::Array(inner) => {
                    ty = inner;
                    open += 1;
                }
                _ => break,
            }
        }
        for _ in 0..open {
            f.write_str(">")?;
        }
        Ok(())
    }
}

/// A function the module exports, with typed parameters and results.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Function {
    /// The name of the Wasm function export that implements it.
    pub name: String,
    /// Named parameters, in order.
    pub params: Vec<(String, Type)>,
    /// Results, in order (usually zero or one).
    pub results: Vec<Type>,
}

/// A record type: named fields, in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Record {
    /// The record's name, unique among the interface's records.
    pub name: String,
    /// Named fields, in order.
    pub fields: Vec<(String, Type)>,
}

/// A function the module imports from another module of its service.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Import {
    /// The Wasm import module name (the providing module).
    pub module: String,
    /// The Wasm import field name (the function).
    pub name: String,
    /// Named parameters, in order.
    pub params: Vec<(String, Type)>,
    /// Results, in order.
    pub results: Vec<Type>,
}

impl Function {
    /// A function called `name` with no parameters and no results yet: add them with
    /// [`Function::param`] and [`Function::result`].
    ///
    /// ```
    /// use weft_abi::interface::{Function, Type};
    /// let f = Function::new("get").param("key", Type::String).result(Type::optional(Type::String));
    /// assert_eq!(f.to_string(), "get(key: string) -> optional<string>");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Function { name: name.into(), params: Vec::new(), results: Vec::new() }
    }

    /// The same function with one more parameter.
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, ty: Type) -> Self {
        self.params.push((name.into(), ty));
        self
    }

    /// The same function with one more result.
    #[must_use]
    pub fn result(mut self, ty: Type) -> Self {
        self.results.push(ty);
        self
    }
}

impl Record {
    /// A record called `name` with no fields yet: add them with [`Record::field`].
    pub fn new(name: impl Into<String>) -> Self {
        Record { name: name.into(), fields: Vec::new() }
    }

    /// The same record with one more field.
    #[must_use]
    pub fn field(mut self, name: impl Into<String>, ty: Type) -> Self {
        self.fields.push((name.into(), ty));
        self
    }
}

/// One entry of the section. Exhaustive on purpose, like [`Type`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Item {
    /// An exported function (postcard variant 0).
    Function(Function),
    /// A record type (postcard variant 1).
    Record(Record),
    /// A function imported from another module (postcard variant 2).
    Import(Import),
}

/// A module's decoded interface: its entries sorted by kind, each kind in section order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Interface {
    /// Exported functions.
    pub functions: Vec<Function>,
    /// Record types.
    pub records: Vec<Record>,
    /// Functions imported from other modules.
    pub imports: Vec<Import>,
}

/// Why a `weft-interface` section could not be read. Offsets are within the section payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An entry starts with a format version this weft does not read.
    #[error(
        "entry at byte {offset} has format version {version}, but this weft reads version {FORMAT_VERSION}; \
         the section is corrupt, has trailing bytes, or needs a newer weft"
    )]
    UnknownVersion {
        /// Offset of the version byte.
        offset: usize,
        /// The version found.
        version: u8,
    },
    /// The payload ends in the middle of an entry.
    #[error("section ends in the middle of {what} at byte {offset}; the section is truncated")]
    Truncated {
        /// Offset where more bytes were needed.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A variable-length integer is over-long or does not fit.
    #[error("malformed varint at byte {offset}")]
    BadVarint {
        /// Offset of the varint.
        offset: usize,
    },
    /// A name is not UTF-8.
    #[error("name at byte {offset} is not valid utf-8")]
    BadUtf8 {
        /// Offset of the name's bytes.
        offset: usize,
    },
    /// A name is empty or longer than [`MAX_NAME_BYTES`].
    #[error("{what} at byte {offset} is {len} bytes long; names must be 1 to {MAX_NAME_BYTES} bytes")]
    BadName {
        /// Offset of the name's length.
        offset: usize,
        /// What the name names.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// An entry's item kind is not one this weft knows.
    #[error(
        "entry at byte {offset} has unknown item kind {kind}; known kinds are 0 (function), 1 (record), 2 (import)"
    )]
    UnknownItem {
        /// Offset of the kind.
        offset: usize,
        /// The kind found.
        kind: u32,
    },
    /// A type tag is not one this weft knows.
    #[error("unknown type tag {tag} at byte {offset}; known tags are 0 to 15")]
    UnknownTag {
        /// Offset of the tag.
        offset: usize,
        /// The tag found.
        tag: u32,
    },
    /// A tag sequence does not form exactly one type.
    #[error("malformed type at byte {offset}: {reason}")]
    BadType {
        /// Offset of the type.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `optional`/`array` nested deeper than [`MAX_DEPTH`].
    #[error("type at byte {offset} nests {depth} levels of optional/array; at most {MAX_DEPTH} are allowed")]
    TooDeep {
        /// Offset of the type.
        offset: usize,
        /// Its nesting depth.
        depth: usize,
    },
    /// More entries, parameters, results or fields than allowed.
    #[error("{count} {what} at byte {offset}; at most {limit} are allowed")]
    TooMany {
        /// Offset of the count.
        offset: usize,
        /// What is counted.
        what: &'static str,
        /// The count found.
        count: usize,
        /// The cap.
        limit: usize,
    },
    /// Two items of one kind, or two members of one item, share a name.
    #[error("duplicate {what} `{name}`; names must be unique")]
    Duplicate {
        /// What is duplicated (e.g. "function", "field of record `point`").
        what: String,
        /// The duplicated name.
        name: String,
    },
    /// A type refers to a record the interface does not declare.
    #[error("{item} refers to record `{record}`, which the interface does not declare; add the record entry")]
    UnresolvedRecord {
        /// The item with the reference (e.g. "function `greet`").
        item: String,
        /// The missing record's name.
        record: String,
    },
}

impl Interface {
    /// Decodes and checks a section payload.
    ///
    /// # Errors
    /// Any malformed entry (unknown version, truncation, trailing bytes, bad varints, names or type
    /// tags, caps exceeded), a duplicate name, or a reference to an undeclared record.
    pub fn decode(payload: &[u8]) -> Result<Self, Error> {
        let mut reader = Reader { bytes: payload, pos: 0 };
        let mut interface = Interface::default();
        let mut count = 0usize;
        while !reader.is_empty() {
            count += 1;
            if count > MAX_ITEMS {
                return Err(Error::TooMany { offset: reader.pos, what: "entries", count, limit: MAX_ITEMS });
            }
            match reader.entry()? {
                Item::Function(f) => interface.functions.push(f),
                Item::Record(r) => interface.records.push(r),
                Item::Import(i) => interface.imports.push(i),
            }
        }
        interface.check()?;
        Ok(interface)
    }

    /// Encodes the interface as a section payload: records, then functions, then imports.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for item in self.items() {
            encode_entry_into(&item, &mut out);
        }
        out
    }

    /// The interface's entries (borrowed clones), in encoding order.
    pub fn items(&self) -> impl Iterator<Item = Item> + '_ {
        let records = self.records.iter().cloned().map(Item::Record);
        let functions = self.functions.iter().cloned().map(Item::Function);
        let imports = self.imports.iter().cloned().map(Item::Import);
        records.chain(functions).chain(imports)
    }

    /// The exported function called `name`.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The record called `name`.
    pub fn record(&self, name: &str) -> Option<&Record> {
        self.records.iter().find(|r| r.name == name)
    }

    /// The import of `module`.`name`.
    pub fn import(&self, module: &str, name: &str) -> Option<&Import> {
        self.imports.iter().find(|i| i.module == module && i.name == name)
    }

    /// Checks names are unique and every record reference resolves.
    ///
    /// [`Interface::decode`] runs this; call it on an interface built in code before trusting it.
    ///
    /// # Errors
    /// [`Error::Duplicate`] or [`Error::UnresolvedRecord`].
    pub fn check(&self) -> Result<(), Error> {
        let dup = |what: &str, name: &str| Error::Duplicate { what: what.to_owned(), name: name.to_owned() };
        let mut records = HashSet::new();
        for r in &self.records {
            if !records.insert(r.name.as_str()) {
                return Err(dup("record", &r.name));
            }
        }
        let mut functions = HashSet::new();
        for f in &self.functions {
            if !functions.insert(f.name.as_str()) {
                return Err(dup("function", &f.name));
            }
        }
        let mut imports = HashSet::new();
        for i in &self.imports {
            if !imports.insert((i.module.as_str(), i.name.as_str())) {
                return Err(dup("import", &format!("{}.{}", i.module, i.name)));
            }
        }
        let members = |what: String, list: &[(String, Type)]| -> Result<(), Error> {
            let mut names = HashSet::new();
            for (name, ty) in list {
                if !names.insert(name.as_str()) {
                    return Err(Error::Duplicate { what, name: name.clone() });
                }
                resolve(&records, &what, ty)?;
            }
            Ok(())
        };
        for r in &self.records {
            members(format!("field of record `{}`", r.name), &r.fields)?;
        }
        for f in &self.functions {
            members(format!("parameter of function `{}`", f.name), &f.params)?;
            for ty in &f.results {
                resolve(&records, &format!("result of function `{}`", f.name), ty)?;
            }
        }
        for i in &self.imports {
            members(format!("parameter of import `{}.{}`", i.module, i.name), &i.params)?;
            for ty in &i.results {
                resolve(&records, &format!("result of import `{}.{}`", i.module, i.name), ty)?;
            }
        }
        Ok(())
    }
}

fn resolve(records: &HashSet<&str>, item: &str, ty: &Type) -> Result<(), Error> {
    match ty.leaf().0 {
        Type::Record(name) if !records.contains(name.as_str()) => {
            Err(Error::UnresolvedRecord { item: item.to_owned(), record: name.clone() })
        }
        _ => Ok(()),
    }
}

/// Encodes one entry (`[1][postcard Item]`), as an SDK emits it per function.
pub fn encode_entry(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    encode_entry_into(item, &mut out);
    out
}

/// Appends a `weft-interface` custom section holding `interface` to a Wasm module.
pub fn append_section(wasm: &[u8], interface: &Interface) -> Vec<u8> {
    append_raw_section(wasm, &interface.encode())
}

/// Appends a `weft-interface` custom section with an arbitrary payload (for tests and tools).
pub fn append_raw_section(wasm: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut name = Vec::new();
    crate::varint::put(&mut name, SECTION_NAME.len() as u64);
    name.extend_from_slice(SECTION_NAME.as_bytes());
    let mut out = Vec::with_capacity(wasm.len() + payload.len() + 32);
    out.extend_from_slice(wasm);
    out.push(0); // custom section id
    crate::varint::put(&mut out, (name.len() + payload.len()) as u64);
    out.extend_from_slice(&name);
    out.extend_from_slice(payload);
    out
}

// ---- text rendering ----

struct Params<'a>(&'a [(String, Type)]);

impl fmt::Display for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, ty)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}: {ty}")?;
        }
        Ok(())
    }
}

struct Results<'a>(&'a [Type]);

impl fmt::Display for Results<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => Ok(()),
            [one] => write!(f, " -> {one}"),
            many => {
                f.write_str(" -> (")?;
                for (i, ty) in many.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{ty}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// `greet(name: string) -> string`
impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}){}", self.name, Params(&self.params), Results(&self.results))
    }
}

/// `record point { x: f64, y: f64 }`
impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fields.is_empty() {
            write!(f, "record {} {{}}", self.name)
        } else {
            write!(f, "record {} {{ {} }}", self.name, Params(&self.fields))
        }
    }
}

/// `import kv.get(key: string) -> optional<bytes>`
impl fmt::Display for Import {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "import {}.{}({}){}", self.module, self.name, Params(&self.params), Results(&self.results))
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Function(x) => x.fmt(f),
            Item::Record(x) => x.fmt(f),
            Item::Import(x) => x.fmt(f),
        }
    }
}

/// One item per line, records first.
impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for item in self.items() {
            writeln!(f, "{item}")?;
        }
        Ok(())
    }
}

// ---- encoding ----

const ITEM_FUNCTION: u32 = 0;
const ITEM_RECORD: u32 = 1;
const ITEM_IMPORT: u32 = 2;

const TAG_OPTIONAL: u32 = 13;
const TAG_ARRAY: u32 = 14;
const TAG_RECORD: u32 = 15;

fn scalar_tag(ty: &Type) -> Option<u32> {
    Some(match ty {
        Type::Bool => 0,
        Type::S8 => 1,
        Type::S16 => 2,
        Type::S32 => 3,
        Type::S64 => 4,
        Type::U8 => 5,
        Type::U16 => 6,
        Type::U32 => 7,
        Type::U64 => 8,
        Type::F32 => 9,
        Type::F64 => 10,
        Type::String => 11,
        Type::Bytes => 12,
        Type::Optional(_) | Type::Array(_) | Type::Record(_) => return None,
    })
}

fn scalar_of_tag(tag: u32) -> Option<Type> {
    Some(match tag {
        0 => Type::Bool,
        1 => Type::S8,
        2 => Type::S16,
        3 => Type::S32,
        4 => Type::S64,
        5 => Type::U8,
        6 => Type::U16,
        7 => Type::U32,
        8 => Type::U64,
        9 => Type::F32,
        10 => Type::F64,
        11 => Type::String,
        12 => Type::Bytes,
        _ => return None,
    })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    crate::varint::put(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_type(out: &mut Vec<u8>, ty: &Type) {
    let (_, depth) = ty.leaf();
    crate::varint::put(out, depth as u64 + 1);
    let mut ty = ty;
    loop {
        match ty {
            Type::Optional(inner) => {
                crate::varint::put(out, u64::from(TAG_OPTIONAL));
                ty = inner;
            }
            Type::Array(inner) => {
                crate::varint::put(out, u64::from(TAG_ARRAY));
                ty = inner;
            }
            Type::Record(name) => {
                crate::varint::put(out, u64::from(TAG_RECORD));
                put_str(out, name);
                return;
            }
            scalar => {
                crate::varint::put(out, u64::from(scalar_tag(scalar).unwrap_or(0)));
                return;
            }
        }
    }
}

fn put_members(out: &mut Vec<u8>, members: &[(String, Type)]) {
    crate::varint::put(out, members.len() as u64);
    for (name, ty) in members {
        put_str(out, name);
        put_type(out, ty);
    }
}

fn put_types(out: &mut Vec<u8>, types: &[Type]) {
    crate::varint::put(out, types.len() as u64);
    for ty in types {
        put_type(out, ty);
    }
}

fn encode_entry_into(item: &Item, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    match item {
        Item::Function(f) => {
            crate::varint::put(out, u64::from(ITEM_FUNCTION));
            put_str(out, &f.name);
            put_members(out, &f.params);
            put_types(out, &f.results);
        }
        Item::Record(r) => {
            crate::varint::put(out, u64::from(ITEM_RECORD));
            put_str(out, &r.name);
            put_members(out, &r.fields);
        }
        Item::Import(i) => {
            crate::varint::put(out, u64::from(ITEM_IMPORT));
            put_str(out, &i.module);
            put_str(out, &i.name);
            put_members(out, &i.params);
            put_types(out, &i.results);
        }
    }
}

// ---- decoding ----

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, Error> {
        let b = *self.bytes.get(self.pos).ok_or(Error::Truncated { offset: self.pos, what })?;
        self.pos += 1;
        Ok(b)
    }

    /// An unsigned LEB128 varint of a `max_bits`-bit integer ([`crate::varint::get`]).
    fn varint(&mut self, what: &'static str, max_bits: u32) -> Result<u64, Error> {
        let start = self.pos;
        match crate::varint::get(self.bytes.get(start..).unwrap_or_default(), max_bits) {
            Ok((value, n)) => {
                self.pos += n;
                Ok(value)
            }
            Err(crate::varint::Refused::Truncated) => Err(Error::Truncated { offset: self.bytes.len(), what }),
            Err(crate::varint::Refused::Invalid) => Err(Error::BadVarint { offset: start }),
        }
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        let start = self.pos;
        u32::try_from(self.varint(what, 32)?).map_err(|_| Error::BadVarint { offset: start })
    }

    fn count(&mut self, what: &'static str, limit: usize) -> Result<usize, Error> {
        let start = self.pos;
        let n = self.varint(what, 64)?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > limit {
            return Err(Error::TooMany { offset: start, what, count: n, limit });
        }
        Ok(n)
    }

    fn name(&mut self, what: &'static str) -> Result<String, Error> {
        let start = self.pos;
        let len = self.varint(what, 64)?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len == 0 || len > MAX_NAME_BYTES {
            return Err(Error::BadName { offset: start, what, len });
        }
        let body = self.pos;
        let end = body.checked_add(len).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(Error::Truncated { offset: self.bytes.len(), what })?;
        let s = std::str::from_utf8(&self.bytes[body..end]).map_err(|_| Error::BadUtf8 { offset: body })?;
        self.pos = end;
        Ok(s.to_owned())
    }

    /// A type: `varint(n)` then `n` tags forming `wrapper* leaf`, rebuilt iteratively.
    fn ty(&mut self) -> Result<Type, Error> {
        let start = self.pos;
        let n = self.varint("a type", 64)?;
        if n == 0 {
            return Err(Error::BadType { offset: start, reason: "empty tag sequence" });
        }
        let depth = usize::try_from(n - 1).unwrap_or(usize::MAX);
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep { offset: start, depth });
        }
        let mut wrappers = Vec::with_capacity(depth);
        for _ in 0..depth {
            let at = self.pos;
            match self.u32("a type tag")? {
                tag @ (TAG_OPTIONAL | TAG_ARRAY) => wrappers.push(tag),
                tag if tag <= TAG_RECORD => {
                    return Err(Error::BadType {
                        offset: at,
                        reason: "a non-wrapper tag is followed by more tags; only optional (13) and array (14) take an element type",
                    });
                }
                tag => return Err(Error::UnknownTag { offset: at, tag }),
            }
        }
        let at = self.pos;
        let mut ty = match self.u32("a type tag")? {
            TAG_RECORD => Type::Record(self.name("a record reference")?),
            TAG_OPTIONAL | TAG_ARRAY => {
                return Err(Error::BadType { offset: at, reason: "optional/array without an element type" });
            }
            tag => scalar_of_tag(tag).ok_or(Error::UnknownTag { offset: at, tag })?,
        };
        for &tag in wrappers.iter().rev() {
            ty = if tag == TAG_OPTIONAL { Type::optional(ty) } else { Type::array(ty) };
        }
        Ok(ty)
    }

    fn members(&mut self, what: &'static str) -> Result<Vec<(String, Type)>, Error> {
        let n = self.count(what, MAX_MEMBERS)?;
        let mut out = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let name = self.name("a member name")?;
            out.push((name, self.ty()?));
        }
        Ok(out)
    }

    fn types(&mut self) -> Result<Vec<Type>, Error> {
        let n = self.count("results", MAX_MEMBERS)?;
        let mut out = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            out.push(self.ty()?);
        }
        Ok(out)
    }

    fn entry(&mut self) -> Result<Item, Error> {
        let offset = self.pos;
        let version = self.byte("an entry")?;
        if version != FORMAT_VERSION {
            return Err(Error::UnknownVersion { offset, version });
        }
        let kind_at = self.pos;
        Ok(match self.u32("an item kind")? {
            ITEM_FUNCTION => Item::Function(Function {
                name: self.name("a function name")?,
                params: self.members("parameters")?,
                results: self.types()?,
            }),
            ITEM_RECORD => Item::Record(Record { name: self.name("a record name")?, fields: self.members("fields")? }),
            ITEM_IMPORT => Item::Import(Import {
                module: self.name("an import module")?,
                name: self.name("an import name")?,
                params: self.members("parameters")?,
                results: self.types()?,
            }),
            kind => return Err(Error::UnknownItem { offset: kind_at, kind }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greet() -> Function {
        Function { name: "greet".into(), params: vec![("name".into(), Type::String)], results: vec![Type::String] }
    }

    #[test]
    fn renders_signatures() {
        assert_eq!(greet().to_string(), "greet(name: string) -> string");
        let f = Function {
            name: "f".into(),
            params: vec![("a".into(), Type::optional(Type::array(Type::U8))), ("p".into(), Type::record("point"))],
            results: vec![Type::U32, Type::Bytes],
        };
        assert_eq!(f.to_string(), "f(a: optional<array<u8>>, p: point) -> (u32, bytes)");
        let r = Record { name: "point".into(), fields: vec![("x".into(), Type::F64), ("y".into(), Type::F64)] };
        assert_eq!(r.to_string(), "record point { x: f64, y: f64 }");
        let i = Import { module: "kv".into(), name: "get".into(), params: vec![], results: vec![] };
        assert_eq!(i.to_string(), "import kv.get()");
    }

    #[test]
    fn encodes_types_as_prefix_tags() {
        let mut out = Vec::new();
        put_type(&mut out, &Type::optional(Type::array(Type::U8)));
        assert_eq!(out, [3, 13, 14, 5]);
        out.clear();
        put_type(&mut out, &Type::record("p"));
        assert_eq!(out, [1, 15, 1, b'p']);
    }

    #[test]
    fn round_trips_entries() {
        let interface = Interface { functions: vec![greet()], ..Default::default() };
        let bytes = interface.encode();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(Interface::decode(&bytes).unwrap(), interface);
        // Concatenated entries are one interface.
        let mut twice = encode_entry(&Item::Function(greet()));
        twice.extend(encode_entry(&Item::Function(Function { name: "other".into(), ..greet() })));
        assert_eq!(Interface::decode(&twice).unwrap().functions.len(), 2);
    }

    #[test]
    fn varints_reject_overflow() {
        let mut r = Reader { bytes: &[0xff, 0xff, 0xff, 0xff, 0x7f], pos: 0 };
        assert!(matches!(r.u32("x"), Err(Error::BadVarint { offset: 0 })));
        let mut r = Reader { bytes: &[0xff, 0xff, 0xff, 0xff, 0x0f], pos: 0 };
        assert_eq!(r.u32("x").unwrap(), u32::MAX);
        let mut r = Reader { bytes: &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], pos: 0 };
        assert!(matches!(r.u32("x"), Err(Error::BadVarint { .. })));
    }

    #[test]
    fn depth_is_capped() {
        let mut ty = Type::U8;
        for _ in 0..MAX_DEPTH {
            ty = Type::array(ty);
        }
        let ok = Interface { functions: vec![Function { results: vec![ty.clone()], ..greet() }], ..Default::default() };
        assert!(Interface::decode(&ok.encode()).is_ok());
        let deep = Interface {
            functions: vec![Function { results: vec![Type::optional(ty)], ..greet() }],
            ..Default::default()
        };
        assert!(matches!(Interface::decode(&deep.encode()), Err(Error::TooDeep { depth: 33, .. })));
    }
}
