//! weft's module compiler: validation, the typed interface section, ahead-of-time compilation with
//! Cranelift (through wasmtime), and the artifact cache.
//!
//! # Concepts
//! - A **module** is a core Wasm module plus a `weft-interface` custom section describing its typed
//!   [`Interface`] (see [`interface`] and `docs/interface-section.md`). Its id is `blake3` of its
//!   bytes.
//! - [`validate`] checks a module before anything is compiled — Wasm validity with weft's feature
//!   set, one memory of bounded size, imports that can be satisfied, a well-formed interface — and
//!   returns a [`ModuleInfo`]; [`describe`] renders it for people.
//! - A [`Compiler`] owns the wasmtime engine configured for weft. Its [`Compiler::fingerprint`]
//!   identifies target, CPU features, engine settings and weft version.
//! - A [`Cache`] keeps compiled artifacts in the [`weft_storage::Store`], keyed by module and
//!   fingerprint; [`Cache::load`] returns a ready [`wasmtime::Module`] and an [`Outcome`]
//!   (hit, compiled, or recompiled because the cached artifact was unusable).
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use weft_compiler::{Cache, Compiler, Outcome, interface};
//! use weft_storage::{Store, testing::MemoryBackend};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `ping()`, no parameters and no results, following the calling convention (docs/module-abi.md).
//! let wasm = wat::parse_str(r#"(module
//!     (memory (export "memory") 1)
//!     (func (export "allocate") (param i32) (result i32) i32.const 0)
//!     (func (export "release") (param i32 i32))
//!     (func (export "ping") (param i32 i32) (result i64) i64.const 0))"#)?;
//! let iface = interface::Interface {
//!     functions: vec![interface::Function { name: "ping".into(), params: vec![], results: vec![] }],
//!     ..Default::default()
//! };
//! let wasm = interface::append_section(&wasm, &iface);
//!
//! let store = Store::new(Arc::new(MemoryBackend::default()));
//! let module = store.put_blob(&wasm)?;
//! let cache = Cache::new(store, Arc::new(Compiler::new()?));
//! let (_module, outcome) = cache.load(&module)?;
//! assert_eq!(outcome, Outcome::Compiled);
//! assert_eq!(cache.load(&module)?.1, Outcome::Hit);
//! # Ok(())
//! # }
//! ```

#![deny(unsafe_code)] // one exception: loading a verified artifact, in `cache.rs`

pub mod abi;
mod cache;
pub mod codec;
mod describe;
mod engine;
mod error;
mod features;
/// The `weft-interface` section and the module ABI's types; they live in `weft-abi` (effector
/// plugins declare their functions in the same types) and are re-exported here.
pub use weft_abi::interface;
mod validate;
mod wasi;

pub use cache::{Cache, GcReport, Outcome, Reason};
pub use codec::Codec;
pub use describe::describe;
pub use engine::Compiler;
pub use error::Error;
pub use features::Proposal;
pub use interface::Interface;
pub use validate::{
    ExternKind, Limits, Memory, ModuleInfo, ValidationError, WasmExport, WasmImport, read_interface, validate,
};
