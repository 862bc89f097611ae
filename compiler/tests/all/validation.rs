//! Every way `validate` rejects a module, one test each, and that each error reads as one line.

use weft_compiler::interface::{self, Function, Import, Interface, Item, Record, Type};
use weft_compiler::{ExternKind, Limits, Proposal, ValidationError, validate};

use crate::{module, one_function};

fn check(bytes: &[u8]) -> ValidationError {
    let err = validate(bytes, &Limits::default()).expect_err("module should be rejected");
    let text = err.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(text.chars().next().is_some_and(|c| !c.is_uppercase()), "lowercase: {text}");
    err
}

fn no_interface(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap()
}

#[test]
fn empty_input_is_not_wasm() {
    assert!(matches!(check(b""), ValidationError::NotWasm { .. }));
}

#[test]
fn text_is_not_wasm() {
    let err = check(b"(module (func))");
    assert!(matches!(err, ValidationError::NotWasm { .. }));
    assert!(err.to_string().contains("28 6d 6f 64"), "{err}");
    assert!(matches!(check(b"\x7fELF\x02\x01\x01"), ValidationError::NotWasm { .. }));
}

#[test]
fn truncated_module_names_the_offset() {
    let full = crate::sum_module();
    for cut in [5, 9, full.len() / 2, full.len() - 20] {
        match check(&full[..cut]) {
            ValidationError::Truncated { offset, .. } => assert!(offset <= cut, "cut at {cut}, offset {offset}"),
            other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
        }
    }
}

#[test]
fn malformed_module_names_the_offset() {
    let mut bytes = no_interface("(module (func (result i32) i32.const 1))");
    let code = bytes.len() - 3; // the i32.const opcode
    assert_eq!(bytes[code], 0x41);
    bytes[code] = 0xff; // not an opcode
    match check(&bytes) {
        ValidationError::Malformed { offset, .. } => assert_eq!(offset, code),
        other => panic!("expected Malformed, got {other:?}"),
    }
    // A type error: valid encoding, invalid module.
    let bytes = no_interface("(module (func (result i32) i64.const 1))");
    assert!(matches!(check(&bytes), ValidationError::Malformed { .. }));
}

#[test]
fn component_is_refused() {
    assert!(matches!(check(b"\0asm\x0d\x00\x01\x00"), ValidationError::Component));
}

#[test]
fn threads_proposal_is_named() {
    let err = check(&no_interface("(module (memory 1 1 shared))"));
    match &err {
        ValidationError::UnsupportedProposal { proposals, .. } => assert_eq!(proposals, &[Proposal::Threads]),
        other => panic!("expected UnsupportedProposal, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("uses the threads proposal, which weft does not enable; rebuild without it"), "{text}");
    // Atomics without shared memory are the threads proposal too.
    let atomics = "(module (memory 1 1) (func (result i32) i32.const 0 i32.atomic.load))";
    assert!(
        matches!(check(&no_interface(atomics)), ValidationError::UnsupportedProposal { proposals, .. } if proposals == [Proposal::Threads])
    );
}

#[test]
fn other_proposals_are_named() {
    let cases: [(&str, Proposal); 4] = [
        ("(module (memory i64 1))", Proposal::Memory64),
        ("(module (tag $e) (func throw $e))", Proposal::Exceptions),
        ("(module (type $s (struct (field i32))) (func (result (ref null $s)) ref.null $s))", Proposal::Gc),
        (
            "(module (func (param v128) (result v128) local.get 0 local.get 0 local.get 0 f32x4.relaxed_madd))",
            Proposal::RelaxedSimd,
        ),
    ];
    for (wat, proposal) in cases {
        match check(&no_interface(wat)) {
            ValidationError::UnsupportedProposal { proposals, .. } => {
                assert!(proposals.contains(&proposal), "{wat}: {proposals:?}")
            }
            other => panic!("{wat}: expected UnsupportedProposal, got {other:?}"),
        }
    }
}

#[test]
fn externref_needs_a_collector() {
    match check(&no_interface("(module (func (param externref)))")) {
        ValidationError::UnsupportedProposal { proposals, .. } => assert_eq!(proposals, [Proposal::GcTypes]),
        other => panic!("expected UnsupportedProposal, got {other:?}"),
    }
}

#[test]
fn two_memories_are_refused() {
    assert_eq!(check(&no_interface("(module (memory 1) (memory 1))")), ValidationError::TooManyMemories { count: 2 });
}

#[test]
fn missing_interface_section() {
    assert_eq!(check(&no_interface("(module (func (export \"f\")))")), ValidationError::MissingInterface);
}

fn bad_interface(payload: &[u8]) -> interface::Error {
    let wasm = interface::append_raw_section(&no_interface("(module (func (export \"greet\")))"), payload);
    match check(&wasm) {
        ValidationError::Interface { source, section_offset } => {
            assert!(section_offset > 8);
            source
        }
        other => panic!("expected a malformed interface, got {other:?}"),
    }
}

fn greet() -> Item {
    Item::Function(Function {
        name: "greet".into(),
        params: vec![("name".into(), Type::String)],
        results: vec![Type::String],
    })
}

#[test]
fn interface_with_unknown_version() {
    let mut payload = interface::encode_entry(&greet());
    payload[0] = 2;
    assert_eq!(bad_interface(&payload), interface::Error::UnknownVersion { offset: 0, version: 2 });
}

#[test]
fn interface_truncated() {
    let payload = interface::encode_entry(&greet());
    for cut in 1..payload.len() {
        assert!(
            matches!(
                bad_interface(&payload[..cut]),
                interface::Error::Truncated { .. } | interface::Error::BadName { .. }
            ),
            "cut at {cut}"
        );
    }
}

#[test]
fn interface_with_trailing_garbage() {
    let mut payload = interface::encode_entry(&greet());
    let end = payload.len();
    payload.extend_from_slice(&[0xde, 0xad]);
    assert_eq!(bad_interface(&payload), interface::Error::UnknownVersion { offset: end, version: 0xde });
    // A lone version byte at the end is a truncated entry.
    let mut payload = interface::encode_entry(&greet());
    payload.push(1);
    assert!(matches!(bad_interface(&payload), interface::Error::Truncated { .. }));
}

#[test]
fn interface_with_unknown_item_and_tag() {
    assert_eq!(bad_interface(&[1, 7]), interface::Error::UnknownItem { offset: 1, kind: 7 });
    // function "greet"(x: <tag 42>)
    let payload = [&[1, 0, 5][..], b"greet", &[1, 1, b'x', 1, 42, 0]].concat();
    assert!(matches!(bad_interface(&payload), interface::Error::UnknownTag { tag: 42, .. }));
    // array with no element type
    let payload = [&[1, 0, 5][..], b"greet", &[1, 1, b'x', 1, 14, 0]].concat();
    assert!(matches!(bad_interface(&payload), interface::Error::BadType { .. }));
}

#[test]
fn interface_nesting_too_deep() {
    // 40 x array around u8, written by hand: the decoder must refuse it before building anything.
    let mut payload = [&[1, 0, 5][..], b"greet", &[1, 1, b'x', 41]].concat();
    payload.extend(std::iter::repeat_n(14, 40));
    payload.extend([5, 0]);
    assert!(matches!(bad_interface(&payload), interface::Error::TooDeep { depth: 40, .. }));
}

#[test]
fn interface_counts_are_capped() {
    // A function claiming 2^40 parameters is refused from its count alone.
    let mut payload = [&[1, 0, 5][..], b"greet"].concat();
    payload.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    assert!(matches!(bad_interface(&payload), interface::Error::TooMany { what: "parameters", .. }));
}

#[test]
fn interface_with_bad_utf8_name() {
    let payload = [1, 0, 2, 0xff, 0xfe, 0, 0];
    assert!(matches!(bad_interface(&payload), interface::Error::BadUtf8 { offset: 3 }));
}

#[test]
fn interface_with_duplicates() {
    let twice = [interface::encode_entry(&greet()), interface::encode_entry(&greet())].concat();
    assert!(matches!(bad_interface(&twice), interface::Error::Duplicate { ref name, .. } if name == "greet"));
    let params = Item::Function(Function {
        name: "greet".into(),
        params: vec![("a".into(), Type::U8), ("a".into(), Type::U8)],
        results: vec![],
    });
    assert!(matches!(bad_interface(&interface::encode_entry(&params)), interface::Error::Duplicate { .. }));
}

#[test]
fn interface_with_unresolved_record() {
    let f = Item::Function(Function {
        name: "greet".into(),
        params: vec![("p".into(), Type::array(Type::record("person")))],
        results: vec![],
    });
    match bad_interface(&interface::encode_entry(&f)) {
        interface::Error::UnresolvedRecord { record, item } => {
            assert_eq!(record, "person");
            assert!(item.contains("greet"), "{item}");
        }
        other => panic!("{other:?}"),
    }
    // Declared, it resolves — in any entry order.
    let person = Item::Record(Record { name: "person".into(), fields: vec![("name".into(), Type::String)] });
    let payload = [interface::encode_entry(&f), interface::encode_entry(&person)].concat();
    let wasm = interface::append_raw_section(
        &no_interface(&format!(
            "(module {} (func (export \"greet\") (param i32 i32) (result i64) i64.const 0))",
            crate::ABI_EXPORTS
        )),
        &payload,
    );
    validate(&wasm, &Limits::default()).unwrap();
}

#[test]
fn interface_function_without_export() {
    let wasm = module("(module (func (export \"hello\")))", &one_function("greet", &[], &[]));
    assert_eq!(check(&wasm), ValidationError::MissingExport { function: "greet".into() });
    // An export of another kind does not count.
    let wasm = module("(module (global (export \"greet\") i32 (i32.const 0)))", &one_function("greet", &[], &[]));
    assert!(matches!(check(&wasm), ValidationError::MissingExport { .. }));
}

#[test]
fn unsatisfiable_function_import() {
    let wasm = module("(module (import \"env\" \"foo\" (func)))", &Interface::default());
    match check(&wasm) {
        ValidationError::UnsatisfiableImport { module, name, kind, .. } => {
            assert_eq!((module.as_str(), name.as_str(), kind), ("env", "foo", ExternKind::Function));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn imported_memory_is_unsatisfiable() {
    let wasm = module("(module (import \"env\" \"memory\" (memory 1)))", &Interface::default());
    let err = check(&wasm);
    assert!(
        matches!(err, ValidationError::UnsatisfiableImport { kind: ExternKind::Memory, ref module, ref name, .. } if module == "env" && name == "memory")
    );
    assert!(err.to_string().contains("env.memory"), "{err}");
    for wat in ["(module (import \"env\" \"t\" (table 1 funcref)))", "(module (import \"env\" \"g\" (global i32)))"] {
        assert!(matches!(check(&module(wat, &Interface::default())), ValidationError::UnsatisfiableImport { .. }));
    }
}

#[test]
fn wasi_imports() {
    let ok = module(
        "(module (import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32 i32 i32 i32) (result i32))))",
        &Interface::default(),
    );
    validate(&ok, &Limits::default()).unwrap();
    let wrong_signature =
        module("(module (import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32))))", &Interface::default());
    assert!(
        matches!(check(&wrong_signature), ValidationError::UnsatisfiableImport { ref reason, .. } if reason.contains("(i32, i32, i32, i32) -> i32"))
    );
    let unknown = module("(module (import \"wasi_snapshot_preview1\" \"fd_teleport\" (func)))", &Interface::default());
    assert!(matches!(check(&unknown), ValidationError::UnsatisfiableImport { .. }));
}

#[test]
fn interface_imports_satisfy_function_imports() {
    let iface = Interface {
        imports: vec![Import {
            module: "kv".into(),
            name: "get".into(),
            params: vec![("key".into(), Type::String)],
            results: vec![Type::optional(Type::Bytes)],
        }],
        ..Interface::default()
    };
    let wasm = module(
        &format!("(module (import \"kv\" \"get\" (func (param i32 i32) (result i64))) {})", crate::ABI_EXPORTS),
        &iface,
    );
    let info = validate(&wasm, &Limits::default()).unwrap();
    assert_eq!(info.imports[0].module, "kv");
}

#[test]
fn huge_memory_is_refused() {
    let wasm = module("(module (memory 20000))", &Interface::default());
    assert_eq!(check(&wasm), ValidationError::MemoryTooLarge { pages: 20000, limit: 16384 });
    // At the limit is fine, and the limit is configurable.
    validate(&module("(module (memory 16384))", &Interface::default()), &Limits::default()).unwrap();
    let small = Limits { max_initial_memory_pages: 2, ..Limits::default() };
    assert!(matches!(
        validate(&module("(module (memory 3))", &Interface::default()), &small),
        Err(ValidationError::MemoryTooLarge { .. })
    ));
}

#[test]
fn oversized_module_is_refused_before_parsing() {
    let limits = Limits { max_module_bytes: 16, ..Limits::default() };
    assert_eq!(validate(&[0u8; 17], &limits).unwrap_err(), ValidationError::TooLarge { size: 17, limit: 16 });
}

#[test]
fn messages_are_one_lowercase_line() {
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"(module)".to_vec(),
        crate::sum_module()[..40].to_vec(),
        b"\0asm\x0d\x00\x01\x00".to_vec(),
        no_interface("(module (memory 1 1 shared))"),
        no_interface("(module (type $s (struct (field i32))) (func (result (ref null $s)) ref.null $s))"),
        no_interface("(module (memory 1) (memory 1))"),
        no_interface("(module (func (result i32) i64.const 1))"),
        no_interface("(module)"),
        interface::append_raw_section(&no_interface("(module)"), &[1, 0, 5, b'g']),
        interface::append_raw_section(&no_interface("(module)"), &[2]),
        module("(module (import \"env\" \"foo\" (func)))", &Interface::default()),
        module("(module (import \"env\" \"memory\" (memory 1)))", &Interface::default()),
        module("(module (memory 20000))", &Interface::default()),
        module("(module)", &one_function("greet", &[], &[])),
    ];
    for bytes in cases {
        eprintln!("{}", check(&bytes));
    }
}

#[test]
fn the_calling_convention_is_checked_when_a_module_is_added() {
    let greet = one_function("greet", &[("name", Type::String)], &[Type::String]);
    // An interface function must be (i32, i32) -> i64.
    let wasm = module(
        &format!("(module {} (func (export \"greet\") (param i32) (result i32) i32.const 0))", crate::ABI_EXPORTS),
        &greet,
    );
    let e = check(&wasm).to_string();
    assert!(e.starts_with("function `greet` is declared in the interface, so its export must have core type (i32, i32) -> i64, not (i32) -> i32"), "{e}");
    // allocate, release and memory must be there, with their types.
    let body = "(func (export \"greet\") (param i32 i32) (result i64) i64.const 0)";
    let e = check(&module(&format!("(module (memory (export \"memory\") 1) {body})"), &greet)).to_string();
    assert!(e.starts_with("the module exports no function `allocate` (i32) -> i32"), "{e}");
    let wat = format!(
        "(module (memory (export \"memory\") 1) (func (export \"allocate\") (param i64) (result i32) i32.const 0) {body})"
    );
    let e = check(&module(&wat, &greet)).to_string();
    assert!(e.starts_with("export `allocate` has core type (i64) -> i32, but the ABI needs (i32) -> i32"), "{e}");
    let wat = format!(
        "(module (func (export \"allocate\") (param i32) (result i32) i32.const 0) (func (export \"release\") (param i32 i32)) {body})"
    );
    let e = check(&module(&wat, &greet)).to_string();
    assert!(e.starts_with("the module exports no `memory`"), "{e}");
    assert!(e.contains("docs/module-abi.md"), "{e}");
    // Complete, it validates.
    validate(&module(&format!("(module {} {body})", crate::ABI_EXPORTS), &greet), &Limits::default()).unwrap();
}

#[test]
fn weft_host_imports_are_known_by_name_and_type() {
    let ok = format!(
        "(module (import \"weft\" \"call_parameters\" (func (result i64))) (import \"weft\" \"set_error\" (func (param i32 i32))) {})",
        crate::ABI_EXPORTS
    );
    validate(&module(&ok, &Interface::default()), &Limits::default()).unwrap();
    let wrong = format!("(module (import \"weft\" \"set_error\" (func (param i32))) {})", crate::ABI_EXPORTS);
    let e = check(&module(&wrong, &Interface::default())).to_string();
    assert!(e.contains("weft provides it as (i32, i32), but the module imports it as (i32)"), "{e}");
    let unknown = format!("(module (import \"weft\" \"launch\" (func)) {})", crate::ABI_EXPORTS);
    let e = check(&module(&unknown, &Interface::default())).to_string();
    assert!(
        e.contains("weft provides no such function (it provides call_parameters () -> i64, set_error (i32, i32))"),
        "{e}"
    );
    // Without the ABI exports a weft import is refused: weft could not hand it a buffer.
    let bare = "(module (import \"weft\" \"call_parameters\" (func (result i64))))";
    assert!(check(&module(bare, &Interface::default())).to_string().contains("memory"));
}
