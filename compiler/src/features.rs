//! The Wasm feature set weft accepts, shared by validation and the engine, and the names of the
//! proposals it leaves out.

use std::fmt;

use wasmparser::WasmFeatures;

/// The Wasm features weft enables: WebAssembly 2.0 without `externref` (which needs a garbage
/// collector), plus tail calls and extended constant expressions.
///
/// Left out on purpose: threads and shared memory, memory64, multiple memories (each module owns
/// exactly one memory), exception handling, GC, typed function references, relaxed SIMD (its
/// results may differ between CPUs, and peers must agree), the component model, stack switching,
/// custom page sizes and wide arithmetic.
pub(crate) const ENABLED: WasmFeatures = WasmFeatures::MUTABLE_GLOBAL
    .union(WasmFeatures::SATURATING_FLOAT_TO_INT)
    .union(WasmFeatures::SIGN_EXTENSION)
    .union(WasmFeatures::REFERENCE_TYPES)
    .union(WasmFeatures::MULTI_VALUE)
    .union(WasmFeatures::BULK_MEMORY)
    .union(WasmFeatures::SIMD)
    .union(WasmFeatures::FLOATS)
    .union(WasmFeatures::TAIL_CALL)
    .union(WasmFeatures::EXTENDED_CONST);

/// A WebAssembly proposal weft does not enable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Proposal {
    /// Threads, atomics and shared memory.
    Threads,
    /// Shared-everything threads.
    SharedEverythingThreads,
    /// 64-bit memories and tables.
    Memory64,
    /// More than one memory.
    MultiMemory,
    /// Exception handling (`try_table`, `throw`, tags).
    Exceptions,
    /// The legacy (phase 1) exception handling encoding (`try`/`catch`).
    LegacyExceptions,
    /// Garbage-collected structs and arrays.
    Gc,
    /// Reference types beyond `funcref` (`externref`, `anyref`, ...), which need a collector.
    GcTypes,
    /// Typed function references (`call_ref`, `ref.as_non_null`, ...).
    FunctionReferences,
    /// Relaxed SIMD (results may differ between CPUs).
    RelaxedSimd,
    /// The component model.
    ComponentModel,
    /// Stack switching (continuations).
    StackSwitching,
    /// Custom page sizes.
    CustomPageSizes,
    /// Wide arithmetic (128-bit add/sub/mul).
    WideArithmetic,
    /// Memory control.
    MemoryControl,
    /// Custom descriptors.
    CustomDescriptors,
    /// Compact import sections.
    CompactImports,
}

impl Proposal {
    const ALL: [(Proposal, WasmFeatures); 17] = [
        (Proposal::Threads, WasmFeatures::THREADS),
        (Proposal::SharedEverythingThreads, WasmFeatures::SHARED_EVERYTHING_THREADS),
        (Proposal::Memory64, WasmFeatures::MEMORY64),
        (Proposal::MultiMemory, WasmFeatures::MULTI_MEMORY),
        (Proposal::Exceptions, WasmFeatures::EXCEPTIONS),
        (Proposal::LegacyExceptions, WasmFeatures::LEGACY_EXCEPTIONS),
        (Proposal::Gc, WasmFeatures::GC),
        (Proposal::GcTypes, WasmFeatures::GC_TYPES),
        (Proposal::FunctionReferences, WasmFeatures::FUNCTION_REFERENCES),
        (Proposal::RelaxedSimd, WasmFeatures::RELAXED_SIMD),
        (Proposal::ComponentModel, WasmFeatures::COMPONENT_MODEL),
        (Proposal::StackSwitching, WasmFeatures::STACK_SWITCHING),
        (Proposal::CustomPageSizes, WasmFeatures::CUSTOM_PAGE_SIZES),
        (Proposal::WideArithmetic, WasmFeatures::WIDE_ARITHMETIC),
        (Proposal::MemoryControl, WasmFeatures::MEMORY_CONTROL),
        (Proposal::CustomDescriptors, WasmFeatures::CUSTOM_DESCRIPTORS),
        (Proposal::CompactImports, WasmFeatures::COMPACT_IMPORTS),
    ];

    /// The proposal's conventional name, e.g. `threads`.
    pub fn name(self) -> &'static str {
        match self {
            Proposal::Threads => "threads",
            Proposal::SharedEverythingThreads => "shared-everything-threads",
            Proposal::Memory64 => "memory64",
            Proposal::MultiMemory => "multi-memory",
            Proposal::Exceptions => "exception-handling",
            Proposal::LegacyExceptions => "legacy exception-handling",
            Proposal::Gc => "gc",
            Proposal::GcTypes => "reference-types (externref and other non-funcref references)",
            Proposal::FunctionReferences => "function-references",
            Proposal::RelaxedSimd => "relaxed-simd",
            Proposal::ComponentModel => "component-model",
            Proposal::StackSwitching => "stack-switching",
            Proposal::CustomPageSizes => "custom-page-sizes",
            Proposal::WideArithmetic => "wide-arithmetic",
            Proposal::MemoryControl => "memory-control",
            Proposal::CustomDescriptors => "custom-descriptors",
            Proposal::CompactImports => "compact-imports",
        }
    }

    /// Every feature wasmparser knows that weft leaves out (what "all features" adds to [`ENABLED`]).
    pub(crate) fn all_features() -> WasmFeatures {
        Self::ALL.iter().fold(ENABLED, |acc, (_, f)| acc | *f)
    }

    /// The smallest set of proposals that `validates` needs on top of [`ENABLED`], found by
    /// starting from all of them and dropping each one the module does without. `None` when even
    /// all features do not validate it (it is malformed, not merely using a proposal).
    pub(crate) fn needed_by(validates: impl Fn(WasmFeatures) -> bool) -> Option<Vec<Proposal>> {
        let mut needed = Self::all_features();
        if !validates(needed) {
            return None;
        }
        for (_, feature) in Self::ALL {
            let without = needed.difference(feature);
            if validates(without) {
                needed = without;
            }
        }
        Some(Self::ALL.iter().filter(|(_, f)| needed.contains(*f) && !ENABLED.contains(*f)).map(|(p, _)| *p).collect())
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `threads`, `gc and function-references`, `a, b and c`.
pub(crate) struct List<'a>(pub(crate) &'a [Proposal]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(if i + 1 == self.0.len() { " and " } else { ", " })?;
            }
            f.write_str(p.name())?;
        }
        Ok(())
    }
}
