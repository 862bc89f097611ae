//! Real nodes in this process, on loopback TCP (the libp2p plugin) and on the memory transport,
//! loaded from their `.so` files as a node loads them. Each flow runs on both.

mod apps;
mod cli;
mod dht;
mod faults;
mod flows;
mod restart;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};
use weft_host::client::{Client, Run};
use weft_host::node::{Config, Node};
use weft_host::{Host, Options, Setup};

use crate::support::default_plugin_dir;

/// Which transport a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// libp2p on 127.0.0.1.
    Tcp,
    /// The in-process memory transport.
    Memory,
}

impl Transport {
    pub fn plugin(self) -> &'static str {
        match self {
            Transport::Tcp => "libp2p",
            Transport::Memory => "memory",
        }
    }

    pub fn listen(self) -> &'static str {
        match self {
            Transport::Tcp => "/ip4/127.0.0.1/tcp/0",
            Transport::Memory => "/memory/0",
        }
    }
}

/// How long any one wait in these tests may take before it fails.
pub const TTL: Duration = Duration::from_secs(20);

/// A node's data directory and its node.
pub struct Peer {
    pub dir: tempfile::TempDir,
    pub node: Option<Node>,
}

impl Peer {
    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("the node runs")
    }

    pub fn id(&self) -> String {
        self.node().peer_id().to_owned()
    }

    pub fn addr(&self) -> String {
        self.node().listen_addrs().into_iter().next().expect("the node listens")
    }
}

/// Options for a data directory, finding the plugins this test binary built.
pub fn options(dir: &std::path::Path) -> Options {
    Options { data_dir: Some(dir.to_path_buf()), config: None, plugin_dirs: vec![default_plugin_dir()] }
}

fn host(dir: &std::path::Path, t: Transport) -> Host {
    let mut host = Host::open(&options(dir)).expect("the host opens");
    host.setup.config.plugins.transport = Some(t.plugin().into());
    LIBP2P_CONFIG.with(|c| {
        if let Some(text) = c.borrow().as_ref() {
            host.setup.config.plugins.config.insert("libp2p".into(), toml::from_str(text).expect("libp2p config"));
        }
    });
    host
}

thread_local! {
    /// `[plugins.config.libp2p]` for the nodes this thread starts (a test's own setting).
    pub static LIBP2P_CONFIG: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Starts a node in `dir`, bootstrapping from `bootstrap`.
pub fn start_node(
    dir: &std::path::Path,
    t: Transport,
    bootstrap: Vec<String>,
    tweak: impl FnOnce(&mut Config),
) -> Node {
    let mut config = Config { listen: vec![t.listen().into()], bootstrap, workers: Some(2), ..Config::default() };
    tweak(&mut config);
    let node = Node::start(host(dir, t), config).expect("the node starts");
    // the node listens before anything dials it
    assert!(!node.listen_addrs().is_empty(), "node {} reports no address", node.peer_id());
    node
}

/// A network of nodes.
pub struct Net {
    pub t: Transport,
    pub peers: Vec<Peer>,
    client_dir: tempfile::TempDir,
}

impl Net {
    /// `n` nodes; node `i > 0` bootstraps from the nodes `bootstrap(i)` names.
    pub fn start(t: Transport, n: usize, bootstrap: impl Fn(usize) -> Vec<usize>) -> Net {
        Self::start_with(t, n, bootstrap, |_, _| {})
    }

    pub fn start_with(
        t: Transport,
        n: usize,
        bootstrap: impl Fn(usize) -> Vec<usize>,
        tweak: impl Fn(usize, &mut Config),
    ) -> Net {
        logs();
        let mut peers: Vec<Peer> = Vec::new();
        for i in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let boot: Vec<String> =
                if i == 0 { Vec::new() } else { bootstrap(i).iter().map(|&j| peers[j].addr()).collect() };
            let node = start_node(dir.path(), t, boot, |c| tweak(i, c));
            peers.push(Peer { dir, node: Some(node) });
        }
        let net = Net { t, peers, client_dir: tempfile::tempdir().unwrap() };
        // every bootstrap connection is up before a test sends anything
        for i in 1..n {
            for j in bootstrap(i) {
                net.wait_connected(i, j);
            }
        }
        net
    }

    /// Starts one more node, bootstrapping from `bootstrap`; returns its index.
    pub fn add(&mut self, bootstrap: &[usize]) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let boot: Vec<String> = bootstrap.iter().map(|&j| self.peers[j].addr()).collect();
        let node = start_node(dir.path(), self.t, boot, |_| {});
        self.peers.push(Peer { dir, node: Some(node) });
        let i = self.peers.len() - 1;
        for &j in bootstrap {
            self.wait_connected(i, j);
        }
        i
    }

    pub fn id(&self, i: usize) -> String {
        self.peers[i].id()
    }

    pub fn node(&self, i: usize) -> &Node {
        self.peers[i].node()
    }

    /// Waits until node `i` has a connection to node `j`.
    pub fn wait_connected(&self, i: usize, j: usize) {
        let id = self.id(j);
        wait_until(&format!("node {i} connected to node {j}"), || self.node(i).core().is_connected(&id));
    }

    /// A client connected to node `i`.
    pub fn client(&self, i: usize) -> Client {
        self.client_with(i, weft_host::identity::Identity::generate().unwrap())
    }

    /// A client with a known identity connected to node `i`.
    pub fn client_with(&self, i: usize, identity: weft_host::identity::Identity) -> Client {
        let mut setup = Setup::new(&options(self.client_dir.path())).unwrap();
        setup.config.plugins.transport = Some(self.t.plugin().into());
        Client::connect_with(&setup, &self.peers[i].addr(), identity).expect("the client connects")
    }

    /// Stops node `i` (its directory stays).
    pub fn stop(&mut self, i: usize) {
        if let Some(n) = self.peers[i].node.take() {
            n.shutdown();
        }
    }
}

/// Logs to stderr when RUST_LOG is set (`RUST_LOG=weft_host=debug cargo test ...`).
pub fn logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Polls `f` every 10 ms for up to [`TTL`].
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + TTL;
    while !f() {
        assert!(std::time::Instant::now() < until, "timed out after {TTL:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `"id"` as an AIR string literal.
pub fn q(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Runs `script` through `client`, failing the test with the client's one-line error.
pub fn run(client: &Client, script: &str) -> Run {
    run_with(client, script, Map::new())
}

pub fn run_with(client: &Client, script: &str, data: Map<String, Value>) -> Run {
    match client.run(script, data, TTL) {
        Ok(r) => r,
        Err(e) => panic!("the script failed: {e}\n{script}"),
    }
}

/// The test's module files.
pub fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Declares one test per transport for a flow `fn(Transport)`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod tcp {
            $( #[test] fn $name() { super::$name(super::super::Transport::Tcp) } )*
        }
        mod memory {
            $( #[test] fn $name() { super::$name(super::super::Transport::Memory) } )*
        }
    };
}
pub(crate) use on_both;
