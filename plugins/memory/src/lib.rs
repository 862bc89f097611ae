//! The `memory` plugin: a transport and a dht for nodes that share one process — tests, benches,
//! `weft demo` — with the contract of the real network and none of its sockets.
//!
//! # Concepts
//! - **Addresses** are `/memory/N`; `listen("/memory/0")` picks a free `N`. A dial address may end
//!   in `/p2p/<peer id>`.
//! - **The registry** is a static of the library: every node of a process shares it (the host
//!   loads the `.so` once). It maps slots and peer ids to live transports and dhts. A test that
//!   links this crate *and* loads its `.so` has two registries, one per copy.
//! - **Transport** ([`Transport`]): connections are entries in the registry; `send` puts the
//!   message in a bounded per-peer queue (`queue_len` messages, `queue_bytes` bytes: beyond,
//!   `LIMIT`) that the receiver's own thread empties into its sink, in order. It never blocks.
//! - **Dht** ([`Dht`]): a small Kademlia (k = 20, alpha = 3, sha256 keys, XOR distance) whose
//!   requests are calls between the dht objects of the process, each reached only through an
//!   address its caller knows. It is reachable at the addresses its node's transport listens on.
//! - **Config** ([`Config`]): one TOML or JSON table for both kinds; unknown keys are refused.
//!
//! # Example
//! ```
//! use std::sync::mpsc;
//! use std::sync::Mutex;
//! use weft_abi::transport::{Event, EventKind, EventSink, Sink, Transport as _};
//! use weft_plugin_memory::{Config, Transport};
//!
//! struct Channel(Mutex<mpsc::Sender<Event>>);
//! impl EventSink for Channel {
//!     fn event(&self, event: Event) -> bool { self.0.lock().unwrap().send(event).is_ok() }
//! }
//! fn node(seed: u8) -> (Transport, mpsc::Receiver<Event>) {
//!     let (tx, rx) = mpsc::channel();
//!     let t = Transport::new(Config::default(), &[seed; 32], Sink::new(Channel(Mutex::new(tx)))).unwrap();
//!     t.listen("/memory/0").unwrap();
//!     (t, rx)
//! }
//! let next = |rx: &mpsc::Receiver<Event>, kind| loop {
//!     let e = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
//!     if e.kind == kind { break e; }
//! };
//!
//! let (a, a_events) = node(1);
//! let (b, b_events) = node(2);
//! a.dial(&b.listen_addrs()[0]).unwrap();
//! next(&a_events, EventKind::CONNECTED);
//! a.send(&b.local_peer_id(), b"hello".to_vec()).unwrap();
//! let got = next(&b_events, EventKind::MESSAGE);
//! assert_eq!((got.peer, got.payload), (a.local_peer_id(), b"hello".to_vec()));
//! ```

mod addr;
mod config;
mod dht;
mod registry;
mod transport;

pub use config::Config;
pub use dht::{ALPHA, Dht, K};
pub use transport::Transport;

use weft_abi::{Kind, Manifest, Provider, Result};

/// The plugin provider: `memory`, kinds transport and dht.
#[derive(Debug)]
pub struct MemoryPlugin;

impl Provider for MemoryPlugin {
    fn manifest() -> Manifest {
        Manifest {
            name: "memory".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "in-process transport (/memory/N) and Kademlia dht, for tests and demos".into(),
            kinds: vec![Kind::TRANSPORT, Kind::DHT],
        }
    }

    fn transport(
        config: &str,
        identity: &[u8],
        sink: weft_abi::transport::Sink,
    ) -> Result<Box<dyn weft_abi::transport::Transport>> {
        Ok(Box::new(Transport::new(Config::parse(config)?, identity, sink)?))
    }

    fn dht(config: &str, identity: &[u8]) -> Result<Box<dyn weft_abi::dht::Dht>> {
        Ok(Box::new(Dht::new(Config::parse(config)?, identity)?))
    }
}

weft_abi::export_plugin!(MemoryPlugin);
