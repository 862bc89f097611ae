//! The `weft` binary as a person uses it: exit codes, one-line errors, what the store holds after.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::default_plugin_dir;

/// A `weft` command against its own data dir, finding the workspace's plugins.
pub struct Weft {
    pub data_dir: tempfile::TempDir,
}

impl Weft {
    pub fn new() -> Self {
        Self { data_dir: tempfile::tempdir().unwrap() }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_weft"))
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .arg("--plugin-dir")
            .arg(default_plugin_dir())
            .args(args)
            .env_remove("WEFT_CONFIG")
            .env_remove("RUST_LOG")
            .output()
            .expect("weft runs")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "weft {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its stderr, which must be exactly one line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "weft {args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
        assert!(err.starts_with("error: "), "{err:?}");
        err
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.data_dir.path().join(name)
    }
}

pub fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

#[test]
fn plugins_lists_the_default_storage_plugins() {
    let weft = Weft::new();
    let out = weft.ok(&["plugins"]);
    assert!(out.contains("sled") && out.contains("redb"), "{out}");
    assert!(out.contains("storage    sled (configured)"), "{out}");
}

#[test]
fn a_malformed_config_is_one_line() {
    let weft = Weft::new();
    let cfg = write(&weft.path("bad.toml"), b"[plugins]\nstorage = 5\n");
    let err = weft.fails(&["--config", cfg.to_str().unwrap(), "plugins"]);
    assert!(err.contains("bad.toml"), "{err}");
}

#[test]
fn a_missing_storage_plugin_is_one_line() {
    let weft = Weft::new();
    let cfg = write(&weft.path("c.toml"), b"[plugins]\nstorage = \"nosuch\"\n");
    let err = weft.fails(&["--config", cfg.to_str().unwrap(), "module", "list"]);
    assert!(err.contains("nosuch") && err.contains("sled"), "{err}");
}

/// Every key and value in the node's store, read through the configured storage plugin (loaded
/// from its `.so`, as `weft` loads it). The store is closed again before this returns.
fn dump(weft: &Weft) -> Vec<(Vec<u8>, Vec<u8>)> {
    let options = weft_host::Options {
        data_dir: Some(weft.data_dir.path().to_path_buf()),
        config: None,
        plugin_dirs: vec![default_plugin_dir()],
    };
    let host = weft_host::Host::open(&options).expect("the store opens");
    let backend = host.store.backend();
    let mut all = Vec::new();
    loop {
        let after = all.last().map(|(k, _): &(Vec<u8>, Vec<u8>)| k.clone());
        let page = backend.scan(b"", after.as_deref(), 1000).expect("scan");
        if page.is_empty() {
            break;
        }
        all.extend(page);
    }
    all
}

fn greeting() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/modules/greeting.wat")
}

#[test]
fn adding_a_garbage_file_fails_in_one_line_and_changes_nothing() {
    let weft = Weft::new();
    weft.ok(&["module", "add", greeting().to_str().unwrap()]);
    let before = dump(&weft);
    assert!(!before.is_empty());

    let garbage = write(&weft.path("garbage.wasm"), b"\x7fELF this is not WebAssembly at all");
    let err = weft.fails(&["module", "add", garbage.to_str().unwrap()]);
    assert!(err.contains("garbage.wasm") && err.contains("not a WebAssembly module"), "{err}");
    assert_eq!(dump(&weft), before, "a failed add changed the store");

    // One bad file among good ones: nothing at all is added.
    let truncated = write(&weft.path("truncated.wasm"), &b"\0asm\x01\0\0\0\x01\x05"[..]);
    let good = write(&weft.path("other.wat"), b"(module (@custom \"weft-interface\" \"\"))");
    let out = weft.run(&["module", "add", good.to_str().unwrap(), truncated.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("truncated.wasm") && !err.contains("other.wat"), "{err}");
    assert_eq!(dump(&weft), before, "a failed add changed the store");

    // A file that does not exist.
    let err = weft.fails(&["module", "add", weft.path("nosuch.wasm").to_str().unwrap()]);
    assert!(err.contains("nosuch.wasm") && err.contains("cannot read"), "{err}");
    assert_eq!(dump(&weft), before, "a failed add changed the store");
}

#[test]
fn add_list_inspect_precompile_gc() {
    let weft = Weft::new();
    let file = greeting();
    let out = weft.ok(&["module", "add", file.to_str().unwrap()]);
    let hash = out.split_whitespace().next().unwrap().to_owned();
    assert_eq!(hash.len(), 64, "{out}");
    // Adding again is idempotent and says so.
    assert!(weft.ok(&["module", "add", file.to_str().unwrap()]).contains("already stored"));

    let list = weft.ok(&["module", "list"]);
    assert!(list.contains(&hash) && list.contains("greeting"), "{list}");

    let inspect = weft.ok(&["module", "inspect", &hash[..8]]);
    assert!(inspect.contains("greet(name: string) -> string"), "{inspect}");
    assert!(inspect.contains("compiled   no"), "{inspect}");

    let out = weft.ok(&["precompile", "--all"]);
    assert!(out.contains("compiled 1 module"), "{out}");
    let inspect = weft.ok(&["module", "inspect", file.to_str().unwrap()]);
    assert!(inspect.contains("stored     yes") && inspect.contains("compiled   yes"), "{inspect}");
    // Compiled artifacts are reused.
    assert!(weft.ok(&["precompile", "--all"]).contains("1 module(s) already compiled"));

    let gc = weft.ok(&["cache", "gc"]);
    assert!(gc.contains("removed 0") && gc.contains("kept 1"), "{gc}");

    let err = weft.fails(&["module", "inspect", "0000000000"]);
    assert!(err.contains("0000000000"), "{err}");
}

#[test]
fn air_check_reports_line_and_column() {
    let weft = Weft::new();
    let good = write(&weft.path("good.air"), b"(seq\n  (call %init_peer_id% (\"svc\" \"f\") [] x)\n  (null))\n");
    let out = weft.ok(&["air", "check", good.to_str().unwrap()]);
    assert!(out.contains("good.air: ok (3 instructions)"), "{out}");

    let bad = write(&weft.path("bad.air"), b"(seq\n  (call %init_peer_id% (\"svc\" \"f\") [] x)\n  (nul))\n");
    let err = weft.fails(&["air", "check", bad.to_str().unwrap()]);
    assert!(err.contains("bad.air:3:4:"), "{err}");

    // Several files: every error is reported, then a summary; valid files still say ok.
    let out = weft.run(&["air", "check", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("good.air: ok"));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.air:3:4:") && err.contains("1 of 2 scripts have errors"), "{err}");

    let binary = write(&weft.path("binary.air"), b"(null)\xff");
    let err = weft.fails(&["air", "check", binary.to_str().unwrap()]);
    assert!(err.contains("binary.air") && err.contains("UTF-8"), "{err}");
}

#[test]
fn air_simulate_runs_a_scenario_and_refuses_a_broken_one() {
    let weft = Weft::new();
    let scenario = br#"{"name": "hello", "init_peer": "@A",
        "air": "(seq (call @B (\"svc\" \"greet\") [] r) (call %init_peer_id% (\"out\" \"done\") [r]))",
        "services": [{"peer": "B", "service": "svc", "function": "greet", "result": "hi"}]}"#;
    let file = write(&weft.path("hello.json"), scenario);
    let out: serde_json::Value = serde_json::from_str(&weft.ok(&["air", "simulate", file.to_str().unwrap()])).unwrap();
    let steps = out["steps"].as_array().expect("steps");
    assert!(steps.len() >= 2, "{out}");
    assert_eq!(steps[0]["peer"], "@A", "{out}");
    assert_eq!(steps[1]["peer"], "@B", "{out}");

    let broken = write(&weft.path("broken.json"), b"{\"air\": 5}");
    let err = weft.fails(&["air", "simulate", broken.to_str().unwrap()]);
    assert!(err.contains("broken.json") && err.contains("invalid scenario"), "{err}");
}

/// A blueprint file in the test's data dir pointing at the built example modules.
fn blueprint_file(weft: &Weft, name: &str, body: &str) -> PathBuf {
    let examples = crate::services::examples().display().to_string();
    write(&weft.path(&format!("{name}.toml")), body.replace("EXAMPLES", &examples).as_bytes())
}

#[test]
fn blueprints_and_services_from_the_command_line_survive_restarts() {
    let weft = Weft::new();
    let file = blueprint_file(
        &weft,
        "stats",
        "name = \"stats\"\n[[modules]]\npath = \"EXAMPLES/textstats.wasm\"\n[[modules]]\nname = \"facade\"\npath = \"EXAMPLES/facade.wasm\"\n",
    );
    let id = weft.ok(&["blueprint", "add", file.to_str().unwrap()]).trim().to_owned();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(weft.ok(&["blueprint", "add", file.to_str().unwrap()]).trim(), id, "same file, same id");
    assert!(weft.ok(&["blueprint", "list"]).contains(&format!("{id}  stats")));
    assert!(weft.ok(&["blueprint", "show", &id[..8]]).contains("module     facade  (facade)"));
    assert_eq!(weft.ok(&["blueprint", "pin", &id[..8]]).trim(), format!("pinned {id}"));
    assert!(weft.ok(&["blueprint", "list"]).trim_end().ends_with("yes"));
    weft.ok(&["blueprint", "unpin", &id]);

    let service = weft.ok(&["service", "create", &id[..10], "--alias", "stats"]).trim().to_owned();
    assert_eq!(service.len(), 32);
    // Each command is a new process: the service, its alias and its modules come back each time.
    let out = weft.ok(&["service", "call", "stats", "hop", r#"{"words": ["a", "bbb"]}"#]);
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["words"], serde_json::json!(2));
    assert_eq!(value["longest"], serde_json::json!("bbb"));
    assert!(weft.ok(&["service", "list"]).contains(&format!("{service}  stats")));
    assert!(weft.ok(&["service", "interface", &service]).contains("hop(words: array<string>) -> Stats"));

    let e = weft.fails(&["service", "call", "stats", "hop", "[1]"]);
    assert_eq!(e.trim_end(), "error: hop: parameter \"words\": expected array<string> (an array), got 1");
    let e = weft.fails(&["service", "call", "stats", "hop", "not json"]);
    assert!(e.starts_with("error: arguments \"not json\" are not JSON"), "{e}");
    let e = weft.fails(&["service", "call", "nobody", "hop"]);
    assert_eq!(e.trim_end(), "error: no service nobody; see `weft service list`");

    // A blueprint whose facade cannot link: creation fails and leaves nothing.
    let broken = blueprint_file(&weft, "broken", "name = \"broken\"\n[[modules]]\npath = \"EXAMPLES/facade.wasm\"\n");
    let e = weft.fails(&["service", "create", broken.to_str().unwrap()]);
    assert!(e.contains("module facade: import `textstats."), "{e}");
    let e = weft.fails(&["blueprint", "add", weft.path("missing.toml").to_str().unwrap()]);
    assert!(e.contains("missing.toml: cannot read"), "{e}");
    let typo =
        blueprint_file(&weft, "typo", "name = \"t\"\n[[modules]]\npath = \"EXAMPLES/facade.wasm\"\nmax_mem = 1\n");
    let e = weft.fails(&["blueprint", "add", typo.to_str().unwrap()]);
    assert!(e.contains("unknown field `max_mem`"), "{e}");

    assert_eq!(weft.ok(&["service", "remove", "stats"]).trim(), format!("removed {service}"));
    assert!(weft.ok(&["service", "list"]).starts_with("no services"));
}

#[test]
fn the_example_blueprints_work_as_documented() {
    // examples/blueprints point at target/examples-wasm; build there, as the README says.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let run = Command::new("bash").arg(repo.join("scripts/build-examples")).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let weft = Weft::new();
    let bp = |name: &str| repo.join(format!("examples/blueprints/{name}.toml")).display().to_string();
    weft.ok(&["service", "create", &bp("greeting"), "--alias", "hello"]);
    assert_eq!(weft.ok(&["service", "call", "hello", "greet", r#"["Ann"]"#]).trim(), r#""Hello, Ann!""#);
    weft.ok(&["service", "create", &bp("notes"), "--alias", "notes"]);
    assert_eq!(weft.ok(&["service", "call", "notes", "add", r#"["buy milk"]"#]).trim(), "1");
    assert_eq!(weft.ok(&["service", "call", "notes", "list"]).trim(), r#"["buy milk"]"#);
    weft.ok(&["service", "create", &bp("runaway"), "--alias", "runaway"]);
    let e = weft.fails(&["service", "call", "runaway", "spin"]);
    assert!(e.starts_with("error: runaway.spin: ran past its time limit of 200 ms"), "{e}");
    assert_eq!(weft.ok(&["service", "call", "runaway", "ok"]).trim(), r#""ok""#);
    weft.ok(&["service", "create", &bp("textstats"), "--alias", "stats"]);
    let out = weft.ok(&["service", "call", "stats", "analyze", r#"["the cat and the hat"]"#]);
    assert!(out.contains(r#""words":5"#), "{out}");
}
