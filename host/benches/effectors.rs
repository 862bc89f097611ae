//! One SQLite insert + select through a service call, against the same statements run directly
//! with rusqlite.
//!
//!   cargo bench -p weft-host --bench effectors
//!
//! - `insert_select/service_call`: `Services::call_bytes` of the example module `linkstore`'s
//!   `store(code, url)`, granted the `sqlite` plugin (loaded from its `.so`): the module runs
//!   `INSERT OR IGNORE INTO links ...` and `SELECT url FROM links WHERE code = ?1` through two
//!   capability calls (copy out of the module, check the arguments, cross the plugin ABI, run,
//!   encode the rows, check the results, copy into the module), then returns the URL.
//! - `insert_select/service_call_json`: the same through `Services::call`, JSON in and out.
//! - `insert_select/rusqlite_direct`: the same two statements on a rusqlite connection with the
//!   plugin's settings (WAL, `synchronous = NORMAL`, cached prepared statements), same schema.
//!
//! - `select/service_call` vs `select/rusqlite_direct`: one SELECT alone (through `linkstore.check`,
//!   one capability call), where no file write hides the cost of the path.
//!
//! Target: the insert + select service call within 2× the direct time.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use weft_host::services::{Blueprint, CallParams, ModuleConfig, ModuleSpec, Services};
use weft_host::{Host, Options};
use weft_storage::ModuleRecord;

fn examples() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("examples-wasm");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-examples");
    let run = std::process::Command::new("bash").arg(&script).arg(&out).output().expect("bash runs");
    assert!(run.status.success(), "scripts/build-examples failed: {}", String::from_utf8_lossy(&run.stderr));
    out
}

/// Benches run from target/release/deps, where cargo builds the plugin dev-dependencies.
fn plugin_dirs() -> Vec<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    vec![deps.clone(), deps.parent().unwrap().to_path_buf()]
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS links (
                 code TEXT PRIMARY KEY,
                 url TEXT NOT NULL,
                 hits INTEGER NOT NULL DEFAULT 0,
                 created_ms INTEGER NOT NULL
               )";

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { data_dir: Some(dir.path().to_path_buf()), config: None, plugin_dirs: plugin_dirs() };
    let host = Host::open(&options).expect("host opens");
    let capabilities = weft_host::effectors::load(&host.setup, &host.store).expect("effectors");
    assert!(capabilities.get("sqlite").is_some(), "the sqlite plugin was not found (cargo bench builds it)");
    let cache = Arc::new(weft_compiler::Cache::new(host.store.clone(), host.cache.compiler().clone()));
    let services = Services::new(cache, dir.path(), "bench-peer", capabilities).unwrap();
    let wasm = std::fs::read(examples().join("linkstore.wasm")).unwrap();
    let hash = host.store.put_blob(&wasm).unwrap();
    host.store
        .put_module(&ModuleRecord { hash, name: "linkstore".into(), size: wasm.len() as u64, added_ms: 0 })
        .unwrap();
    let config = ModuleConfig { capabilities: ["sqlite".to_string()].into(), ..ModuleConfig::default() };
    let blueprint = Blueprint {
        name: "bench".into(),
        modules: vec![ModuleSpec { name: "linkstore".into(), module: hash, config }],
    };
    let id = services.add_blueprint(&blueprint).unwrap();
    let service = services.create(&id, "owner", None).unwrap();
    let params = Arc::new(CallParams::default());
    let url = "https://example.com/a/long/path".to_string();
    let counter = AtomicU64::new(0);
    let next = || format!("c{:012}", counter.fetch_add(1, Ordering::Relaxed));

    // Warm up: the module creates its table on the first call.
    let args = postcard::to_stdvec(&(next(), url.clone())).unwrap();
    let out = services.call_bytes(&service, "store", &args, &params).unwrap();
    assert_eq!(postcard::from_bytes::<String>(&out).unwrap(), url);

    let direct_dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(direct_dir.path().join("direct.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "wal").unwrap();
    conn.pragma_update(None, "synchronous", "normal").unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    conn.execute_batch(SCHEMA).unwrap();

    let mut g = c.benchmark_group("insert_select");
    g.bench_function("service_call", |b| {
        b.iter(|| {
            let args = postcard::to_stdvec(&(next(), &url)).unwrap();
            black_box(services.call_bytes(&service, "store", &args, &params).unwrap())
        });
    });
    g.bench_function("service_call_json", |b| {
        b.iter(|| {
            let args = serde_json::json!([next(), url]);
            black_box(services.call(&service, "store", &args, CallParams::default()).unwrap())
        });
    });
    g.bench_function("rusqlite_direct", |b| {
        b.iter(|| {
            let code = next();
            conn.prepare_cached("INSERT OR IGNORE INTO links (code, url, created_ms) VALUES (?1, ?2, ?3)")
                .unwrap()
                .execute(rusqlite::params![code, url, now_ms()])
                .unwrap();
            let stored: String = conn
                .prepare_cached("SELECT url FROM links WHERE code = ?1")
                .unwrap()
                .query_row([&code], |r| r.get(0))
                .unwrap();
            black_box(stored)
        });
    });
    g.finish();

    // Without the write: one capability call (a SELECT through `linkstore.check`) against the
    // SELECT alone, to show the cost of the path when no file I/O hides it.
    let sql = "SELECT url FROM links WHERE code = 'c000000000001'";
    let mut g = c.benchmark_group("select");
    g.bench_function("service_call", |b| {
        let args = postcard::to_stdvec(&(sql,)).unwrap();
        b.iter(|| black_box(services.call_bytes(&service, "check", &args, &params).unwrap()));
    });
    g.bench_function("rusqlite_direct", |b| {
        b.iter(|| {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            let stored: Option<String> = stmt.query_row([], |r| r.get(0)).ok();
            black_box(stored)
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
