//! The plugin's own network tests: what the shared suites do not reach (websocket, size limits
//! set in the config, ping, client mode, queue limits, a sink that calls back into the plugin, a
//! raw peer writing the particle protocol by hand).

mod dht;
mod limits;
mod raw;
mod transport;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use weft_abi::transport::{Event, EventKind, EventSink, Sink, Transport as _};
use weft_plugin_libp2p::{Dht, Transport};

/// The longest any one wait of these tests lasts.
pub const WAIT: Duration = Duration::from_secs(30);

/// A fresh identity no other node of this process uses (the suites use another pattern).
pub fn seed() -> [u8; 32] {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut seed = *b"libp2p plugin's own test seed...";
    seed[..8].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    seed[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    seed
}

/// Events a node's sink received, and an optional callback run inside the sink.
#[derive(Default)]
pub struct Events {
    list: Mutex<Vec<Event>>,
    changed: Condvar,
    #[allow(clippy::type_complexity)]
    hook: OnceLock<Box<dyn Fn(&Event) + Send + Sync>>,
}

struct Feed(Arc<Events>);

impl EventSink for Feed {
    fn event(&self, event: Event) -> bool {
        if let Some(hook) = self.0.hook.get() {
            hook(&event);
        }
        self.0.list.lock().unwrap().push(event);
        self.0.changed.notify_all();
        true
    }
}

impl Events {
    /// Takes the first event matching `pred`; panics after [`WAIT`] naming `what`.
    pub fn wait(&self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + WAIT;
        let mut list = self.list.lock().unwrap();
        loop {
            if let Some(i) = list.iter().position(&pred) {
                return list.remove(i);
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out waiting for {what}; got {:?}",
                list.iter().map(|e| e.kind).collect::<Vec<_>>()
            );
            list = self.changed.wait_timeout(list, deadline - now).unwrap().0;
        }
    }

    /// Whether an event matching `pred` arrived (without taking it).
    pub fn has(&self, pred: impl Fn(&Event) -> bool) -> bool {
        self.list.lock().unwrap().iter().any(pred)
    }

    /// Runs `hook` inside the sink for every later event.
    pub fn set_hook(&self, hook: impl Fn(&Event) + Send + Sync + 'static) {
        assert!(self.hook.set(Box::new(hook)).is_ok(), "one hook per node");
    }
}

/// A node: the plugin's transport and dht for one identity.
pub struct Peer {
    pub t: Arc<Transport>,
    pub dht: Dht,
    pub events: Arc<Events>,
    pub id: String,
    /// The first LISTENING address (empty when it does not listen).
    pub addr: String,
}

impl Peer {
    /// A node with `config`, listening on `listen` unless it is empty.
    pub fn new(config: &str, listen: &str) -> Self {
        let seed = seed();
        let events = Arc::new(Events::default());
        let t = Arc::new(Transport::new(config, &seed, Sink::new(Feed(Arc::clone(&events)))).unwrap());
        let dht = Dht::new(config, &seed).unwrap();
        let id = t.local_peer_id();
        assert_eq!(id, weft_abi::peer_id::peer_id_from_secret(&seed));
        let mut addr = String::new();
        if !listen.is_empty() {
            t.listen(listen).unwrap_or_else(|e| panic!("listen {listen}: {e}"));
            addr = events.wait("LISTENING", |e| e.kind == EventKind::LISTENING).address;
        }
        Self { t, dht, events, id, addr }
    }

    /// Dials `other` (by its listen address, with `/p2p/`) and waits for both CONNECTED events.
    pub fn connect(&self, other: &Peer) {
        self.t.dial(&format!("{}/p2p/{}", other.addr, other.id)).unwrap();
        self.events.wait("CONNECTED at the dialer", |e| e.kind == EventKind::CONNECTED && e.peer == other.id);
        other.events.wait("CONNECTED at the listener", |e| e.kind == EventKind::CONNECTED && e.peer == self.id);
    }

    /// The next message from `from`.
    pub fn message_from(&self, from: &Peer) -> Vec<u8> {
        self.events.wait("a MESSAGE", |e| e.kind == EventKind::MESSAGE && e.peer == from.id).payload
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.t.shutdown();
    }
}

/// Calls `f` until it returns `Some`, for at most [`WAIT`].
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub const TCP: &str = "/ip4/127.0.0.1/tcp/0";
pub const WS: &str = "/ip4/127.0.0.1/tcp/0/ws";

/// The `.so` cargo built for this test binary.
pub fn built_plugin() -> std::path::PathBuf {
    weft_abi::compliance::built_library(&weft_abi::library_file_name("libp2p"))
}
