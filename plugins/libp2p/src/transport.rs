//! The `transport` kind over the node's swarm.

use std::net::IpAddr;
use std::sync::Arc;

use libp2p::core::transport::TransportError;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::DialError;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId};
use weft_abi::transport::Sink;
use weft_abi::{Error, ErrorCode, Result};

use crate::node::{self, Node};

/// Whether the stack can carry `addr` (without its `/p2p/` suffix): `/ip4|ip6/../tcp/PORT`,
/// optionally followed by `/ws`, `/wss` or `/tls/ws`.
fn supported(addr: &Multiaddr) -> bool {
    let mut it = addr.iter();
    let ip = matches!(it.next(), Some(Protocol::Ip4(_) | Protocol::Ip6(_)));
    let tcp = matches!(it.next(), Some(Protocol::Tcp(_)));
    let rest: Vec<Protocol<'_>> = it.collect();
    let tail =
        matches!(rest.as_slice(), [] | [Protocol::Ws(_)] | [Protocol::Wss(_)] | [Protocol::Tls, Protocol::Ws(_)]);
    ip && tcp && tail
}

fn unsupported(what: &str, addr: &Multiaddr) -> Error {
    Error::new(
        ErrorCode::INVALID_ARGUMENT,
        format!("libp2p {what}: {addr} is not supported; use /ip4/HOST/tcp/PORT, optionally followed by /ws"),
    )
}

/// Refuses a TCP port that something already listens on. libp2p's TCP listeners set
/// `SO_REUSEPORT` (for its port reuse when dialling), so a second node listening on a taken port
/// would share it silently, the kernel handing each connection to either; a plain bind first
/// (`SO_REUSEADDR` only, as std does) fails on such a port.
fn port_free(what: &str, addr: &Multiaddr) -> Result<()> {
    let mut it = addr.iter();
    let ip: IpAddr = match it.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    match it.next() {
        Some(Protocol::Tcp(port)) if port != 0 => std::net::TcpListener::bind((ip, port)).map(drop).map_err(|e| {
            Error::new(ErrorCode::IO, format!("libp2p {what}: cannot listen on {addr}: {e}; choose another port"))
        }),
        _ => Ok(()),
    }
}

/// A node's transport: TCP and websocket, noise, yamux; particles on `/weft/particle/1.0.0`.
#[derive(Debug)]
pub struct Transport {
    node: Arc<Node>,
}

impl Transport {
    /// The transport of the node with this identity, starting the node if needed; events go to `sink`.
    ///
    /// # Errors
    /// Bad config or identity, the runtime cannot start, or a transport of this identity already
    /// runs in this process.
    pub fn new(config: &str, identity: &[u8], sink: Sink) -> Result<Self> {
        let node = Node::get_or_start(identity, config)?;
        node.attach_transport(sink)?;
        Ok(Self { node })
    }
}

impl Drop for Transport {
    /// Dropping the transport shuts the node down (its dht handle then answers `CLOSED`).
    fn drop(&mut self) {
        self.node.shutdown();
    }
}

impl weft_abi::transport::Transport for Transport {
    fn local_peer_id(&self) -> String {
        self.node.shared.local.to_base58()
    }

    fn listen(&self, address: &str) -> Result<()> {
        const WHAT: &str = "transport.listen";
        let addr = node::parse_addr(WHAT, address)?;
        if !supported(&addr) {
            return Err(unsupported(WHAT, &addr));
        }
        if self.node.is_closed() {
            return Err(node::closed(WHAT));
        }
        port_free(WHAT, &addr)?;
        let rx = self.node.with_swarm(WHAT, |state, swarm| {
            let id = swarm.listen_on(addr.clone()).map_err(|e| match e {
                TransportError::MultiaddrNotSupported(_) => unsupported(WHAT, &addr),
                TransportError::Other(e) => Error::new(
                    ErrorCode::IO,
                    format!("libp2p {WHAT}: cannot listen on {addr}: {e}; choose another address or port"),
                ),
            })?;
            Ok(node::wait_for_listener(state, id))
        })?;
        if node::in_sink() {
            return Ok(()); // waiting here would wait on ourselves; LISTENING follows
        }
        match rx.recv_timeout(node::LISTEN_WAIT) {
            Ok(Ok(())) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(()),
            Ok(Err(reason)) => {
                Err(Error::new(ErrorCode::IO, format!("libp2p {WHAT}: listener on {addr} failed: {reason}")))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(node::closed(WHAT)),
        }
    }

    fn listen_addrs(&self) -> Vec<String> {
        self.node.read_swarm(|s| s.listeners().map(ToString::to_string).collect()).unwrap_or_default()
    }

    fn dial(&self, address: &str) -> Result<()> {
        const WHAT: &str = "transport.dial";
        let (addr, peer) = node::split_p2p(node::parse_addr(WHAT, address)?);
        let local = self.node.shared.local;
        if peer == Some(local) {
            return Err(Error::new(
                ErrorCode::INVALID_ARGUMENT,
                format!("libp2p {WHAT}: {address} is this node itself"),
            ));
        }
        let by_peer_only = addr.is_empty() && peer.is_some();
        if !by_peer_only && !supported(&addr) {
            return Err(unsupported(WHAT, &addr));
        }
        self.node.with_swarm(WHAT, |state, swarm| {
            let opts = match peer {
                Some(peer) => {
                    let addrs = if by_peer_only { node::known_addrs(state, swarm, &peer) } else { vec![addr.clone()] };
                    DialOpts::peer_id(peer).addresses(addrs).extend_addresses_through_behaviour().build()
                }
                None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
            };
            let connection = opts.connection_id();
            match swarm.dial(opts) {
                Ok(()) => node::dialling(state, connection),
                // Already connected to that peer: the dial succeeded, say so again.
                Err(DialError::DialPeerConditionFalse(_)) => {
                    if let Some(peer) = peer.filter(|p| swarm.is_connected(p)) {
                        node::raise(state, node::connected(peer, (!by_peer_only).then_some(&addr)));
                    }
                }
                Err(e) => node::raise(state, node::dial_failed(peer, (!by_peer_only).then_some(&addr), &e)),
            }
            Ok(())
        })
    }

    fn send(&self, peer: &str, message: Vec<u8>) -> Result<()> {
        let peer: PeerId = node::parse_peer("transport.send", peer)?;
        self.node.queue(peer, message)
    }

    fn connected_peers(&self) -> Vec<String> {
        self.node.read_swarm(|s| s.connected_peers().map(|p| p.to_base58()).collect()).unwrap_or_default()
    }

    fn shutdown(&self) {
        self.node.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_addresses() {
        for ok in
            ["/ip4/127.0.0.1/tcp/1", "/ip6/::1/tcp/0/ws", "/ip4/1.2.3.4/tcp/443/wss", "/ip4/1.2.3.4/tcp/443/tls/ws"]
        {
            assert!(supported(&ok.parse().unwrap()), "{ok}");
        }
        for bad in ["/memory/7", "/ip4/127.0.0.1/udp/1/quic-v1", "/dns4/example.com/tcp/1", "/ip4/127.0.0.1"] {
            assert!(!supported(&bad.parse().unwrap()), "{bad}");
        }
    }
}
