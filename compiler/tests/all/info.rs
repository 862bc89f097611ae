//! What `validate` reports about a valid module, and `describe`'s rendering of it.

use weft_compiler::interface::{Function, Import, Interface, Record, Type};
use weft_compiler::{ExternKind, Limits, Memory, describe, validate};
use weft_storage::Hash;

const GREETER: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "names" "lookup" (func (param i32 i32) (result i64)))
  (memory (export "memory") 17 100)
  (global (export "version") i32 (i32.const 1))
  (func (export "greet") (param i32 i32) (result i64) i64.const 0)
  (func (export "allocate") (param i32) (result i32) i32.const 0)
  (func (export "release") (param i32 i32)))
"#;

fn greeter_interface() -> Interface {
    Interface {
        functions: vec![Function {
            name: "greet".into(),
            params: vec![("who".into(), Type::record("person"))],
            results: vec![Type::String],
        }],
        records: vec![Record {
            name: "person".into(),
            fields: vec![("name".into(), Type::String), ("nicknames".into(), Type::array(Type::String))],
        }],
        imports: vec![Import {
            module: "names".into(),
            name: "lookup".into(),
            params: vec![("id".into(), Type::U64)],
            results: vec![Type::optional(Type::String)],
        }],
    }
}

#[test]
fn module_info_of_a_valid_module() {
    let wasm = crate::module(GREETER, &greeter_interface());
    let info = validate(&wasm, &Limits::default()).unwrap();
    assert_eq!(info.hash, Hash::of(&wasm));
    assert_eq!(info.size, wasm.len() as u64);
    assert_eq!(info.memory, Some(Memory { initial_pages: 17, max_pages: Some(100) }));
    assert_eq!(info.interface, greeter_interface());

    let imports: Vec<_> =
        info.imports.iter().map(|i| (i.module.as_str(), i.name.as_str(), i.kind, i.signature.as_str())).collect();
    assert_eq!(
        imports,
        [
            ("wasi_snapshot_preview1", "fd_write", ExternKind::Function, "(i32, i32, i32, i32) -> i32"),
            ("names", "lookup", ExternKind::Function, "(i32, i32) -> i64"),
        ]
    );
    let exports: Vec<_> = info.exports.iter().map(|e| (e.name.as_str(), e.kind, e.signature.as_str())).collect();
    assert_eq!(
        exports,
        [
            ("memory", ExternKind::Memory, "17 pages, max 100"),
            ("version", ExternKind::Global, "i32"),
            ("greet", ExternKind::Function, "(i32, i32) -> i64"),
            ("allocate", ExternKind::Function, "(i32) -> i32"),
            ("release", ExternKind::Function, "(i32, i32)"),
        ]
    );
}

#[test]
fn describe_renders_everything() {
    let wasm = crate::module(GREETER, &greeter_interface());
    let info = validate(&wasm, &Limits::default()).unwrap();
    let text = describe(&info, "greeter");
    for expected in [
        "module     greeter",
        &format!("hash       {}", info.hash),
        &format!("({} bytes)", wasm.len()),
        "memory     17 pages, max 100 (1.1 MiB initial)",
        "function greet (i32, i32) -> i64",
        "function wasi_snapshot_preview1.fd_write (i32, i32, i32, i32) -> i32",
        "greet(who: person) -> string",
        "record person { name: string, nicknames: array<string> }",
        "import names.lookup(id: u64) -> optional<string>",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn module_without_memory() {
    // A module that declares no functions needs no memory.
    let wasm = crate::module("(module (func (export \"f\")))", &weft_compiler::Interface::default());
    let info = validate(&wasm, &Limits::default()).unwrap();
    assert_eq!(info.memory, None);
    assert!(describe(&info, "f").contains("memory     none"));
}
