//! The network on loopback TCP, in one run: a client → node → client round trip next to libp2p
//! ping's round trip between the same two processes, and the particles per second one node
//! sustains for a one-call script.
//!
//!   cargo bench -p weft-host --bench network [-- --particles 20000 --window 512]
//!
//! The node is a real `weft node` process (the release binary, plugins loaded from their `.so`
//! files); the client and the load generator live in this process.
//!
//! - round trip: `weft_host::client::Client::run` of
//!   `(seq (call RELAY ("op" "noop") []) (call %init_peer_id% ("return" "") []))`, one after the
//!   other: the client signs a particle and runs its part of the script, the node checks the
//!   signature, runs the interpreter, answers `op.noop`, runs again and sends the particle back,
//!   the client merges it and answers `return`. Median over the runs.
//! - ping: the RTTs the client's libp2p `ping` protocol reports for its connection to the node
//!   (`PING` events, every 50 ms while idle). Median.
//! - throughput: a load generator (a bare transport from the libp2p plugin, no interpreter) sends
//!   N pre-signed particles of the same script, keeping at most W in flight, and counts those that
//!   come back. Each costs the node a signature check, two interpreter runs (the second signs the
//!   node's result), one builtin call and a send. Also the node's CPU time per particle.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weft_abi::transport::{Event, EventKind, EventSink, Sink};
use weft_host::client::Client;
use weft_host::identity::Identity;
use weft_host::node::now_ms;
use weft_host::particle::Particle;
use weft_host::{Options, Setup};

fn deps_dir() -> PathBuf {
    std::env::current_exe().unwrap().parent().unwrap().to_path_buf()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct NodeProcess {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

impl NodeProcess {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr_file = dir.path().join("addr");
        let child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--plugin-dir")
            .arg(deps_dir())
            .args(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--addr-file"])
            .arg(&addr_file)
            .stdout(Stdio::null())
            .spawn()
            .expect("weft node starts");
        let until = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file)
                && let Some(line) = text.lines().find(|l| l.contains("/tcp/"))
            {
                break line.to_owned();
            }
            assert!(Instant::now() < until, "weft node did not write {}", addr_file.display());
            std::thread::sleep(Duration::from_millis(20));
        };
        NodeProcess { child, addr, _dir: dir }
    }

    /// utime + stime of the node process, seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
            + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks / hz
    }

    fn stop(mut self) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "weft node exited with {status} on SIGTERM");
    }
}

fn setup(ping_ms: u64) -> Setup {
    let dir = std::env::temp_dir();
    let options = Options { data_dir: Some(dir), config: None, plugin_dirs: vec![deps_dir()] };
    let mut setup = Setup::new(&options).unwrap();
    let mut table = toml::Table::new();
    table.insert("ping_interval_ms".into(), toml::Value::Integer(ping_ms as i64));
    setup.config.plugins.config.insert("libp2p".into(), table);
    setup
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &[Duration], p: f64) -> Duration {
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn script(relay: &str) -> String {
    format!(r#"(seq (call "{relay}" ("op" "noop") []) (call %init_peer_id% ("return" "") []))"#)
}

struct Counter {
    messages: Arc<AtomicU64>,
    connected: Arc<AtomicU64>,
}

impl EventSink for Counter {
    fn event(&self, e: Event) -> bool {
        match e.kind {
            EventKind::MESSAGE => self.messages.fetch_add(1, Ordering::Relaxed),
            EventKind::CONNECTED => self.connected.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        true
    }
}

fn throughput(relay_addr: &str, relay: &str, n: usize, window: usize, node: &NodeProcess) {
    let plugin =
        weft_abi::Plugin::load(&deps_dir().join(weft_abi::library_file_name("libp2p"))).expect("libp2p plugin");
    let me = Identity::generate().unwrap();
    let messages = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicU64::new(0));
    let sink = Sink::new(Counter { messages: Arc::clone(&messages), connected: Arc::clone(&connected) });
    let transport = plugin.transport("mode = \"client\"\nqueue_len = 4096", &me.secret(), sink).unwrap();
    transport.dial(relay_addr).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while connected.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < until, "the load generator did not connect");
        std::thread::sleep(Duration::from_millis(5));
    }
    let text = script(relay);
    let t = Instant::now();
    let particles: Vec<Vec<u8>> =
        (0..n).map(|_| Particle::new(&me, text.clone(), now_ms(), 120_000).unwrap().encode()).collect();
    let prepare = t.elapsed();

    let cpu0 = node.cpu_seconds();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(120);
    for (sent, p) in particles.into_iter().enumerate() {
        loop {
            let back = messages.load(Ordering::Relaxed) as usize;
            if sent - back < window {
                break;
            }
            assert!(Instant::now() < deadline, "stalled: {back} of {sent} came back");
            // sleep, not spin: the node under test shares the machine's cores
            std::thread::sleep(Duration::from_micros(50));
        }
        let mut p = Some(p);
        while let Some(bytes) = p.take() {
            if let Err(e) = transport.send(relay, bytes.clone()) {
                assert_eq!(e.code(), weft_abi::ErrorCode::LIMIT, "{e}");
                std::thread::sleep(Duration::from_micros(200));
                p = Some(bytes);
            }
        }
    }
    while (messages.load(Ordering::Relaxed) as usize) < n {
        assert!(Instant::now() < deadline, "stalled: {} of {n} came back", messages.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = start.elapsed();
    let cpu = node.cpu_seconds() - cpu0;
    let _ = transport.shutdown();
    println!(
        "throughput: {n} particles (window {window}) through the node in {:.2} s: {:.0} particles/s; node CPU {:.0} µs per particle ({:.2} cores busy); signing them took {:.2} s beforehand",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        cpu / n as f64 * 1e6,
        cpu / elapsed.as_secs_f64(),
        prepare.as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo test --benches` lists benches; nothing to list here
        return;
    }
    let runs = arg("--runs", 2000);
    let n = arg("--particles", 20_000);
    let window = arg("--window", 256);
    let node = NodeProcess::start();
    println!("weft node at {}", node.addr);
    let client = Client::connect(&setup(50), &node.addr).expect("the client connects");
    let relay = client.relay().to_owned();
    let text = script(&relay);

    // ping while idle
    let mut pings = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    let mut last = None;
    while Instant::now() < until {
        if let Some(rtt) = client.core().rtt(&relay)
            && Some(rtt) != last
        {
            pings.push(rtt);
            last = Some(rtt);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!pings.is_empty(), "no ping events from the libp2p plugin");

    for _ in 0..200 {
        client.run(&text, serde_json::Map::new(), Duration::from_secs(10)).expect("warm-up run");
    }
    let mut rtts = Vec::with_capacity(runs);
    for _ in 0..runs {
        let r = client.run(&text, serde_json::Map::new(), Duration::from_secs(10)).expect("run");
        rtts.push(r.elapsed);
    }
    let particle = median(&mut rtts);
    let ping = median(&mut pings);
    println!(
        "round trip: client -> node -> client, median {} (p10 {}, p90 {}) over {runs} runs",
        us(particle),
        us(pct(&rtts, 0.1)),
        us(pct(&rtts, 0.9))
    );
    println!("libp2p ping between the same two processes: median {} over {} pings", us(ping), pings.len());
    println!("ratio: {:.2}x ping (target <= 3x)", particle.as_secs_f64() / ping.as_secs_f64());
    client.close();

    throughput(&node.addr, &relay, n, window, &node);
    node.stop();
}
