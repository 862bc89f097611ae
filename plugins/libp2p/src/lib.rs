//! The `libp2p` plugin: weft's network, as a `transport` and a `dht` over
//! [rust-libp2p](https://docs.rs/libp2p/0.57.1).
//!
//! # Concepts
//! - **One node per identity.** The transport and the dht of a node get the same 32-byte Ed25519
//!   seed; whichever constructor runs first starts the node (a swarm and a small tokio runtime
//!   owned by the plugin), the other attaches to it. Its peer id is
//!   [`weft_abi::peer_id::peer_id_from_secret`] of the seed.
//! - **The stack.** TCP, and websocket over TCP (`/ip4/127.0.0.1/tcp/0/ws`, for browser clients),
//!   both with noise and yamux; identify, ping (`PING` events with the round-trip time), Kademlia
//!   on `/weft/kad/1.0.0` (server mode, or client mode for applications) and connection limits.
//! - **Particles** travel on `/weft/particle/1.0.0` ([`PROTOCOL`]): one long-lived stream per peer
//!   carries length-prefixed frames back to back, pipelined, without acknowledgements. Each peer
//!   has a bounded queue, written by one connection at a time, so the order between two peers is
//!   kept; delivery is at most once (frames being written when a connection breaks may be lost).
//! - **Nothing async crosses the ABI.** API calls lock the swarm, act, and wake the task that
//!   drives it; events reach the host's sink from that task only, never under a lock.
//!
//! # Configuration
//! [`Config`], from the node's `[plugins.config.libp2p]` (TOML, or JSON text; unknown keys are
//! errors):
//!
//! ```toml
//! max_message_size = 16777216     # bytes, sent or accepted
//! queue_len = 256                 # messages waiting per peer
//! queue_bytes = 67108864          # bytes waiting per peer (an empty queue takes any message)
//! queue_bytes_total = 1073741824  # bytes waiting for all peers together
//! open_timeout_ms = 10000         # opening the particle stream on a connection
//! idle_connection_timeout_ms = 600000
//! ping_interval_ms = 15000
//! mode = "server"                 # or "client" (applications: do not serve the DHT)
//! ```
//!
//! # Example
//! ```no_run
//! use weft_abi::dht::Dht as _;
//! use weft_abi::transport::{Event, EventSink, Sink, Transport as _};
//!
//! struct Print;
//! impl EventSink for Print {
//!     fn event(&self, event: Event) -> bool {
//!         println!("{:?} {} {}", event.kind, event.peer, event.address);
//!         true
//!     }
//! }
//!
//! let seed = [7u8; 32];
//! let transport = weft_plugin_libp2p::Transport::new("", &seed, Sink::new(Print)).unwrap();
//! let dht = weft_plugin_libp2p::Dht::new("", &seed).unwrap(); // the same node
//! transport.listen("/ip4/127.0.0.1/tcp/0").unwrap();
//! println!("{} on {:?}", transport.local_peer_id(), transport.listen_addrs());
//! assert!(dht.bootstrap().is_err()); // no peer known yet
//! transport.shutdown();
//! ```

mod config;
mod dht;
mod node;
mod particles;
mod swarm;
mod transport;

pub use config::{Config, MAX_MESSAGE_SIZE_LIMIT, Mode};
pub use dht::Dht;
pub use particles::PROTOCOL;
pub use swarm::KAD_PROTOCOL;
pub use transport::Transport;

use weft_abi::{Kind, Manifest, Provider, Result};

/// The plugin provider.
#[derive(Debug)]
pub struct Libp2pPlugin;

impl Provider for Libp2pPlugin {
    fn manifest() -> Manifest {
        Manifest {
            name: "libp2p".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "transport (tcp, websocket; noise, yamux) and kademlia dht on rust-libp2p 0.57".into(),
            kinds: vec![Kind::TRANSPORT, Kind::DHT],
        }
    }

    fn transport(
        config: &str,
        identity: &[u8],
        sink: weft_abi::transport::Sink,
    ) -> Result<Box<dyn weft_abi::transport::Transport>> {
        Ok(Box::new(Transport::new(config, identity, sink)?))
    }

    fn dht(config: &str, identity: &[u8]) -> Result<Box<dyn weft_abi::dht::Dht>> {
        Ok(Box::new(Dht::new(config, identity)?))
    }
}

weft_abi::export_plugin!(Libp2pPlugin);
