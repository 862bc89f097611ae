//! The `[node]` table of the configuration: addresses, bootstrap peers, owner, limits.

use serde::Deserialize;

/// The `[node]` table.
///
/// ```toml
/// [node]
/// listen = ["/ip4/0.0.0.0/tcp/7770", "/ip4/0.0.0.0/tcp/7771/ws"]
/// bootstrap = ["/ip4/192.0.2.7/tcp/7770/p2p/12D3KooW..."]
/// owner = "12D3KooW..."        # may remove any service on this node
///
/// [node.limits]
/// max_particles = 10000
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Multiaddresses to listen on.
    pub listen: Vec<String>,
    /// Peers to connect to at start, with `/p2p/<peer id>` (their ids seed the DHT).
    pub bootstrap: Vec<String>,
    /// A peer id that may remove any service on this node (besides each service's creator).
    pub owner: Option<String>,
    /// Threads of the particle loop (default: the number of cores, at least 2).
    pub workers: Option<usize>,
    /// Limits.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: vec!["/ip4/0.0.0.0/tcp/7770".into()],
            bootstrap: Vec::new(),
            owner: None,
            workers: None,
            limits: Limits::default(),
        }
    }
}

/// Everything a node bounds. Each limit has a test that hits it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest particle message accepted or sent, bytes.
    pub max_particle_size: usize,
    /// Particles in flight on this node at once (one actor each); more are dropped.
    pub max_particles: usize,
    /// Particles in flight started by one init peer; more are dropped.
    pub max_particles_per_peer: usize,
    /// Longest ttl accepted, ms.
    pub max_ttl_ms: u64,
    /// How far in the future a particle's timestamp may be (clock skew), ms.
    pub max_clock_skew_ms: u64,
    /// Messages waiting for one particle's actor; more are dropped.
    pub actor_queue: usize,
    /// Transport events waiting for the particle loop; more are dropped by the sink.
    pub event_queue: usize,
    /// Service and builtin calls running at once on this node.
    pub max_concurrent_calls: usize,
    /// Message hashes remembered to drop duplicates (for their particles' ttl).
    pub max_seen: usize,
    /// How long a DHT lookup for a next peer may take, ms.
    pub lookup_timeout_ms: u64,
    /// How long connecting to a found peer may take, ms.
    pub connect_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_particle_size: 16 << 20,
            max_particles: 10_000,
            max_particles_per_peer: 2_000,
            max_ttl_ms: 3_600_000,
            max_clock_skew_ms: 60_000,
            actor_queue: 256,
            event_queue: 16_384,
            max_concurrent_calls: 512,
            max_seen: 100_000,
            lookup_timeout_ms: 10_000,
            connect_timeout_ms: 10_000,
        }
    }
}
