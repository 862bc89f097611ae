//! The particle loop shared by nodes and applications: transport events in, one actor per
//! particle id, interpreter runs, calls, and sends to the next peers.
//!
//! ```text
//! transport thread --sink--> event queue --> dispatcher task --> actor (one per particle id)
//!                                                                  |  run the interpreter (blocking pool)
//!                                                                  |  call requests -> Handler (concurrent tasks)
//!                                                                  |  next peers -> send tasks (lookup + dial when needed)
//! ```
//!
//! What a node and an application differ in is the [`Handler`] that answers call requests
//! (builtins and services on a node; `getDataSrv`, `return`, ... in an application) and whether
//! a DHT is there to find peers.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use smol::Timer;
use smol::channel::{Receiver, Sender, TrySendError};
use smol::future::FutureExt as _;
use smol::lock::Semaphore;
use weft_abi::air::Interpreter as _;
use weft_abi::dht::Dht as _;
use weft_abi::transport::{Event, EventKind, EventSink};
use weft_abi::{ErrorCode, air, dht, transport};

use super::Limits;
use crate::identity::Identity;
use crate::particle::{self, Particle};
use crate::services::Tetraplet;

/// Interpreter runs over at most this many bytes of script and data run on the loop's own thread.
const INLINE_RUN_BYTES: usize = 64 << 10;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The particle a call comes from.
#[derive(Debug, Clone)]
pub struct ParticleInfo {
    /// Its id.
    pub id: String,
    /// The peer that started it.
    pub init_peer_id: String,
    /// Its timestamp, ms.
    pub timestamp: u64,
    /// Its ttl, ms.
    pub ttl: u32,
}

impl ParticleInfo {
    /// When it expires, ms since the Unix epoch.
    pub fn deadline(&self) -> u64 {
        self.timestamp.saturating_add(u64::from(self.ttl))
    }
}

/// One call request of the interpreter, for a [`Handler`].
#[derive(Debug, Clone)]
pub struct Call {
    /// The particle.
    pub particle: Arc<ParticleInfo>,
    /// The service (id, alias or builtin name).
    pub service: String,
    /// The function.
    pub function: String,
    /// The arguments.
    pub args: Vec<Value>,
    /// Where each argument came from.
    pub tetraplets: Vec<Vec<Tetraplet>>,
}

/// A failed call: what AIR sees as the call's error (`ret_code`, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// Non-zero.
    pub ret_code: i64,
    /// One line.
    pub message: String,
}

impl CallError {
    /// A failure with ret_code 1.
    pub fn new(message: impl Into<String>) -> Self {
        Self { ret_code: 1, message: message.into() }
    }
}

impl<E: std::fmt::Display> From<E> for CallError {
    fn from(e: E) -> Self {
        Self::new(e.to_string())
    }
}

/// What a handler returns.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<Value, CallError>> + Send>>;

/// Answers the call requests of particles on this peer.
pub trait Handler: Send + Sync + 'static {
    /// Answers one call. Runs concurrently with other calls; blocking work belongs in
    /// `smol::unblock`.
    fn call(&self, core: &Arc<Core>, call: Call) -> CallFuture;

    /// Sees every interpreter run's result code on this peer (0 = fine). Applications use it to
    /// fail fast when their part of a script fails.
    fn outcome(&self, particle: &ParticleInfo, ret_code: i64, error_message: &str) {
        let _ = (particle, ret_code, error_message);
    }
}

/// Counters of what the particle loop did. Read with [`Core::stats`].
#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    accepted: AtomicU64,
    dropped_oversized: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_signature: AtomicU64,
    dropped_expired: AtomicU64,
    dropped_duplicate: AtomicU64,
    dropped_limit: AtomicU64,
    interpreter_runs: AtomicU64,
    interpreter_errors: AtomicU64,
    calls: AtomicU64,
    sent: AtomicU64,
    send_failed: AtomicU64,
    dormant_evicted: AtomicU64,
    woken: AtomicU64,
}

/// A snapshot of the particle loop's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Particle messages received.
    pub received: u64,
    /// Accepted and handed to an actor.
    pub accepted: u64,
    /// Dropped: larger than `max_particle_size`.
    pub dropped_oversized: u64,
    /// Dropped: not a particle.
    pub dropped_malformed: u64,
    /// Dropped: bad signature or init peer id.
    pub dropped_signature: u64,
    /// Dropped: expired, from the future, or a ttl above `max_ttl_ms`.
    pub dropped_expired: u64,
    /// Dropped: the same message again within its ttl.
    pub dropped_duplicate: u64,
    /// Dropped: a limit (particles in flight, per peer, an actor's queue, an id collision).
    pub dropped_limit: u64,
    /// Interpreter runs.
    pub interpreter_runs: u64,
    /// Runs that ended with a non-zero ret_code.
    pub interpreter_errors: u64,
    /// Calls answered (builtins and services).
    pub calls: u64,
    /// Particles sent to next peers.
    pub sent: u64,
    /// Sends that failed (peer not found, not reachable, refused).
    pub send_failed: u64,
    /// Transport events dropped because the event queue was full.
    pub events_dropped: u64,
    /// Dormant particle data dropped to stay within `max_dormant_bytes`.
    pub dormant_evicted: u64,
    /// Dormant particles woken by a new arrival.
    pub woken: u64,
    /// Particles in flight now (with a running actor).
    pub particles: u64,
    /// Idle particles whose data is kept until their deadline.
    pub dormant: u64,
}

/// Message hashes seen, each until its particle's deadline.
#[derive(Debug, Default)]
struct Seen {
    by_hash: HashMap<[u8; 32], u64>,
    by_deadline: BTreeSet<(u64, [u8; 32])>,
}

impl Seen {
    fn purge(&mut self, now: u64) {
        while let Some(&(deadline, hash)) = self.by_deadline.first() {
            if deadline > now {
                break;
            }
            self.by_deadline.pop_first();
            self.by_hash.remove(&hash);
        }
    }

    /// `false` when the hash was already there.
    fn insert(&mut self, hash: [u8; 32], deadline: u64, now: u64, cap: usize) -> bool {
        self.purge(now);
        if self.by_hash.contains_key(&hash) {
            return false;
        }
        while self.by_hash.len() >= cap.max(1) {
            // full: forget the one that expires first
            let Some((d, h)) = self.by_deadline.pop_first() else { break };
            let _ = d;
            self.by_hash.remove(&h);
        }
        self.by_hash.insert(hash, deadline);
        self.by_deadline.insert((deadline, hash));
        true
    }

    fn contains(&self, hash: &[u8; 32]) -> bool {
        self.by_hash.contains_key(hash)
    }
}

enum Msg {
    Particle(Particle),
    Result(air::CallResult),
}

/// What one interpreter run left to do.
struct Step {
    /// The new data.
    data: Vec<u8>,
    /// Calls running as tasks.
    spawned: usize,
    /// Answers that were ready at once, for the next run.
    ready: Vec<air::CallResult>,
}

fn call_result(id: u32, result: Result<Value, CallError>) -> air::CallResult {
    let (ret_code, result) = match result {
        Ok(v) => (0, v.to_string()),
        Err(e) => (e.ret_code, Value::String(e.message).to_string()),
    };
    air::CallResult { id, ret_code, result }
}

/// What identifies a particle's signed part: a message whose header equals one already verified
/// needs no second signature check.
#[derive(Clone, PartialEq, Eq)]
struct Header {
    init_peer_id: String,
    timestamp: u64,
    ttl: u32,
    script: [u8; 32],
    signature: Vec<u8>,
}

impl Header {
    fn of(p: &Particle) -> Self {
        Header {
            init_peer_id: p.init_peer_id.clone(),
            timestamp: p.timestamp,
            ttl: p.ttl,
            script: *blake3::hash(p.script.as_bytes()).as_bytes(),
            signature: p.signature.clone(),
        }
    }
}

struct Entry {
    tx: Sender<Msg>,
    header: Header,
}

/// A particle whose actor went idle: its data, kept until its deadline (or until the byte
/// budget needs the room), so that a later arrival merges with what this peer did before.
struct Dormant {
    header: Header,
    shell: Particle,
    prev: Vec<u8>,
}

impl Dormant {
    fn bytes(&self) -> usize {
        self.prev.len() + self.shell.script.len() + 256
    }
}

#[derive(Default)]
struct Actors {
    by_id: HashMap<String, Entry>,
    per_peer: HashMap<String, usize>,
    dormant: HashMap<String, Dormant>,
    dormant_by_deadline: BTreeSet<(u64, String)>,
    dormant_bytes: usize,
}

impl Actors {
    fn take_dormant(&mut self, id: &str) -> Option<Dormant> {
        let d = self.dormant.remove(id)?;
        self.dormant_by_deadline.remove(&(d.shell.deadline(), id.to_owned()));
        self.dormant_bytes -= d.bytes();
        Some(d)
    }

    /// Drops dormant particles that expired, then the first to expire until `budget` holds.
    fn purge_dormant(&mut self, now: u64, budget: usize) -> usize {
        let mut evicted = 0;
        while let Some((deadline, id)) = self.dormant_by_deadline.first().cloned() {
            if deadline > now && self.dormant_bytes <= budget {
                break;
            }
            if deadline > now {
                evicted += 1;
                tracing::warn!(particle = %id, "dropped the data of an idle particle: max_dormant_bytes is full");
            }
            self.take_dormant(&id);
        }
        evicted
    }
}

type Waiter = Sender<Result<(), String>>;

/// What the node knows about its connections.
#[derive(Default)]
struct Net {
    connected: HashMap<String, String>,
    waiters: HashMap<String, Vec<Waiter>>,
    listening: Vec<String>,
    rtt: HashMap<String, Duration>,
}

/// The sink a transport reports to: a bounded queue into the dispatcher.
struct Bridge {
    tx: Sender<Event>,
    dropped: Arc<AtomicU64>,
}

impl EventSink for Bridge {
    fn event(&self, event: Event) -> bool {
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

/// The sink and its queue, made before the transport (which needs the sink).
pub(crate) struct EventQueue {
    sink: Option<transport::Sink>,
    rx: Receiver<Event>,
    dropped: Arc<AtomicU64>,
}

impl EventQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = smol::channel::bounded(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let sink = transport::Sink::new(Bridge { tx, dropped: Arc::clone(&dropped) });
        Self { sink: Some(sink), rx, dropped }
    }

    /// The sink to give the transport constructor (once).
    pub(crate) fn take_sink(&mut self) -> transport::Sink {
        self.sink.take().expect("the sink is taken once")
    }
}

/// What a particle loop is made of.
pub(crate) struct Parts {
    pub identity: Identity,
    pub transport: transport::Loaded,
    pub dht: Option<dht::Loaded>,
    pub air: air::Loaded,
    pub limits: Limits,
    pub handler: Arc<dyn Handler>,
}

/// The particle loop of one peer.
pub struct Core {
    identity: Identity,
    secret: Vec<u8>,
    transport: transport::Loaded,
    dht: Option<dht::Loaded>,
    air: Arc<air::Loaded>,
    limits: Limits,
    handler: Arc<dyn Handler>,
    // Weak: the executor's tasks hold the core, so the core must not hold the executor (the
    // owner drops the executor at shutdown, which drops every task and then the core).
    ex: std::sync::Weak<smol::Executor<'static>>,
    counters: Counters,
    events_dropped: Arc<AtomicU64>,
    actors: Mutex<Actors>,
    seen: Mutex<Seen>,
    net: Mutex<Net>,
    calls: Semaphore,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("peer_id", &self.identity.peer_id()).finish_non_exhaustive()
    }
}

fn empty_particle() -> Particle {
    Particle {
        id: String::new(),
        init_peer_id: String::new(),
        timestamp: 0,
        ttl: 0,
        script: String::new(),
        signature: Vec::new(),
        data: Vec::new(),
    }
}

/// `addr/p2p/peer`, unless it already names a peer.
pub fn with_p2p(addr: &str, peer: &str) -> String {
    if addr.contains("/p2p/") { addr.to_owned() } else { format!("{addr}/p2p/{peer}") }
}

/// The peer id at the end of `…/p2p/<id>`, if any.
pub fn p2p_of(addr: &str) -> Option<&str> {
    addr.rsplit_once("/p2p/").map(|(_, id)| id).filter(|id| !id.is_empty() && !id.contains('/'))
}

impl Core {
    /// Starts the loop: spawns the dispatcher on `ex`.
    pub(crate) fn start(parts: Parts, ex: Arc<smol::Executor<'static>>, events: EventQueue) -> Arc<Self> {
        let Parts { identity, transport, dht, air, limits, handler } = parts;
        let calls = Semaphore::new(limits.max_concurrent_calls.max(1));
        let core = Arc::new(Core {
            secret: identity.secret().to_vec(),
            identity,
            transport,
            dht,
            air: Arc::new(air),
            limits,
            handler,
            ex: Arc::downgrade(&ex),
            counters: Counters::default(),
            events_dropped: events.dropped,
            actors: Mutex::default(),
            seen: Mutex::default(),
            net: Mutex::default(),
            calls,
        });
        let weak = Arc::downgrade(&core);
        let rx = events.rx;
        ex.spawn(async move {
            while let Ok(event) = rx.recv().await {
                let Some(core) = weak.upgrade() else { break };
                core.on_event(event);
            }
        })
        .detach();
        core
    }

    /// This peer's id.
    pub fn peer_id(&self) -> &str {
        self.identity.peer_id()
    }

    /// This peer's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The transport.
    pub fn transport(&self) -> &transport::Loaded {
        &self.transport
    }

    /// The DHT, when the node has one.
    pub fn dht(&self) -> Option<&dht::Loaded> {
        self.dht.as_ref()
    }

    /// Runs `future` on the loop's executor (nothing happens once the loop has stopped).
    pub fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        if let Some(ex) = self.ex.upgrade() {
            ex.spawn(future).detach();
        }
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        let (particles, dormant) = {
            let actors = lock(&self.actors);
            (actors.by_id.len() as u64, actors.dormant.len() as u64)
        };
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            received: g(&c.received),
            accepted: g(&c.accepted),
            dropped_oversized: g(&c.dropped_oversized),
            dropped_malformed: g(&c.dropped_malformed),
            dropped_signature: g(&c.dropped_signature),
            dropped_expired: g(&c.dropped_expired),
            dropped_duplicate: g(&c.dropped_duplicate),
            dropped_limit: g(&c.dropped_limit),
            interpreter_runs: g(&c.interpreter_runs),
            interpreter_errors: g(&c.interpreter_errors),
            calls: g(&c.calls),
            sent: g(&c.sent),
            send_failed: g(&c.send_failed),
            events_dropped: g(&self.events_dropped),
            dormant_evicted: g(&c.dormant_evicted),
            woken: g(&c.woken),
            particles,
            dormant,
        }
    }

    /// The addresses the transport reported listening on (without `/p2p/`).
    pub fn listening(&self) -> Vec<String> {
        lock(&self.net).listening.clone()
    }

    /// Whether a connection to `peer` is open.
    pub fn is_connected(&self, peer: &str) -> bool {
        lock(&self.net).connected.contains_key(peer)
    }

    /// The peers with an open connection.
    pub fn connected_peers(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.net).connected.keys().cloned().collect();
        v.sort();
        v
    }

    /// The last ping round trip to `peer`, when the transport measures it.
    pub fn rtt(&self, peer: &str) -> Option<Duration> {
        lock(&self.net).rtt.get(peer).copied()
    }

    fn on_event(self: &Arc<Self>, event: Event) {
        match event.kind {
            EventKind::MESSAGE => self.on_message(&event.peer, &event.payload),
            EventKind::CONNECTED => {
                tracing::debug!(peer = %event.peer, address = %event.address, "connected");
                let waiters = {
                    let mut net = lock(&self.net);
                    net.connected.insert(event.peer.clone(), event.address);
                    net.waiters.remove(&event.peer).unwrap_or_default()
                };
                for w in waiters {
                    let _ = w.try_send(Ok(()));
                }
            }
            EventKind::DISCONNECTED => {
                tracing::debug!(peer = %event.peer, "disconnected");
                lock(&self.net).connected.remove(&event.peer);
            }
            EventKind::LISTENING => {
                tracing::info!(address = %event.address, "listening");
                let mut net = lock(&self.net);
                if !net.listening.contains(&event.address) {
                    net.listening.push(event.address);
                }
            }
            EventKind::DIAL_FAILED => {
                let reason = String::from_utf8_lossy(&event.payload).into_owned();
                tracing::info!(peer = %event.peer, address = %event.address, "dial failed: {reason}");
                let waiters = lock(&self.net).waiters.get(&event.peer).cloned().unwrap_or_default();
                for w in waiters {
                    let _ = w.try_send(Err(reason.clone()));
                }
            }
            EventKind::PING => {
                if let Ok(ns) = <[u8; 8]>::try_from(event.payload.as_slice()) {
                    lock(&self.net).rtt.insert(event.peer, Duration::from_nanos(u64::from_le_bytes(ns)));
                }
            }
            _ => {}
        }
    }

    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn on_message(self: &Arc<Self>, from: &str, payload: &[u8]) {
        let c = &self.counters;
        self.count(&c.received);
        let particle = match Particle::decode(payload, self.limits.max_particle_size) {
            Ok(p) => p,
            Err(e) => {
                let counter = if matches!(e, particle::Error::TooLarge { .. }) {
                    &c.dropped_oversized
                } else {
                    &c.dropped_malformed
                };
                self.count(counter);
                tracing::info!(from, "dropped a message: {e}");
                return;
            }
        };
        let now = now_ms();
        if let Err(e) = particle.check_time(now, self.limits.max_ttl_ms, self.limits.max_clock_skew_ms) {
            self.count(&c.dropped_expired);
            tracing::info!(from, "dropped: {e}");
            return;
        }
        let hash = *blake3::hash(payload).as_bytes();
        if lock(&self.seen).contains(&hash) {
            self.count(&c.dropped_duplicate);
            tracing::debug!(from, particle = %particle.id, "dropped a duplicate");
            return;
        }
        let known = {
            let actors = lock(&self.actors);
            let header = actors
                .by_id
                .get(&particle.id)
                .map(|e| &e.header)
                .or_else(|| actors.dormant.get(&particle.id).map(|d| &d.header));
            header.is_some_and(|h| *h == Header::of(&particle))
        };
        if !known && let Err(e) = particle.verify() {
            self.count(&c.dropped_signature);
            tracing::info!(from, "dropped: {e}");
            return;
        }
        if !lock(&self.seen).insert(hash, particle.deadline(), now, self.limits.max_seen) {
            self.count(&c.dropped_duplicate);
            return;
        }
        self.route(particle);
    }

    /// Hands a checked particle to its actor, starting one (or waking a dormant one) when
    /// there is none.
    fn route(self: &Arc<Self>, particle: Particle) {
        let c = &self.counters;
        let header = Header::of(&particle);
        let mut actors = lock(&self.actors);
        if let Some(entry) = actors.by_id.get(&particle.id) {
            if entry.header != header {
                drop(actors);
                self.count(&c.dropped_limit);
                tracing::info!(particle = %particle.id, "dropped: another particle with this id is in flight");
                return;
            }
            match entry.tx.try_send(Msg::Particle(particle)) {
                Ok(()) => self.count(&c.accepted),
                Err(e) => {
                    drop(actors);
                    self.count(&c.dropped_limit);
                    let Msg::Particle(p) = e.into_inner() else { return };
                    tracing::info!(particle = %p.id, "dropped: its actor's queue of {} is full", self.limits.actor_queue);
                }
            }
            return;
        }
        if actors.dormant.get(&particle.id).is_some_and(|d| d.header != header) {
            drop(actors);
            self.count(&c.dropped_limit);
            tracing::info!(particle = %particle.id, "dropped: another particle with this id was here");
            return;
        }
        if actors.by_id.len() >= self.limits.max_particles {
            drop(actors);
            self.count(&c.dropped_limit);
            tracing::warn!(particle = %particle.id, "dropped: {} particles in flight (max_particles)", self.limits.max_particles);
            return;
        }
        let mine = actors.per_peer.get(&particle.init_peer_id).copied().unwrap_or(0);
        if mine >= self.limits.max_particles_per_peer {
            drop(actors);
            self.count(&c.dropped_limit);
            tracing::warn!(
                particle = %particle.id, init_peer = %particle.init_peer_id,
                "dropped: {mine} particles of this init peer in flight (max_particles_per_peer)"
            );
            return;
        }
        let dormant = actors.take_dormant(&particle.id);
        let (tx, rx) = smol::channel::bounded(self.limits.actor_queue.max(1));
        actors.by_id.insert(particle.id.clone(), Entry { tx: tx.clone(), header });
        *actors.per_peer.entry(particle.init_peer_id.clone()).or_insert(0) += 1;
        drop(actors);
        self.count(&c.accepted);
        let core = Arc::clone(self);
        let (shell, prev, first) = match dormant {
            Some(d) => {
                self.count(&c.woken);
                (d.shell, d.prev, particle.data)
            }
            None => {
                let mut shell = particle;
                let data = std::mem::take(&mut shell.data);
                (shell, Vec::new(), data)
            }
        };
        self.spawn(async move { core.actor(shell, prev, first, tx, rx).await });
    }

    /// Starts a particle made on this peer (an application's, or a node's own): its actor runs
    /// the script first with empty data.
    pub fn start_particle(self: &Arc<Self>, particle: Particle) {
        self.route(particle);
    }

    fn remove_live(actors: &mut Actors, id: &str, init_peer_id: &str) -> Option<Entry> {
        let entry = actors.by_id.remove(id);
        if let Some(n) = actors.per_peer.get_mut(init_peer_id) {
            *n -= 1;
            if *n == 0 {
                actors.per_peer.remove(init_peer_id);
            }
        }
        entry
    }

    fn remove_actor(&self, id: &str, init_peer_id: &str) {
        Self::remove_live(&mut lock(&self.actors), id, init_peer_id);
    }

    /// An idle actor stops and leaves its data dormant (`None`), unless a message raced in:
    /// `Some(msg)`, and the actor goes on with it.
    fn go_dormant(&self, shell: &mut Particle, prev: &mut Vec<u8>, rx: &Receiver<Msg>) -> Option<Msg> {
        let mut actors = lock(&self.actors);
        // route() sends while holding this lock: nothing can arrive after this check
        if let Ok(msg) = rx.try_recv() {
            return Some(msg);
        }
        // no entry (cannot happen): the actor stops all the same
        let entry = Self::remove_live(&mut actors, &shell.id, &shell.init_peer_id)?;
        let dormant = Dormant {
            header: entry.header,
            shell: Particle { data: Vec::new(), ..std::mem::replace(shell, empty_particle()) },
            prev: std::mem::take(prev),
        };
        let key = (dormant.shell.deadline(), dormant.shell.id.clone());
        actors.dormant_bytes += dormant.bytes();
        actors.dormant.insert(dormant.shell.id.clone(), dormant);
        actors.dormant_by_deadline.insert(key);
        let evicted = actors.purge_dormant(now_ms(), self.limits.max_dormant_bytes);
        drop(actors);
        if evicted > 0 {
            self.counters.dormant_evicted.fetch_add(evicted as u64, Ordering::Relaxed);
        }
        None
    }

    async fn actor(
        self: Arc<Self>,
        mut shell: Particle,
        prev: Vec<u8>,
        first: Vec<u8>,
        tx: Sender<Msg>,
        rx: Receiver<Msg>,
    ) {
        let info = Arc::new(ParticleInfo {
            id: shell.id.clone(),
            init_peer_id: shell.init_peer_id.clone(),
            timestamp: shell.timestamp,
            ttl: shell.ttl,
        });
        let left = info.deadline().saturating_sub(now_ms());
        let deadline = Instant::now() + Duration::from_millis(left);
        let idle = Duration::from_millis(self.limits.actor_idle_ms);
        let mut prev = prev;
        let mut incoming: VecDeque<Vec<u8>> = VecDeque::from([first]);
        let mut results: Vec<air::CallResult> = Vec::new();
        // calls running for this particle: the actor stays while any is
        let mut pending = 0usize;
        loop {
            while !incoming.is_empty() || !results.is_empty() {
                let data = incoming.pop_front().unwrap_or_default();
                let batch = std::mem::take(&mut results);
                match self.step(&info, &mut shell, std::mem::take(&mut prev), data, batch, &tx, deadline).await {
                    Some(step) => {
                        prev = step.data;
                        pending += step.spawned;
                        results.extend(step.ready);
                    }
                    None => {
                        self.remove_actor(&info.id, &info.init_peer_id);
                        return;
                    }
                }
                while let Ok(msg) = rx.try_recv() {
                    match msg {
                        Msg::Particle(p) => incoming.push_back(p.data),
                        Msg::Result(r) => {
                            pending = pending.saturating_sub(1);
                            results.push(r);
                        }
                    }
                }
            }
            let wake = if pending == 0 { deadline.min(Instant::now() + idle) } else { deadline };
            let next = async { rx.recv().await.ok() }
                .or(async {
                    Timer::at(wake).await;
                    None
                })
                .await;
            match next {
                Some(Msg::Particle(p)) => incoming.push_back(p.data),
                Some(Msg::Result(r)) => {
                    pending = pending.saturating_sub(1);
                    results.push(r);
                }
                None if Instant::now() >= deadline => break,
                None => match self.go_dormant(&mut shell, &mut prev, &rx) {
                    None => {
                        tracing::debug!(particle = %info.id, "idle; its data stays dormant until the deadline");
                        return;
                    }
                    Some(Msg::Particle(p)) => incoming.push_back(p.data),
                    Some(Msg::Result(r)) => {
                        pending = pending.saturating_sub(1);
                        results.push(r);
                    }
                },
            }
        }
        tracing::debug!(particle = %info.id, "expired; actor done");
        self.remove_actor(&info.id, &info.init_peer_id);
    }

    /// One interpreter run and what follows from it. `None` when the interpreter itself failed
    /// (the particle cannot go on here).
    #[allow(clippy::too_many_arguments)]
    async fn step(
        self: &Arc<Self>,
        info: &Arc<ParticleInfo>,
        shell: &mut Particle,
        prev: Vec<u8>,
        current: Vec<u8>,
        call_results: Vec<air::CallResult>,
        tx: &Sender<Msg>,
        deadline: Instant,
    ) -> Option<Step> {
        let request = air::Request {
            script: shell.script.clone(),
            prev_data: prev,
            current_data: current,
            params: air::RunParams {
                init_peer_id: info.init_peer_id.clone(),
                current_peer_id: self.peer_id().to_owned(),
                particle_id: info.id.clone(),
                timestamp: info.timestamp,
                ttl: info.ttl,
                signing_key: self.secret.clone(),
            },
            call_results,
        };
        // Small runs take tens of microseconds: run them right here rather than pay two thread
        // hand-offs; large ones go to the blocking pool so they do not hold a loop thread.
        let size = request.script.len() + request.prev_data.len() + request.current_data.len();
        let outcome = if size <= INLINE_RUN_BYTES {
            self.air.run(request)
        } else {
            let interpreter = Arc::clone(&self.air);
            smol::unblock(move || interpreter.run(request)).await
        };
        self.count(&self.counters.interpreter_runs);
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                self.count(&self.counters.interpreter_errors);
                tracing::error!(particle = %info.id, "the interpreter failed; dropping the particle here: {e}");
                return None;
            }
        };
        if outcome.ret_code != 0 {
            self.count(&self.counters.interpreter_errors);
            tracing::info!(particle = %info.id, code = outcome.ret_code, "air: {}", outcome.error_message);
        }
        self.handler.outcome(info, outcome.ret_code, &outcome.error_message);
        let me = self.peer_id();
        let peers: Vec<String> = outcome.next_peers.into_iter().filter(|p| p.as_str() != me).collect();
        let data = if peers.is_empty() {
            outcome.data
        } else {
            shell.data = outcome.data;
            let bytes = shell.encode();
            let data = std::mem::take(&mut shell.data);
            for peer in peers {
                self.send_or_spawn(&info.id, peer, bytes.clone());
            }
            data
        };
        let (spawned, ready) = self.start_calls(info, outcome.call_requests, tx, deadline);
        Some(Step { data, spawned, ready })
    }

    /// Sends to a connected peer right away (a queue push); anything else (a lookup, a dial)
    /// goes to a task.
    fn send_or_spawn(self: &Arc<Self>, id: &str, peer: String, bytes: Vec<u8>) {
        if bytes.len() <= self.limits.max_particle_size && self.is_connected(&peer) {
            match self.transport.send(&peer, bytes) {
                Ok(()) => self.count(&self.counters.sent),
                Err(e) => {
                    self.count(&self.counters.send_failed);
                    tracing::warn!(particle = %id, "cannot send to {peer}: {e}");
                }
            }
            return;
        }
        let core = Arc::clone(self);
        let id = id.to_owned();
        self.spawn(async move { core.send_particle(&id, &peer, bytes).await });
    }

    /// Starts the calls. A call whose answer is ready at once (most builtins) is answered here,
    /// without a task: its result is in `ready`. The others run as tasks that send their result
    /// to the actor; `spawned` counts them.
    fn start_calls(
        self: &Arc<Self>,
        info: &Arc<ParticleInfo>,
        requests: Vec<air::CallRequest>,
        tx: &Sender<Msg>,
        deadline: Instant,
    ) -> (usize, Vec<air::CallResult>) {
        let mut ready = Vec::new();
        let mut spawned = 0;
        for request in requests {
            let id = request.id;
            let core = Arc::clone(self);
            let info = Arc::clone(info);
            let mut call = Box::pin(async move { core.answer(info, request, deadline).await });
            if let Some(result) = smol::future::block_on(smol::future::poll_once(&mut call)) {
                self.count(&self.counters.calls);
                ready.push(call_result(id, result));
                continue;
            }
            spawned += 1;
            let core = Arc::clone(self);
            let tx = tx.clone();
            self.spawn(async move {
                let result = call.await;
                core.count(&core.counters.calls);
                let _ = tx.send(Msg::Result(call_result(id, result))).await;
            });
        }
        (spawned, ready)
    }

    async fn answer(
        self: &Arc<Self>,
        particle: Arc<ParticleInfo>,
        request: air::CallRequest,
        deadline: Instant,
    ) -> Result<Value, CallError> {
        let args: Vec<Value> = serde_json::from_str(&request.arguments)
            .map_err(|e| CallError::new(format!("the interpreter gave malformed arguments: {e}")))?;
        let tetraplets: Vec<Vec<Tetraplet>> = serde_json::from_str(&request.tetraplets).unwrap_or_default();
        let call = Call { particle, service: request.service_id, function: request.function_name, args, tetraplets };
        let _permit = self.calls.acquire().await;
        let service = call.service.clone();
        let function = call.function.clone();
        self.handler
            .call(self, call)
            .or(async move {
                Timer::at(deadline).await;
                Err(CallError::new(format!("{service}.{function}: the particle expired before the call returned")))
            })
            .await
    }

    async fn send_particle(self: Arc<Self>, id: &str, peer: &str, bytes: Vec<u8>) {
        match self.deliver(peer, bytes).await {
            Ok(()) => self.count(&self.counters.sent),
            Err(e) => {
                self.count(&self.counters.send_failed);
                tracing::warn!(particle = %id, "cannot send to {peer}: {e}");
            }
        }
    }

    /// Sends bytes to a peer: directly when connected, else after finding it in the DHT and
    /// dialling it.
    ///
    /// # Errors
    /// One line: not found, unreachable, refused by the transport.
    pub async fn deliver(self: &Arc<Self>, peer: &str, bytes: Vec<u8>) -> Result<(), String> {
        if bytes.len() > self.limits.max_particle_size {
            return Err(format!(
                "the particle is {} bytes, more than max_particle_size = {}",
                bytes.len(),
                self.limits.max_particle_size
            ));
        }
        if !self.is_connected(peer) {
            self.connect(peer, &[]).await?;
        }
        self.transport.send(peer, bytes).map_err(|e| e.to_string())
    }

    /// Connects to `peer`: at `addrs` when given, else at the addresses the DHT finds. Waits
    /// until the connection is open.
    ///
    /// # Errors
    /// One line: no DHT, not found, every dial failed, timeout.
    pub async fn connect(self: &Arc<Self>, peer: &str, addrs: &[String]) -> Result<(), String> {
        if self.is_connected(peer) {
            return Ok(());
        }
        if weft_abi::peer_id::public_key_from_peer_id(peer).is_none() {
            return Err(format!("{peer:?} is not a peer id"));
        }
        let addrs: Vec<String> = if addrs.is_empty() {
            let Some(_) = &self.dht else {
                return Err(format!("not connected to {peer}, and there is no dht to find it"));
            };
            let core = Arc::clone(self);
            let target = peer.to_owned();
            let timeout = Duration::from_millis(self.limits.lookup_timeout_ms);
            let found = smol::unblock(move || core.dht.as_ref().map(|d| d.find_peer(&target, timeout))).await;
            match found {
                Some(Ok(a)) if !a.is_empty() => a,
                Some(Ok(_)) => return Err(format!("the dht knows no address of {peer}")),
                Some(Err(e)) => return Err(format!("cannot find {peer} in the dht: {e}")),
                None => return Err("no dht".into()),
            }
        } else {
            addrs.to_vec()
        };
        let (wtx, wrx) = smol::channel::bounded(addrs.len() + 1);
        lock(&self.net).waiters.entry(peer.to_owned()).or_default().push(wtx);
        if self.is_connected(peer) {
            return Ok(());
        }
        let mut failures = 0usize;
        let mut last = String::new();
        for addr in &addrs {
            if let Err(e) = self.transport.dial(&with_p2p(addr, peer)) {
                failures += 1;
                last = e.to_string();
            }
        }
        let timeout = Duration::from_millis(self.limits.connect_timeout_ms);
        let until = Instant::now() + timeout;
        while failures < addrs.len() {
            let got = async { wrx.recv().await.ok() }
                .or(async {
                    Timer::at(until).await;
                    None
                })
                .await;
            match got {
                Some(Ok(())) => return Ok(()),
                Some(Err(reason)) => {
                    failures += 1;
                    last = reason;
                }
                None => {
                    return if self.is_connected(peer) {
                        Ok(())
                    } else {
                        Err(format!("no connection to {peer} within {} ms", timeout.as_millis()))
                    };
                }
            }
        }
        if self.is_connected(peer) {
            return Ok(());
        }
        Err(format!("cannot connect to {peer} at {}: {last}", addrs.join(", ")))
    }

    /// Stops the transport: no more events, no more sends.
    pub(crate) fn shutdown(&self) {
        if let Err(e) = self.transport.shutdown() {
            tracing::warn!("transport shutdown: {e}");
        }
    }

    /// Whether an error from `transport.send` means "not connected".
    pub fn is_not_connected(e: &weft_abi::Error) -> bool {
        e.code() == ErrorCode::NOT_FOUND
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_forgets_at_the_deadline_and_when_full() {
        let mut s = Seen::default();
        assert!(s.insert([1; 32], 100, 0, 2));
        assert!(!s.insert([1; 32], 100, 50, 2));
        assert!(s.insert([2; 32], 200, 50, 2));
        // full: the first to expire goes
        assert!(s.insert([3; 32], 300, 60, 2));
        assert!(!s.contains(&[1; 32]));
        assert!(s.contains(&[2; 32]) && s.contains(&[3; 32]));
        // expired ones go at the next insert
        assert!(s.insert([4; 32], 400, 250, 10));
        assert!(!s.contains(&[2; 32]));
    }

    #[test]
    fn p2p_suffixes() {
        assert_eq!(p2p_of("/ip4/1.2.3.4/tcp/1/p2p/12D3x"), Some("12D3x"));
        assert_eq!(p2p_of("/ip4/1.2.3.4/tcp/1"), None);
        assert_eq!(with_p2p("/memory/1", "P"), "/memory/1/p2p/P");
        assert_eq!(with_p2p("/memory/1/p2p/P", "P"), "/memory/1/p2p/P");
    }
}
