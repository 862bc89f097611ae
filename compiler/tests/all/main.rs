//! weft-compiler's integration tests: one binary, one module per area.

mod cache;
mod codec;
mod engine;
mod info;
mod interface;
mod validation;

use std::sync::Arc;

use tempfile::TempDir;
use weft_compiler::interface::{Function, Interface, Type};
use weft_storage::Store;

/// A store over the real sled backend in a fresh temporary directory (kept alive by the `TempDir`).
pub fn sled_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = <weft_plugin_sled::SledPlugin as weft_abi::Provider>::storage("", dir.path()).expect("open sled");
    (dir, Store::new(Arc::from(backend)))
}

/// `wat` compiled, with `interface` appended as the `weft-interface` section.
pub fn module(wat: &str, interface: &Interface) -> Vec<u8> {
    let wasm = wat::parse_str(wat).expect("valid wat");
    weft_compiler::interface::append_section(&wasm, interface)
}

/// An interface with one function.
pub fn one_function(name: &str, params: &[(&str, Type)], results: &[Type]) -> Interface {
    Interface {
        functions: vec![Function {
            name: name.into(),
            params: params.iter().map(|(n, t)| ((*n).to_owned(), t.clone())).collect(),
            results: results.to_vec(),
        }],
        ..Interface::default()
    }
}

/// A module exporting `sum(n) = n + (n-1) + ... + 1` (wrapping), with its interface.
pub const SUM_WAT: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "sum") (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (local.get $acc)))
"#;

/// The module ABI's exports (`memory`, `allocate`, `release`), for fixtures that declare functions.
pub const ABI_EXPORTS: &str = r#"
  (memory (export "memory") 1)
  (func (export "allocate") (param i32) (result i32) i32.const 0)
  (func (export "release") (param i32 i32))"#;

/// `sum` is a plain core export (not an interface function: it does not follow the calling
/// convention), so the interface is empty; the cache tests call it directly.
pub fn sum_module() -> Vec<u8> {
    module(SUM_WAT, &Interface::default())
}

/// Instantiates `module` with no imports and calls `sum(n)`.
pub fn call_sum(engine: &wasmtime::Engine, module: &wasmtime::Module, n: i32) -> i32 {
    let mut store = wasmtime::Store::new(engine, ());
    store.set_epoch_deadline(1_000);
    let linker = wasmtime::Linker::new(engine);
    let instance = linker.instantiate(&mut store, module).expect("instantiate");
    let sum = instance.get_typed_func::<i32, i32>(&mut store, "sum").expect("sum export");
    sum.call(&mut store, n).expect("call sum")
}
