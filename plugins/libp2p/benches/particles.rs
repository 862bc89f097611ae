//! Particles between two nodes of this process on loopback TCP, through the plugin's public
//! transport API (what the host sees):
//!
//!   export CARGO_TARGET_DIR=$HOME/.cache/weft/target
//!   cargo bench -p weft-plugin-libp2p [-- --messages 100000 --size 1024 --round-trips 2000]
//!
//! - throughput: A sends `--messages` messages of `--size` bytes to B as fast as `send` takes them
//!   (a `LIMIT` answer, the queue to B being full, is retried after 50 µs); the clock runs from the
//!   first `send` to B's sink receiving the last one. Messages/s and MB/s (10^6 bytes of payload).
//! - latency: A sends one message of `--size` bytes, B's sink sends it straight back from inside
//!   the sink, A's sink wakes the sending thread; `--round-trips` of them one after the other.
//!   Median (and p90, p99) next to the median RTT of the `PING` events A's node reports for B (both
//!   nodes ping every 2 ms): over 1 s while no message moves, and during the round trips.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use weft_abi::ErrorCode;
use weft_abi::transport::{Event, EventKind, EventSink, Sink, Transport as _};
use weft_plugin_libp2p::Transport;

/// How long the bench waits for anything before it gives up.
const WAIT: Duration = Duration::from_secs(300);

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What a node's sink does with events.
#[derive(Default)]
struct Feed {
    /// MESSAGE events received, and their payload bytes.
    messages: AtomicU64,
    bytes: AtomicU64,
    /// Set once this node's transport exists: messages are echoed to their sender through it.
    echo: OnceLock<Weak<Transport>>,
    /// Where arriving messages are reported (the latency run's sender waits on it).
    arrivals: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    /// Round-trip times of PING events, ns.
    pings: Mutex<Vec<u64>>,
    /// CONNECTED and LISTENING events.
    control: Mutex<Option<mpsc::Sender<Event>>>,
}

struct FeedSink(Arc<Feed>);

impl EventSink for FeedSink {
    fn event(&self, event: Event) -> bool {
        let feed = &self.0;
        match event.kind {
            EventKind::MESSAGE => {
                feed.messages.fetch_add(1, Ordering::Relaxed);
                feed.bytes.fetch_add(event.payload.len() as u64, Ordering::Relaxed);
                if let Some(t) = feed.echo.get().and_then(Weak::upgrade) {
                    // The queue back cannot be full: one message is in flight at a time.
                    t.send(&event.peer, event.payload).expect("echo");
                } else if let Some(tx) = &*feed.arrivals.lock().unwrap() {
                    let _ = tx.send(event.payload);
                }
            }
            EventKind::PING => {
                let rtt = u64::from_le_bytes(event.payload.as_slice().try_into().expect("8 bytes"));
                feed.pings.lock().unwrap().push(rtt);
            }
            EventKind::CONNECTED | EventKind::LISTENING => {
                if let Some(tx) = &*feed.control.lock().unwrap() {
                    let _ = tx.send(event);
                }
            }
            _ => {}
        }
        true
    }
}

struct Node {
    t: Arc<Transport>,
    feed: Arc<Feed>,
    control: mpsc::Receiver<Event>,
    id: String,
}

fn seed(n: u8) -> [u8; 32] {
    let mut seed = *b"weft libp2p particles bench seed";
    seed[0] = n;
    seed[1..5].copy_from_slice(&std::process::id().to_le_bytes());
    seed
}

impl Node {
    fn start(n: u8, config: &str) -> Node {
        let feed = Arc::new(Feed::default());
        let (tx, control) = mpsc::channel();
        *feed.control.lock().unwrap() = Some(tx);
        let t = Arc::new(Transport::new(config, &seed(n), Sink::new(FeedSink(Arc::clone(&feed)))).expect("transport"));
        let id = t.local_peer_id();
        Node { t, feed, control, id }
    }

    fn wait(&self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let until = Instant::now() + WAIT;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let e = self.control.recv_timeout(left).unwrap_or_else(|_| panic!("timed out waiting for {what}"));
            if pred(&e) {
                return e;
            }
        }
    }
}

/// Two connected nodes, A dialling B.
fn pair(config: &str, tag: u8) -> (Node, Node) {
    let a = Node::start(tag, config);
    let b = Node::start(tag + 1, config);
    b.t.listen("/ip4/127.0.0.1/tcp/0").expect("listen");
    let addr = b.wait("LISTENING", |e| e.kind == EventKind::LISTENING).address;
    a.t.dial(&format!("{addr}/p2p/{}", b.id)).expect("dial");
    a.wait("CONNECTED at A", |e| e.kind == EventKind::CONNECTED && e.peer == b.id);
    b.wait("CONNECTED at B", |e| e.kind == EventKind::CONNECTED && e.peer == a.id);
    (a, b)
}

fn send_retrying(t: &Transport, to: &str, message: Vec<u8>) {
    let until = Instant::now() + WAIT;
    loop {
        match t.send(to, message.clone()) {
            Ok(()) => return,
            Err(e) if e.code() == ErrorCode::LIMIT && Instant::now() < until => {
                std::thread::sleep(Duration::from_micros(50));
            }
            Err(e) => panic!("send: {e}"),
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn throughput(messages: usize, size: usize) {
    let (a, b) = pair("", 10);
    let payload = vec![0x5a; size];
    let started = Instant::now();
    for _ in 0..messages {
        send_retrying(&a.t, &b.id, payload.clone());
    }
    let sent = started.elapsed();
    let until = Instant::now() + WAIT;
    while b.feed.messages.load(Ordering::Relaxed) < messages as u64 {
        assert!(
            Instant::now() < until,
            "only {} of {messages} messages arrived",
            b.feed.messages.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let took = started.elapsed().as_secs_f64();
    let bytes = b.feed.bytes.load(Ordering::Relaxed) as f64;
    println!(
        "throughput: {messages} messages of {size} B from A to B in {took:.3} s (all sent after {:.3} s): \
         {:.0} messages/s, {:.1} MB/s",
        sent.as_secs_f64(),
        messages as f64 / took,
        bytes / took / 1e6
    );
    a.t.shutdown();
    b.t.shutdown();
}

fn latency(round_trips: usize, size: usize) {
    let (a, b) = pair("ping_interval_ms = 2", 20);
    assert!(b.feed.echo.set(Arc::downgrade(&b.t)).is_ok());
    let (tx, rx) = mpsc::channel();
    *a.feed.arrivals.lock().unwrap() = Some(tx);
    let payload = vec![0xa5; size];
    // Warm up, and let the first pings come in.
    for _ in 0..100 {
        a.t.send(&b.id, payload.clone()).expect("send");
        rx.recv_timeout(WAIT).expect("echo");
    }
    a.feed.pings.lock().unwrap().clear();
    std::thread::sleep(Duration::from_secs(1));
    let mut idle_pings = std::mem::take(&mut *a.feed.pings.lock().unwrap());
    idle_pings.sort_unstable();
    let mut rtts = Vec::with_capacity(round_trips);
    for _ in 0..round_trips {
        let started = Instant::now();
        a.t.send(&b.id, payload.clone()).expect("send");
        let back = rx.recv_timeout(WAIT).expect("echo");
        rtts.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        assert_eq!(back.len(), size);
    }
    rtts.sort_unstable();
    let mut pings = a.feed.pings.lock().unwrap().clone();
    pings.sort_unstable();
    let median = percentile(&rtts, 0.5);
    print!(
        "latency: {round_trips} round trips of {size} B A -> B -> A: median {:.0} µs (p90 {:.0} µs, p99 {:.0} µs)",
        us(median),
        us(percentile(&rtts, 0.9)),
        us(percentile(&rtts, 0.99)),
    );
    println!();
    for (when, pings) in [("while idle", &idle_pings), ("during the round trips", &pings)] {
        if pings.is_empty() {
            println!("  libp2p ping A -> B {when}: no PING event arrived");
            continue;
        }
        let ping = percentile(pings, 0.5);
        println!(
            "  libp2p ping A -> B {when}: median {:.0} µs over {} pings; message RTT / ping RTT = {:.2}",
            us(ping),
            pings.len(),
            median as f64 / ping as f64
        );
    }
    a.t.shutdown();
    b.t.shutdown();
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with tiny numbers.
    let quick = std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let (messages, round_trips) = if quick { (1000, 50) } else { (100_000, 2000) };
    let size = arg("--size", 1024);
    throughput(arg("--messages", messages), size);
    latency(arg("--round-trips", round_trips), size);
}
