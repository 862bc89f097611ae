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
    /// How often the node refreshes its DHT routing table and re-dials bootstrap peers it lost, ms.
    pub dht_refresh_ms: u64,
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
            dht_refresh_ms: 300_000,
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
    /// Particles with a running actor on this node at once; more are dropped.
    pub max_particles: usize,
    /// Particles with a running actor started by one init peer; more are dropped.
    pub max_particles_per_peer: usize,
    /// Longest ttl accepted, ms.
    pub max_ttl_ms: u64,
    /// How far in the future a particle's timestamp may be (clock skew), ms.
    pub max_clock_skew_ms: u64,
    /// Messages waiting for one particle's actor; more are dropped.
    pub actor_queue: usize,
    /// How long an actor with nothing to do stays; then its data waits, dormant, for the
    /// particle's next arrival or its deadline (ms).
    pub actor_idle_ms: u64,
    /// Bytes of dormant particle data kept; beyond it the first to expire is dropped.
    pub max_dormant_bytes: usize,
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
    /// Services kept instantiated at once; beyond it the least recently called idle one is
    /// dropped and instantiated again on its next call (each module's memory reserves ~4 GiB of
    /// address space, see docs/services.md).
    pub max_linked_services: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_particle_size: 16 << 20,
            max_particles: 50_000,
            max_particles_per_peer: 20_000,
            max_ttl_ms: 3_600_000,
            max_clock_skew_ms: 60_000,
            actor_queue: 256,
            actor_idle_ms: 1_000,
            max_dormant_bytes: 256 << 20,
            event_queue: 16_384,
            max_concurrent_calls: 512,
            max_seen: 100_000,
            lookup_timeout_ms: 10_000,
            connect_timeout_ms: 10_000,
            max_linked_services: crate::services::MAX_LINKED,
        }
    }
}
