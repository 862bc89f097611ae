//! One running node per identity: its swarm, the tokio runtime that drives it, and the loop that
//! turns swarm events into weft events.
//!
//! The swarm lives behind one mutex ([`Core`]). The driving task locks it for each poll; API calls
//! lock it, act directly (listen, dial, start a query) and wake the task. Events are collected
//! while the lock is held and handed to the sink only after it is released, from the driving task
//! alone, so they keep their order and the sink may call back into the plugin.
//!
//! Sending skips that lock when it can: a connected peer's queue ([`Outboxes`]) is written by its
//! connection's handler, and `send` pushes to it and wakes that handler directly. Only a peer
//! without a connection (to dial) takes the swarm's lock.

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use libp2p::core::transport::ListenerId;
use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, kad, ping};
use weft_abi::transport::{Event, EventKind, Sink};
use weft_abi::{Error, ErrorCode, Result};

use crate::config::Config;
use crate::particles::{self, Full, Outboxes, QueueLimits, Refused};
use crate::swarm::{self, Behaviour, BehaviourEvent, KAD_PROTOCOL};

/// Swarm events handled per lock acquisition before the loop emits what it has, and the message
/// bytes after which it emits early.
const EVENTS_PER_POLL: usize = 64;
const BYTES_PER_POLL: usize = 1 << 20;
/// Addresses remembered per peer, and peers remembered, outside Kademlia's table.
const ADDRS_PER_PEER: usize = 8;
const BOOK_PEERS: usize = 4096;
/// Events raised by API calls that wait for the driving task (it drains them every poll).
const OUTBOX_MAX: usize = 1024;
/// How long `listen` waits for the listener's first address.
pub const LISTEN_WAIT: Duration = Duration::from_secs(5);

thread_local! {
    /// Set while this thread runs the host's sink: blocking calls would wait on themselves.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is inside the event sink (and so must not block on the swarm).
pub fn in_sink() -> bool {
    IN_SINK.with(Cell::get)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `CLOSED`: the call came after `shutdown`.
pub fn closed(what: &str) -> Error {
    Error::new(ErrorCode::CLOSED, format!("libp2p {what}: the node was shut down; create a new transport"))
}

/// Parses a peer id.
pub fn parse_peer(what: &str, text: &str) -> Result<PeerId> {
    text.parse().map_err(|_| {
        Error::new(ErrorCode::INVALID_ARGUMENT, format!("libp2p {what}: {text:?} is not a peer id (12D3KooW...)"))
    })
}

/// Parses a multiaddress.
pub fn parse_addr(what: &str, text: &str) -> Result<Multiaddr> {
    text.parse().map_err(|e| {
        Error::new(ErrorCode::INVALID_ARGUMENT, format!("libp2p {what}: {text:?} is not a multiaddress ({e})"))
    })
}

/// Splits a trailing `/p2p/<id>` off an address.
pub fn split_p2p(mut addr: Multiaddr) -> (Multiaddr, Option<PeerId>) {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => {
            addr.pop();
            (addr, Some(peer))
        }
        _ => (addr, None),
    }
}

/// One line from an error chain (libp2p's errors may span lines).
fn one_line(text: impl std::fmt::Display) -> String {
    text.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a waiting DHT call gets back.
#[derive(Debug)]
pub enum QueryOutcome {
    /// The first step of a bootstrap: how many peers answered.
    Bootstrap { successes: u32 },
    /// The closest peers found (those found before the query timed out, if it did).
    Closest { peers: Vec<kad::PeerInfo> },
}

/// Addresses learned outside Kademlia's table (dials, identify, `add_address`), bounded.
#[derive(Debug, Default)]
struct AddressBook {
    map: HashMap<PeerId, Vec<Multiaddr>>,
    order: VecDeque<PeerId>,
}

impl AddressBook {
    fn add(&mut self, peer: PeerId, addr: Multiaddr) {
        let addrs = self.map.entry(peer).or_insert_with(|| {
            self.order.push_back(peer);
            Vec::new()
        });
        if !addrs.contains(&addr) {
            if addrs.len() == ADDRS_PER_PEER {
                addrs.remove(0);
            }
            addrs.push(addr);
        }
        while self.map.len() > BOOK_PEERS {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    fn remove(&mut self, peer: &PeerId, addr: &Multiaddr) {
        if let Some(addrs) = self.map.get_mut(peer) {
            addrs.retain(|a| a != addr);
            if addrs.is_empty() {
                self.map.remove(peer);
                self.order.retain(|p| p != peer);
            }
        }
    }

    fn get(&self, peer: &PeerId) -> &[Multiaddr] {
        self.map.get(peer).map_or(&[], Vec::as_slice)
    }
}

/// Everything but the swarm, behind the same lock.
#[derive(Debug, Default)]
pub struct State {
    waker: Option<Waker>,
    /// Events raised by API calls, emitted by the driving task.
    outbox: Vec<Event>,
    book: AddressBook,
    queries: HashMap<kad::QueryId, mpsc::SyncSender<QueryOutcome>>,
    listeners: HashMap<ListenerId, mpsc::SyncSender<std::result::Result<(), String>>>,
    /// Connections being opened by `dial`: the dialer reports `CONNECTED` for each of them, even
    /// when the peer was connected already.
    dials: HashSet<ConnectionId>,
}

/// The swarm (gone after shutdown) and the state around it.
pub struct Core {
    swarm: Option<Swarm<Behaviour>>,
    state: State,
}

/// What the driving task and the API calls share.
pub struct Shared {
    core: Mutex<Core>,
    sink: Mutex<Option<Arc<Sink>>>,
    /// The node's configuration (from the first constructor that started it).
    pub config: Config,
    /// This node's peer id.
    pub local: PeerId,
    /// The messages waiting for each peer.
    outboxes: Arc<Outboxes>,
    handle: tokio::runtime::Handle,
    closed: AtomicBool,
}

/// A running node. Dropping the last handle shuts it down.
pub struct Node {
    /// What the driving task shares.
    pub shared: Arc<Shared>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    has_transport: AtomicBool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("libp2p::Node").field("peer", &self.shared.local.to_base58()).finish_non_exhaustive()
    }
}

/// The nodes of this process, by peer id: the transport and the dht of one identity share one.
static NODES: Mutex<Vec<(PeerId, Weak<Node>)>> = Mutex::new(Vec::new());

impl Node {
    /// The running node of `identity` (a 32-byte Ed25519 seed), started with `config` if there is none.
    ///
    /// # Errors
    /// Bad config, a malformed identity, or the runtime cannot start.
    pub fn get_or_start(identity: &[u8], config: &str) -> Result<Arc<Node>> {
        let config = Config::parse(config)?;
        let mut seed: [u8; 32] = identity.try_into().map_err(|_| {
            Error::new(
                ErrorCode::INVALID_ARGUMENT,
                format!("libp2p: the identity must be a 32-byte ed25519 seed, got {} bytes", identity.len()),
            )
        })?;
        let keypair = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
            .map_err(|e| Error::new(ErrorCode::INVALID_ARGUMENT, format!("libp2p: bad identity: {e}")))?;
        let local = keypair.public().to_peer_id();
        let mut nodes = lock(&NODES);
        nodes.retain(|(_, node)| node.strong_count() > 0);
        let running = nodes.iter().find(|(peer, _)| *peer == local).and_then(|(_, node)| node.upgrade());
        if let Some(node) = running.filter(|n| !n.shared.closed.load(Ordering::SeqCst)) {
            return Ok(node);
        }
        let node = Arc::new(Node::start(keypair, config)?);
        nodes.retain(|(peer, _)| *peer != local);
        nodes.push((local, Arc::downgrade(&node)));
        Ok(node)
    }

    fn start(keypair: libp2p::identity::Keypair, config: Config) -> Result<Node> {
        let local = keypair.public().to_peer_id();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads)
            .thread_name("weft-libp2p")
            .enable_all()
            .build()
            .map_err(|e| Error::io("libp2p: cannot start the tokio runtime", &e))?;
        let outboxes = Arc::new(Outboxes::default());
        let swarm = {
            let _enter = runtime.enter();
            swarm::build(keypair, &config, Arc::clone(&outboxes))?
        };
        let shared = Arc::new(Shared {
            core: Mutex::new(Core { swarm: Some(swarm), state: State::default() }),
            sink: Mutex::new(None),
            config,
            local,
            outboxes,
            handle: runtime.handle().clone(),
            closed: AtomicBool::new(false),
        });
        runtime.spawn(drive(Arc::clone(&shared)));
        Ok(Node { shared, runtime: Mutex::new(Some(runtime)), has_transport: AtomicBool::new(false) })
    }

    /// Attaches a transport's sink.
    ///
    /// # Errors
    /// Another transport of this identity is attached.
    pub fn attach_transport(&self, sink: Sink) -> Result<()> {
        if self.has_transport.swap(true, Ordering::SeqCst) {
            return Err(Error::other(format!(
                "libp2p: a transport for peer {} already runs in this process; shut it down or drop it first",
                self.shared.local.to_base58()
            )));
        }
        *lock(&self.shared.sink) = Some(Arc::new(sink));
        Ok(())
    }

    /// Runs `f` on the swarm inside the runtime's context, then wakes the driving task.
    ///
    /// # Errors
    /// `CLOSED` after shutdown, or what `f` returns.
    pub fn with_swarm<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut State, &mut Swarm<Behaviour>) -> Result<T>,
    ) -> Result<T> {
        let _enter = self.shared.handle.enter();
        let mut core = lock(&self.shared.core);
        let core = &mut *core;
        let Some(swarm) = core.swarm.as_mut().filter(|_| !self.is_closed()) else { return Err(closed(what)) };
        let result = f(&mut core.state, swarm);
        if let Some(waker) = &core.state.waker {
            waker.wake_by_ref();
        }
        result
    }

    /// Like [`Node::with_swarm`] for reads that have a value after shutdown too.
    pub fn read_swarm<T>(&self, f: impl FnOnce(&Swarm<Behaviour>) -> T) -> Option<T> {
        lock(&self.shared.core).swarm.as_ref().map(f)
    }

    /// Whether `shutdown` has run.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Closes every connection and listener and stops the runtime. Idempotent.
    pub fn shutdown(&self) {
        let swarm = {
            let mut core = lock(&self.shared.core);
            self.shared.closed.store(true, Ordering::SeqCst);
            // Waiting calls see their sender dropped and return CLOSED.
            core.state.queries.clear();
            core.state.listeners.clear();
            self.shared.outboxes.clear();
            if let Some(waker) = core.state.waker.take() {
                waker.wake();
            }
            core.swarm.take()
        };
        if let Some(swarm) = swarm {
            let _enter = self.shared.handle.enter();
            drop(swarm);
        }
        lock(&self.shared.sink).take();
        if let Some(runtime) = lock(&self.runtime).take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Inside a runtime (ours, from the sink, or the caller's): blocking is not allowed.
                runtime.shutdown_background();
            } else {
                runtime.shutdown_timeout(Duration::from_secs(2));
            }
        }
    }

    /// Queues `message` for `peer` (see [`weft_abi::transport::Transport::send`]).
    ///
    /// # Errors
    /// `LIMIT` (too large, queue full), `NOT_FOUND` (no connection, no address),
    /// `INVALID_ARGUMENT` (this node itself), `CLOSED`.
    pub fn queue(&self, peer: PeerId, message: Vec<u8>) -> Result<()> {
        let max = self.shared.config.max_message_size;
        if message.len() > max {
            return Err(Error::new(
                ErrorCode::LIMIT,
                format!(
                    "libp2p transport.send: a message of {} bytes is larger than max_message_size ({max}); split it or raise the limit",
                    message.len()
                ),
            ));
        }
        if peer == self.shared.local {
            return Err(Error::new(
                ErrorCode::INVALID_ARGUMENT,
                "libp2p transport.send: cannot send to this node itself",
            ));
        }
        if self.is_closed() {
            return Err(closed("transport.send"));
        }
        let config = &self.shared.config;
        let limits =
            QueueLimits { len: config.queue_len, bytes: config.queue_bytes, total_bytes: config.queue_bytes_total };
        let refused = |full: Full| match full {
            Full::Node { bytes } => Error::new(
                ErrorCode::LIMIT,
                format!(
                    "libp2p transport.send: the node's queues are full ({bytes} bytes wait for all peers; queue_bytes_total {}); retry later or raise it",
                    limits.total_bytes
                ),
            ),
            Full::Peer { messages, bytes } => Error::new(
                ErrorCode::LIMIT,
                format!(
                    "libp2p transport.send: the queue to {peer} is full ({messages} messages, {bytes} bytes; queue_len {}, queue_bytes {}); retry later or raise them",
                    limits.len, limits.bytes
                ),
            ),
        };
        // A connection owns the peer's queue: push, and its handler is woken; no swarm involved.
        let message = match self.shared.outboxes.get(&peer) {
            Some(outbox) => match outbox.push(message, limits, false) {
                Ok(()) => return Ok(()),
                Err(Refused::Full(full)) => return Err(refused(full)),
                Err(Refused::NoOwner(message)) => message,
            },
            None => message,
        };
        self.with_swarm("transport.send", |state, swarm| {
            let connected = swarm.is_connected(&peer);
            let addrs = if connected { Vec::new() } else { known_addrs(state, swarm, &peer) };
            if !connected && addrs.is_empty() {
                return Err(Error::new(
                    ErrorCode::NOT_FOUND,
                    format!(
                        "libp2p transport.send: peer {peer} is not connected and has no known address; find it with dht.find_peer and dial it"
                    ),
                ));
            }
            let outbox = self.shared.outboxes.get_or_create(peer);
            // (`owned_or_not`: an unowned queue takes it too, so only a bound refuses it)
            if let Err(Refused::Full(full)) = outbox.push(message, limits, true) {
                return Err(refused(full));
            }
            if !connected {
                dial_for_queue(state, swarm, &self.shared.outboxes, peer, addrs);
            }
            Ok(())
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Every address known for `peer`: the address book, then Kademlia's table; without `/p2p/`.
pub fn known_addrs(state: &State, swarm: &mut Swarm<Behaviour>, peer: &PeerId) -> Vec<Multiaddr> {
    let mut addrs: Vec<Multiaddr> = state.book.get(peer).to_vec();
    if let Some(bucket) = swarm.behaviour_mut().kad.kbucket(*peer) {
        for entry in bucket.iter().filter(|e| e.node.key.preimage() == peer) {
            for addr in entry.node.value.iter() {
                let (addr, _) = split_p2p(addr.clone());
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
        }
    }
    addrs
}

/// Records an address for `peer` in the address book (for dials and `find_peer`).
pub fn remember(state: &mut State, peer: PeerId, addr: Multiaddr) {
    state.book.add(peer, addr);
}

/// Registers a waiter for a Kademlia query.
pub fn wait_for_query(state: &mut State, id: kad::QueryId) -> mpsc::Receiver<QueryOutcome> {
    let (tx, rx) = mpsc::sync_channel(1);
    state.queries.insert(id, tx);
    rx
}

/// Stops a query nobody waits for anymore.
pub fn abandon_query(state: &mut State, swarm: &mut Swarm<Behaviour>, id: kad::QueryId) {
    state.queries.remove(&id);
    if let Some(mut query) = swarm.behaviour_mut().kad.query_mut(&id) {
        query.finish();
    }
}

/// Registers a waiter for a listener's first address.
pub fn wait_for_listener(state: &mut State, id: ListenerId) -> mpsc::Receiver<std::result::Result<(), String>> {
    let (tx, rx) = mpsc::sync_channel(1);
    state.listeners.insert(id, tx);
    rx
}

/// Notes a connection `dial` opens.
pub fn dialling(state: &mut State, connection: ConnectionId) {
    state.dials.insert(connection);
}

/// An event raised by an API call (emitted by the driving task, in order with the others).
pub fn raise(state: &mut State, event: Event) {
    // Bounded like any queue: past the cap the event is lost, as if the host's sink refused it.
    if state.outbox.len() < OUTBOX_MAX {
        state.outbox.push(event);
    }
}

/// Dials `peer` for the messages queued for it (unless a dial is under way). A dial the swarm
/// refuses at once loses the queue, as a failed one does, and is reported as `DIAL_FAILED`.
fn dial_for_queue(
    state: &mut State,
    swarm: &mut Swarm<Behaviour>,
    outboxes: &Outboxes,
    peer: PeerId,
    addrs: Vec<Multiaddr>,
) {
    let opts = DialOpts::peer_id(peer)
        .addresses(addrs)
        .extend_addresses_through_behaviour()
        .condition(PeerCondition::DisconnectedAndNotDialing)
        .build();
    match swarm.dial(opts) {
        Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {}
        Err(e) => {
            outboxes.remove(&peer);
            raise(state, dial_failed(Some(peer), None, &e));
        }
    }
}

/// The last connection to `peer` closed with messages still queued: dial again, once per message
/// written (a peer that keeps closing connections cannot make us dial forever); otherwise drop them.
fn requeue_or_drop(state: &mut State, swarm: &mut Swarm<Behaviour>, outboxes: &Outboxes, peer: PeerId) {
    let Some(outbox) = outboxes.get(&peer) else { return };
    if swarm.is_connected(&peer) || outbox.owner().is_some() {
        return;
    }
    let addrs = if outbox.len() == 0 { Vec::new() } else { known_addrs(state, swarm, &peer) };
    if addrs.is_empty() || !outbox.may_redial() {
        outboxes.remove(&peer);
        return;
    }
    dial_for_queue(state, swarm, outboxes, peer, addrs);
}

fn event(kind: EventKind, peer: Option<PeerId>, address: Option<&Multiaddr>, payload: Vec<u8>) -> Event {
    Event {
        kind,
        peer: peer.map(|p| p.to_base58()).unwrap_or_default(),
        address: address.map(ToString::to_string).unwrap_or_default(),
        payload,
    }
}

/// A `CONNECTED` event.
pub fn connected(peer: PeerId, address: Option<&Multiaddr>) -> Event {
    event(EventKind::CONNECTED, Some(peer), address, Vec::new())
}

/// A `DIAL_FAILED` event.
pub fn dial_failed(peer: Option<PeerId>, address: Option<&Multiaddr>, error: &DialError) -> Event {
    let address = address.or(match error {
        DialError::Transport(errors) => errors.first().map(|(a, _)| a),
        _ => None,
    });
    event(EventKind::DIAL_FAILED, peer, address, one_line(error).into_bytes())
}

/// The driving task: polls the swarm, handles events, emits them after unlocking.
async fn drive(shared: Arc<Shared>) {
    // If a poll panics (a libp2p bug), the node is marked closed instead of hanging silently.
    struct MarkClosed(Arc<Shared>);
    impl Drop for MarkClosed {
        fn drop(&mut self) {
            self.0.closed.store(true, Ordering::SeqCst);
        }
    }
    let _mark = MarkClosed(Arc::clone(&shared));
    while let Some(events) = std::future::poll_fn(|cx| poll_batch(&shared, cx)).await {
        emit(&shared, events);
    }
}

fn emit(shared: &Shared, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let sink = lock(&shared.sink).clone();
    let Some(sink) = sink else { return };
    IN_SINK.with(|f| f.set(true));
    for event in events {
        // `false`: the host's queue was full and it dropped the event; nothing to undo here.
        let _ = sink.emit(event);
    }
    IN_SINK.with(|f| f.set(false));
}

fn poll_batch(shared: &Shared, cx: &mut Context<'_>) -> Poll<Option<Vec<Event>>> {
    let mut core = lock(&shared.core);
    let core = &mut *core;
    let Some(swarm) = core.swarm.as_mut() else { return Poll::Ready(None) };
    let state = &mut core.state;
    if !state.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        state.waker = Some(cx.waker().clone());
    }
    let mut out = std::mem::take(&mut state.outbox);
    let mut bytes = 0;
    for _ in 0..EVENTS_PER_POLL {
        match swarm.poll_next_unpin(cx) {
            Poll::Ready(Some(e)) => {
                let before = out.len();
                handle(state, swarm, &shared.outboxes, e, &mut out);
                // What handling raised (a redial refused at once) goes out with the rest.
                out.append(&mut state.outbox);
                bytes += out[before..].iter().map(|e| e.payload.len()).sum::<usize>();
                if bytes >= BYTES_PER_POLL {
                    break;
                }
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {
                return if out.is_empty() { Poll::Pending } else { Poll::Ready(Some(out)) };
            }
        }
    }
    // More may be ready: emit these, and the loop polls again right away.
    Poll::Ready(Some(out))
}

fn handle(
    state: &mut State,
    swarm: &mut Swarm<Behaviour>,
    outboxes: &Outboxes,
    e: SwarmEvent<BehaviourEvent>,
    out: &mut Vec<Event>,
) {
    match e {
        SwarmEvent::NewListenAddr { listener_id, address } => {
            if let Some(tx) = state.listeners.remove(&listener_id) {
                let _ = tx.try_send(Ok(()));
            }
            out.push(event(EventKind::LISTENING, None, Some(&address), Vec::new()));
        }
        SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
            if let Some(tx) = state.listeners.remove(&listener_id) {
                let why = match reason {
                    Ok(()) => "the listener closed".to_owned(),
                    Err(e) => one_line(e),
                };
                let _ = tx.try_send(Err(why));
            }
        }
        SwarmEvent::ListenerError { listener_id, error } => {
            if let Some(tx) = state.listeners.remove(&listener_id) {
                let _ = tx.try_send(Err(one_line(error)));
            }
        }
        SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
            let remote = split_p2p(endpoint.get_remote_address().clone()).0;
            if endpoint.is_dialer() {
                state.book.add(peer_id, remote.clone());
            }
            let dialled = state.dials.remove(&connection_id);
            if num_established.get() == 1 || dialled {
                out.push(connected(peer_id, Some(&remote)));
            }
        }
        SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
            // Every frame of the connection came before this (the handler's events precede its close).
            out.push(event(EventKind::DISCONNECTED, Some(peer_id), None, Vec::new()));
            requeue_or_drop(state, swarm, outboxes, peer_id);
        }
        SwarmEvent::OutgoingConnectionError { peer_id, connection_id, error } => {
            state.dials.remove(&connection_id);
            if let (Some(peer), DialError::Transport(errors)) = (peer_id, &error) {
                for (addr, _) in errors {
                    state.book.remove(&peer, &split_p2p(addr.clone()).0);
                }
            }
            // Unreachable: the messages waiting for it are dropped (the host learns it from
            // DIAL_FAILED and looks the peer up again).
            if let Some(peer) = peer_id.filter(|p| !swarm.is_connected(p))
                && outboxes.get(&peer).is_some_and(|o| o.owner().is_none())
            {
                outboxes.remove(&peer);
            }
            out.push(dial_failed(peer_id, None, &error));
        }
        SwarmEvent::Behaviour(b) => handle_behaviour(state, swarm, b, out),
        _ => {}
    }
}

fn handle_behaviour(state: &mut State, swarm: &mut Swarm<Behaviour>, e: BehaviourEvent, out: &mut Vec<Event>) {
    match e {
        BehaviourEvent::Particles(particles::Event::Messages { peer, messages }) => {
            out.extend(messages.into_iter().map(|m| event(EventKind::MESSAGE, Some(peer), None, m)));
        }
        BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
            // As rust-libp2p's examples do: listen addresses learned by identify go into the
            // Kademlia table, for peers that serve weft's DHT.
            let serves_dht = info.protocols.contains(&KAD_PROTOCOL);
            for addr in info.listen_addrs.into_iter().take(ADDRS_PER_PEER) {
                let (addr, id) = split_p2p(addr);
                if id.is_some_and(|id| id != peer_id) {
                    continue;
                }
                state.book.add(peer_id, addr.clone());
                if serves_dht {
                    swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
        }
        BehaviourEvent::Ping(ping::Event { peer, result: Ok(rtt), .. }) => {
            let nanos = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX);
            out.push(event(EventKind::PING, Some(peer), None, nanos.to_le_bytes().to_vec()));
        }
        BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed { id, result, stats, .. }) => {
            let Some(tx) = state.queries.remove(&id) else { return };
            let outcome = match result {
                kad::QueryResult::Bootstrap(_) => QueryOutcome::Bootstrap { successes: stats.num_successes() },
                kad::QueryResult::GetClosestPeers(Ok(ok)) => QueryOutcome::Closest { peers: ok.peers },
                kad::QueryResult::GetClosestPeers(Err(kad::GetClosestPeersError::Timeout { peers, .. })) => {
                    QueryOutcome::Closest { peers }
                }
                _ => return,
            };
            let _ = tx.try_send(outcome);
        }
        _ => {}
    }
}
