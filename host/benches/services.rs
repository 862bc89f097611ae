//! Service call and creation costs, with real modules built from source (`scripts/build-examples`)
//! on a real sled store.
//!
//!   cargo bench -p weft-host --bench services
//!
//! - `call_greet_json`: `Services::call` of the Rust example `greeting.greet("Ann")`, JSON in and
//!   JSON out (encode, allocate, copy, call, copy out, release, check, decode);
//! - `raw_wasmtime_greet`: the same function called with wasmtime's typed API by hand (allocate,
//!   write, call, read, release; postcard bytes prepared once): the floor;
//! - `stats_direct` / `facade_hop`: `textstats.stats(words)` called directly, and through the
//!   facade's `hop`, which forwards it with one module-to-module call (bytes in, bytes out). Their
//!   difference is the cost of one cross-module hop;
//! - `create_3_modules` / `link_3_modules`: a service of three modules (types, textstats, facade)
//!   from a warm cache: the full `create` (instantiate, make its directory, store its record) and
//!   linking alone.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use weft_host::services::{Blueprint, CallParams, Capabilities, ModuleConfig, ModuleSpec, Services};
use weft_host::{Host, Options};
use weft_storage::{Hash, ModuleRecord};

fn examples() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("examples-wasm");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-examples");
    let run = std::process::Command::new("bash").arg(&script).arg(&out).output().expect("bash runs");
    assert!(run.status.success(), "scripts/build-examples failed: {}", String::from_utf8_lossy(&run.stderr));
    out
}

fn plugin_dir() -> PathBuf {
    // Benches run from target/release/deps, where cargo builds the plugins they depend on.
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

struct Bench {
    _dir: tempfile::TempDir,
    services: Services,
    store: weft_storage::Store,
    engine: wasmtime::Engine,
    wasm: PathBuf,
}

impl Bench {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let options =
            Options { data_dir: Some(dir.path().to_path_buf()), config: None, plugin_dirs: vec![plugin_dir()] };
        let host = Host::open(&options).expect("host opens");
        let cache = Arc::new(weft_compiler::Cache::new(host.store.clone(), host.cache.compiler().clone()));
        let engine = cache.compiler().engine().clone();
        let services = Services::new(cache, dir.path(), "bench-peer", Capabilities::default()).unwrap();
        Bench { _dir: dir, services, store: host.store.clone(), engine, wasm: examples() }
    }

    fn module(&self, name: &str) -> Hash {
        let bytes = std::fs::read(self.wasm.join(format!("{name}.wasm"))).unwrap();
        let hash = self.store.put_blob(&bytes).unwrap();
        self.store
            .put_module(&ModuleRecord { hash, name: name.into(), size: bytes.len() as u64, added_ms: 0 })
            .unwrap();
        hash
    }

    fn blueprint(&self, modules: &[&str]) -> Hash {
        let modules = modules
            .iter()
            .map(|m| ModuleSpec { name: (*m).into(), module: self.module(m), config: ModuleConfig::default() })
            .collect();
        self.services.add_blueprint(&Blueprint { name: "bench".into(), modules }).unwrap()
    }

    fn service(&self, modules: &[&str]) -> String {
        self.services.create(&self.blueprint(modules), "owner", None).unwrap()
    }
}

/// greeting.greet called through wasmtime's typed API, the ABI done by hand.
fn raw_greet(engine: &wasmtime::Engine, wasm: &[u8]) -> impl FnMut() -> Vec<u8> + use<> {
    use wasmtime_wasi::p1::{self, WasiP1Ctx};
    let module = wasmtime::Module::new(engine, wasm).unwrap();
    let mut linker: wasmtime::Linker<WasiP1Ctx> = wasmtime::Linker::new(engine);
    p1::add_to_linker_sync(&mut linker, |c| c).unwrap();
    linker.func_wrap("weft", "call_parameters", || 0i64).unwrap();
    linker.func_wrap("weft", "set_error", |_: i32, _: i32| {}).unwrap();
    let mut store = wasmtime::Store::new(engine, wasmtime_wasi::WasiCtxBuilder::new().build_p1());
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    let allocate = instance.get_typed_func::<i32, i32>(&mut store, "allocate").unwrap();
    let release = instance.get_typed_func::<(i32, i32), ()>(&mut store, "release").unwrap();
    let greet = instance.get_typed_func::<(i32, i32), i64>(&mut store, "greet").unwrap();
    let args = postcard::to_stdvec(&("Ann",)).unwrap();
    move || {
        let ptr = allocate.call(&mut store, args.len() as i32).unwrap();
        memory.write(&mut store, ptr as usize, &args).unwrap();
        let packed = greet.call(&mut store, (ptr, args.len() as i32)).unwrap() as u64;
        let (rptr, rlen) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        let out = memory.data(&store)[rptr..rptr + rlen].to_vec();
        release.call(&mut store, (rptr as i32, rlen as i32)).unwrap();
        out
    }
}

fn benches(c: &mut Criterion) {
    let b = Bench::new();
    let mut g = c.benchmark_group("services");

    let greeting = b.service(&["greeting"]);
    let args = json!(["Ann"]);
    assert_eq!(b.services.call(&greeting, "greet", &args, CallParams::default()).unwrap(), json!("Hello, Ann!"));
    g.bench_function("call_greet_json", |bch| {
        bch.iter(|| b.services.call(&greeting, "greet", black_box(&args), CallParams::default()).unwrap())
    });
    let mut raw = raw_greet(&b.engine, &std::fs::read(b.wasm.join("greeting.wasm")).unwrap());
    assert_eq!(raw(), postcard::to_stdvec(&"Hello, Ann!").unwrap());
    g.bench_function("raw_wasmtime_greet", |bch| bch.iter(&mut raw));

    let words = postcard::to_stdvec(&(vec!["a", "bb", "ccc"],)).unwrap();
    let params = Arc::new(CallParams::default());
    let direct = b.service(&["textstats"]);
    let facade = b.service(&["textstats", "facade"]);
    let via_direct = b.services.call_bytes(&direct, "stats", &words, &params).unwrap();
    assert_eq!(via_direct, b.services.call_bytes(&facade, "hop", &words, &params).unwrap());
    g.bench_function("stats_direct", |bch| {
        bch.iter(|| b.services.call_bytes(&direct, "stats", black_box(&words), &params).unwrap())
    });
    g.bench_function("facade_hop", |bch| {
        bch.iter(|| b.services.call_bytes(&facade, "hop", black_box(&words), &params).unwrap())
    });

    let three = b.blueprint(&["types", "textstats", "facade"]);
    b.services.check_blueprint(&three).unwrap(); // warms the in-process module cache
    g.bench_function("link_3_modules", |bch| bch.iter(|| b.services.check_blueprint(black_box(&three)).unwrap()));
    // Each created service is removed again, outside the timed part: thousands of live
    // instances would exhaust the address space wasmtime reserves for their memories.
    g.bench_function("create_3_modules", |bch| {
        bch.iter_custom(|n| {
            let mut timed = std::time::Duration::ZERO;
            for _ in 0..n {
                let start = std::time::Instant::now();
                let id = b.services.create(black_box(&three), "owner", None).unwrap();
                timed += start.elapsed();
                b.services.remove(&id, "owner", None).unwrap();
            }
            timed
        })
    });
    g.finish();
}

criterion_group! {
    name = group;
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(group);
