//! Services end to end, with real modules built from source (`examples/rust`, by
//! `scripts/build-examples`), real sled files and real WASI directories.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use weft_compiler::interface::{Function, Interface, Type};
use weft_host::services::{
    Blueprint, CallParams, Capabilities, Capability, CapabilityCall, Error, FailureKind, ModuleConfig, ModuleSpec,
    Services, Tetraplet,
};
use weft_host::{Host, Options};
use weft_storage::{Hash, ModuleRecord};

use crate::support::default_plugin_dir;

/// The example modules, built once per test run. A failed build fails the tests that need it,
/// with the script's message (e.g. what to install).
pub fn examples() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("examples-wasm");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-examples");
        let run = std::process::Command::new("bash").arg(&script).arg(&out).output().expect("bash runs");
        assert!(
            run.status.success(),
            "scripts/build-examples failed:\n{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        out
    })
}

/// A node's local state in a temporary data dir (sled, real files).
#[derive(Debug)]
pub struct Node {
    pub dir: tempfile::TempDir,
    pub host: Host,
    pub services: Services,
}

impl Default for Node {
    fn default() -> Self {
        Self::open(tempfile::tempdir().unwrap(), Capabilities::default())
    }
}

impl Node {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capabilities(capabilities: Capabilities) -> Self {
        Self::open(tempfile::tempdir().unwrap(), capabilities)
    }

    pub fn open(dir: tempfile::TempDir, capabilities: Capabilities) -> Self {
        let options =
            Options { data_dir: Some(dir.path().to_path_buf()), config: None, plugin_dirs: vec![default_plugin_dir()] };
        let host = Host::open(&options).expect("host opens");
        let cache = Arc::new(weft_compiler::Cache::new(host.store.clone(), host.cache.compiler().clone()));
        let services = Services::new(cache, dir.path(), "test-peer", capabilities).expect("services");
        Node { dir, host, services }
    }

    /// Closes everything and opens the same data dir again, as a restart does.
    pub fn restart(self) -> Self {
        let Node { dir, host, services } = self;
        drop(services);
        drop(host);
        Self::open(dir, Capabilities::default())
    }

    /// Stores Wasm bytes as a module.
    pub fn add_bytes(&self, name: &str, wasm: &[u8]) -> Hash {
        let info = weft_compiler::validate(wasm, &weft_compiler::Limits::default())
            .unwrap_or_else(|e| panic!("module {name} is invalid: {e}"));
        let hash = self.host.store.put_blob(wasm).unwrap();
        assert_eq!(hash, info.hash);
        let record = ModuleRecord { hash, name: name.into(), size: wasm.len() as u64, added_ms: 0 };
        self.host.store.put_module(&record).unwrap();
        hash
    }

    /// Stores an example module (`examples/rust/<name>`).
    pub fn add_example(&self, name: &str) -> Hash {
        let wasm = std::fs::read(examples().join(format!("{name}.wasm"))).unwrap();
        self.add_bytes(name, &wasm)
    }

    /// Stores a blueprint of example modules `(name, config)`, in order; returns its id.
    pub fn blueprint(&self, name: &str, modules: &[(&str, ModuleConfig)]) -> Hash {
        let modules = modules
            .iter()
            .map(|(m, config)| ModuleSpec { name: (*m).into(), module: self.add_example(m), config: config.clone() })
            .collect();
        self.services.add_blueprint(&Blueprint { name: name.into(), modules }).unwrap()
    }

    /// A service of the example modules, default configs.
    pub fn service(&self, modules: &[&str]) -> String {
        let modules: Vec<_> = modules.iter().map(|m| (*m, ModuleConfig::default())).collect();
        let id = self.blueprint("test", &modules);
        self.services.create(&id, "owner", None).unwrap()
    }

    pub fn call(&self, service: &str, function: &str, args: Value) -> Result<Value, Error> {
        self.services.call(service, function, &args, CallParams::default())
    }
}

fn failure(e: Error) -> weft_host::services::Failure {
    match e {
        Error::Failed(f) => f,
        other => panic!("expected a failure inside a module, got {other:?}"),
    }
}

#[test]
fn every_type_round_trips_through_json_module_json() {
    let node = Node::new();
    let s = node.service(&["types"]);
    let cases: &[(&str, Value)] = &[
        ("echo_bool", json!(true)),
        ("echo_bool", json!(false)),
        ("echo_s8", json!(-128)),
        ("echo_s8", json!(127)),
        ("echo_s16", json!(-32768)),
        ("echo_s32", json!(i32::MIN)),
        ("echo_s64", json!(i64::MIN)),
        ("echo_s64", json!(i64::MAX)),
        ("echo_u8", json!(255)),
        ("echo_u16", json!(65535)),
        ("echo_u32", json!(u32::MAX)),
        ("echo_u64", json!(u64::MAX)),
        ("echo_f32", json!(0.1)),
        ("echo_f32", json!("NaN")),
        ("echo_f64", json!(-1.5e300)),
        ("echo_f64", json!("-inf")),
        ("echo_string", json!("héllo, wörld ✓")),
        ("echo_string", json!("")),
        ("echo_bytes", json!([0, 1, 254, 255])),
        ("echo_bytes", json!([])),
        ("echo_optional", json!(null)),
        ("echo_optional", json!("x")),
        ("echo_array", json!([1, -2, 300, i32::MAX])),
    ];
    for (function, value) in cases {
        let got = node.call(&s, function, json!([value])).unwrap_or_else(|e| panic!("{function}({value}): {e}"));
        assert_eq!(&got, value, "{function}");
    }
    let everything = json!({
        "b": true, "s8": -1, "s16": -300, "s32": 70000, "s64": -5_000_000_000i64,
        "u8": 200, "u16": 60000, "u32": 4_000_000_000u32, "u64": 18_000_000_000_000_000_000u64,
        "f32": 1.5, "f64": 2.25, "string": "s", "bytes": [9, 8], "optional": null, "array": [1, 2],
        "point": {"x": 1.0, "y": -1.0}, "points": [{"x": 0.5, "y": 0.25}], "maybe_point": {"x": 3.0, "y": 4.0},
        "nested": [null, [1, 2], []]
    });
    assert_eq!(node.call(&s, "echo_record", json!({ "v": everything })).unwrap(), everything);
}

#[test]
fn a_call_sees_its_call_parameters() {
    let node = Node::new();
    let s = node.service(&["types"]);
    let tetraplet =
        Tetraplet { peer_pk: "p".into(), service_id: "src".into(), function_name: "f".into(), lens: ".$.a".into() };
    let params = CallParams {
        particle_id: "particle-1".into(),
        init_peer_id: "init".into(),
        timestamp: 1_700_000_000_000,
        ttl: 30_000,
        tetraplets: vec![vec![tetraplet]],
        ..CallParams::default()
    };
    let got = node.services.call(&s, "whoami", &json!([]), params).unwrap();
    assert_eq!(
        got,
        json!({
            "particle_id": "particle-1", "init_peer_id": "init", "timestamp": 1_700_000_000_000u64, "ttl": 30000,
            "service_id": s, "function_name": "whoami", "host_peer_id": "test-peer", "service_owner": "owner",
            "tetraplets": [[{"peer_pk": "p", "service_id": "src", "function_name": "f", "lens": ".$.a"}]]
        })
    );
}

#[test]
fn the_facade_calls_a_pure_module_with_records_and_arrays() {
    let node = Node::new();
    let s = node.service(&["textstats", "facade"]);
    let report = node.call(&s, "analyze", json!(["the cat and the hat and the bat"])).unwrap();
    assert_eq!(report["stats"]["words"], json!(8));
    assert_eq!(report["top"][0], json!({"word": "the", "count": 3}), "{report}");
    let stats = node.call(&s, "hop", json!([["a", "bbb", "cc"]])).unwrap();
    assert_eq!(stats["words"], json!(3));
    assert_eq!(stats["longest"], json!("bbb"), "{stats}");
    // The API is the facade's only.
    let iface = node.services.interface(&s).unwrap();
    assert!(iface.function("analyze").is_some() && iface.function("stats").is_none());
}

#[test]
fn a_wrong_shape_argument_is_a_clear_error_and_nothing_runs() {
    let node = Node::new();
    let s = node.service(&["types"]);
    let e = node.call(&s, "echo_u8", json!([300])).unwrap_err().to_string();
    assert_eq!(e, "echo_u8: parameter \"v\": expected u8 (0..=255), got 300");
    let e = node.call(&s, "echo_record", json!([{"b": true}])).unwrap_err().to_string();
    assert!(e.starts_with("echo_record: parameter \"v\""), "{e}");
    let e = node.call(&s, "echo_string", json!([1, 2])).unwrap_err().to_string();
    assert!(e.contains("expected 1 argument"), "{e}");
    let e = node.call(&s, "frobnicate", json!([])).unwrap_err().to_string();
    assert!(e.starts_with("the service has no function frobnicate; it has: "), "{e}");
    assert_eq!(node.call(&s, "echo_u8", json!([7])).unwrap(), json!(7));
}

#[test]
fn an_import_nothing_provides_fails_creation_naming_module_and_import() {
    let node = Node::new();
    // The facade imports from `textstats`, which is not in this blueprint.
    let id = node.blueprint("broken", &[("facade", ModuleConfig::default())]);
    let e = node.services.create(&id, "owner", None).unwrap_err().to_string();
    assert!(e.starts_with("cannot create the service: module facade: import `textstats."), "{e}");
    assert!(e.contains("not an earlier module of the blueprint"), "{e}");
    // Order matters: an import resolves to an *earlier* module.
    let id = node.blueprint("reversed", &[("facade", ModuleConfig::default()), ("textstats", ModuleConfig::default())]);
    let e = node.services.create(&id, "owner", None).unwrap_err().to_string();
    assert!(e.contains("module facade: import `textstats."), "{e}");
    assert!(node.services.list().unwrap().is_empty(), "a failed creation leaves no service");
}

/// A module importing `kv.get(key: string) -> optional<string>` from a capability, and exporting
/// `lookup(key: string) -> optional<string>` that forwards to it. WebAssembly text: the ABI by hand.
fn kv_user() -> Vec<u8> {
    let wat = r#"(module
      (import "kv" "get" (func $get (param i32 i32) (result i64)))
      (memory (export "memory") 1)
      (global $next (mut i32) (i32.const 1024))
      (func $allocate (export "allocate") (param $n i32) (result i32)
        (local $p i32) (local.set $p (global.get $next))
        (global.set $next (i32.add (local.get $p) (local.get $n))) (local.get $p))
      (func (export "release") (param i32 i32))
      ;; The arguments of lookup are exactly the arguments of kv.get; its results are get's.
      (func (export "lookup") (param $p i32) (param $n i32) (result i64)
        (call $get (local.get $p) (local.get $n))))"#;
    let iface = Interface {
        functions: vec![Function {
            name: "lookup".into(),
            params: vec![("key".into(), Type::String)],
            results: vec![Type::optional(Type::String)],
        }],
        imports: vec![weft_compiler::interface::Import {
            module: "kv".into(),
            name: "get".into(),
            params: vec![("key".into(), Type::String)],
            results: vec![Type::optional(Type::String)],
        }],
        ..Interface::default()
    };
    weft_compiler::interface::append_section(&wat::parse_str(wat).unwrap(), &iface)
}

/// A capability `kv` with `get(key) -> optional<string>` that answers `<service>/<module>/<key>`.
struct Kv(Interface);

impl Kv {
    fn new() -> Arc<Self> {
        Arc::new(Kv(Interface {
            functions: vec![Function {
                name: "get".into(),
                params: vec![("key".into(), Type::String)],
                results: vec![Type::optional(Type::String)],
            }],
            ..Interface::default()
        }))
    }
}

impl Capability for Kv {
    fn name(&self) -> &str {
        "kv"
    }
    fn interface(&self) -> &Interface {
        &self.0
    }
    fn call(&self, call: &CapabilityCall<'_>, args: &[u8]) -> Result<Vec<u8>, String> {
        let key: String = postcard::from_bytes(args).map_err(|e| e.to_string())?;
        if key == "boom" {
            return Err("no such table".into());
        }
        let value = Some(format!("{}/{}/{key}", call.service_id.len(), call.module));
        Ok(postcard::to_stdvec(&value).unwrap())
    }
}

#[test]
fn a_capability_must_be_granted_and_provided() {
    let mut caps = Capabilities::default();
    caps.add(Kv::new());
    let node = Node::with_capabilities(caps);
    let module = node.add_bytes("user", &kv_user());
    let blueprint = |capabilities: &[&str]| {
        let config = ModuleConfig {
            capabilities: capabilities.iter().map(|c| (*c).into()).collect(),
            ..ModuleConfig::default()
        };
        let b = Blueprint { name: "kv".into(), modules: vec![ModuleSpec { name: "user".into(), module, config }] };
        node.services.add_blueprint(&b).unwrap()
    };
    let e = node.services.create(&blueprint(&[]), "owner", None).unwrap_err().to_string();
    assert!(e.contains("module user: import `kv.get`"), "{e}");
    assert!(e.contains("not a capability granted to user; grant it with capabilities = [\"kv\"]"), "{e}");

    let s = node.services.create(&blueprint(&["kv"]), "owner", None).unwrap();
    assert_eq!(node.call(&s, "lookup", json!(["k"])).unwrap(), json!("32/user/k"));
    let f = failure(node.call(&s, "lookup", json!(["boom"])).unwrap_err());
    assert_eq!(f.kind, FailureKind::Capability("no such table".into()));
    assert_eq!(node.call(&s, "lookup", json!(["again"])).unwrap(), json!("32/user/again"));

    // Granted, but this node has no effector providing it.
    let bare = Node::new();
    let module = bare.add_bytes("user", &kv_user());
    let config = ModuleConfig { capabilities: ["kv".to_string()].into(), ..ModuleConfig::default() };
    let b = Blueprint { name: "kv".into(), modules: vec![ModuleSpec { name: "user".into(), module, config }] };
    let id = bare.services.add_blueprint(&b).unwrap();
    let e = bare.services.create(&id, "owner", None).unwrap_err().to_string();
    assert!(e.contains("capability `kv` is granted, but no effector on this node provides it"), "{e}");
}

#[test]
fn an_import_with_other_types_than_its_target_fails_creation() {
    let node = Node::new();
    // Declares textstats.stats as (words: array<u8>) -> u32: not what textstats exports.
    let wat = r#"(module
      (import "textstats" "stats" (func (param i32 i32) (result i64)))
      (memory (export "memory") 1)
      (func (export "allocate") (param i32) (result i32) i32.const 0)
      (func (export "release") (param i32 i32)))"#;
    let iface = Interface {
        imports: vec![weft_compiler::interface::Import {
            module: "textstats".into(),
            name: "stats".into(),
            params: vec![("words".into(), Type::array(Type::U8))],
            results: vec![Type::U32],
        }],
        ..Interface::default()
    };
    let liar = node.add_bytes("liar", &weft_compiler::interface::append_section(&wat::parse_str(wat).unwrap(), &iface));
    let textstats = node.add_example("textstats");
    let b = Blueprint {
        name: "mismatch".into(),
        modules: vec![
            ModuleSpec { name: "textstats".into(), module: textstats, config: ModuleConfig::default() },
            ModuleSpec { name: "liar".into(), module: liar, config: ModuleConfig::default() },
        ],
    };
    let id = node.services.add_blueprint(&b).unwrap();
    let e = node.services.create(&id, "owner", None).unwrap_err().to_string();
    assert!(e.contains("module liar: import `textstats.stats`: declared as (words: array<u8>) -> (u32)"), "{e}");
}

#[test]
fn runaway_calls_fail_and_the_service_stays_usable() {
    let node = Node::new();
    let config = ModuleConfig { max_memory: 16 << 20, time_limit_ms: 200, ..ModuleConfig::default() };
    let id = node.blueprint("runaway", &[("runaway", config)]);
    let s = node.services.create(&id, "owner", None).unwrap();
    let ok = |node: &Node| assert_eq!(node.call(&s, "ok", json!([])).unwrap(), json!("ok"));
    ok(&node);

    let f = failure(node.call(&s, "spin", json!([])).unwrap_err());
    assert_eq!((f.module.as_str(), f.function.as_str()), ("runaway", "spin"));
    assert_eq!(f.kind, FailureKind::Timeout { limit_ms: 200 });
    assert!(f.to_string().starts_with("runaway.spin: ran past its time limit of 200 ms"), "{f}");
    ok(&node);

    let f = failure(node.call(&s, "hog", json!([64])).unwrap_err());
    assert!(matches!(f.kind, FailureKind::OutOfMemory { limit, .. } if limit == 16 << 20), "{f:?}");
    assert!(f.to_string().contains("ran out of memory"), "{f}");
    ok(&node);
    assert_eq!(node.call(&s, "hog", json!([4])).unwrap(), json!(4), "4 MiB fits in 16 MiB");

    let f = failure(node.call(&s, "boom", json!([])).unwrap_err());
    match &f.kind {
        FailureKind::Trap { message: Some(m), .. } => assert!(m.contains("panicked at") && m.contains("boom"), "{m}"),
        other => panic!("{other:?}"),
    }
    ok(&node);

    let f = failure(node.call(&s, "recurse", json!([u64::MAX])).unwrap_err());
    assert_eq!(f.kind, FailureKind::StackOverflow, "{f}");
    ok(&node);

    // A module's own error.
    let types = node.service(&["types"]);
    let f = failure(node.call(&types, "fail", json!(["nope"])).unwrap_err());
    assert!(f.to_string().starts_with("types.fail: failed: nope"), "{f}");
}

#[test]
fn a_failure_in_a_callee_names_the_path() {
    let node = Node::new();
    let short = ModuleConfig { time_limit_ms: 50, ..ModuleConfig::default() };
    let id = node.blueprint("runaway-inside", &[("runaway", short), ("facade", ModuleConfig::default())]);
    // The facade imports from `textstats`, not `runaway`: creation fails; then the right order.
    assert!(node.services.create(&id, "o", None).is_err());
    let s = node.service(&["textstats", "facade"]);
    assert_eq!(node.call(&s, "hop", json!([[]])).unwrap()["words"], json!(0));
}

#[test]
fn a_module_breaking_the_abi_fails_its_call_not_the_host() {
    let node = Node::new();
    // `bad` returns a range far outside its memory; `good` returns nothing.
    let wat = r#"(module
      (memory (export "memory") 1)
      (func (export "allocate") (param i32) (result i32) i32.const 16)
      (func (export "release") (param i32 i32))
      (func (export "bad") (param i32 i32) (result i64) i64.const 0x7fff000000000010)
      (func (export "good") (param i32 i32) (result i64) i64.const 0))"#;
    let f = |name: &str, results: Vec<Type>| Function { name: name.into(), params: vec![], results };
    let iface = Interface { functions: vec![f("bad", vec![Type::String]), f("good", vec![])], ..Interface::default() };
    let module =
        node.add_bytes("abi", &weft_compiler::interface::append_section(&wat::parse_str(wat).unwrap(), &iface));
    let b = Blueprint {
        name: "abi".into(),
        modules: vec![ModuleSpec { name: "abi".into(), module, config: ModuleConfig::default() }],
    };
    let id = node.services.add_blueprint(&b).unwrap();
    let s = node.services.create(&id, "o", None).unwrap();
    let f = failure(node.call(&s, "bad", json!([])).unwrap_err());
    assert!(matches!(f.kind, FailureKind::Abi(_)), "{f}");
    assert!(f.to_string().contains("outside its memory"), "{f}");
    assert_eq!(node.call(&s, "good", json!([])).unwrap(), json!(null));
}

fn notes_config(dir: &str) -> ModuleConfig {
    let mut config = ModuleConfig::default();
    config.mapped_dirs.insert("/data".into(), dir.into());
    config
}

#[test]
fn a_restart_keeps_services_aliases_and_their_files() {
    let node = Node::new();
    let id = node.blueprint("notes", &[("notes", notes_config("notes"))]);
    let s = node.services.create(&id, "owner", Some("my-notes")).unwrap();
    assert_eq!(node.call("my-notes", "add", json!(["first"])).unwrap(), json!(1));
    assert_eq!(node.call(&s, "add", json!(["second"])).unwrap(), json!(2));
    let data = node.services.data_dir(&s).unwrap();
    assert!(data.join("notes/notes.txt").is_file(), "mapped into the service's own directory");

    let node = node.restart();
    let list = node.services.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].id.as_str(), list[0].aliases.as_slice()), (s.as_str(), ["my-notes".to_string()].as_slice()));
    assert_eq!(node.services.data_dir("my-notes").unwrap(), data);
    assert_eq!(node.call("my-notes", "list", json!([])).unwrap(), json!(["first", "second"]));
    assert_eq!(node.call(&s, "add", json!(["third"])).unwrap(), json!(3));

    node.services.remove("my-notes", "owner", None).unwrap();
    assert!(!data.exists(), "remove deletes the service's files");
    assert!(matches!(node.call(&s, "list", json!([])), Err(Error::NoService(_))));
}

#[test]
fn two_services_of_one_blueprint_do_not_see_each_others_files() {
    let node = Node::new();
    let id = node.blueprint("notes", &[("notes", notes_config("."))]);
    let a = node.services.create(&id, "owner", None).unwrap();
    let b = node.services.create(&id, "owner", None).unwrap();
    assert_ne!(a, b);
    node.call(&a, "add", json!(["only in a"])).unwrap();
    assert_eq!(node.call(&b, "list", json!([])).unwrap(), json!([]));
    assert_eq!(node.call(&a, "list", json!([])).unwrap(), json!(["only in a"]));
}

#[test]
fn only_the_owner_removes_and_aliases_are_unique() {
    let node = Node::new();
    let id = node.blueprint("g", &[("greeting", ModuleConfig::default())]);
    let s = node.services.create(&id, "alice", Some("hello")).unwrap();
    let e = node.services.create(&id, "bob", Some("hello")).unwrap_err().to_string();
    assert!(e.starts_with("alias hello already names service"), "{e}");
    let e = node.services.remove(&s, "bob", None).unwrap_err().to_string();
    assert_eq!(e, format!("only the service's owner (alice) may remove service {s}"));
    node.services.remove(&s, "bob", Some("bob")).unwrap(); // the node owner may
}

#[test]
fn a_blueprint_pins_code_and_permissions() {
    let node = Node::new();
    let a = node.blueprint("g", &[("greeting", ModuleConfig::default())]);
    let b = node.blueprint("g", &[("greeting", ModuleConfig { time_limit_ms: 5, ..ModuleConfig::default() })]);
    assert_ne!(a, b);
    assert_eq!(a, node.blueprint("g", &[("greeting", ModuleConfig::default())]), "same blueprint, same id");
    node.services.pin(&a, true).unwrap();
    assert!(node.host.store.blueprint(&a).unwrap().unwrap().pinned);
    let missing = Blueprint {
        name: "m".into(),
        modules: vec![ModuleSpec { name: "x".into(), module: Hash::of(b"nothing"), config: ModuleConfig::default() }],
    };
    let e = node.services.add_blueprint(&missing).unwrap_err().to_string();
    assert!(
        e.starts_with("blueprint module x: module ") && e.ends_with("is not stored; add it with `weft module add`"),
        "{e}"
    );
}

/// Beyond the node's maximum of instantiated services, the least recently called idle one is
/// dropped (its files stay) and comes back on its next call.
#[test]
fn the_least_recently_used_service_is_unlinked_beyond_the_maximum() {
    let node = Node::new();
    node.services.set_max_linked(2);
    let id = node.blueprint("notes", &[("notes", notes_config("."))]);
    let services: Vec<String> = (0..3).map(|_| node.services.create(&id, "owner", None).unwrap()).collect();
    assert_eq!(node.services.linked_count(), 2, "the first one was unlinked when the third came");
    node.call(&services[1], "add", json!(["kept in a file"])).unwrap();
    // the first is instantiated again (and another is dropped): its calls work as before
    assert_eq!(node.call(&services[0], "list", json!([])).unwrap(), json!([]));
    assert_eq!(node.services.linked_count(), 2);
    assert_eq!(node.call(&services[1], "list", json!([])).unwrap(), json!(["kept in a file"]));
    assert_eq!(node.services.linked_count(), 2);
}
