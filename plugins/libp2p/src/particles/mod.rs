//! Particles on `/weft/particle/1.0.0`: a `NetworkBehaviour` whose handlers pipeline messages on
//! one long-lived stream per peer.
//!
//! # The protocol
//! The sender opens one stream on one connection of the peer (the queue's *owner*). The receiver
//! writes its `max_message_size` as an unsigned varint, once; then the sender writes frames back to
//! back, each a varint length and the bytes ([`codec`]), and never waits for an answer. Frames in
//! one batch are written together and flushed once, so a light load costs one packet per message
//! and a heavy one fills yamux frames. A message above the receiver's limit is dropped at the
//! sender; a receiver still refuses a larger frame (before its body) by resetting the stream.
//!
//! # Guarantees
//! Order per pair of peers (one writer per queue; a stream only carries one sender's frames in
//! order; a new owner or a new stream starts after the old one ended). At most once: when a
//! stream or connection breaks, the frames being written may be lost, and the next message opens a
//! new stream. An open that fails or times out costs the first waiting message, so that a broken
//! connection cannot retry forever.
//!
//! # Limits
//! `queue_len` messages and `queue_bytes` bytes per peer (an empty queue takes any message), and
//! `queue_bytes_total` bytes in all queues together (when none waits, any message is taken), plus
//! per connection the one batch being written (at most 64 KiB, or one larger
//! message); `max_particle_streams` inbound streams per connection (more are reset); frames of at
//! most `max_message_size`; reads stop while the node is stalled (frames wait in yamux's window).

mod codec;
mod handler;
mod outbox;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, NotifyHandler, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{PeerId, StreamProtocol};

pub use handler::{Command, Handler, HandlerEvent};
pub use outbox::{Full, Outboxes, QueueLimits, Refused};

/// The protocol name particles travel on.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/weft/particle/1.0.0");

/// What every handler of a node is limited to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest frame accepted (and announced to senders).
    pub max_message_size: usize,
    /// Inbound particle streams per connection.
    pub max_streams: usize,
    /// How long opening a stream may take, the receiver's limit included.
    pub open_timeout: Duration,
}

/// What the behaviour reports.
#[derive(Debug)]
pub enum Event {
    /// Messages from `peer`, in the order it sent them.
    Messages { peer: PeerId, messages: Vec<Vec<u8>> },
}

/// The particle behaviour of a node.
#[derive(Debug)]
pub struct Behaviour {
    outboxes: Arc<Outboxes>,
    limits: Limits,
    /// Established connections per peer, oldest first.
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    events: VecDeque<ToSwarm<Event, Command>>,
    waker: Option<Waker>,
}

impl Behaviour {
    /// A behaviour writing the queues of `outboxes` (shared with `send`).
    pub fn new(outboxes: Arc<Outboxes>, limits: Limits) -> Self {
        Self { outboxes, limits, connections: HashMap::new(), events: VecDeque::new(), waker: None }
    }

    fn handler(&self, connection: ConnectionId, peer: PeerId) -> Handler {
        Handler::new(connection, self.outboxes.get_or_create(peer), self.limits)
    }

    fn own(&mut self, peer: PeerId, connection: ConnectionId) {
        self.events.push_back(ToSwarm::NotifyHandler {
            peer_id: peer,
            handler: NotifyHandler::One(connection),
            event: Command::Own,
        });
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn on_established(&mut self, peer: PeerId, connection: ConnectionId) {
        self.connections.entry(peer).or_default().push(connection);
        let outbox = self.outboxes.get_or_create(peer);
        if outbox.owner().is_none() {
            outbox.set_owner(Some(connection));
            self.own(peer, connection);
        }
    }

    fn on_closed(&mut self, peer: PeerId, connection: ConnectionId) {
        let Some(list) = self.connections.get_mut(&peer) else { return };
        list.retain(|c| *c != connection);
        let next = list.first().copied();
        if next.is_none() {
            self.connections.remove(&peer);
        }
        let Some(outbox) = self.outboxes.get(&peer) else { return };
        if outbox.owner() == Some(connection) || next.is_none() {
            outbox.set_owner(next);
            match next {
                Some(next) => self.own(peer, next),
                // Messages still waiting are the node's to redial for or drop.
                None if outbox.len() == 0 => self.outboxes.remove(&peer),
                None => {}
            }
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        _remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(connection, peer))
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(connection, peer))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished { peer_id, connection_id, .. }) => {
                self.on_established(peer_id, connection_id);
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { peer_id, connection_id, .. }) => {
                self.on_closed(peer_id, connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(&mut self, peer: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
        match event {
            HandlerEvent::Messages(messages) => {
                self.events.push_back(ToSwarm::GenerateEvent(Event::Messages { peer, messages }));
            }
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        match self.events.pop_front() {
            Some(event) => Poll::Ready(event),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
