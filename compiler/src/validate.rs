//! Validation of a module's bytes before anything is compiled, and what it learns about the module.

use std::fmt;

use wasmparser::types::{EntityType, Types};
use wasmparser::{Encoding, FuncType, Parser, Payload, Validator, WasmFeatures};
use weft_storage::Hash;

use crate::features::{self, Proposal};
use crate::interface::{self, Interface};
use crate::{abi, wasi};

/// Limits a module must stay within to be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted module, in bytes (default 64 MiB).
    pub max_module_bytes: usize,
    /// Largest accepted initial memory, in 64 KiB pages (default 16384 = 1 GiB).
    pub max_initial_memory_pages: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_module_bytes: 64 << 20, max_initial_memory_pages: 16384 }
    }
}

/// The kind of a Wasm import or export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExternKind {
    /// A function.
    Function,
    /// A table.
    Table,
    /// A linear memory.
    Memory,
    /// A global.
    Global,
    /// An exception tag.
    Tag,
}

impl fmt::Display for ExternKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExternKind::Function => "function",
            ExternKind::Table => "table",
            ExternKind::Memory => "memory",
            ExternKind::Global => "global",
            ExternKind::Tag => "tag",
        })
    }
}

/// A core Wasm import.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WasmImport {
    /// The import module name.
    pub module: String,
    /// The imported item's name.
    pub name: String,
    /// What is imported.
    pub kind: ExternKind,
    /// Its type as text: `(i32, i32) -> i32` for a function, e.g. `17 pages` for a memory.
    pub signature: String,
}

/// A core Wasm export.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WasmExport {
    /// The export name.
    pub name: String,
    /// What is exported.
    pub kind: ExternKind,
    /// Its type as text, as for [`WasmImport::signature`].
    pub signature: String,
}

/// A module's linear memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Memory {
    /// Initial size in 64 KiB pages.
    pub initial_pages: u64,
    /// Maximum size in pages, if declared.
    pub max_pages: Option<u64>,
}

/// What validation learned about a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    /// `blake3` of the module's bytes: its id.
    pub hash: Hash,
    /// Size in bytes.
    pub size: u64,
    /// Core Wasm imports, in section order.
    pub imports: Vec<WasmImport>,
    /// Core Wasm exports, in section order.
    pub exports: Vec<WasmExport>,
    /// The module's memory, if it has one.
    pub memory: Option<Memory>,
    /// The decoded `weft-interface` section.
    pub interface: Interface,
}

/// Why a module was rejected. Each message says what is wrong, where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Larger than [`Limits::max_module_bytes`].
    #[error(
        "module is {size} bytes, above the limit of {limit} bytes; shrink it (strip debug info, optimise for size)"
    )]
    TooLarge {
        /// The module's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Empty input, or input that does not start with the Wasm magic bytes.
    #[error("not a WebAssembly module: {reason}; pass a compiled .wasm file")]
    NotWasm {
        /// What was found instead.
        reason: String,
    },
    /// A component (component model) instead of a core module.
    #[error(
        "this is a WebAssembly component, but weft runs core modules; build a core module \
         (e.g. target wasm32-wasip1) instead"
    )]
    Component,
    /// The bytes end before the module does.
    #[error(
        "module is truncated: its bytes end at byte {offset}, inside {what}; the file is incomplete, copy or build it again"
    )]
    Truncated {
        /// Where the bytes ran out.
        offset: usize,
        /// What they ended inside ("the header" or "a section").
        what: &'static str,
    },
    /// Not well-formed or not valid Wasm.
    #[error("invalid module at byte {offset}: {message}")]
    Malformed {
        /// Offset of the problem.
        offset: usize,
        /// wasmparser's description.
        message: String,
    },
    /// Valid only with proposals weft does not enable.
    #[error(
        "module uses the {} proposal{}, which weft does not enable; rebuild without {} \
         (first use at byte {offset}: {message})",
        features::List(proposals),
        if proposals.len() > 1 { "s" } else { "" },
        if proposals.len() > 1 { "them" } else { "it" }
    )]
    UnsupportedProposal {
        /// The proposals the module needs, at least one.
        proposals: Vec<Proposal>,
        /// Where validation without them failed.
        offset: usize,
        /// wasmparser's description of that failure.
        message: String,
    },
    /// More than one memory (imported or defined).
    #[error("module has {count} memories; a weft module owns exactly one memory, so keep one")]
    TooManyMemories {
        /// How many.
        count: usize,
    },
    /// Initial memory above [`Limits::max_initial_memory_pages`].
    #[error(
        "module declares an initial memory of {pages} pages ({} MiB), above the limit of {limit} pages; \
         lower the initial memory (e.g. the linker's --initial-memory)",
        pages / 16
    )]
    MemoryTooLarge {
        /// Declared initial pages.
        pages: u64,
        /// The limit.
        limit: u64,
    },
    /// An import that nothing in weft can ever provide.
    #[error("{kind} import `{module}.{name}` can never be satisfied: {reason}")]
    UnsatisfiableImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// Kind of the import.
        kind: ExternKind,
        /// Why, and what to do.
        reason: String,
    },
    /// No `weft-interface` custom section.
    #[error(
        "module has no `weft-interface` custom section; build it with the weft SDK or append the section \
         (see docs/interface-section.md)"
    )]
    MissingInterface,
    /// The `weft-interface` section is malformed.
    #[error("malformed `weft-interface` section (payload at byte {section_offset}): {source}")]
    Interface {
        /// Offset of the section payload in the module.
        section_offset: usize,
        /// What is wrong; its offsets are within the payload.
        #[source]
        source: interface::Error,
    },
    /// An export or import the calling convention needs is missing or has the wrong core type.
    #[error("{what}; see docs/module-abi.md \"Calling a function\" (the weft SDK generates these)")]
    Abi {
        /// What is wrong, naming the export or import.
        what: String,
    },
    /// An interface function with no Wasm function export of that name.
    #[error(
        "interface declares function `{function}`, but the module exports no function of that name; export it or remove it from the interface"
    )]
    MissingExport {
        /// The function's name.
        function: String,
    },
}

/// Validates `bytes` as a weft module and describes it. Nothing is compiled.
///
/// Checks, in order: size, magic bytes, core module (not a component), Wasm validity with weft's
/// feature set (naming the proposal when the module needs one weft leaves out), memories,
/// non-function imports, the `weft-interface` section, function imports (each must be a WASI
/// preview 1 function with its standard signature, or declared in the interface), and that every
/// interface function is exported.
///
/// # Errors
/// The first [`ValidationError`] found.
pub fn validate(bytes: &[u8], limits: &Limits) -> Result<ModuleInfo, ValidationError> {
    if bytes.len() > limits.max_module_bytes {
        return Err(ValidationError::TooLarge { size: bytes.len(), limit: limits.max_module_bytes });
    }
    check_header(bytes)?;
    let types = validate_wasm(bytes)?;
    let types = types.as_ref();

    let mut memories = Vec::new();
    for index in 0..types.memory_count() {
        memories.push(types.memory_at(index));
    }
    if memories.len() > 1 {
        return Err(ValidationError::TooManyMemories { count: memories.len() });
    }

    let mut imports = Vec::new();
    let mut function_imports = Vec::new();
    for (module, name, ty) in types.core_imports().into_iter().flatten() {
        let (kind, signature) = describe_entity(&types, ty);
        if kind != ExternKind::Function {
            let reason = match kind {
                ExternKind::Memory => "a weft module owns its memory; define and export it instead of importing it",
                _ => "weft links modules through functions only; define it in the module instead",
            };
            return Err(ValidationError::UnsatisfiableImport {
                module: module.to_owned(),
                name: name.to_owned(),
                kind,
                reason: reason.to_owned(),
            });
        }
        function_imports.push(imports.len());
        imports.push(WasmImport { module: module.to_owned(), name: name.to_owned(), kind, signature });
    }

    let memory = memories.first().map(|m| Memory { initial_pages: m.initial, max_pages: m.maximum });
    if let Some(memory) = memory
        && memory.initial_pages > limits.max_initial_memory_pages
    {
        return Err(ValidationError::MemoryTooLarge {
            pages: memory.initial_pages,
            limit: limits.max_initial_memory_pages,
        });
    }

    let exports: Vec<WasmExport> = types
        .core_exports()
        .into_iter()
        .flatten()
        .map(|(name, ty)| {
            let (kind, signature) = describe_entity(&types, ty);
            WasmExport { name: name.to_owned(), kind, signature }
        })
        .collect();

    let interface = read_interface(bytes)?;

    for &i in &function_imports {
        let import = &imports[i];
        if import.module == wasi::MODULE {
            match wasi::signature(&import.name) {
                Some(expected) if expected == import.signature => continue,
                Some(expected) => {
                    return Err(unsatisfiable(
                        import,
                        format!(
                            "WASI preview 1 defines it as {expected}, but the module imports it as {}; \
                             rebuild against wasi_snapshot_preview1",
                            import.signature
                        ),
                    ));
                }
                None => {
                    return Err(unsatisfiable(
                        import,
                        "WASI preview 1 has no function of that name; remove the import".to_owned(),
                    ));
                }
            }
        }
        if import.module == abi::HOST_MODULE {
            match abi::host_signature(&import.name) {
                Some(expected) if expected == import.signature => continue,
                Some(expected) => {
                    return Err(unsatisfiable(
                        import,
                        format!("weft provides it as {expected}, but the module imports it as {}", import.signature),
                    ));
                }
                None => {
                    return Err(unsatisfiable(
                        import,
                        format!("weft provides no such function (it provides {})", abi::host_functions()),
                    ));
                }
            }
        }
        if interface.import(&import.module, &import.name).is_some() && import.signature != abi::CALL_SIGNATURE {
            return Err(ValidationError::Abi {
                what: format!(
                    "import `{}.{}` is declared in the interface, so its core type must be {}, not {}",
                    import.module,
                    import.name,
                    abi::CALL_SIGNATURE,
                    import.signature
                ),
            });
        }
        if interface.import(&import.module, &import.name).is_none() {
            return Err(unsatisfiable(
                import,
                "it is neither a WASI preview 1 function nor declared as an import in the `weft-interface` \
                 section; declare it there or remove it"
                    .to_owned(),
            ));
        }
    }

    for function in &interface.functions {
        let Some(export) = exports.iter().find(|e| e.kind == ExternKind::Function && e.name == function.name) else {
            return Err(ValidationError::MissingExport { function: function.name.clone() });
        };
        if export.signature != abi::CALL_SIGNATURE {
            return Err(ValidationError::Abi {
                what: format!(
                    "function `{}` is declared in the interface, so its export must have core type {}, not {}",
                    function.name,
                    abi::CALL_SIGNATURE,
                    export.signature
                ),
            });
        }
    }
    let calls_anything = !interface.functions.is_empty()
        || imports.iter().any(|i| i.module == abi::HOST_MODULE || interface.import(&i.module, &i.name).is_some());
    if calls_anything {
        abi::check_required_exports(&exports)?;
    }

    Ok(ModuleInfo { hash: Hash::of(bytes), size: bytes.len() as u64, imports, exports, memory, interface })
}

fn unsatisfiable(import: &WasmImport, reason: String) -> ValidationError {
    ValidationError::UnsatisfiableImport {
        module: import.module.clone(),
        name: import.name.clone(),
        kind: import.kind,
        reason,
    }
}

const MAGIC: [u8; 4] = *b"\0asm";

fn check_header(bytes: &[u8]) -> Result<(), ValidationError> {
    if bytes.is_empty() {
        return Err(ValidationError::NotWasm { reason: "the input is empty".into() });
    }
    let prefix = &bytes[..bytes.len().min(4)];
    if prefix != &MAGIC[..prefix.len()] {
        let shown: Vec<String> = prefix.iter().map(|b| format!("{b:02x}")).collect();
        return Err(ValidationError::NotWasm {
            reason: format!("it starts with bytes {} instead of 00 61 73 6d (\"\\0asm\")", shown.join(" ")),
        });
    }
    if bytes.len() < 8 {
        return Err(ValidationError::Truncated { offset: bytes.len(), what: "the 8-byte header" });
    }
    match Parser::new(0).parse(&bytes[..8], false) {
        Ok(wasmparser::Chunk::Parsed { payload: Payload::Version { encoding: Encoding::Component, .. }, .. }) => {
            Err(ValidationError::Component)
        }
        _ => Ok(()),
    }
}

fn validate_with(bytes: &[u8], features: WasmFeatures) -> Result<Types, wasmparser::BinaryReaderError> {
    Validator::new_with_features(features).validate_all(bytes)
}

fn validate_wasm(bytes: &[u8]) -> Result<Types, ValidationError> {
    let error = match validate_with(bytes, features::ENABLED) {
        Ok(types) => return Ok(types),
        Err(error) => error,
    };
    let offset = error.offset();
    let message = error.message().to_owned();
    if message.contains("unexpected end") || offset >= bytes.len() {
        return Err(ValidationError::Truncated { offset: offset.min(bytes.len()), what: "a section" });
    }
    match Proposal::needed_by(|features| validate_with(bytes, features).is_ok()) {
        Some(proposals) if proposals == [Proposal::MultiMemory] => {
            Err(ValidationError::TooManyMemories { count: count_memories(bytes) })
        }
        Some(proposals) if !proposals.is_empty() => {
            Err(ValidationError::UnsupportedProposal { proposals, offset, message })
        }
        _ => Err(ValidationError::Malformed { offset, message }),
    }
}

/// Imported plus defined memories, for a module already known to parse.
fn count_memories(bytes: &[u8]) -> usize {
    let mut count = 0;
    for payload in Parser::new(0).parse_all(bytes).flatten() {
        match payload {
            Payload::ImportSection(reader) => {
                count +=
                    reader.into_imports().flatten().filter(|i| matches!(i.ty, wasmparser::TypeRef::Memory(_))).count();
            }
            Payload::MemorySection(reader) => count += reader.count() as usize,
            _ => {}
        }
    }
    count
}

/// Decodes the `weft-interface` section(s); several are read as one concatenated payload.
/// Reads a module's `weft-interface` section(s) without validating anything else (for modules
/// that were validated when they were stored).
///
/// # Errors
/// Malformed Wasm framing, no section, or a malformed section.
pub fn read_interface(bytes: &[u8]) -> Result<Interface, ValidationError> {
    let mut sections = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload =
            payload.map_err(|e| ValidationError::Malformed { offset: e.offset(), message: e.message().into() })?;
        if let Payload::CustomSection(reader) = payload
            && reader.name() == interface::SECTION_NAME
        {
            sections.push((reader.data_offset(), reader.data()));
        }
    }
    let section_offset = match sections.first() {
        None => return Err(ValidationError::MissingInterface),
        Some((offset, _)) => *offset,
    };
    let decoded = if sections.len() == 1 {
        Interface::decode(sections[0].1)
    } else {
        Interface::decode(&sections.iter().flat_map(|(_, data)| data.iter().copied()).collect::<Vec<_>>())
    };
    decoded.map_err(|source| ValidationError::Interface { section_offset, source })
}

fn describe_entity(types: &wasmparser::types::TypesRef<'_>, ty: EntityType) -> (ExternKind, String) {
    match ty {
        EntityType::Func(id) | EntityType::FuncExact(id) => {
            let text = match types[id].composite_type.inner {
                wasmparser::CompositeInnerType::Func(ref f) => render_func(f),
                _ => "?".into(),
            };
            (ExternKind::Function, text)
        }
        EntityType::Table(t) => {
            let max = t.maximum.map(|m| format!(", max {m}")).unwrap_or_default();
            (ExternKind::Table, format!("{} x{}{max}", t.element_type, t.initial))
        }
        EntityType::Memory(m) => (ExternKind::Memory, render_memory(m.initial, m.maximum)),
        EntityType::Global(g) => {
            (ExternKind::Global, format!("{}{}", if g.mutable { "mut " } else { "" }, g.content_type))
        }
        EntityType::Tag(_) => (ExternKind::Tag, "tag".into()),
    }
}

fn render_func(f: &FuncType) -> String {
    let params: Vec<String> = f.params().iter().map(ToString::to_string).collect();
    let results: Vec<String> = f.results().iter().map(ToString::to_string).collect();
    render_signature(&params, &results)
}

/// `(i32, i32) -> i32`, `()`, `(i32) -> (i32, i64)`.
pub(crate) fn render_signature<S: AsRef<str>>(params: &[S], results: &[S]) -> String {
    let join = |list: &[S]| list.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", ");
    match results {
        [] => format!("({})", join(params)),
        [one] => format!("({}) -> {}", join(params), one.as_ref()),
        _ => format!("({}) -> ({})", join(params), join(results)),
    }
}

pub(crate) fn render_memory(initial: u64, maximum: Option<u64>) -> String {
    match maximum {
        Some(max) => format!("{initial} pages, max {max}"),
        None => format!("{initial} pages"),
    }
}
