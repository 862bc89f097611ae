//! The in-process transport: `/memory/N` addresses, bounded per-peer queues, one delivery thread
//! per transport.
//!
//! A message goes from `send` straight into the receiver's inbox (counted against the sender's
//! per-peer limits) and the receiver's own thread hands it to the receiver's sink. Connection
//! changes are made under the registry lock and their events pushed to the inboxes in the same
//! step, so a peer's `CONNECTED` always precedes its messages and `DISCONNECTED` follows them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use weft_abi::transport::{Event, EventKind, Sink};
use weft_abi::{Error, ErrorCode, Result};

use crate::addr;
use crate::config::Config;
use crate::registry::{self, Entry};

/// Something waiting in an inbox for the receiver's thread.
enum Item {
    /// A connection event (`CONNECTED`, `DISCONNECTED`, `LISTENING`, `DIAL_FAILED`, `PING`).
    Event(Event),
    /// A message from a peer.
    Message { from: String, bytes: Vec<u8> },
    /// A peer pings: answer with a pong.
    Ping { from: String, sent: Instant },
    /// The answer to this node's ping.
    Pong { from: String, sent: Instant },
}

#[derive(Default)]
struct Inbox {
    items: VecDeque<Item>,
    /// Per sender: messages and bytes waiting.
    queued: HashMap<String, (usize, usize)>,
    /// Non-message items waiting.
    control: usize,
    closed: bool,
}

/// The shared part of a transport: what other transports push to.
pub(crate) struct Node {
    pub(crate) peer_id: String,
    config: Config,
    sink: Sink,
    inbox: Mutex<Inbox>,
    wake: Condvar,
}

fn limit(message: String) -> Error {
    Error::new(ErrorCode::LIMIT, message)
}

fn closed() -> Error {
    Error::new(ErrorCode::CLOSED, "memory transport: it was shut down; make a new transport")
}

impl Node {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a non-message item fits. Control items are bounded by `queue_len`, except those
    /// that must not be lost (`DISCONNECTED`), which are bounded by the connections there are.
    fn has_control_room(&self) -> bool {
        self.inbox().control < self.config.queue_len
    }

    /// Queues a non-message item; `false` if there is no room (or the node is closed).
    fn push_control(&self, item: Item, force: bool) -> bool {
        let mut inbox = self.inbox();
        if inbox.closed || (!force && inbox.control >= self.config.queue_len) {
            return false;
        }
        inbox.control += 1;
        inbox.items.push_back(item);
        self.wake.notify_one();
        true
    }

    fn push_event(&self, kind: EventKind, peer: &str, address: &str, payload: Vec<u8>, force: bool) -> bool {
        let event = Event { kind, peer: peer.to_owned(), address: address.to_owned(), payload };
        self.push_control(Item::Event(event), force)
    }

    /// Queues a message from `from`, within `from`'s per-peer limits and this node's size limit.
    fn push_message(&self, from: &Node, bytes: Vec<u8>) -> Result<()> {
        if bytes.len() > self.config.max_message_size {
            return Err(limit(format!(
                "memory transport: peer {} accepts messages up to {} bytes, this one has {}",
                self.peer_id,
                self.config.max_message_size,
                bytes.len()
            )));
        }
        let mut inbox = self.inbox();
        if inbox.closed {
            return Err(Error::new(ErrorCode::NOT_FOUND, format!("memory transport: peer {} is gone", self.peer_id)));
        }
        let (count, size) = inbox.queued.get(&from.peer_id).copied().unwrap_or((0, 0));
        if count >= from.config.queue_len || (count > 0 && size + bytes.len() > from.config.queue_bytes) {
            return Err(limit(format!(
                "memory transport: the queue to peer {} is full ({count} messages, {size} bytes); retry once it drains",
                self.peer_id
            )));
        }
        inbox.queued.insert(from.peer_id.clone(), (count + 1, size + bytes.len()));
        inbox.items.push_back(Item::Message { from: from.peer_id.clone(), bytes });
        self.wake.notify_one();
        Ok(())
    }

    /// Takes the next item, keeping the counters.
    fn pop(inbox: &mut Inbox) -> Option<Item> {
        let item = inbox.items.pop_front()?;
        match &item {
            Item::Message { from, bytes } => {
                if let Some((count, size)) = inbox.queued.get_mut(from) {
                    *count -= 1;
                    *size -= bytes.len();
                    if *count == 0 {
                        inbox.queued.remove(from);
                    }
                }
            }
            _ => inbox.control -= 1,
        }
        Some(item)
    }

    /// Stops the delivery thread; what is still queued is dropped.
    fn close(&self) {
        let mut inbox = self.inbox();
        inbox.closed = true;
        inbox.items.clear();
        inbox.queued.clear();
        inbox.control = 0;
        self.wake.notify_all();
    }

    fn ping_interval(&self) -> Option<Duration> {
        (self.config.ping_interval_ms > 0).then(|| Duration::from_millis(self.config.ping_interval_ms))
    }

    /// Pings every connected peer.
    fn ping_all(&self) {
        let reg = registry::lock();
        let Some(entry) = reg.nodes.get(&self.peer_id) else { return };
        for peer in &entry.conns {
            if let Some(remote) = reg.nodes.get(peer) {
                let ping = Item::Ping { from: self.peer_id.clone(), sent: Instant::now() };
                remote.node.push_control(ping, false);
            }
        }
    }

    /// The other side of a connection, if it is still open.
    fn connected(&self, peer: &str, f: impl FnOnce(&Node)) {
        let reg = registry::lock();
        let open = reg.nodes.get(&self.peer_id).is_some_and(|e| e.conns.contains(peer));
        if let Some(remote) = reg.nodes.get(peer).filter(|_| open) {
            f(&remote.node);
        }
    }

    /// The delivery thread: hands queued items to the sink, in order, one at a time, without
    /// holding any lock.
    fn deliver(self: Arc<Self>) {
        let interval = self.ping_interval();
        let mut next_ping = interval.map(|i| Instant::now() + i);
        loop {
            let item = {
                let mut inbox = self.inbox();
                loop {
                    if inbox.closed {
                        return;
                    }
                    if let Some(item) = Self::pop(&mut inbox) {
                        break Some(item);
                    }
                    match next_ping {
                        Some(at) => {
                            let now = Instant::now();
                            if now >= at {
                                break None;
                            }
                            inbox = self.wake.wait_timeout(inbox, at - now).unwrap_or_else(|e| e.into_inner()).0;
                        }
                        None => inbox = self.wake.wait(inbox).unwrap_or_else(|e| e.into_inner()),
                    }
                }
            };
            match item {
                None => {
                    next_ping = interval.map(|i| Instant::now() + i);
                    self.ping_all();
                }
                Some(Item::Event(event)) => {
                    self.sink.emit(event);
                }
                Some(Item::Message { from, bytes }) => {
                    self.sink.emit(Event {
                        kind: EventKind::MESSAGE,
                        peer: from,
                        address: String::new(),
                        payload: bytes,
                    });
                }
                Some(Item::Ping { from, sent }) => {
                    let pong = Item::Pong { from: self.peer_id.clone(), sent };
                    self.connected(&from, |remote| {
                        remote.push_control(pong, false);
                    });
                }
                Some(Item::Pong { from, sent }) => {
                    let nanos = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    let mut open = false;
                    self.connected(&from, |_| open = true);
                    if open {
                        let event = Event {
                            kind: EventKind::PING,
                            peer: from,
                            address: String::new(),
                            payload: nanos.to_le_bytes().to_vec(),
                        };
                        self.sink.emit(event);
                    }
                }
            }
        }
    }
}

/// The `memory` plugin's transport. Dropping it shuts it down.
pub struct Transport {
    node: Arc<Node>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("memory::Transport").field("peer_id", &self.node.peer_id).finish_non_exhaustive()
    }
}

/// The 32-byte identity seed a constructor was given.
pub(crate) fn identity_seed(who: &str, identity: &[u8]) -> Result<[u8; 32]> {
    identity.try_into().map_err(|_| {
        Error::new(
            ErrorCode::INVALID_ARGUMENT,
            format!("memory {who}: the identity is {} bytes, not a 32-byte ed25519 seed", identity.len()),
        )
    })
}

impl Transport {
    /// A transport for the node whose 32-byte ed25519 seed is `identity`, reporting to `sink`.
    /// It listens nowhere until [`listen`](weft_abi::transport::Transport::listen) is called.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`: the identity is not 32 bytes, or a live transport of this process
    /// already has it; `IO`: its delivery thread cannot start.
    pub fn new(config: Config, identity: &[u8], sink: Sink) -> Result<Self> {
        let peer_id = weft_abi::peer_id::peer_id_from_secret(&identity_seed("transport", identity)?);
        let node = Arc::new(Node {
            peer_id: peer_id.clone(),
            config,
            sink,
            inbox: Mutex::new(Inbox::default()),
            wake: Condvar::new(),
        });
        {
            let reg = registry::lock();
            if reg.nodes.contains_key(&peer_id) {
                return Err(Error::new(
                    ErrorCode::INVALID_ARGUMENT,
                    format!(
                        "memory transport: peer {peer_id} already has a live transport in this process; shut that one down first"
                    ),
                ));
            }
        }
        let worker = Arc::clone(&node);
        std::thread::Builder::new()
            .name(format!("weft-memory-{}", &peer_id[peer_id.len().saturating_sub(6)..]))
            .spawn(move || worker.deliver())
            .map_err(|e| Error::io("memory transport: cannot start its delivery thread", &e))?;
        let mut reg = registry::lock();
        if reg.nodes.contains_key(&peer_id) {
            drop(reg);
            node.close();
            return Err(Error::new(
                ErrorCode::INVALID_ARGUMENT,
                format!("memory transport: peer {peer_id} already has a live transport in this process"),
            ));
        }
        let entry = Entry { node: Arc::clone(&node), listen: Vec::new(), conns: Default::default() };
        reg.nodes.insert(peer_id, entry);
        Ok(Self { node })
    }

    fn close(&self) {
        let mut reg = registry::lock();
        let me = &self.node.peer_id;
        if reg.entry_of(&self.node).is_some() {
            let entry = reg.nodes.remove(me).expect("checked");
            for slot in &entry.listen {
                reg.slots.remove(slot);
            }
            for peer in &entry.conns {
                if let Some(remote) = reg.nodes.get_mut(peer) {
                    remote.conns.remove(me);
                    remote.node.push_event(EventKind::DISCONNECTED, me, "", Vec::new(), true);
                }
            }
        }
        drop(reg);
        self.node.close();
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.close();
    }
}

impl weft_abi::transport::Transport for Transport {
    fn local_peer_id(&self) -> String {
        self.node.peer_id.clone()
    }

    fn listen(&self, address: &str) -> Result<()> {
        let a = addr::parse("transport", address)?;
        if a.peer.is_some() {
            return Err(Error::new(
                ErrorCode::INVALID_ARGUMENT,
                format!("memory transport: cannot listen on {address:?}: listen addresses carry no /p2p/ suffix"),
            ));
        }
        let mut reg = registry::lock();
        if reg.entry_of(&self.node).is_none() {
            return Err(closed());
        }
        let slot = if a.slot == 0 {
            reg.fresh_slot()
        } else if reg.slots.contains_key(&a.slot) {
            return Err(Error::new(
                ErrorCode::IO,
                format!("memory transport: {address} is already in use; listen on /memory/0 to get a free slot"),
            ));
        } else {
            a.slot
        };
        let resolved = addr::format(slot);
        if !self.node.push_event(EventKind::LISTENING, "", &resolved, Vec::new(), false) {
            return Err(limit(
                "memory transport: too many events wait for the host; listen again once it reads them".into(),
            ));
        }
        reg.slots.insert(slot, self.node.peer_id.clone());
        reg.entry_of_mut(&self.node).expect("checked").listen.push(slot);
        Ok(())
    }

    fn listen_addrs(&self) -> Vec<String> {
        let reg = registry::lock();
        reg.entry_of(&self.node).map(|e| e.listen.iter().map(|s| addr::format(*s)).collect()).unwrap_or_default()
    }

    fn dial(&self, address: &str) -> Result<()> {
        let a = addr::parse("transport", address)?;
        let me = &self.node;
        let target = addr::format(a.slot);
        let mut reg = registry::lock();
        let Some(mine) = reg.entry_of(me) else { return Err(closed()) };
        if !me.has_control_room() {
            return Err(limit(
                "memory transport: too many events wait for the host; dial again once it reads them".into(),
            ));
        }
        let named = a.peer.clone().unwrap_or_default();
        let fail = |peer: &str, reason: String| {
            me.push_event(EventKind::DIAL_FAILED, peer, &target, reason.into_bytes(), true);
            Ok(())
        };
        let Some(peer) = reg.slots.get(&a.slot).cloned() else {
            return fail(&named, format!("nothing listens on {target}"));
        };
        if a.peer.as_ref().is_some_and(|p| *p != peer) {
            return fail(&named, format!("{target} is peer {peer}, not {named}"));
        }
        if peer == me.peer_id {
            return fail(&peer, format!("{target} is this transport's own address"));
        }
        let Some(remote) = reg.nodes.get(&peer).map(|e| Arc::clone(&e.node)) else {
            return fail(&peer, format!("nothing listens on {target}"));
        };
        if mine.conns.contains(&peer) {
            me.push_event(EventKind::CONNECTED, &peer, &target, Vec::new(), true);
            return Ok(());
        }
        if mine.conns.len() >= me.config.max_connections {
            return fail(&peer, format!("this transport has max_connections ({}) open", me.config.max_connections));
        }
        if reg.nodes.get(&peer).is_some_and(|e| e.conns.len() >= remote.config.max_connections) {
            return fail(
                &peer,
                format!("peer {peer} has all its connections ({}) open", remote.config.max_connections),
            );
        }
        if !remote.push_event(EventKind::CONNECTED, &me.peer_id, "", Vec::new(), false) {
            return fail(&peer, format!("peer {peer} takes no connection now (too many events wait for its host)"));
        }
        me.push_event(EventKind::CONNECTED, &peer, &target, Vec::new(), true);
        reg.entry_of_mut(me).expect("checked").conns.insert(peer.clone());
        if let Some(e) = reg.nodes.get_mut(&peer) {
            e.conns.insert(me.peer_id.clone());
        }
        if me.ping_interval().is_some() {
            remote.push_control(Item::Ping { from: me.peer_id.clone(), sent: Instant::now() }, false);
        }
        Ok(())
    }

    fn send(&self, peer: &str, message: Vec<u8>) -> Result<()> {
        addr::check_peer_id("transport", peer)?;
        let me = &self.node;
        if message.len() > me.config.max_message_size {
            return Err(limit(format!(
                "memory transport: a message of {} bytes is larger than max_message_size ({})",
                message.len(),
                me.config.max_message_size
            )));
        }
        // Held while pushing, so that a message cannot overtake the DISCONNECTED of a shutdown.
        let reg = registry::lock();
        let Some(mine) = reg.entry_of(me) else { return Err(closed()) };
        let remote = match reg.nodes.get(peer) {
            Some(e) if mine.conns.contains(peer) => &e.node,
            _ => {
                return Err(Error::new(
                    ErrorCode::NOT_FOUND,
                    format!("memory transport: no connection to peer {peer}; find its address and dial it first"),
                ));
            }
        };
        remote.push_message(me, message)
    }

    fn connected_peers(&self) -> Vec<String> {
        let reg = registry::lock();
        reg.entry_of(&self.node).map(|e| e.conns.iter().cloned().collect()).unwrap_or_default()
    }

    fn shutdown(&self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use weft_abi::transport::{EventSink, Transport as _};

    use super::*;

    /// A sink into a channel that blocks while its gate is shut.
    struct Gated {
        tx: Mutex<mpsc::Sender<Event>>,
        gate: Arc<(Mutex<bool>, Condvar)>,
    }

    impl EventSink for Gated {
        fn event(&self, event: Event) -> bool {
            let (shut, cv) = &*self.gate;
            let _open = cv.wait_while(shut.lock().unwrap(), |shut| *shut).unwrap();
            self.tx.lock().unwrap().send(event).is_ok()
        }
    }

    fn open(gate: &(Mutex<bool>, Condvar)) {
        *gate.0.lock().unwrap() = false;
        gate.1.notify_all();
    }

    static SEED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

    struct Test {
        t: Transport,
        rx: mpsc::Receiver<Event>,
        addr: String,
        gate: Arc<(Mutex<bool>, Condvar)>,
    }

    /// A listening transport; its sink blocks until `open` when `shut`.
    fn node_with(config: &str, shut: bool) -> Test {
        let (tx, rx) = mpsc::channel();
        let mut seed = *b"memory transport unit tests.....";
        seed[0] = SEED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let gate = Arc::new((Mutex::new(shut), Condvar::new()));
        let sink = Sink::new(Gated { tx: Mutex::new(tx), gate: Arc::clone(&gate) });
        let t = Transport::new(Config::parse(config).unwrap(), &seed, sink).unwrap();
        t.listen("/memory/0").unwrap();
        let addr = t.listen_addrs()[0].clone();
        Test { t, rx, addr, gate }
    }

    fn node(config: &str) -> Test {
        node_with(config, false)
    }

    impl Test {
        fn next(&self, kind: EventKind) -> Event {
            loop {
                let e = self.rx.recv_timeout(Duration::from_secs(10)).expect("an event within 10 s");
                if e.kind == kind {
                    return e;
                }
            }
        }

        fn connect(&self, other: &Test) {
            self.t.dial(&other.addr).unwrap();
            self.next(EventKind::CONNECTED);
        }

        fn id(&self) -> String {
            self.t.local_peer_id()
        }
    }

    const QUIET: &str = "ping_interval_ms = 0";

    #[test]
    fn max_message_size_at_sender_and_receiver() {
        let a = node("max_message_size = 100\nping_interval_ms = 0");
        let b = node("max_message_size = 50\nping_interval_ms = 0");
        a.connect(&b);
        let e = a.t.send(&b.id(), vec![0; 101]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::LIMIT);
        assert!(e.message().contains("max_message_size (100)"), "{e}");
        let e = a.t.send(&b.id(), vec![0; 51]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::LIMIT);
        assert!(e.message().contains("up to 50 bytes"), "{e}");
        a.t.send(&b.id(), vec![1; 50]).unwrap();
        assert_eq!(b.next(EventKind::MESSAGE).payload, vec![1; 50]);
    }

    #[test]
    fn queue_len_is_a_limit() {
        let a = node("queue_len = 3\nping_interval_ms = 0");
        // b's thread blocks on its first event (LISTENING), so nothing it is sent drains.
        let b = node_with(QUIET, true);
        a.connect(&b);
        for i in 0..3 {
            a.t.send(&b.id(), vec![i]).unwrap();
        }
        let e = a.t.send(&b.id(), vec![3]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::LIMIT);
        assert!(e.message().contains("queue to peer") && e.message().contains("3 messages"), "{e}");
        open(&b.gate);
        for i in 0..3 {
            assert_eq!(b.next(EventKind::MESSAGE).payload, vec![i]);
        }
        a.t.send(&b.id(), vec![4]).expect("the queue drained");
    }

    #[test]
    fn queue_bytes_is_a_limit() {
        let a = node("queue_bytes = 10\nmax_message_size = 100\nping_interval_ms = 0");
        let b = node_with(QUIET, true);
        a.connect(&b);
        a.t.send(&b.id(), vec![0; 20]).expect("an empty queue takes any allowed size");
        let e = a.t.send(&b.id(), vec![0; 1]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::LIMIT);
        assert!(e.message().contains("20 bytes"), "{e}");
        open(&b.gate);
        assert_eq!(b.next(EventKind::MESSAGE).payload.len(), 20);
    }

    #[test]
    fn connection_limit_fails_the_dial() {
        let a = node("max_connections = 1\nping_interval_ms = 0");
        let b = node(QUIET);
        let c = node(QUIET);
        a.connect(&b);
        a.t.dial(&c.addr).unwrap();
        let e = a.next(EventKind::DIAL_FAILED);
        assert!(String::from_utf8_lossy(&e.payload).contains("max_connections (1)"), "{e:?}");
        assert_eq!(e.peer, c.id());
        assert_eq!(a.t.connected_peers(), vec![b.id()]);
        // ... and on the other side.
        c.t.dial(&a.addr).unwrap();
        let e = c.next(EventKind::DIAL_FAILED);
        assert!(String::from_utf8_lossy(&e.payload).contains("all its connections (1)"), "{e:?}");
    }

    #[test]
    fn pings_measure_round_trips() {
        let a = node("ping_interval_ms = 20");
        let b = node("ping_interval_ms = 20");
        a.t.dial(&b.addr).unwrap();
        for _ in 0..3 {
            let e = a.next(EventKind::PING);
            assert_eq!(e.peer, b.id());
            let nanos = u64::from_le_bytes(e.payload.try_into().unwrap());
            assert!(nanos < 10_000_000_000, "{nanos} ns");
        }
        // b pings a too.
        assert_eq!(b.next(EventKind::PING).peer, a.id());
    }

    #[test]
    fn one_identity_one_live_transport() {
        let sink = || Sink::new(Gated { tx: Mutex::new(mpsc::channel().0), gate: Arc::default() });
        let seed = [0xEE; 32];
        let first = Transport::new(Config::default(), &seed, sink()).unwrap();
        let e = Transport::new(Config::default(), &seed, sink()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::INVALID_ARGUMENT);
        assert!(e.message().contains("already has a live transport"), "{e}");
        drop(first);
        Transport::new(Config::default(), &seed, sink()).expect("the identity is free again after a drop");
        let e = Transport::new(Config::default(), &[1; 31], sink()).unwrap_err();
        assert!(e.message().contains("31 bytes"), "{e}");
    }

    #[test]
    fn listen_on_a_taken_slot_and_with_p2p() {
        let a = node(QUIET);
        let b = node(QUIET);
        let e = b.t.listen(&a.addr).unwrap_err();
        assert_eq!(e.code(), ErrorCode::IO);
        assert!(e.message().contains("/memory/0"), "{e}");
        let e = b.t.listen(&format!("/memory/0/p2p/{}", a.id())).unwrap_err();
        assert_eq!(e.code(), ErrorCode::INVALID_ARGUMENT);
        // An explicit free slot works and is reported as asked.
        let slot = 1u64 << 40 | u64::from(SEED.load(std::sync::atomic::Ordering::Relaxed));
        b.t.listen(&format!("/memory/{slot}")).unwrap();
        assert_eq!(b.next(EventKind::LISTENING).address, b.addr);
        assert_eq!(b.next(EventKind::LISTENING).address, format!("/memory/{slot}"));
    }
}
