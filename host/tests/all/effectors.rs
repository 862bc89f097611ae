//! Effector plugins end to end: the sqlite, http, kv and example counter plugins loaded from their
//! built libraries, granted in blueprints, called from real modules (`examples/rust`), across
//! restarts; the URL shortener example application; and the steps of docs/effector-plugins.md.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use weft_compiler::interface::{Function, Import, Interface};
use weft_host::services::{
    Blueprint, CallParams, Capabilities, Error, FailureKind, ModuleConfig, ModuleSpec, Services,
};
use weft_host::{Host, Options};
use weft_storage::Hash;

use crate::cli::{Weft, write};
use crate::services::examples;
use crate::support::default_plugin_dir;

/// A node's local state with the effector plugins of the plugin directory.
struct Node {
    dir: tempfile::TempDir,
    host: Host,
    services: Services,
    capabilities: Capabilities,
}

impl Node {
    fn new() -> Self {
        Self::open(tempfile::tempdir().unwrap(), None)
    }

    fn open(dir: tempfile::TempDir, config: Option<&str>) -> Self {
        let config = config.map(|text| {
            let path = dir.path().join("config.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let options =
            Options { data_dir: Some(dir.path().to_path_buf()), config, plugin_dirs: vec![default_plugin_dir()] };
        let host = Host::open(&options).expect("host opens");
        let capabilities = weft_host::effectors::load(&host.setup, &host.store).expect("effectors load");
        let cache = Arc::new(weft_compiler::Cache::new(host.store.clone(), host.cache.compiler().clone()));
        let services = Services::new(cache, dir.path(), "test-peer", capabilities.clone()).expect("services");
        Node { dir, host, services, capabilities }
    }

    /// Closes everything and opens the same data dir again, as a restart does.
    fn restart(self) -> Self {
        let Node { dir, host, services, capabilities } = self;
        drop((services, capabilities, host));
        Self::open(dir, None)
    }

    fn add(&self, name: &str, wasm: &[u8]) -> Hash {
        let info = weft_compiler::validate(wasm, &weft_compiler::Limits::default()).unwrap();
        let hash = self.host.store.put_blob(wasm).unwrap();
        assert_eq!(hash, info.hash);
        let record = weft_storage::ModuleRecord { hash, name: name.into(), size: wasm.len() as u64, added_ms: 0 };
        self.host.store.put_module(&record).unwrap();
        hash
    }

    fn example(&self, name: &str) -> Hash {
        self.add(name, &std::fs::read(examples().join(format!("{name}.wasm"))).unwrap())
    }

    fn blueprint(&self, modules: Vec<(&str, Hash, ModuleConfig)>) -> Hash {
        let modules = modules
            .into_iter()
            .map(|(name, module, config)| ModuleSpec { name: name.into(), module, config })
            .collect();
        self.services.add_blueprint(&Blueprint { name: "test".into(), modules }).unwrap()
    }

    fn call(&self, service: &str, function: &str, args: Value) -> Result<Value, Error> {
        self.services.call(service, function, &args, CallParams::default())
    }

    /// Keys of effector state in the node's store.
    fn effector_keys(&self) -> usize {
        self.host.store.backend().scan(b"eff/", None, 10_000).unwrap().len()
    }
}

fn granted(capabilities: &[&str]) -> ModuleConfig {
    ModuleConfig { capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(), ..ModuleConfig::default() }
}

fn configured(capability: &str, config: &str) -> ModuleConfig {
    let mut c = granted(&[capability]);
    c.capability_config.insert(capability.into(), config.into());
    c
}

/// The URL shortener: shortcode (pure), linkstore (granted `linkstore`'s config), shortener.
fn shortener(node: &Node, linkstore: ModuleConfig) -> Hash {
    node.blueprint(vec![
        ("shortcode", node.example("shortcode"), ModuleConfig::default()),
        ("linkstore", node.example("linkstore"), linkstore),
        ("shortener", node.example("shortener"), ModuleConfig::default()),
    ])
}

#[test]
fn a_module_without_the_grant_cannot_be_created() {
    let node = Node::new();
    assert!(node.capabilities.get("sqlite").is_some(), "the sqlite plugin was found: {}", node.capabilities.names());
    let id = shortener(&node, ModuleConfig::default());
    let e = node.services.create(&id, "owner", None).unwrap_err().to_string();
    assert!(e.starts_with("cannot create the service: module linkstore: import `sqlite."), "{e}");
    assert!(e.contains("not a capability granted to linkstore; grant it with capabilities = [\"sqlite\"]"), "{e}");
    assert!(node.services.list().unwrap().is_empty());
    // Granted to another module is not granted to this one.
    let id = node.blueprint(vec![
        ("shortcode", node.example("shortcode"), granted(&["sqlite"])),
        ("linkstore", node.example("linkstore"), ModuleConfig::default()),
        ("shortener", node.example("shortener"), ModuleConfig::default()),
    ]);
    let e = node.services.create(&id, "owner", None).unwrap_err().to_string();
    assert!(e.contains("module linkstore: import `sqlite."), "{e}");
    // A configuration the effector refuses fails creation too, naming module and capability.
    let id = shortener(&node, configured("sqlite", r#"{"max_rows":"many"}"#));
    let e = node.services.create(&id, "owner", None).unwrap_err().to_string();
    assert!(e.contains("module linkstore: capability `sqlite` refuses its configuration: "), "{e}");
    assert!(e.contains("fix [modules.capability_config.sqlite] in the blueprint"), "{e}");
}

#[test]
fn the_url_shortener_keeps_its_links_across_restarts() {
    let node = Node::new();
    let id = shortener(&node, granted(&["sqlite"]));
    let s = node.services.create(&id, "owner", Some("short")).unwrap();
    let code = node.call("short", "shorten", json!(["HTTPS://Example.com/a/long/path"])).unwrap();
    let code = code.as_str().unwrap().to_owned();
    assert_eq!(code.len(), 7);
    assert_eq!(node.call("short", "shorten", json!(["https://example.com/a/long/path"])).unwrap(), json!(code));
    assert_eq!(node.call("short", "resolve", json!([code])).unwrap(), json!("https://example.com/a/long/path"));
    assert_eq!(node.call("short", "resolve", json!(["nothing"])).unwrap(), json!(null));
    let e = node.call("short", "shorten", json!(["ftp://x"])).unwrap_err().to_string();
    assert!(e.contains("\"ftp://x\" is not an http:// or https:// URL"), "{e}");
    let db = node.services.data_dir(&s).unwrap().join(weft_plugin_sqlite_db());
    assert!(db.is_file(), "the database is in the service's data dir: {}", db.display());

    let node = node.restart();
    assert_eq!(node.call("short", "resolve", json!([code])).unwrap(), json!("https://example.com/a/long/path"));
    let stats = node.call("short", "stats", json!([code])).unwrap();
    assert_eq!(stats["hits"], json!(2), "{stats}");
    assert_eq!(node.call("short", "latest", json!([10])).unwrap().as_array().unwrap().len(), 1);
}

/// Where the sqlite plugin keeps a service's database (weft_plugin_sqlite::DB_FILE; the test
/// binary does not link plugin crates).
fn weft_plugin_sqlite_db() -> &'static str {
    "sqlite/service.db"
}

#[test]
fn sql_errors_come_back_to_the_module_as_values() {
    let node = Node::new();
    let id = node.blueprint(vec![("linkstore", node.example("linkstore"), granted(&["sqlite"]))]);
    let s = node.services.create(&id, "owner", None).unwrap();
    assert_eq!(node.call(&s, "store", json!(["c", "http://x/"])).unwrap(), json!("http://x/"));
    let e = node.call(&s, "check", json!(["SELEC 1"])).unwrap();
    assert!(e.as_str().unwrap().starts_with("sqlite.query: ") && e.as_str().unwrap().contains("syntax error"), "{e}");
    let e = node.call(&s, "check", json!(["SELECT * FROM nowhere"])).unwrap();
    assert!(e.as_str().unwrap().contains("no such table: nowhere"), "{e}");
    assert_eq!(node.call(&s, "check", json!(["SELECT 1"])).unwrap(), json!(null));
    // A module that turns the error into its own failure: its message, not a capability failure.
    let Err(Error::Failed(f)) = node.call(&s, "sql", json!(["DROP TABLE links; x"])) else {
        panic!("expected a failure")
    };
    assert!(matches!(&f.kind, FailureKind::Trap { message: Some(m), .. } if m.contains("sqlite.query")), "{f:?}");
    assert_eq!(
        node.call(&s, "sql", json!(["SELECT url FROM links"])).unwrap(),
        json!(["http://x/"]),
        "nothing was lost"
    );
}

/// A module exporting each of `functions` of capability `cap` with the same signature, forwarding
/// the argument bytes to the capability's import unchanged. WebAssembly text: the ABI by hand.
fn forwarder(node: &Node, cap: &str, functions: &[&str]) -> Vec<u8> {
    let capability = node.capabilities.get(cap).unwrap_or_else(|| panic!("no capability {cap}"));
    let iface = capability.interface();
    let mut wat = String::from("(module\n");
    for (i, f) in functions.iter().enumerate() {
        wat.push_str(&format!("  (import \"{cap}\" \"{f}\" (func $i{i} (param i32 i32) (result i64)))\n"));
    }
    wat.push_str(
        "  (memory (export \"memory\") 2)\n  (global $next (mut i32) (i32.const 1024))\n  \
         (func (export \"allocate\") (param $n i32) (result i32) (local $p i32) (local.set $p (global.get $next))\n    \
         (global.set $next (i32.add (local.get $p) (local.get $n))) (local.get $p))\n  \
         (func (export \"release\") (param i32 i32))\n",
    );
    for (i, f) in functions.iter().enumerate() {
        wat.push_str(&format!(
            "  (func (export \"{f}\") (param i32 i32) (result i64) (call $i{i} (local.get 0) (local.get 1)))\n"
        ));
    }
    wat.push(')');
    let declared: Vec<&Function> = functions.iter().map(|f| iface.function(f).unwrap()).collect();
    let module_iface = Interface {
        functions: declared.iter().map(|f| (*f).clone()).collect(),
        records: iface.records.clone(),
        imports: declared
            .iter()
            .map(|f| Import {
                module: cap.into(),
                name: f.name.clone(),
                params: f.params.clone(),
                results: f.results.clone(),
            })
            .collect(),
    };
    weft_compiler::interface::append_section(&wat::parse_str(&wat).unwrap(), &module_iface)
}

#[test]
fn one_service_cannot_read_another_services_database_or_keys() {
    let node = Node::new();
    let id = shortener(&node, granted(&["sqlite"]));
    let a = node.services.create(&id, "owner", None).unwrap();
    let b = node.services.create(&id, "owner", None).unwrap();
    let code = node.call(&a, "shorten", json!(["http://only-in-a.example/"])).unwrap();
    assert_eq!(node.call(&b, "resolve", json!([code])).unwrap(), json!(null), "b's database is its own");

    let kv = node.add("kv-user", &forwarder(&node, "kv", &["set", "get", "keys"]));
    let id = node.blueprint(vec![("user", kv, granted(&["kv"]))]);
    let (x, y) = (node.services.create(&id, "owner", None).unwrap(), node.services.create(&id, "owner", None).unwrap());
    assert_eq!(node.call(&x, "set", json!(["secret", "x's"])).unwrap(), json!(null));
    assert_eq!(node.call(&x, "get", json!(["secret"])).unwrap(), json!("x's"));
    assert_eq!(node.call(&y, "get", json!(["secret"])).unwrap(), json!(null), "y cannot read x's keys");
    assert_eq!(node.call(&y, "keys", json!(["", null, 100])).unwrap(), json!([]));
    assert_eq!(node.call(&x, "keys", json!(["", null, 100])).unwrap(), json!(["secret"]));

    // The keys are in the node's store and survive a restart; removing the service deletes them.
    let node = node.restart();
    assert_eq!(node.call(&x, "get", json!(["secret"])).unwrap(), json!("x's"));
    let before = node.effector_keys();
    assert!(before >= 2, "a key and its usage counter");
    let data = node.services.data_dir(&a).unwrap();
    node.services.remove(&x, "owner", None).unwrap();
    node.services.remove(&a, "owner", None).unwrap();
    assert_eq!(node.effector_keys(), 0, "x's keys are gone with it");
    assert!(!data.exists(), "a's database is gone with it");
    assert_eq!(node.call(&y, "get", json!(["secret"])).unwrap(), json!(null));
}

/// An HTTP server on 127.0.0.1 answering `hello from weft` to up to 50 requests, then stopping.
fn server() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(50).flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = (&stream).write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\nhello from weft");
            }
        });
        port
    })
}

#[test]
fn the_http_allow_list_is_enforced_per_module() {
    let node = Node::new();
    let fetcher = node.add("fetcher", &forwarder(&node, "http", &["get"]));
    let url = format!("http://127.0.0.1:{}/hi", server());
    let allowed = node.blueprint(vec![("fetcher", fetcher, configured("http", r#"{"allow_hosts":["127.0.0.1"]}"#))]);
    let s = node.services.create(&allowed, "owner", None).unwrap();
    let r = node.call(&s, "get", json!([url])).unwrap();
    assert_eq!((&r["error"], &r["status"]), (&json!(null), &json!(200)), "{r}");
    assert_eq!(r["body"], json!(b"hello from weft".to_vec()));

    let other = node.blueprint(vec![("fetcher", fetcher, configured("http", r#"{"allow_hosts":["example.com"]}"#))]);
    let s = node.services.create(&other, "owner", None).unwrap();
    let r = node.call(&s, "get", json!([url])).unwrap();
    let e = r["error"].as_str().unwrap();
    assert!(
        e.contains("host 127.0.0.1") && e.contains("not in the allow-list of module fetcher (allowed: example.com)"),
        "{e}"
    );
    assert_ne!(allowed, other, "the allow-list is part of the blueprint id");
    let none = node.blueprint(vec![("fetcher", fetcher, granted(&["http"]))]);
    let s = node.services.create(&none, "owner", None).unwrap();
    assert!(node.call(&s, "get", json!([url])).unwrap()["error"].as_str().unwrap().contains("(allowed: none)"));
    let typo = node.blueprint(vec![("fetcher", fetcher, configured("http", r#"{"allow_host":["127.0.0.1"]}"#))]);
    let e = node.services.create(&typo, "owner", None).unwrap_err().to_string();
    assert!(
        e.contains("module fetcher: capability `http` refuses its configuration") && e.contains("allow_host"),
        "{e}"
    );
}

#[test]
fn the_config_chooses_the_effector_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir, Some("[plugins]\neffectors = [\"kv\"]\n"));
    assert_eq!(node.capabilities.names(), "kv");
    let id = shortener(&node, granted(&["sqlite"]));
    let e = node.services.create(&id, "owner", None).unwrap_err().to_string();
    assert!(e.contains("capability `sqlite` is granted, but no effector on this node provides it (it has: kv)"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[plugins]\neffectors = [\"nosuch\"]\n").unwrap();
    let options = Options { data_dir: Some(dir.path().into()), config: None, plugin_dirs: vec![default_plugin_dir()] };
    let host = Host::open(&options).unwrap();
    let e = weft_host::effectors::load(&host.setup, &host.store).unwrap_err().to_string();
    assert!(e.starts_with("the config asks for effector plugin \"nosuch\", but it was not found (found: "), "{e}");
    drop(host);
    std::fs::write(dir.path().join("config.toml"), "[plugins.config.sqlite]\nmax_rows = \"lots\"\n").unwrap();
    let host = Host::open(&options).unwrap();
    let all = weft_host::effectors::load(&host.setup, &host.store).unwrap();
    assert!(
        all.get("sqlite").is_none() && all.get("kv").is_some(),
        "a found plugin that fails is left out: {}",
        all.names()
    );
}

/// docs/effector-plugins.md, as a newcomer runs it: the example plugin built next to `weft`, listed
/// by `weft plugins`, granted in examples/blueprints/visits.toml, a service created and called.
#[test]
fn the_effector_plugin_guide_runs_as_written() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let run = Command::new("bash").arg(repo.join("scripts/build-examples")).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let weft = Weft::new();
    // Step 3: `cargo build -p weft-plugin-counter` (cargo built it for this test) puts the library
    // where weft looks for plugins.
    let plugins = weft.ok(&["plugins"]);
    assert!(plugins.contains("counter") && plugins.contains("effector"), "{plugins}");
    // Step 4: grant it in a blueprint and create a service.
    let bp = repo.join("examples/blueprints/visits.toml");
    weft.ok(&["service", "create", bp.to_str().unwrap(), "--alias", "visits"]);
    assert_eq!(weft.ok(&["service", "call", "visits", "visit", r#"["/home"]"#]).trim(), "1");
    assert_eq!(weft.ok(&["service", "call", "visits", "visit", r#"["/home"]"#]).trim(), "2");
    assert_eq!(weft.ok(&["service", "call", "visits", "visits", r#"["/home"]"#]).trim(), "2");
    assert_eq!(weft.ok(&["service", "call", "visits", "visits", r#"["/about"]"#]).trim(), "0");
    // Without the grant, the service cannot be created.
    let text =
        std::fs::read_to_string(&bp).unwrap().replace("../../target", &repo.join("target").display().to_string());
    let ungranted = text
        .replace("capabilities = [\"counter\"]\n", "")
        .replace("[modules.capability_config.counter]\nmax = 1000\n", "");
    let file = write(&weft.path("ungranted.toml"), ungranted.as_bytes());
    let e = weft.fails(&["service", "create", file.to_str().unwrap()]);
    assert!(
        e.contains("module visits: import `counter.") && e.contains("grant it with capabilities = [\"counter\"]"),
        "{e}"
    );
    // The blueprint's max reaches the plugin.
    let capped = text.replace("max = 1000", "max = 1");
    let file = write(&weft.path("capped.toml"), capped.as_bytes());
    weft.ok(&["service", "create", file.to_str().unwrap(), "--alias", "capped"]);
    assert_eq!(weft.ok(&["service", "call", "capped", "visit", r#"["/"]"#]).trim(), "1");
    let e = weft.fails(&["service", "call", "capped", "visit", r#"["/"]"#]);
    assert!(e.contains("counter \\\"/\\\" would pass its max of 1") || e.contains("would pass its max of 1"), "{e}");
}

/// The example application from the command line, as the README shows it: each command is a new
/// process, so the links survive restarts.
#[test]
fn the_shortener_example_works_from_the_command_line() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let run = Command::new("bash").arg(repo.join("scripts/build-examples")).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let weft = Weft::new();
    let bp = repo.join("examples/blueprints/shortener.toml");
    weft.ok(&["service", "create", bp.to_str().unwrap(), "--alias", "short"]);
    let code = weft.ok(&["service", "call", "short", "shorten", r#"["https://example.com/a/long/path"]"#]);
    let code: String = serde_json::from_str(code.trim()).unwrap();
    let url = weft.ok(&["service", "call", "short", "resolve", &json!([code]).to_string()]);
    assert_eq!(url.trim(), r#""https://example.com/a/long/path""#);
    let stats: Value =
        serde_json::from_str(&weft.ok(&["service", "call", "short", "stats", &json!([code]).to_string()])).unwrap();
    assert_eq!(stats["hits"], json!(1));
    let e = weft.fails(&["service", "call", "short", "shorten", r#"["not a url"]"#]);
    assert!(e.contains("is not an http:// or https:// URL"), "{e}");
    let id = weft.ok(&["blueprint", "add", bp.to_str().unwrap()]).trim().to_owned();
    let shown = weft.ok(&["blueprint", "show", &id]);
    assert!(
        shown.contains("capabilities sqlite") && shown.contains(r#"config       sqlite {"max_rows":1000}"#),
        "{shown}"
    );
}
