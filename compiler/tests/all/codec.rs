//! The value codec: JSON ↔ postcard round trips, agreement with the real `postcard` crate, exact
//! error texts for wrong JSON and malformed bytes, and arbitrary bytes never panicking.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weft_compiler::codec::{self, Codec, ErrorKind, Limits};
use weft_compiler::interface::{Function, Import, Interface, Record, Type};

fn fields(list: &[(&str, Type)]) -> Vec<(String, Type)> {
    list.iter().map(|(n, t)| ((*n).to_owned(), t.clone())).collect()
}

fn function(name: &str, params: &[(&str, Type)], results: &[Type]) -> Function {
    Function { name: name.into(), params: fields(params), results: results.to_vec() }
}

/// Records of every shape: flat, empty, recursive through arrays and optionals, odd field names.
fn records() -> Vec<Record> {
    let record = |name: &str, list: &[(&str, Type)]| Record { name: name.into(), fields: fields(list) };
    vec![
        record("point", &[("x", Type::F64), ("y", Type::F64)]),
        record("empty", &[]),
        record(
            "person",
            &[
                ("name", Type::String),
                ("age", Type::U8),
                ("friends", Type::array(Type::record("person"))),
                ("best", Type::optional(Type::record("person"))),
                ("home", Type::record("point")),
                ("tags", Type::array(Type::record("empty"))),
            ],
        ),
        record("tree", &[("value", Type::S32), ("children", Type::array(Type::record("tree")))]),
        record(
            "odd",
            &[("odd name", Type::Bool), ("ünï", Type::optional(Type::Bytes)), ("nothing", Type::record("empty"))],
        ),
        record(
            "user",
            &[
                ("name", Type::String),
                ("age", Type::U8),
                ("nick", Type::optional(Type::String)),
                ("scores", Type::array(Type::S32)),
            ],
        ),
    ]
}

fn iface() -> Interface {
    let iface = Interface {
        functions: vec![
            function("greet", &[("name", Type::String)], &[Type::String]),
            function("meet", &[("user", Type::record("person"))], &[]),
            function("store", &[("key", Type::String), ("data", Type::Bytes)], &[Type::Bool, Type::U64]),
            function("plant", &[("tree", Type::record("tree"))], &[Type::record("tree")]),
            function("welcome", &[("user", Type::record("user")), ("loud", Type::Bool)], &[Type::String]),
            function("nothing", &[], &[]),
            function("many", &[("n", Type::array(Type::record("empty")))], &[Type::array(Type::record("empty"))]),
        ],
        records: records(),
        imports: vec![Import {
            module: "kv".into(),
            name: "put".into(),
            params: fields(&[("key", Type::String), ("value", Type::optional(Type::Bytes))]),
            results: vec![],
        }],
    };
    iface.check().expect("test interface is well-formed");
    iface
}

fn person(name: &str, age: u64) -> Value {
    json!({ "name": name, "age": age, "friends": [], "best": null, "home": { "x": 0.0, "y": 0.0 }, "tags": [] })
}

// ---- fixed encodings ----

#[test]
fn worked_example_from_the_docs() {
    let iface = iface();
    let codec = Codec::new(&iface);
    let welcome = iface.function("welcome").unwrap();
    let args = json!([{ "name": "Ann", "age": 30, "nick": null, "scores": [1, -2, 300] }, true]);
    let bytes = codec.encode_args(welcome, &args).unwrap();
    assert_eq!(bytes, [0x03, 0x41, 0x6e, 0x6e, 0x1e, 0x00, 0x03, 0x02, 0x03, 0xd8, 0x04, 0x01]);
    assert_eq!(codec.decode_args(welcome, &bytes).unwrap(), args);
    let named = json!({ "loud": true, "user": { "scores": [1, -2, 300], "nick": null, "age": 30, "name": "Ann" } });
    assert_eq!(codec.encode_args(welcome, &named).unwrap(), bytes);
    assert_eq!(codec.decode_results(welcome, &[0x06, 0x68, 0x69, 0x20, 0x41, 0x6e, 0x6e]).unwrap(), json!("hi Ann"));
}

#[test]
fn free_functions_and_result_shapes() {
    let iface = iface();
    let greet = iface.function("greet").unwrap();
    assert_eq!(codec::encode_args(&iface, greet, &json!(["hi"])).unwrap(), b"\x02hi");
    assert_eq!(codec::decode_results(&iface, greet, b"\x02hi").unwrap(), json!("hi"));
    let codec = Codec::new(&iface);
    let nothing = iface.function("nothing").unwrap();
    assert_eq!(codec.decode_results(nothing, b"").unwrap(), Value::Null);
    for no_args in [json!([]), json!({}), Value::Null] {
        assert_eq!(codec.encode_args(nothing, &no_args).unwrap(), b"");
    }
    let store = iface.function("store").unwrap();
    assert_eq!(codec.decode_results(store, &[1, 0xac, 0x02]).unwrap(), json!([true, 300]));
    assert_eq!(codec.encode_results(store, &json!([true, 300])).unwrap(), [1, 0xac, 0x02]);
    assert_eq!(codec.encode_results(nothing, &Value::Null).unwrap(), b"");
}

#[test]
fn imports_use_module_dot_name() {
    let iface = iface();
    let codec = Codec::new(&iface);
    let put = iface.import("kv", "put").unwrap();
    let bytes = codec.encode_args(put, &json!({ "key": "k", "value": [1, 2] })).unwrap();
    assert_eq!(bytes, [1, b'k', 1, 2, 1, 2]);
    assert_eq!(codec.decode_args(put, &bytes).unwrap(), json!(["k", [1, 2]]));
    codec.check_args(put, &bytes).unwrap();
    let err = codec.encode_args(put, &json!(["k", "v"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"kv.put: parameter "value": expected null or bytes (an array of numbers 0..=255), got "v""#
    );
}

#[test]
fn floats_special_values_and_f32_shortest_form() {
    let iface = Interface::default();
    let codec = Codec::new(&iface);
    for (ty, json, bytes) in [
        (Type::F32, json!(0.1), 0.1f32.to_le_bytes().to_vec()),
        (Type::F32, json!("NaN"), f32::NAN.to_le_bytes().to_vec()),
        (Type::F32, json!("-inf"), f32::NEG_INFINITY.to_le_bytes().to_vec()),
        (Type::F64, json!("inf"), f64::INFINITY.to_le_bytes().to_vec()),
        (Type::F64, json!(-0.0), (-0.0f64).to_le_bytes().to_vec()),
        (Type::F64, json!(1e300), 1e300f64.to_le_bytes().to_vec()),
    ] {
        let mut out = Vec::new();
        codec.encode(&ty, &json, &mut out).unwrap();
        assert_eq!(out, bytes, "{ty} {json}");
        assert_eq!(codec.decode(&ty, &bytes).unwrap(), (json.clone(), bytes.len()), "{ty} {json}");
    }
    // Integers are accepted where a float is expected; any NaN payload decodes to "NaN".
    let mut out = Vec::new();
    codec.encode(&Type::F64, &json!(3), &mut out).unwrap();
    assert_eq!(out, 3.0f64.to_le_bytes());
    let odd_nan = f64::from_bits(0x7ff0_0000_0000_0001);
    assert_eq!(codec.decode(&Type::F64, &odd_nan.to_le_bytes()).unwrap().0, json!("NaN"));
}

// ---- agreement with the real postcard crate ----

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Scalars {
    b: bool,
    s8: i8,
    s16: i16,
    s32: i32,
    s64: i64,
    u8: u8,
    u16: u16,
    u32: u32,
    u64: u64,
    f32: f32,
    f64: f64,
    s: String,
    bytes: Vec<u8>,
    opt: Option<Vec<u16>>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Point {
    x: f64,
    y: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Empty {}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Person {
    name: String,
    age: u8,
    friends: Vec<Person>,
    best: Option<Box<Person>>,
    home: Point,
    tags: Vec<Empty>,
}

fn scalars_type() -> (Interface, Type) {
    let record = Record {
        name: "scalars".into(),
        fields: fields(&[
            ("b", Type::Bool),
            ("s8", Type::S8),
            ("s16", Type::S16),
            ("s32", Type::S32),
            ("s64", Type::S64),
            ("u8", Type::U8),
            ("u16", Type::U16),
            ("u32", Type::U32),
            ("u64", Type::U64),
            ("f32", Type::F32),
            ("f64", Type::F64),
            ("s", Type::String),
            ("bytes", Type::Bytes),
            ("opt", Type::optional(Type::array(Type::U16))),
        ]),
    };
    (Interface { records: vec![record], ..Interface::default() }, Type::record("scalars"))
}

fn float_json(x: f64) -> Value {
    if x.is_nan() {
        json!("NaN")
    } else if x.is_infinite() {
        json!(if x > 0.0 { "inf" } else { "-inf" })
    } else {
        json!(x)
    }
}

fn scalars_json(v: &Scalars) -> Value {
    json!({
        "b": v.b, "s8": v.s8, "s16": v.s16, "s32": v.s32, "s64": v.s64,
        "u8": v.u8, "u16": v.u16, "u32": v.u32, "u64": v.u64,
        // An f32 shows in its shortest decimal form.
        "f32": float_json(format!("{}", v.f32).parse().unwrap()),
        "f64": float_json(v.f64),
        "s": v.s, "bytes": v.bytes, "opt": v.opt,
    })
}

fn arb_scalars() -> impl Strategy<Value = Scalars> {
    (
        (any::<bool>(), any::<i8>(), any::<i16>(), any::<i32>(), any::<i64>()),
        (any::<u8>(), any::<u16>(), any::<u32>(), any::<u64>()),
        (any::<f32>(), any::<f64>(), any::<String>(), proptest::collection::vec(any::<u8>(), 0..20)),
        proptest::option::of(proptest::collection::vec(any::<u16>(), 0..5)),
    )
        .prop_map(|((b, s8, s16, s32, s64), (u8, u16, u32, u64), (f32, f64, s, bytes), opt)| Scalars {
            b,
            s8,
            s16,
            s32,
            s64,
            u8,
            u16,
            u32,
            u64,
            f32,
            f64,
            s,
            bytes,
            opt,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every scalar, against postcard in both directions.
    #[test]
    fn scalars_match_postcard(v in arb_scalars()) {
        let (iface, ty) = scalars_type();
        let codec = Codec::new(&iface);
        let reference = postcard::to_allocvec(&v).unwrap();
        let mut ours = Vec::new();
        codec.encode(&ty, &scalars_json(&v), &mut ours).unwrap();
        if v.f32.is_nan() || v.f64.is_nan() {
            // NaN payloads are not kept: compare what postcard reads back.
            let back: Scalars = postcard::from_bytes(&ours).unwrap();
            prop_assert_eq!(back.f32.is_nan(), v.f32.is_nan());
            prop_assert_eq!(back.f64.is_nan(), v.f64.is_nan());
        } else {
            prop_assert_eq!(&ours, &reference);
        }
        prop_assert_eq!(codec.decode(&ty, &reference).unwrap(), (scalars_json(&v), reference.len()));
    }
}

#[test]
fn records_and_tuples_match_postcard() {
    let iface = iface();
    let codec = Codec::new(&iface);
    let ann = Person {
        name: "Ann".into(),
        age: 30,
        friends: vec![Person {
            name: "Bo".into(),
            age: 7,
            friends: vec![],
            best: None,
            home: Point { x: 1.5, y: -2.0 },
            tags: vec![Empty {}, Empty {}],
        }],
        best: Some(Box::new(Person {
            name: "Cy".into(),
            age: 255,
            friends: vec![],
            best: None,
            home: Point { x: 0.0, y: 0.0 },
            tags: vec![],
        })),
        home: Point { x: 3.25, y: 1e10 },
        tags: vec![Empty {}],
    };
    let ann_json = json!({
        "name": "Ann", "age": 30,
        "friends": [{ "name": "Bo", "age": 7, "friends": [], "best": null, "home": { "x": 1.5, "y": -2.0 }, "tags": [{}, {}] }],
        "best": { "name": "Cy", "age": 255, "friends": [], "best": null, "home": { "x": 0.0, "y": 0.0 }, "tags": [] },
        "home": { "x": 3.25, "y": 1e10 },
        "tags": [{}],
    });
    let meet = iface.function("meet").unwrap();
    let reference = postcard::to_allocvec(&(&ann,)).unwrap();
    assert_eq!(codec.encode_args(meet, &json!([ann_json])).unwrap(), reference);
    assert_eq!(codec.decode_args(meet, &reference).unwrap(), json!([ann_json]));
    let back: (Person,) = postcard::from_bytes(&reference).unwrap();
    assert_eq!(back.0, ann);

    let store = iface.function("store").unwrap();
    let reference = postcard::to_allocvec(&("key", vec![0u8, 127, 255])).unwrap();
    assert_eq!(codec.encode_args(store, &json!(["key", [0, 127, 255]])).unwrap(), reference);
    let results = postcard::to_allocvec(&(false, u64::MAX)).unwrap();
    assert_eq!(codec.decode_results(store, &results).unwrap(), json!([false, u64::MAX]));
}

// ---- round trips over generated types and values ----

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

fn arb_type() -> impl Strategy<Value = Type> {
    let names: Vec<String> = records().into_iter().map(|r| r.name).collect();
    let leaf = prop_oneof![3 => scalar(), 2 => proptest::sample::select(names).prop_map(Type::Record)];
    (leaf, proptest::collection::vec(any::<bool>(), 0..4)).prop_map(|(mut ty, wrappers)| {
        for optional in wrappers {
            ty = if optional { Type::optional(ty) } else { Type::array(ty) };
        }
        ty
    })
}

/// A JSON value of type `ty`, nesting at most `budget` optional/array levels more.
fn value_of(iface: &Interface, ty: &Type, budget: u32) -> BoxedStrategy<Value> {
    match ty {
        Type::Bool => any::<bool>().prop_map(Value::from).boxed(),
        Type::S8 => any::<i8>().prop_map(Value::from).boxed(),
        Type::S16 => any::<i16>().prop_map(Value::from).boxed(),
        Type::S32 => any::<i32>().prop_map(Value::from).boxed(),
        Type::S64 => any::<i64>().prop_map(Value::from).boxed(),
        Type::U8 => any::<u8>().prop_map(Value::from).boxed(),
        Type::U16 => any::<u16>().prop_map(Value::from).boxed(),
        Type::U32 => any::<u32>().prop_map(Value::from).boxed(),
        Type::U64 => any::<u64>().prop_map(Value::from).boxed(),
        Type::F32 => any::<f32>().prop_map(|x| float_json(format!("{x}").parse().unwrap())).boxed(),
        Type::F64 => any::<f64>().prop_map(float_json).boxed(),
        Type::String => any::<String>().prop_map(Value::from).boxed(),
        Type::Bytes => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::from).boxed(),
        Type::Optional(_) if budget == 0 => Just(Value::Null).boxed(),
        Type::Optional(inner) => prop_oneof![Just(Value::Null), value_of(iface, inner, budget - 1)].boxed(),
        Type::Array(_) if budget == 0 => Just(json!([])).boxed(),
        Type::Array(inner) => {
            proptest::collection::vec(value_of(iface, inner, budget - 1), 0..4).prop_map(Value::Array).boxed()
        }
        Type::Record(name) => {
            let record = iface.record(name).unwrap();
            let names: Vec<String> = record.fields.iter().map(|(n, _)| n.clone()).collect();
            let values: Vec<BoxedStrategy<Value>> =
                record.fields.iter().map(|(_, t)| value_of(iface, t, budget.saturating_sub(1))).collect();
            values.prop_map(move |vs| Value::Object(names.iter().cloned().zip(vs).collect())).boxed()
        }
    }
}

fn typed_value() -> impl Strategy<Value = (Type, Value)> {
    arb_type().prop_flat_map(|ty| {
        let value = value_of(&iface(), &ty, 6);
        (Just(ty), value)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// JSON → bytes → JSON is the identity, bytes → JSON → bytes too, and checking agrees.
    #[test]
    fn json_round_trips((ty, value) in typed_value()) {
        let iface = iface();
        let codec = Codec::new(&iface);
        let mut bytes = Vec::new();
        codec.encode(&ty, &value, &mut bytes).unwrap();
        let (back, used) = codec.decode(&ty, &bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(&back, &value);
        let mut again = Vec::new();
        codec.encode(&ty, &back, &mut again).unwrap();
        prop_assert_eq!(&again, &bytes);

        // The same value as the single parameter and the single result of a function.
        let f = Function { name: "f".into(), params: vec![("p".into(), ty.clone())], results: vec![ty.clone()] };
        prop_assert_eq!(codec.encode_args(&f, &json!([value.clone()])).unwrap(), bytes.clone());
        prop_assert_eq!(codec.encode_args(&f, &json!({ "p": value.clone() })).unwrap(), bytes.clone());
        codec.check_args(&f, &bytes).unwrap();
        codec.check_results(&f, &bytes).unwrap();
        prop_assert_eq!(codec.decode_results(&f, &bytes).unwrap(), value.clone());
        prop_assert_eq!(codec.encode_results(&f, &value).unwrap(), bytes);
    }
}

// ---- wrong JSON: exact messages ----

fn encode_err(func: &str, args: Value) -> String {
    let iface = iface();
    let codec = Codec::new(&iface);
    codec.encode_args(iface.function(func).unwrap(), &args).unwrap_err().to_string()
}

#[test]
fn wrong_type() {
    assert_eq!(encode_err("greet", json!([5])), r#"greet: parameter "name": expected string, got 5"#);
    assert_eq!(
        encode_err("meet", json!(["Ann"])),
        r#"meet: parameter "user": expected record `person` (an object), got "Ann""#
    );
    assert_eq!(
        encode_err("meet", json!([{ "name": "Ann", "age": 3, "friends": {}, "best": null, "home": {}, "tags": [] }])),
        r#"meet: parameter "user".friends: expected array<person> (an array), got an object"#
    );
    assert_eq!(
        encode_err("greet", json!("Ann")),
        r#"greet: arguments: expected a JSON array of arguments or an object keyed by parameter name, got "Ann""#
    );
    assert_eq!(
        encode_err("meet", json!(["x".repeat(40)])),
        format!(r#"meet: parameter "user": expected record `person` (an object), got "{}"…"#, "x".repeat(32))
    );
    assert_eq!(encode_err("store", json!([1, []])), r#"store: parameter "key": expected string, got 1"#);
}

#[test]
fn out_of_range_integers() {
    let mut user = person("Ann", 30);
    user["friends"] = json!([person("a", 1), person("b", 2), person("c", 3), person("d", 300)]);
    assert_eq!(
        encode_err("meet", json!([user])),
        r#"meet: parameter "user".friends[3].age: expected u8 (0..=255), got 300"#
    );
    let mut user = person("Ann", 30);
    user["best"] = person("Bo", 256);
    assert_eq!(encode_err("meet", json!([user])), r#"meet: parameter "user".best.age: expected u8 (0..=255), got 256"#);
    assert_eq!(
        encode_err("plant", json!([{ "value": 2147483648u64, "children": [] }])),
        r#"plant: parameter "tree".value: expected s32 (-2147483648..=2147483647), got 2147483648"#
    );
    assert_eq!(
        encode_err("plant", json!([{ "value": 1.5, "children": [] }])),
        r#"plant: parameter "tree".value: expected s32 (-2147483648..=2147483647), got 1.5"#
    );
    let iface = Interface::default();
    let codec = Codec::new(&iface);
    let err = |ty: Type, v: Value| codec.encode(&ty, &v, &mut Vec::new()).unwrap_err().to_string();
    assert_eq!(err(Type::U64, json!(-1)), "value: expected u64 (0..=18446744073709551615), got -1");
    assert_eq!(err(Type::S8, json!(-129)), "value: expected s8 (-128..=127), got -129");
    assert_eq!(err(Type::F32, json!(1e39)), r#"value: expected f32 (a number, "NaN", "inf" or "-inf"), got 1e+39"#);
    assert_eq!(err(Type::F64, json!("nan")), r#"value: expected f64 (a number, "NaN", "inf" or "-inf"), got "nan""#);
    assert_eq!(
        err(Type::array(Type::optional(Type::U16)), json!([1, null, 70000])),
        "value[2]: expected null or u16 (0..=65535), got 70000"
    );
}

#[test]
fn missing_and_unknown_fields() {
    let mut user = person("Ann", 30);
    user.as_object_mut().unwrap().remove("age");
    assert_eq!(encode_err("meet", json!([user])), r#"meet: parameter "user": missing field "age" of record `person`"#);
    let mut user = person("Ann", 30);
    user["agee"] = json!(3);
    user["zzz"] = json!(3);
    assert_eq!(
        encode_err("meet", json!([user])),
        r#"meet: parameter "user": unknown fields "agee", "zzz" of record `person`; its fields are (name: string, age: u8, friends: array<person>, best: optional<person>, home: point, tags: array<empty>)"#
    );
    // A misspelt field is reported as unknown rather than as the missing one.
    let mut user = person("Ann", 30);
    user.as_object_mut().unwrap().remove("age");
    user["agee"] = json!(3);
    assert!(encode_err("meet", json!([user])).contains(r#"unknown field "agee" of record `person`"#));
    let mut user = person("Ann", 30);
    user["home"] = json!({ "x": 1, "y": 2, "z": 3 });
    assert_eq!(
        encode_err("meet", json!([user])),
        r#"meet: parameter "user".home: unknown field "z" of record `point`; its fields are (x: f64, y: f64)"#
    );
}

#[test]
fn wrong_arguments() {
    assert_eq!(encode_err("greet", json!(["a", "b"])), "greet: expected 1 argument (name: string), got 2");
    assert_eq!(encode_err("store", json!([])), "store: expected 2 arguments (key: string, data: bytes), got 0");
    assert_eq!(
        encode_err("greet", json!({ "nmae": "x" })),
        r#"greet: unknown argument "nmae"; the parameters are (name: string)"#
    );
    assert_eq!(
        encode_err("store", json!({ "key": "x" })),
        r#"store: missing argument "data"; the parameters are (key: string, data: bytes)"#
    );
    assert_eq!(
        encode_err("greet", json!({ "name": "x", "extra": 1, "more": 2 })),
        r#"greet: unknown arguments "extra", "more"; the parameters are (name: string)"#
    );
    assert_eq!(encode_err("nothing", json!([1])), "nothing: expected 0 arguments (), got 1");
    let iface = iface();
    let codec = Codec::new(&iface);
    let store = iface.function("store").unwrap();
    assert_eq!(
        codec.encode_results(store, &json!([true])).unwrap_err().to_string(),
        "store: expected 2 results (bool, u64), got 1"
    );
    assert_eq!(
        codec.encode_results(store, &json!(true)).unwrap_err().to_string(),
        "store: results: expected an array of 2 results, got true"
    );
}

#[test]
fn bytes_elements_are_bytes() {
    assert_eq!(
        encode_err("store", json!(["k", [0, 255, 256]])),
        r#"store: parameter "data"[2]: expected u8 (0..=255), got 256"#
    );
    assert_eq!(
        encode_err("store", json!(["k", [0, -1]])),
        r#"store: parameter "data"[1]: expected u8 (0..=255), got -1"#
    );
    assert_eq!(
        encode_err("store", json!(["k", "AAEC"])),
        r#"store: parameter "data": expected bytes (an array of numbers 0..=255), got "AAEC""#
    );
}

#[test]
fn odd_field_names_are_quoted_in_paths() {
    let iface = iface();
    let codec = Codec::new(&iface);
    let value = json!({ "odd name": true, "ünï": [1, 1000], "nothing": {} });
    let err = codec.encode(&Type::record("odd"), &value, &mut Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), r#"value["ünï"][1]: expected u8 (0..=255), got 1000"#);
    assert!(matches!(err.kind(), ErrorKind::Expected { .. }));
}

// ---- malformed bytes: exact messages, never a panic ----

fn decode_err(func: &str, bytes: &[u8]) -> String {
    let iface = iface();
    let codec = Codec::new(&iface);
    let f = iface.function(func).unwrap();
    let decoded = codec.decode_results(f, bytes).unwrap_err();
    // Checking fails the same way.
    assert_eq!(codec.check_results(f, bytes).unwrap_err(), decoded);
    decoded.to_string()
}

#[test]
fn truncated() {
    assert_eq!(decode_err("greet", b""), "greet: result 0: truncated at byte 0 while reading a string length");
    assert_eq!(decode_err("greet", b"\x85"), "greet: result 0: truncated at byte 0 while reading a string length");
    assert_eq!(
        decode_err("greet", b"\x05ab"),
        "greet: result 0: string length 5 at byte 0 needs at least 5 bytes but only 2 remain"
    );
    assert_eq!(decode_err("store", b"\x01"), "store: result 1: truncated at byte 1 while reading a u64");
    assert_eq!(decode_err("store", b"\x01\xff\xff"), "store: result 1: truncated at byte 1 while reading a u64");
    let iface = iface();
    let codec = Codec::new(&iface);
    assert_eq!(
        codec.decode(&Type::F64, &[0; 7]).unwrap_err().to_string(),
        "value: truncated at byte 0 while reading an f64"
    );
    // Inside a record: the path, and the offset from the start of the results.
    assert_eq!(
        decode_err("plant", &[0x02, 0x01, 0x84, 0x84]),
        "plant: result 0.children[0].value: truncated at byte 2 while reading an s32"
    );
    // A tree takes at least 2 bytes, so a count of 1 with 1 byte left is refused before reading.
    assert_eq!(
        decode_err("plant", &[0x02, 0x01, 0x04, 0x01, 0x06]),
        "plant: result 0.children[0].children: array count 1 at byte 3 needs at least 2 bytes but only 1 remain"
    );
}

#[test]
fn overlong_and_overflowing_varints() {
    let iface = Interface::default();
    let codec = Codec::new(&iface);
    let err = |ty: Type, bytes: &[u8]| codec.decode(&ty, bytes).unwrap_err().to_string();
    // u16: at most 3 bytes, the last holding 2 bits.
    assert_eq!(codec.decode(&Type::U16, &[0xff, 0xff, 0x03]).unwrap().0, json!(65535));
    assert_eq!(codec.decode(&Type::U16, &[0x80, 0x00]).unwrap().0, json!(0), "non-minimal, as postcard");
    assert_eq!(err(Type::U16, &[0xff, 0xff, 0x04]), "value: varint at byte 0 is over-long or too large for a u16");
    assert_eq!(
        err(Type::U16, &[0x80, 0x80, 0x80, 0x00]),
        "value: varint at byte 0 is over-long or too large for a u16"
    );
    assert_eq!(
        err(Type::S32, &[0xff, 0xff, 0xff, 0xff, 0x1f]),
        "value: varint at byte 0 is over-long or too large for an s32"
    );
    let mut eleven = vec![0x80; 10];
    eleven.push(0);
    assert_eq!(err(Type::U64, &eleven), "value: varint at byte 0 is over-long or too large for a u64");
    assert_eq!(err(Type::U64, &[0xff; 10]), "value: varint at byte 0 is over-long or too large for a u64");
    let mut max = vec![0xff; 9];
    max.push(0x01);
    assert_eq!(codec.decode(&Type::U64, &max).unwrap().0, json!(u64::MAX));
    assert_eq!(codec.decode(&Type::S64, &max).unwrap().0, json!(i64::MIN));
    assert_eq!(err(Type::String, &[0xff; 11]), "value: varint at byte 0 is over-long or too large for a string length");
}

#[test]
fn bad_bool_tag_and_utf8() {
    assert_eq!(decode_err("store", b"\x02\x00"), "store: result 0: invalid bool 0x02 at byte 0; a bool is 0 or 1");
    let iface = iface();
    let codec = Codec::new(&iface);
    let put = iface.import("kv", "put").unwrap();
    assert_eq!(
        codec.check_args(put, b"\x01k\x02").unwrap_err().to_string(),
        r#"kv.put: parameter "value": invalid optional tag 0x02 at byte 2; the tag is 0 (null) or 1 (a value follows)"#
    );
    assert_eq!(decode_err("greet", b"\x03a\xff\xfe"), "greet: result 0: invalid utf-8 at byte 2 in a string");
    assert_eq!(
        decode_err("greet", b"\x02\xc3"),
        "greet: result 0: string length 2 at byte 0 needs at least 2 bytes but only 1 remain"
    );
}

#[test]
fn trailing_bytes() {
    assert_eq!(decode_err("greet", b"\x02hi!"), "greet: results: 1 trailing byte from byte 3 after the last value");
    assert_eq!(
        decode_err("nothing", b"\x00\x00"),
        "nothing: results: 2 trailing bytes from byte 0 after the last value"
    );
    let iface = iface();
    let codec = Codec::new(&iface);
    assert_eq!(
        codec.check_args(iface.function("greet").unwrap(), b"\x00\x00").unwrap_err().to_string(),
        "greet: arguments: 1 trailing byte from byte 1 after the last value"
    );
    // A lone value may be followed by anything.
    assert_eq!(codec.decode(&Type::Bool, b"\x01\xff").unwrap(), (json!(true), 1));
}

#[test]
fn huge_counts() {
    let iface = iface();
    let codec = Codec::new(&iface);
    let err = |ty: Type, bytes: &[u8]| codec.decode(&ty, bytes).unwrap_err().to_string();
    assert_eq!(
        err(Type::array(Type::U8), &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        "value: array count 4294967295 at byte 0 needs at least 4294967295 bytes but only 0 remain"
    );
    assert_eq!(
        err(Type::array(Type::F64), &[0x02, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        "value: array count 2 at byte 0 needs at least 16 bytes but only 9 remain"
    );
    assert_eq!(
        err(Type::array(Type::record("point")), &[0x01, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        "value: array count 1 at byte 0 needs at least 16 bytes but only 9 remain"
    );
    let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert_eq!(
        err(Type::Bytes, &max),
        "value: bytes length 18446744073709551615 at byte 0 needs at least 18446744073709551615 bytes but only 0 remain"
    );
    // Empty records take no bytes: their count is bounded by the output limit, checked or decoded.
    let many = iface.function("many").unwrap();
    let limit = Limits::default().max_output;
    let expected = format!("many: result 0: decoded value exceeds the {limit}-byte output limit at byte 10");
    assert_eq!(codec.decode_results(many, &max).unwrap_err().to_string(), expected);
    assert_eq!(codec.check_results(many, &max).unwrap_err().to_string(), expected);
    let thousand = [0xe8, 0x07];
    assert_eq!(codec.decode_results(many, &thousand).unwrap().as_array().unwrap().len(), 1000);
    codec.check_results(many, &thousand).unwrap();
}

#[test]
fn output_limit() {
    let iface = iface();
    let small = Codec::with_limits(&iface, Limits { max_output: 1000, ..Limits::default() });
    let store = iface.function("store").unwrap();
    let mut args = vec![0x01, b'k', 100];
    args.extend([7; 100]);
    let err = small.decode_args(store, &args).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"store: parameter "data": decoded value exceeds the 1000-byte output limit at byte 103"#
    );
    assert!(matches!(err.kind(), ErrorKind::TooLarge { limit: 1000, .. }));
    // Checking does not build JSON: the limit does not apply.
    small.check_args(store, &args).unwrap();
    assert_eq!(Codec::new(&iface).decode_args(store, &args).unwrap()[1].as_array().unwrap().len(), 100);
}

/// A tree of `depth` levels as JSON, and its encoding.
fn deep_tree(depth: usize) -> (Value, Vec<u8>) {
    let mut value = json!({ "value": 0, "children": [] });
    let mut bytes = vec![0x00, 0x00];
    for _ in 1..depth {
        value = json!({ "value": 0, "children": [value] });
        bytes.splice(0..0, [0x00, 0x01]);
    }
    (value, bytes)
}

#[test]
fn deep_nesting_is_refused() {
    let iface = iface();
    let codec = Codec::new(&iface);
    let plant = iface.function("plant").unwrap();
    // Each tree level is a record and an array: 32 levels fit in the default 64, 33 do not.
    let (value, bytes) = deep_tree(32);
    assert_eq!(codec.encode_args(plant, &json!([value])).unwrap(), bytes);
    assert_eq!(codec.decode_results(plant, &bytes).unwrap(), value);
    let (value, bytes) = deep_tree(33);
    let err = codec.encode_args(plant, &json!([value])).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::TooDeep { limit: 64 }));
    assert!(
        err.to_string().ends_with(".children[0]: nested deeper than 64 levels of optional, array and record"),
        "{err}"
    );
    assert!(err.to_string().starts_with(r#"plant: parameter "tree".children[0].children[0]"#), "{err}");
    let err = codec.decode_results(plant, &bytes).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::TooDeep { limit: 64 }));
    assert!(matches!(codec.check_results(plant, &bytes).unwrap_err().kind(), ErrorKind::TooDeep { .. }));

    // Hostile depth: a hundred thousand levels of bytes, and of JSON, fail cleanly.
    let hostile = [0x00, 0x01].repeat(100_000);
    assert!(matches!(codec.decode_results(plant, &hostile).unwrap_err().kind(), ErrorKind::TooDeep { .. }));
    assert!(matches!(codec.check_args(plant, &hostile).unwrap_err().kind(), ErrorKind::TooDeep { .. }));
    let mut value = json!({ "value": 0, "children": [] });
    for _ in 0..100_000 {
        // Built by hand: `json!` would serialize (and recurse into) `value`.
        let mut node = serde_json::Map::new();
        node.insert("value".into(), json!(0));
        node.insert("children".into(), Value::Array(vec![value]));
        value = Value::Object(node);
    }
    let args = Value::Array(vec![value]);
    assert!(matches!(codec.encode_args(plant, &args).unwrap_err().kind(), ErrorKind::TooDeep { .. }));
    // Drop without recursing a hundred thousand levels.
    let Value::Array(mut stack) = args else { unreachable!() };
    while let Some(mut v) = stack.pop() {
        if let Some(children) = v.get_mut("children").and_then(Value::as_array_mut) {
            stack.append(children);
        }
    }

    // A smaller configured limit, with optionals.
    let shallow = Codec::with_limits(&iface, Limits { max_depth: 2, ..Limits::default() });
    let ty = Type::optional(Type::optional(Type::optional(Type::Bool)));
    assert_eq!(shallow.decode(&ty, &[1, 1, 0]).unwrap().0, Value::Null);
    assert_eq!(
        shallow.decode(&ty, &[1, 1, 1, 1]).unwrap_err().to_string(),
        "value: nested deeper than 2 levels of optional, array and record"
    );
    assert!(matches!(
        shallow.encode(&ty, &json!(true), &mut Vec::new()).unwrap_err().kind(),
        ErrorKind::TooDeep { limit: 2 }
    ));
}

#[test]
fn unknown_records_and_uninhabited_records() {
    // Interfaces built in code may skip `check`: an unresolved record is an error, not a panic.
    let iface = Interface {
        records: vec![
            Record { name: "loop".into(), fields: fields(&[("again", Type::record("loop"))]) },
            Record { name: "dangling".into(), fields: fields(&[("x", Type::record("nowhere"))]) },
        ],
        ..Interface::default()
    };
    let codec = Codec::new(&iface);
    assert_eq!(
        codec.decode(&Type::record("dangling"), &[]).unwrap_err().to_string(),
        "value.x: record `nowhere` is not declared by the interface"
    );
    // A record that contains itself directly has no finite value: arrays of it must be empty.
    assert_eq!(codec.decode(&Type::array(Type::record("loop")), &[0]).unwrap().0, json!([]));
    assert!(matches!(
        codec.decode(&Type::array(Type::record("loop")), &[1]).unwrap_err().kind(),
        ErrorKind::TooLong { .. }
    ));
    assert!(matches!(codec.decode(&Type::record("loop"), &[]).unwrap_err().kind(), ErrorKind::TooDeep { .. }));
}

fn signatures() -> Vec<Function> {
    let iface = iface();
    let mut all = iface.functions.clone();
    all.push(function(
        "everything",
        &[
            ("scalars", Type::record("odd")),
            ("people", Type::array(Type::record("person"))),
            ("nums", Type::array(Type::optional(Type::S64))),
            ("f", Type::F32),
            ("g", Type::F64),
            ("t", Type::optional(Type::record("tree"))),
            ("u", Type::U16),
        ],
        &[Type::array(Type::Bytes), Type::String],
    ));
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Arbitrary bytes: decoding and checking return, never panic, and agree.
    #[test]
    fn arbitrary_bytes_never_panic(index in 0usize..8, bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let iface = iface();
        let codec = Codec::with_limits(&iface, Limits { max_output: 1 << 16, ..Limits::default() });
        let all = signatures();
        let f = &all[index % all.len()];
        for (decoded, checked) in [
            (codec.decode_args(f, &bytes).map(drop), codec.check_args(f, &bytes)),
            (codec.decode_results(f, &bytes).map(drop), codec.check_results(f, &bytes)),
        ] {
            match (decoded, checked) {
                (Ok(()), Ok(())) => {}
                (Err(d), Err(c)) => prop_assert_eq!(d, c),
                (Err(d), Ok(())) => prop_assert!(matches!(d.kind(), ErrorKind::TooLarge { .. }), "{}", d),
                (d, c) => prop_assert!(false, "decode {:?} but check {:?}", d, c),
            }
        }
    }

    /// Valid encodings with a few bytes changed: near-valid input reaches the deep paths.
    #[test]
    fn mutated_encodings_never_panic(
        (ty, value) in typed_value(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let iface = iface();
        let codec = Codec::new(&iface);
        let mut bytes = Vec::new();
        codec.encode(&ty, &value, &mut bytes).unwrap();
        if !bytes.is_empty() {
            for (at, byte) in edits {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
        }
        let f = Function { name: "f".into(), params: vec![("p".into(), ty.clone())], results: vec![ty] };
        let decoded = codec.decode_args(&f, &bytes).map(drop);
        prop_assert_eq!(decoded, codec.check_args(&f, &bytes));
        let cut = cut.index(bytes.len() + 1);
        let decoded = codec.decode_results(&f, &bytes[..cut]).map(drop);
        prop_assert_eq!(decoded, codec.check_results(&f, &bytes[..cut]));
    }
}
