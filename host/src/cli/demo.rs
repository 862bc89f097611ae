//! `weft demo` — a small local network, a service on two of its nodes, a script through both.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use weft_host::client::Client;
use weft_host::deploy::{self, Plan};
use weft_host::node::{Config, Node};
use weft_host::services::{Blueprint, ModuleConfig, ModuleSpec};
use weft_host::{Host, Options, Setup};
use weft_storage::Hash;

/// `weft demo` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many nodes (at least 3).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(3..=16))]
    pub nodes: u8,
    /// The transport plugin: "libp2p" (loopback TCP) or "memory" (in-process).
    #[arg(long, default_value = "libp2p")]
    pub transport: String,
}

/// The module the demo deploys: examples/modules/greeting.wat, built into the binary so that the
/// demo needs nothing else.
const GREETING: &str = include_str!("../../../examples/modules/greeting.wat");

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Runs `weft demo`.
pub fn run(options: &Options, args: &Args) -> Result<()> {
    let base = std::env::temp_dir().join(format!("weft-demo-{}", std::process::id()));
    let result = demo(options, args, &base);
    let _ = std::fs::remove_dir_all(&base);
    result
}

fn open(options: &Options, dir: std::path::PathBuf, transport: &str) -> Result<Host> {
    let options = Options { data_dir: Some(dir), config: None, plugin_dirs: options.plugin_dirs.clone() };
    let mut host = Host::open(&options)?;
    host.setup.config.plugins.transport = Some(transport.to_owned());
    host.setup.config.plugins.dht = None;
    Ok(host)
}

fn demo(options: &Options, args: &Args, base: &std::path::Path) -> Result<()> {
    let listen = if args.transport == "memory" { "/memory/0" } else { "/ip4/127.0.0.1/tcp/0" };
    let t0 = Instant::now();
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..args.nodes {
        let host = open(options, base.join(format!("node{}", i + 1)), &args.transport)?;
        let bootstrap = nodes.first().map(|n| n.listen_addrs()).unwrap_or_default();
        let config = Config {
            listen: vec![listen.to_owned()],
            bootstrap: bootstrap.into_iter().take(1).collect(),
            ..Config::default()
        };
        nodes.push(Node::start(host, config).with_context(|| format!("cannot start node{}", i + 1))?);
    }
    println!("started {} nodes on {} in {}", nodes.len(), args.transport, ms(t0.elapsed()));
    for (i, n) in nodes.iter().enumerate() {
        println!("  node{}  {}", i + 1, n.listen_addrs().first().cloned().unwrap_or_default());
    }

    let t = Instant::now();
    let mut setup = Setup::new(options)?;
    setup.config.plugins.transport = Some(args.transport.clone());
    let relay = nodes[0].listen_addrs().first().cloned().context("node1 has no address")?;
    let client = Client::connect(&setup, &relay)?;
    println!("client {} connected to node1 in {}", client.peer_id(), ms(t.elapsed()));

    let wasm = wat::parse_str(GREETING).context("the built-in greeting module")?;
    let hash = Hash::of(&wasm);
    let plan = Plan {
        blueprint: Blueprint {
            name: "greeting".into(),
            modules: vec![ModuleSpec { name: "greeting".into(), module: hash, config: ModuleConfig::default() }],
        },
        modules: vec![("greeting".into(), wasm)],
        alias: Some("greeting".into()),
        peers: Vec::new(),
    };
    let (a, b) = (nodes[1].peer_id().to_owned(), nodes[2].peer_id().to_owned());
    for (name, peer) in [("node2", &a), ("node3", &b)] {
        let d = deploy::deploy_one(&client, &plan, peer, Duration::from_secs(30))?;
        println!("deployed greeting to {name} through node1 in {}: service {}", ms(d.elapsed), d.service_id);
    }

    let relay_id = client.relay().to_owned();
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let script = format!(
        r#"(seq
  (call {r} ("op" "noop") [])
  (seq
    (par
      (seq (call {a} ("greeting" "greet") ["Ann"] x) (seq (call {r} ("op" "noop") []) (call %init_peer_id% ("op" "noop") [])))
      (seq (call {b} ("greeting" "greet") ["Bob"] y) (seq (call {r} ("op" "noop") []) (call %init_peer_id% ("op" "noop") []))))
    (call %init_peer_id% ("return" "") [x y])))"#,
        r = q(&relay_id),
        a = q(&a),
        b = q(&b)
    );
    println!("running, from the client through node1, greeting.greet on node2 and node3 in parallel:");
    for line in script.lines() {
        println!("  | {line}");
    }
    for attempt in 1..=2 {
        let run = client.run(&script, serde_json::Map::new(), Duration::from_secs(30))?;
        let note = if attempt == 1 { " (connections opened, modules compiled on first call)" } else { " (warm)" };
        println!("result in {}{note}: {}", ms(run.elapsed), run.value);
    }
    client.close();
    let t = Instant::now();
    for n in nodes {
        n.shutdown();
    }
    println!("stopped the nodes in {}; total {}", ms(t.elapsed()), ms(t0.elapsed()));
    Ok(())
}
