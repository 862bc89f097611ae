//! Cold compile vs AOT cache hit, for a small module and a generated module of more than 1 MB of
//! code, over the real sled backend.
//!
//! - `*/cold_compile`: a fresh store holding only the Wasm; `Cache::load` validates, compiles with
//!   Cranelift, stores the artifact and loads it (`Outcome::Compiled`).
//! - `*/cache_hit`: `Cache::load` of a cached module: artifact record and blob read from sled,
//!   blob re-hashed (blake3), deserialized by wasmtime (`Outcome::Hit`).
//! - `*/cache_hit_instantiate`: the same plus instantiating the module in a fresh wasmtime store.
//! - `*/artifact_read`, `*/artifact_blake3`: the parts of a hit spent reading the artifact blob from
//!   sled (including the store's re-hash) and hashing it alone; the rest is wasmtime's deserialize.
//!
//! The large module is **synthetic**: `generate` writes 1,200 functions with loops, i32/i64/f64
//! arithmetic, memory loads and stores, branches and calls (a deterministic PRNG picks the mix),
//! so Cranelift has real work; it is not a real program and is only instantiated, never run.
//!
//! Run: `cargo bench -p weft-compiler --bench cache`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tempfile::TempDir;
use wasm_encoder::{
    BlockType, CodeSection, ExportKind, ExportSection, Function, FunctionSection, Ieee64, MemArg, MemArgTarget,
    MemorySection, MemoryType, Module, TypeSection, ValType,
};
use weft_compiler::interface::{self, Interface};
use weft_compiler::{Cache, Compiler, Outcome};
use weft_storage::{Hash, Store};

/// A small xorshift PRNG: the generated module is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const FUNCTIONS: u32 = 1200;
/// Straight-line op groups per loop body.
const GROUPS: usize = 70;

/// A synthetic module with more than 1 MB of code: `FUNCTIONS` functions of type
/// `(i32, i32) -> i32`, each a loop over randomly chosen op groups, calling earlier functions.
fn generate() -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32, ValType::I32], [ValType::I32]);
    let mut functions = FunctionSection::new();
    let mut code = CodeSection::new();
    let mem = |offset: u64| MemArg { offset, align: 2, target: MemArgTarget::Memory(0), ordering: None };
    for index in 0..FUNCTIONS {
        functions.function(0);
        // Locals: 0-1 params, 2-6 i32, 7-8 i64, 9-10 f64.
        let mut f = Function::new([(5, ValType::I32), (2, ValType::I64), (2, ValType::F64)]);
        let mut s = f.instructions();
        s.local_get(0).i32_const(1).i32_or().local_set(2);
        s.block(BlockType::Empty).loop_(BlockType::Empty);
        for _ in 0..GROUPS {
            let a = 2 + rng.below(5) as u32;
            let b = 2 + rng.below(5) as u32;
            let c = 2 + rng.below(5) as u32;
            match rng.below(7) {
                0 => {
                    s.local_get(a).local_get(b);
                    match rng.below(6) {
                        0 => s.i32_add(),
                        1 => s.i32_sub(),
                        2 => s.i32_mul(),
                        3 => s.i32_xor(),
                        4 => s.i32_rotl(),
                        _ => s.i32_shr_u(),
                    };
                    s.local_set(c);
                }
                1 => {
                    let l = 7 + rng.below(2) as u32;
                    s.local_get(a).i64_extend_i32_u().i64_const(rng.next() as i64 | 1).i64_mul();
                    s.local_get(l).i64_add().local_tee(l).i32_wrap_i64().local_get(c).i32_add().local_set(c);
                }
                2 => {
                    let l = 9 + rng.below(2) as u32;
                    s.local_get(a).f64_convert_i32_s().f64_const(Ieee64::from(1.000_1)).f64_mul();
                    s.local_get(l).f64_add().local_tee(l).i32_trunc_sat_f64_s().local_set(c);
                }
                3 => {
                    s.local_get(a).i32_const(0xfffc).i32_and().i32_load(mem(rng.below(64) * 4));
                    s.local_get(b).i32_add().local_set(c);
                }
                4 => {
                    s.local_get(a).i32_const(0xfffc).i32_and().local_get(b).i32_store(mem(rng.below(64) * 4));
                }
                5 => {
                    s.local_get(a).i32_const(rng.below(1000) as i32).i32_lt_u().if_(BlockType::Empty);
                    s.local_get(b).i32_const(3).i32_mul().local_set(c);
                    s.else_();
                    s.local_get(c).local_get(a).i32_xor().local_set(b);
                    s.end();
                }
                _ if index > 0 => {
                    let callee = rng.below(u64::from(index)) as u32;
                    s.local_get(a).local_get(b).call(callee).local_set(c);
                }
                _ => {
                    s.local_get(a).i32_popcnt().local_set(c);
                }
            }
        }
        // Loop while --local2 != 0.
        s.local_get(2).i32_const(1).i32_sub().local_tee(2).br_if(0);
        s.end().end();
        s.local_get(3).local_get(4).i32_add().local_get(5).i32_xor().local_get(1).i32_add();
        s.end();
        code.function(&f);
    }
    let mut memories = MemorySection::new();
    memories.memory(MemoryType { minimum: 1, maximum: None, memory64: false, shared: false, page_size_log2: None });
    let mut exports = ExportSection::new();
    exports.export("run", ExportKind::Func, FUNCTIONS - 1).export("memory", ExportKind::Memory, 0);

    let mut module = Module::new();
    module.section(&types).section(&functions).section(&memories).section(&exports).section(&code);
    let wasm = module.finish();
    // `run` is a raw core export; the interface declares nothing (the cache does not care).
    let iface = Interface::default();
    interface::append_section(&wasm, &iface)
}

fn small() -> Vec<u8> {
    let wasm = wat::parse_str(
        r#"(module
             (memory (export "memory") 1)
             (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#,
    )
    .unwrap();
    let iface = Interface::default();
    interface::append_section(&wasm, &iface)
}

/// A fresh sled store in a temporary directory holding `wasm`, and a cache over it.
fn fresh(compiler: &Arc<Compiler>, wasm: &[u8]) -> (TempDir, Cache, Hash) {
    let dir = tempfile::tempdir().unwrap();
    let backend = <weft_plugin_sled::SledPlugin as weft_abi::Provider>::storage("", dir.path()).unwrap();
    let store = Store::new(Arc::from(backend));
    let hash = store.put_blob(wasm).unwrap();
    (dir, Cache::new(store, compiler.clone()), hash)
}

fn bench_module(c: &mut Criterion, name: &str, wasm: &[u8], slow: bool) {
    let compiler = Arc::new(Compiler::new().unwrap());
    let mut group = c.benchmark_group(name);
    if slow {
        group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(40));
    }
    group.bench_function("cold_compile", |b| {
        b.iter_batched(
            || fresh(&compiler, wasm),
            |(dir, cache, hash)| {
                let (module, outcome) = cache.load(&hash).unwrap();
                assert_eq!(outcome, Outcome::Compiled);
                (dir, cache, module)
            },
            BatchSize::PerIteration,
        )
    });
    if slow {
        group.sample_size(50).measurement_time(Duration::from_secs(10));
    }
    let (_dir, cache, hash) = fresh(&compiler, wasm);
    cache.load(&hash).unwrap();
    group.bench_function("cache_hit", |b| {
        b.iter(|| {
            let (module, outcome) = cache.load(black_box(&hash)).unwrap();
            assert_eq!(outcome, Outcome::Hit);
            module
        })
    });
    // Where a hit's time goes: reading the artifact from sled (which re-hashes it), and the hash.
    let key = weft_storage::ArtifactKey { module: hash, engine: compiler.fingerprint() };
    let record = cache.store().artifact(&key).unwrap().unwrap();
    eprintln!("{name}: artifact {} bytes, compiled in {} ms", record.size, record.compile_time_us / 1000);
    group.bench_function("artifact_read", |b| b.iter(|| cache.store().get_blob(black_box(&record.blob)).unwrap()));
    let bytes = cache.store().get_blob(&record.blob).unwrap().unwrap();
    group.bench_function("artifact_blake3", |b| b.iter(|| Hash::of(black_box(&bytes))));
    let linker = wasmtime::Linker::<()>::new(compiler.engine());
    group.bench_function("cache_hit_instantiate", |b| {
        b.iter(|| {
            let (module, _) = cache.load(black_box(&hash)).unwrap();
            let mut store = wasmtime::Store::new(compiler.engine(), ());
            store.set_epoch_deadline(1);
            linker.instantiate(&mut store, &module).unwrap()
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let small = small();
    bench_module(c, "small", &small, false);
    let large = generate();
    let code_bytes = large.len();
    assert!(code_bytes > 1 << 20, "the synthetic module must exceed 1 MiB, it is {code_bytes} bytes");
    eprintln!("synthetic module: {code_bytes} bytes, {FUNCTIONS} functions");
    bench_module(c, "large", &large, true);
}

criterion_group!(cache, benches);
criterion_main!(cache);
