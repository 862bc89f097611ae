//! The value codec: JSON arguments to postcard bytes and postcard results back to JSON.
//!
//! - `string/*`: `greet(name: string) -> string` with a 12-byte string: `encode_args`,
//!   `decode_results`, both (`round_trip`), `check_args` (the module-to-module check), and the
//!   free functions, which build a `Codec` per call (`free_round_trip`).
//! - `record/*`: `save(team: team) -> team` where a team has a name, tags and 20 members, each a
//!   record with a string, integers, an optional, an `array<f64>` of 8 and an `array<string>` of 3
//!   (2,141 bytes of postcard): the same operations.
//!
//! Run: `cargo bench -p weft-compiler --bench codec`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use weft_compiler::codec::{self, Codec};
use weft_compiler::interface::{Function, Interface, Record, Type};

fn fields(list: &[(&str, Type)]) -> Vec<(String, Type)> {
    list.iter().map(|(n, t)| ((*n).to_owned(), t.clone())).collect()
}

fn interface() -> Interface {
    Interface {
        functions: vec![
            Function { name: "greet".into(), params: fields(&[("name", Type::String)]), results: vec![Type::String] },
            Function {
                name: "save".into(),
                params: fields(&[("team", Type::record("team"))]),
                results: vec![Type::record("team")],
            },
        ],
        records: vec![
            Record {
                name: "member".into(),
                fields: fields(&[
                    ("name", Type::String),
                    ("age", Type::U8),
                    ("id", Type::U64),
                    ("manager", Type::optional(Type::U32)),
                    ("scores", Type::array(Type::F64)),
                    ("roles", Type::array(Type::String)),
                ]),
            },
            Record {
                name: "team".into(),
                fields: fields(&[
                    ("name", Type::String),
                    ("tags", Type::array(Type::String)),
                    ("members", Type::array(Type::record("member"))),
                ]),
            },
        ],
        ..Interface::default()
    }
}

fn team() -> Value {
    let members: Vec<Value> = (0..20u32)
        .map(|i| {
            json!({
                "name": format!("member number {i}"),
                "age": 20 + i,
                "id": 1_000_000_007u64 * u64::from(i),
                "manager": if i % 2 == 0 { Value::Null } else { json!(i / 2) },
                "scores": (0..8).map(|j| f64::from(i * j) / 3.0).collect::<Vec<_>>(),
                "roles": ["dev", "ops", "on-call"],
            })
        })
        .collect();
    json!({ "name": "platform", "tags": ["p2p", "wasm", "rust"], "members": members })
}

fn bench_function(c: &mut Criterion, group: &str, iface: &Interface, name: &str, args: &Value) {
    let codec = Codec::new(iface);
    let f = iface.function(name).unwrap();
    let bytes = codec.encode_args(f, args).unwrap();
    eprintln!("{group}: {} bytes of postcard", bytes.len());
    let mut g = c.benchmark_group(group);
    g.bench_function("encode_args", |b| b.iter(|| codec.encode_args(f, black_box(args)).unwrap()));
    // The function returns its argument, so the argument bytes are also valid results.
    g.bench_function("decode_results", |b| b.iter(|| codec.decode_results(f, black_box(&bytes)).unwrap()));
    g.bench_function("round_trip", |b| {
        b.iter(|| codec.decode_results(f, &codec.encode_args(f, black_box(args)).unwrap()).unwrap())
    });
    g.bench_function("check_args", |b| b.iter(|| codec.check_args(f, black_box(&bytes)).unwrap()));
    g.bench_function("free_round_trip", |b| {
        b.iter(|| codec::decode_results(iface, f, &codec::encode_args(iface, f, black_box(args)).unwrap()).unwrap())
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let iface = interface();
    bench_function(c, "string", &iface, "greet", &json!(["hello, weft!"]));
    bench_function(c, "record", &iface, "save", &json!([team()]));
}

criterion_group!(codec_benches, benches);
criterion_main!(codec_benches);
