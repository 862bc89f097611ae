//! `weft node`, `weft run`, `weft deploy` and `weft demo` as a person runs them: separate
//! processes on loopback TCP.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{Weft, write};
use crate::support::default_plugin_dir;

struct NodeProcess {
    child: Option<Child>,
    addr: String,
    weft: Option<Weft>,
}

impl Drop for NodeProcess {
    /// A test that fails half-way must not leave a node running.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl NodeProcess {
    fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Self {
        let weft = Weft::new();
        let addr_file = weft.path("addr");
        let child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .arg("--data-dir")
            .arg(weft.data_dir.path())
            .arg("--plugin-dir")
            .arg(default_plugin_dir())
            .args(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--addr-file"])
            .arg(&addr_file)
            .args(extra)
            .env_remove("WEFT_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weft node starts");
        let until = Instant::now() + super::TTL;
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file)
                && let Some(line) = text.lines().next()
            {
                break line.to_owned();
            }
            assert!(Instant::now() < until, "weft node wrote no address file");
            std::thread::sleep(Duration::from_millis(20));
        };
        NodeProcess { child: Some(child), addr, weft: Some(weft) }
    }

    /// SIGTERM; returns (stdout, stderr) once it exited with status 0, and its data dir.
    fn stop(mut self) -> (String, String, Weft) {
        let child = self.child.take().expect("running");
        let weft = self.weft.take().expect("its data dir");
        // SAFETY: a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert!(out.status.success(), "weft node exited with {} on SIGTERM: {stderr}", out.status);
        (stdout, stderr, weft)
    }
}

#[test]
fn node_run_deploy_and_a_clean_shutdown() {
    let node = NodeProcess::start();
    let client = Weft::new();
    let peer = node.addr.as_str();
    assert!(peer.starts_with("/ip4/127.0.0.1/tcp/") && peer.contains("/p2p/12D3KooW"), "{peer}");
    let relay = peer.rsplit_once("/p2p/").unwrap().1;

    // weft run with --data
    let script = write(
        &client.path("echo.air"),
        format!(
            r#"(seq (call %init_peer_id% ("getDataSrv" "who") [] who)
  (seq (call "{relay}" ("op" "concat_strings") ["hello, " who] x)
       (call %init_peer_id% ("return" "") [x])))"#
        )
        .as_bytes(),
    );
    let out = client.ok(&["run", script.to_str().unwrap(), "--peer", peer, "--data", r#"{"who": "weft"}"#]);
    assert_eq!(out.trim(), "\"hello, weft\"");

    // weft deploy a blueprint file, then call its service with weft run
    let blueprint = super::examples().join("blueprints/greeting.toml");
    let out = client.ok(&["deploy", blueprint.to_str().unwrap(), "--peer", peer, "--alias", "hello"]);
    assert!(out.starts_with("greeting  on ") && out.contains(" service "), "{out}");
    let call = write(
        &client.path("call.air"),
        format!(r#"(seq (call "{relay}" ("hello" "greet") ["Ann"] g) (call %init_peer_id% ("return" "") [g]))"#)
            .as_bytes(),
    );
    assert_eq!(client.ok(&["run", call.to_str().unwrap(), "--peer", peer]).trim(), "\"Hello, Ann!\"");

    // one-line errors: a script that does not parse, --data that is not an object, a missing
    // getDataSrv value (the script fails on the client, at once), a script that never returns
    // (the ttl), a peer address without /p2p/, a node that is not there
    let bad = write(&client.path("bad.air"), b"(seq (null)\n  (nul))");
    let e = client.fails(&["run", bad.to_str().unwrap(), "--peer", peer]);
    assert!(e.contains("bad.air:2:4: unknown instruction 'nul'"), "{e}");
    let e = client.fails(&["run", script.to_str().unwrap(), "--peer", peer, "--data", "[1]"]);
    assert!(e.contains("--data must be a JSON object"), "{e}");
    let e = client.fails(&["run", script.to_str().unwrap(), "--peer", peer]);
    assert!(e.contains("the script failed here") && e.contains("getDataSrv: the run has no value"), "{e}");
    let silent = write(&client.path("silent.air"), format!(r#"(call "{relay}" ("op" "noop") [])"#).as_bytes());
    let e = client.fails(&["run", silent.to_str().unwrap(), "--peer", peer, "--ttl", "1s"]);
    assert!(e.contains("no result within the ttl of 1000 ms"), "{e}");
    let e = client.fails(&["run", script.to_str().unwrap(), "--peer", "/ip4/127.0.0.1/tcp/1"]);
    assert!(e.contains("must end in /p2p/<peer id>"), "{e}");
    let gone = format!("/ip4/127.0.0.1/tcp/1/p2p/{relay}");
    let e = client.fails(&["run", script.to_str().unwrap(), "--peer", &gone]);
    assert!(e.contains("cannot connect to /ip4/127.0.0.1/tcp/1"), "{e}");

    let (stdout, stderr, data) = node.stop();
    assert!(stdout.starts_with("weft node 12D3KooW"), "{stdout}");
    assert!(stdout.contains("listening on /ip4/127.0.0.1/tcp/"), "{stdout}");
    assert!(stderr.contains("shutting down") && stderr.contains("stopped:"), "{stderr}");

    // the node's data dir kept the service: weft service list finds it without a network
    let listed = data.ok(&["service", "list"]);
    assert!(listed.contains("hello"), "{listed}");
}

#[test]
fn demo_runs_on_both_transports() {
    for transport in ["libp2p", "memory"] {
        let weft = Weft::new();
        let out = weft.ok(&["demo", "--transport", transport]);
        assert!(out.contains(r#"["Hello, Ann!","Hello, Bob!"]"#), "{out}");
        assert!(out.contains("deployed greeting to node2") && out.contains("deployed greeting to node3"), "{out}");
    }
}

/// The README's application flow with the shipped scripts: the URL shortener deployed with
/// `weft deploy` and used with `weft run examples/air/*.air`; then `parallel.air` across three
/// nodes, with a deploy file naming two of them.
#[test]
fn the_example_scripts_run_as_the_readme_shows() {
    let n1 = NodeProcess::start();
    let peer = n1.addr.clone();
    let client = Weft::new();
    let air = super::examples().join("air");
    let arg = |p: &std::path::Path| p.to_str().unwrap().to_owned();

    // the blueprint, pointing at the modules this test run built
    let built = crate::services::examples();
    let text = std::fs::read_to_string(super::examples().join("blueprints/shortener.toml")).unwrap();
    let blueprint = write(
        &client.path("shortener.toml"),
        text.replace("../../target/examples-wasm/", &format!("{}/", built.display())).as_bytes(),
    );
    let out = client.ok(&["deploy", &arg(&blueprint), "--peer", &peer, "--alias", "short"]);
    assert!(out.starts_with("shortener  on "), "{out}");
    let code = client.ok(&[
        "run",
        &arg(&air.join("shorten.air")),
        "--peer",
        &peer,
        "--data",
        r#"{"url": "https://Example.com/a/long/path"}"#,
    ]);
    let code: String = serde_json::from_str(code.trim()).unwrap();
    let data = format!(r#"{{"code": "{code}"}}"#);
    let out = client.ok(&["run", &arg(&air.join("resolve.air")), "--peer", &peer, "--data", &data]);
    assert_eq!(out.trim(), r#"["https://example.com/a/long/path",1]"#);
    let e = client.fails(&["run", &arg(&air.join("shorten.air")), "--peer", &peer, "--data", r#"{"url": "ftp://x"}"#]);
    assert!(e.contains("the script failed") && e.contains("not an http:// or https:// URL"), "{e}");

    // two more nodes; greeting on both through a deploy file; parallel.air joins at the client
    let n2 = NodeProcess::start_with(&["--bootstrap", &peer]);
    let n3 = NodeProcess::start_with(&["--bootstrap", &peer]);
    let id = |n: &NodeProcess| n.addr.rsplit_once("/p2p/").unwrap().1.to_owned();
    let (a, b) = (id(&n2), id(&n3));
    let greeting = super::examples().join("blueprints/greeting.toml");
    let deploy = write(
        &client.path("deploy.toml"),
        format!("[[services]]\nblueprint = {:?}\nalias = \"greeting\"\npeers = [{a:?}, {b:?}]\n", arg(&greeting))
            .as_bytes(),
    );
    let out = client.ok(&["deploy", &arg(&deploy), "--peer", &peer]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let data = format!(r#"{{"a": "{a}", "b": "{b}"}}"#);
    let out = client.ok(&["run", &arg(&air.join("parallel.air")), "--peer", &peer, "--data", &data]);
    assert_eq!(out.trim(), r#"["Hello, Ann!","Hello, Bob!"]"#);
    for n in [n3, n2, n1] {
        n.stop();
    }
}
