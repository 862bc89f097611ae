//! The libp2p stack of one node: transports, upgrades and the composed network behaviour.

use std::sync::Arc;
use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{PeerId, StreamProtocol, Swarm, Transport as _};
use libp2p::{connection_limits, identify, kad, noise, ping, tcp, yamux};
use weft_abi::{Error, Result};

use crate::config::{Config, Mode};
use crate::particles::{self, Outboxes};

/// The Kademlia protocol name of weft networks (not the public IPFS DHT's).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/weft/kad/1.0.0");

/// The identify protocol version weft peers announce.
const IDENTIFY_VERSION: &str = "/weft/1.0.0";

/// A websocket frame larger than this closes the connection. Noise frames are at most 64 KiB, so a
/// libp2p peer never needs more; soketto's default (256 MiB) would let a peer make us buffer that much.
const WS_MAX_FRAME: usize = 1 << 20;

/// TCP connect + noise + yamux must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Inbound streams still negotiating their protocol, per connection.
const MAX_NEGOTIATING_INBOUND_STREAMS: usize = 32;

/// Everything a node's swarm does.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Connection limits (first: it refuses connections before the others see them).
    pub limits: connection_limits::Behaviour,
    /// Exchanges listen addresses and protocols with each connected peer.
    pub identify: identify::Behaviour,
    /// Measures round trips (`PING` events).
    pub ping: ping::Behaviour,
    /// The DHT.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Particles: frames pipelined on one stream per peer (last: it never denies a connection, and
    /// sees every connection the others let through).
    pub particles: particles::Behaviour,
}

fn transport(keypair: &Keypair, config: &Config) -> Result<Boxed<(PeerId, StreamMuxerBox)>> {
    let noise = noise::Config::new(keypair).map_err(|e| Error::other(format!("libp2p: cannot set up noise: {e}")))?;
    let mut yamux = yamux::Config::default();
    yamux.set_max_num_streams(config.max_streams_per_connection);
    let tcp_config = || tcp::Config::default().nodelay(true);
    let mut ws = libp2p_websocket::Config::new(tcp::tokio::Transport::new(tcp_config()));
    ws.set_max_data_size(WS_MAX_FRAME);
    Ok(tcp::tokio::Transport::new(tcp_config())
        .or_transport(ws)
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux)
        .timeout(HANDSHAKE_TIMEOUT)
        .boxed())
}

fn behaviour(keypair: &Keypair, config: &Config, outboxes: Arc<Outboxes>) -> Behaviour {
    let local = keypair.public().to_peer_id();
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_connections))
        .with_max_established_per_peer(Some(config.max_connections_per_peer))
        .with_max_pending_incoming(Some(config.max_pending_connections))
        .with_max_pending_outgoing(Some(config.max_pending_connections));
    let identify = identify::Config::new(IDENTIFY_VERSION.into(), keypair.public())
        .with_agent_version(format!("weft-plugin-libp2p/{}", env!("CARGO_PKG_VERSION")))
        .with_push_listen_addr_updates(true);
    let mut kad_config = kad::Config::new(KAD_PROTOCOL);
    kad_config.set_query_timeout(config.query_timeout());
    // weft uses Kademlia for peer routing only: records and provider announcements that others
    // send are not stored (memory stays bounded).
    kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
    let mut kad = kad::Behaviour::with_config(local, kad::store::MemoryStore::new(local), kad_config);
    kad.set_mode(Some(match config.mode {
        Mode::Server => kad::Mode::Server,
        Mode::Client => kad::Mode::Client,
    }));
    let particles = particles::Behaviour::new(
        outboxes,
        particles::Limits {
            max_message_size: config.max_message_size,
            max_streams: config.max_particle_streams,
            open_timeout: config.open_timeout(),
        },
    );
    Behaviour {
        limits: connection_limits::Behaviour::new(limits),
        identify: identify::Behaviour::new(identify),
        ping: ping::Behaviour::new(ping::Config::new().with_interval(config.ping_interval())),
        kad,
        particles,
    }
}

/// Builds the swarm, its particle behaviour writing the queues of `outboxes`. Must run inside the
/// node's tokio runtime context.
pub fn build(keypair: Keypair, config: &Config, outboxes: Arc<Outboxes>) -> Result<Swarm<Behaviour>> {
    let local = keypair.public().to_peer_id();
    let transport = transport(&keypair, config)?;
    let behaviour = behaviour(&keypair, config, outboxes);
    let swarm_config = libp2p::swarm::Config::with_tokio_executor()
        .with_idle_connection_timeout(config.idle_connection_timeout())
        .with_max_negotiating_inbound_streams(MAX_NEGOTIATING_INBOUND_STREAMS);
    Ok(Swarm::new(transport, behaviour, local, swarm_config))
}
