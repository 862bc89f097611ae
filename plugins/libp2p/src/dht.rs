//! The `dht` kind: Kademlia (`/weft/kad/1.0.0`) on the node's swarm.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use libp2p::PeerId;
use libp2p::kad::KBucketKey;
use weft_abi::{Error, ErrorCode, Result};

use crate::node::{self, Node, QueryOutcome};

/// Kademlia's k: a lookup returns at most this many peers.
const K: usize = 20;

/// A node's DHT.
#[derive(Debug)]
pub struct Dht {
    node: Arc<Node>,
}

fn no_blocking_in_sink(what: &str) -> Result<()> {
    if node::in_sink() {
        return Err(Error::other(format!(
            "libp2p {what}: cannot wait for the network inside the transport's event sink; call it from another thread"
        )));
    }
    Ok(())
}

fn timeout(what: &str, after: Duration) -> Error {
    Error::new(
        ErrorCode::TIMEOUT,
        format!("libp2p {what}: no answer within {} ms; retry with a longer timeout", after.as_millis()),
    )
}

impl Dht {
    /// The DHT of the node with this identity, starting the node if needed.
    ///
    /// # Errors
    /// Bad config or identity, or the runtime cannot start.
    pub fn new(config: &str, identity: &[u8]) -> Result<Self> {
        Ok(Self { node: Node::get_or_start(identity, config)? })
    }

    /// Waits for a query's outcome; on timeout the query is stopped.
    fn wait(
        &self,
        what: &str,
        id: libp2p::kad::QueryId,
        rx: &Receiver<QueryOutcome>,
        after: Duration,
    ) -> Result<QueryOutcome> {
        match rx.recv_timeout(after) {
            Ok(outcome) => Ok(outcome),
            Err(RecvTimeoutError::Timeout) => {
                // Ignore CLOSED here: the timeout is the answer.
                let _ = self.node.with_swarm(what, |state, swarm| {
                    node::abandon_query(state, swarm, id);
                    Ok(())
                });
                Err(timeout(what, after))
            }
            Err(RecvTimeoutError::Disconnected) => Err(node::closed(what)),
        }
    }
}

impl weft_abi::dht::Dht for Dht {
    fn add_address(&self, peer: &str, address: &str) -> Result<()> {
        const WHAT: &str = "dht.add_address";
        let peer: PeerId = node::parse_peer(WHAT, peer)?;
        let (addr, suffix) = node::split_p2p(node::parse_addr(WHAT, address)?);
        if suffix.is_some_and(|s| s != peer) {
            return Err(Error::new(
                ErrorCode::INVALID_ARGUMENT,
                format!("libp2p {WHAT}: {address} names another peer than {peer}"),
            ));
        }
        if addr.is_empty() {
            return Err(Error::new(
                ErrorCode::INVALID_ARGUMENT,
                format!("libp2p {WHAT}: {address:?} has no transport address"),
            ));
        }
        if peer == self.node.shared.local {
            return Ok(()); // our own address is nothing to route to
        }
        self.node.with_swarm(WHAT, |state, swarm| {
            node::remember(state, peer, addr.clone());
            swarm.behaviour_mut().kad.add_address(&peer, addr);
            Ok(())
        })
    }

    fn bootstrap(&self) -> Result<()> {
        const WHAT: &str = "dht.bootstrap";
        no_blocking_in_sink(WHAT)?;
        let (id, rx) = self.node.with_swarm(WHAT, |state, swarm| {
            let id = swarm.behaviour_mut().kad.bootstrap().map_err(|_| {
                Error::new(
                    ErrorCode::NOT_FOUND,
                    format!("libp2p {WHAT}: no peer is known; add one with add_address first"),
                )
            })?;
            Ok((id, node::wait_for_query(state, id)))
        })?;
        let after = self.node.shared.config.query_timeout() + Duration::from_secs(1);
        match self.wait(WHAT, id, &rx, after)? {
            QueryOutcome::Bootstrap { successes, .. } if successes > 0 => Ok(()),
            _ => Err(Error::new(
                ErrorCode::IO,
                format!("libp2p {WHAT}: none of the known peers answered; check their addresses"),
            )),
        }
    }

    fn find_peer(&self, peer: &str, timeout: Duration) -> Result<Vec<String>> {
        const WHAT: &str = "dht.find_peer";
        let target: PeerId = node::parse_peer(WHAT, peer)?;
        let local = self.node.shared.local;
        if target == local {
            return Ok(self.node.read_swarm(|s| s.listeners().map(ToString::to_string).collect()).unwrap_or_default());
        }
        let known = self.node.with_swarm(WHAT, |state, swarm| Ok(node::known_addrs(state, swarm, &target)))?;
        if !known.is_empty() {
            return Ok(known.iter().map(ToString::to_string).collect());
        }
        no_blocking_in_sink(WHAT)?;
        let (id, rx) = self.node.with_swarm(WHAT, |state, swarm| {
            let id = swarm.behaviour_mut().kad.get_closest_peers(target);
            Ok((id, node::wait_for_query(state, id)))
        })?;
        let QueryOutcome::Closest { peers, .. } = self.wait(WHAT, id, &rx, timeout)? else {
            return Err(Error::other(format!("libp2p {WHAT}: unexpected query result")));
        };
        let mut found: Vec<String> = Vec::new();
        for info in peers.into_iter().filter(|p| p.peer_id == target) {
            for addr in info.addrs {
                let text = node::split_p2p(addr).0.to_string();
                if !found.contains(&text) {
                    found.push(text);
                }
            }
        }
        if found.is_empty() {
            // The lookup may have connected to it and learned its addresses through identify.
            let known = self.node.with_swarm(WHAT, |state, swarm| Ok(node::known_addrs(state, swarm, &target)))?;
            found = known.iter().map(ToString::to_string).collect();
        }
        if found.is_empty() {
            return Err(Error::new(
                ErrorCode::NOT_FOUND,
                format!("libp2p {WHAT}: peer {target} is not in the dht; check the id or bootstrap first"),
            ));
        }
        Ok(found)
    }

    fn neighborhood(&self, key: &[u8], count: usize, timeout: Duration) -> Result<Vec<String>> {
        const WHAT: &str = "dht.neighborhood";
        let Some(n) = NonZeroUsize::new(count.min(K)) else { return Ok(Vec::new()) };
        no_blocking_in_sink(WHAT)?;
        let (id, rx) = self.node.with_swarm(WHAT, |state, swarm| {
            let id = swarm.behaviour_mut().kad.get_n_closest_peers(key.to_vec(), n);
            Ok((id, node::wait_for_query(state, id)))
        })?;
        let QueryOutcome::Closest { peers, .. } = self.wait(WHAT, id, &rx, timeout)? else {
            return Err(Error::other(format!("libp2p {WHAT}: unexpected query result")));
        };
        // Kademlia distance: XOR of the SHA-256 of the key and of each peer id's bytes.
        let target = KBucketKey::new(key.to_vec());
        let mut ids: Vec<PeerId> = peers.into_iter().map(|p| p.peer_id).collect();
        ids.sort_by_key(|p| target.distance(&KBucketKey::from(*p)));
        ids.dedup();
        Ok(ids.into_iter().take(count).map(|p| p.to_base58()).collect())
    }
}
