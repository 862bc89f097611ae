//! A running peer: identity, transport and DHT plugins, the particle loop, builtins, services.
//!
//! ```no_run
//! use weft_host::node::{Config, Node};
//! let host = weft_host::Host::open(&weft_host::Options::default())?;
//! let config = Config { listen: vec!["/ip4/127.0.0.1/tcp/0".into()], ..Config::default() };
//! let node = Node::start(host, config)?;
//! println!("{}", node.peer_id());
//! for addr in node.listen_addrs() {
//!     println!("listening on {addr}");
//! }
//! node.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A node answers particles: it checks each one (size, format, signature, time window,
//! duplicates, limits), runs the AIR interpreter plugin for it, answers the call requests with
//! [builtins](builtins) and its services, and sends the particle on to the next peers — over an
//! open connection, or after a DHT lookup and a dial.

pub mod builtins;
mod config;
pub(crate) mod core;

use std::sync::Arc;
use std::time::Duration;

pub use self::config::{Config, Limits};
pub use self::core::{Call, CallError, CallFuture, Core, Handler, ParticleInfo, Stats, now_ms, p2p_of, with_p2p};
use crate::Host;
use crate::identity::Identity;
use crate::services::{Capabilities, Services};
use weft_abi::Kind;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No plugin for a kind the node needs.
    #[error(transparent)]
    Select(#[from] crate::plugins::SelectError),
    /// A plugin's constructor refused.
    #[error("{kind} plugin {plugin}: {source}")]
    Plugin {
        /// The kind.
        kind: &'static str,
        /// The plugin.
        plugin: String,
        /// What it said.
        source: weft_abi::Error,
    },
    /// The identity key.
    #[error(transparent)]
    Identity(#[from] crate::identity::Error),
    /// Services could not be set up.
    #[error(transparent)]
    Services(#[from] crate::services::Error),
    /// An effector plugin could not be set up.
    #[error(transparent)]
    Effectors(#[from] crate::effectors::Error),
    /// A listen address was refused.
    #[error(
        "cannot listen on {address}: {source}; check the address (e.g. /ip4/0.0.0.0/tcp/7770) and that the port is free"
    )]
    Listen {
        /// The address.
        address: String,
        /// What the transport said.
        source: weft_abi::Error,
    },
    /// A bootstrap address is malformed.
    #[error("bootstrap address {0:?} must end in /p2p/<peer id>")]
    Bootstrap(String),
    /// The transport's id differs from the identity's.
    #[error(
        "transport plugin {plugin} reports peer id {reported}, but the identity's is {expected}; the plugin is broken"
    )]
    PeerId {
        /// The plugin.
        plugin: String,
        /// What it said.
        reported: String,
        /// What it should have said.
        expected: String,
    },
}

/// A running node. Dropping it shuts it down.
pub struct Node {
    core: Arc<Core>,
    services: Arc<Services>,
    host: Host,
    stop: Option<smol::channel::Sender<()>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    ex: Option<Arc<smol::Executor<'static>>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("peer_id", &self.core.peer_id()).finish_non_exhaustive()
    }
}

/// Starts the executor threads of a particle loop; they run until `stop` closes.
pub(crate) fn spawn_workers(
    n: usize,
    name: &str,
) -> (Arc<smol::Executor<'static>>, smol::channel::Sender<()>, Vec<std::thread::JoinHandle<()>>) {
    let ex = Arc::new(smol::Executor::new());
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let workers = (0..n.max(1))
        .map(|i| {
            let ex = Arc::clone(&ex);
            let stopped = stopped.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    smol::block_on(ex.run(async { stopped.recv().await.ok() }));
                })
                .expect("the OS starts a thread")
        })
        .collect();
    (ex, stop, workers)
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get).max(2)
}

impl Node {
    /// Starts a node on `host` with its identity from `<data dir>/identity.key` (made on first
    /// start) and the capabilities of the effector plugins found, listening on `config.listen`
    /// and connecting to `config.bootstrap`.
    ///
    /// # Errors
    /// See [`Error`].
    pub fn start(host: Host, config: Config) -> Result<Self, Error> {
        let identity = Identity::load_or_create(&host.setup.data_dir.join("identity.key"))?;
        let capabilities = crate::effectors::load(&host.setup, &host.store)?;
        Self::start_with(host, config, identity, capabilities)
    }

    /// Starts a node with the given identity and effector capabilities.
    ///
    /// # Errors
    /// See [`Error`].
    pub fn start_with(
        host: Host,
        config: Config,
        identity: Identity,
        capabilities: Capabilities,
    ) -> Result<Self, Error> {
        let setup = &host.setup;
        let transport_plugin = setup.select(Kind::TRANSPORT)?;
        let air_plugin = setup.select(Kind::AIR)?;
        // The DHT: the configured one, else the transport plugin's own, else the only one.
        let dht_plugin = match setup.config.plugins.dht.as_deref() {
            Some(_) => Some(setup.select(Kind::DHT)?),
            None if transport_plugin.provides(Kind::DHT) => Some(transport_plugin),
            None => setup.select(Kind::DHT).ok(),
        };
        let mut events = core::EventQueue::new(config.limits.event_queue);
        let name = transport_plugin.name().to_owned();
        let plugin_error = |kind: &'static str, plugin: &str| {
            let plugin = plugin.to_owned();
            move |source| Error::Plugin { kind, plugin, source }
        };
        let transport = transport_plugin
            .transport(&setup.config.plugins.config_text(&name), &identity.secret(), events.take_sink())
            .map_err(plugin_error("transport", &name))?;
        let reported = transport.local_peer_id().map_err(plugin_error("transport", &name))?;
        if reported != identity.peer_id() {
            return Err(Error::PeerId { plugin: name, reported, expected: identity.peer_id().to_owned() });
        }
        let dht = match dht_plugin {
            Some(p) => Some(
                p.dht(&setup.config.plugins.config_text(p.name()), &identity.secret())
                    .map_err(plugin_error("dht", p.name()))?,
            ),
            None => {
                tracing::warn!("no dht plugin: this node finds only peers it is connected to");
                None
            }
        };
        let air = air_plugin
            .air(&setup.config.plugins.config_text(air_plugin.name()))
            .map_err(plugin_error("air", air_plugin.name()))?;

        let cache = Arc::new(weft_compiler::Cache::new(host.store.clone(), host.cache.compiler().clone()));
        let services = Arc::new(Services::new(cache, &setup.data_dir, identity.peer_id(), capabilities)?);
        services.set_max_linked(config.limits.max_linked_services);
        let handler = Arc::new(builtins::NodeHandler {
            services: Arc::clone(&services),
            owner: config.owner.clone(),
            version: env!("CARGO_PKG_VERSION"),
        });
        let (ex, stop, workers) = spawn_workers(config.workers.unwrap_or_else(default_workers), "weft-node");
        let parts = core::Parts { identity, transport, dht, air, limits: config.limits.clone(), handler };
        let core = Core::start(parts, Arc::clone(&ex), events);
        let node = Node { core, services, host, stop: Some(stop), workers, ex: Some(ex) };

        for address in &config.listen {
            node.core
                .transport()
                .listen(address)
                .map_err(|source| Error::Listen { address: address.clone(), source })?;
        }
        node.bootstrap(&config.bootstrap, Duration::from_millis(config.dht_refresh_ms.max(1000)))?;
        tracing::info!(peer_id = %node.peer_id(), "node started");
        Ok(node)
    }

    fn bootstrap(&self, addrs: &[String], refresh: Duration) -> Result<(), Error> {
        let mut peers = Vec::new();
        for addr in addrs {
            let peer = p2p_of(addr).ok_or_else(|| Error::Bootstrap(addr.clone()))?.to_owned();
            let base = addr.rsplit_once("/p2p/").map_or(addr.as_str(), |(b, _)| b);
            if let Some(dht) = self.core.dht()
                && let Err(e) = weft_abi::dht::Dht::add_address(dht, &peer, base)
            {
                tracing::warn!("bootstrap {addr}: {e}");
            }
            peers.push((peer, addr.clone()));
        }
        if self.core.dht().is_none() && peers.is_empty() {
            return Ok(());
        }
        let core = Arc::downgrade(&self.core);
        self.core.spawn(async move {
            let mut first = true;
            loop {
                let Some(core) = core.upgrade() else { return };
                for (peer, addr) in &peers {
                    if !core.is_connected(peer)
                        && let Err(e) = core.connect(peer, std::slice::from_ref(addr)).await
                    {
                        tracing::warn!("bootstrap peer {addr}: {e}");
                    }
                }
                if core.dht().is_some() && (!peers.is_empty() || !first) {
                    let c = Arc::clone(&core);
                    if let Some(Err(e)) = smol::unblock(move || c.dht().map(weft_abi::dht::Dht::bootstrap)).await {
                        tracing::info!("dht bootstrap: {e}");
                    }
                }
                first = false;
                drop(core);
                smol::Timer::after(refresh).await;
            }
        });
        Ok(())
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> &str {
        self.core.peer_id()
    }

    /// Where it listens, each with `/p2p/<peer id>`: what clients and other nodes dial. Waits up
    /// to 5 s for the transport to report at least one address.
    pub fn listen_addrs(&self) -> Vec<String> {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mut addrs = self.core.listening();
            if addrs.is_empty() {
                addrs = self.core.transport().listen_addrs().unwrap_or_default();
            }
            if !addrs.is_empty() || std::time::Instant::now() >= until {
                return addrs.iter().map(|a| with_p2p(a, self.peer_id())).collect();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The particle loop's counters.
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// The particle loop.
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Its services.
    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Its local state.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Stops the node: closes the transport, stops the particle loop, flushes the store.
    /// Particles in flight are dropped (their init peers see them time out).
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let Some(stop) = self.stop.take() else { return };
        self.core.shutdown();
        drop(stop);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        // dropping the executor drops every task, and with them the core and its plugins' objects
        self.ex = None;
        if let Err(e) = self.host.store.flush() {
            tracing::warn!("flushing the store at shutdown: {e}");
        }
        tracing::info!(peer_id = %self.core.peer_id(), "node stopped");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_now();
    }
}
