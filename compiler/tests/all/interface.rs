//! The interface section codec: property tests for round trips and for arbitrary input.

use proptest::prelude::*;
use weft_compiler::interface::{self, Function, Import, Interface, Item, Record, Type};

fn scalar() -> impl Strategy<Value = Type> {
    prop_oneof![
        Just(Type::Bool),
        Just(Type::S8),
        Just(Type::S16),
        Just(Type::S32),
        Just(Type::S64),
        Just(Type::U8),
        Just(Type::U16),
        Just(Type::U32),
        Just(Type::U64),
        Just(Type::F32),
        Just(Type::F64),
        Just(Type::String),
        Just(Type::Bytes),
    ]
}

/// A type over `records` (record names that exist), nested up to `MAX_DEPTH` deep.
fn ty(records: Vec<String>) -> BoxedStrategy<Type> {
    let leaf = if records.is_empty() {
        scalar().boxed()
    } else {
        prop_oneof![3 => scalar(), 1 => proptest::sample::select(records).prop_map(Type::Record)].boxed()
    };
    (leaf, proptest::collection::vec(any::<bool>(), 0..=interface::MAX_DEPTH))
        .prop_map(|(mut ty, wrappers)| {
            for optional in wrappers {
                ty = if optional { Type::optional(ty) } else { Type::array(ty) };
            }
            ty
        })
        .boxed()
}

fn name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,12}|[\\PC]{1,8}"
}

fn members(records: Vec<String>) -> impl Strategy<Value = Vec<(String, Type)>> {
    proptest::collection::btree_map(name(), ty(records), 0..6).prop_map(|m| m.into_iter().collect())
}

fn arb_interface() -> impl Strategy<Value = Interface> {
    proptest::collection::btree_set(name(), 0..5).prop_flat_map(|names| {
        let names: Vec<String> = names.into_iter().collect();
        let records = names.clone();
        let record_bodies = proptest::collection::vec(members(records.clone()), names.len());
        let functions = proptest::collection::btree_map(
            name(),
            (members(records.clone()), proptest::collection::vec(ty(records.clone()), 0..3)),
            0..6,
        );
        let imports = proptest::collection::btree_map(
            (name(), name()),
            (members(records.clone()), proptest::collection::vec(ty(records), 0..3)),
            0..4,
        );
        (Just(names), record_bodies, functions, imports).prop_map(|(names, bodies, functions, imports)| Interface {
            records: names.into_iter().zip(bodies).map(|(name, fields)| Record { name, fields }).collect(),
            functions: functions
                .into_iter()
                .map(|(name, (params, results))| Function { name, params, results })
                .collect(),
            imports: imports
                .into_iter()
                .map(|((module, name), (params, results))| Import { module, name, params, results })
                .collect(),
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip(iface in arb_interface()) {
        let bytes = iface.encode();
        prop_assert_eq!(Interface::decode(&bytes).unwrap(), iface.clone());
        // Entries emitted one by one and concatenated (as a linker does) decode the same.
        let concatenated: Vec<u8> = iface.items().flat_map(|item| interface::encode_entry(&item)).collect();
        prop_assert_eq!(concatenated, bytes);
    }

    #[test]
    fn text_rendering_never_panics(iface in arb_interface()) {
        let text = iface.to_string();
        prop_assert_eq!(text.lines().count(), iface.records.len() + iface.functions.len() + iface.imports.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Interface::decode(&bytes);
    }

    #[test]
    fn mutated_sections_never_panic(iface in arb_interface(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = iface.encode();
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let _ = Interface::decode(&bytes);
            let _ = Interface::decode(&bytes[..i]);
        }
    }
}

#[test]
fn matches_postcard() {
    // The entry body is postcard: an equivalent serde type encodes to the same bytes.
    #[derive(serde::Serialize)]
    enum Tag {
        _Bool,
        _S8,
        _S16,
        _S32,
        _S64,
        U8,
        _U16,
        _U32,
        _U64,
        _F32,
        _F64,
        String,
        _Bytes,
        Optional,
        Array,
        Record(std::string::String),
    }
    #[derive(serde::Serialize)]
    enum WireItem {
        Function { name: std::string::String, params: Vec<(std::string::String, Vec<Tag>)>, results: Vec<Vec<Tag>> },
    }
    let item = Item::Function(Function {
        name: "greet".into(),
        params: vec![("name".into(), Type::String), ("tags".into(), Type::optional(Type::array(Type::record("tag"))))],
        results: vec![Type::array(Type::U8)],
    });
    let wire = WireItem::Function {
        name: "greet".into(),
        params: vec![
            ("name".into(), vec![Tag::String]),
            ("tags".into(), vec![Tag::Optional, Tag::Array, Tag::Record("tag".into())]),
        ],
        results: vec![vec![Tag::Array, Tag::U8]],
    };
    let mut expected = vec![interface::FORMAT_VERSION];
    expected.extend(postcard::to_allocvec(&wire).unwrap());
    assert_eq!(interface::encode_entry(&item), expected);
}

#[test]
fn example_from_the_format_doc() {
    // docs/interface-section.md, "A complete example", byte for byte.
    let wasm = wat::parse_str(
        r#"(module
             (memory (export "memory") 1)
             (func (export "allocate") (param i32) (result i32) i32.const 0)
             (func (export "release") (param i32 i32))
             (func (export "greet") (param i32 i32) (result i64) i64.const 0)
             (@custom "weft-interface" "\01\00\05greet\01\04name\01\0b\01\01\0b"))"#,
    )
    .unwrap();
    let info = weft_compiler::validate(&wasm, &weft_compiler::Limits::default()).unwrap();
    assert_eq!(info.interface.functions[0].to_string(), "greet(name: string) -> string");
    // And the table of type encodings.
    let ty = |t: Type| {
        let item = Item::Function(Function { name: "f".into(), params: vec![], results: vec![t] });
        let bytes = interface::encode_entry(&item);
        bytes[6..].to_vec() // skip version, kind, name "f", parameter and result counts
    };
    assert_eq!(ty(Type::String), [0x01, 0x0b]);
    assert_eq!(ty(Type::optional(Type::array(Type::U8))), [0x03, 0x0d, 0x0e, 0x05]);
    assert_eq!(ty(Type::array(Type::record("point"))), [0x02, 0x0e, 0x0f, 0x05, b'p', b'o', b'i', b'n', b't']);
}
