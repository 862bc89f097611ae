//! What the transport and dht suites share: a recording sink, nodes under test, fresh identities,
//! the case runner and the checks every error and event goes through.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::dht::Dht;
use crate::error::{ErrorCode, Result};
use crate::transport::{Event, EventKind, EventSink, Sink, Transport};

/// How long any one wait for an event or a condition lasts before the case fails.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// How long a stalled sink blocks at most, so that a failing case cannot hang the test binary.
const STALL_MAX: Duration = Duration::from_secs(60);

/// Events a recorder keeps unconsumed; beyond, it answers `false` and notes a violation.
const MAX_KEPT: usize = 1 << 18;

thread_local! {
    /// Set on the threads the suites call transports from: an event delivered on one of them was
    /// emitted from inside a call, which the contract forbids.
    static SUITE_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as one that calls into the transport under test.
pub(crate) fn mark_suite_thread() {
    SUITE_THREAD.with(|c| c.set(true));
}

static NEXT_IDENTITY: AtomicU64 = AtomicU64::new(0);

/// A 32-byte identity no other node of this process has.
pub(crate) fn fresh_identity() -> [u8; 32] {
    let n = NEXT_IDENTITY.fetch_add(1, Ordering::Relaxed);
    let mut seed = *b"weft compliance suite identity..";
    seed[..8].copy_from_slice(&n.to_le_bytes());
    seed[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    seed
}

/// The peer id of a fresh identity that no node uses.
pub(crate) fn stranger() -> String {
    crate::peer_id::peer_id_from_secret(&fresh_identity())
}

/// One named case of a suite, taking the suite's factory and listen address.
pub(crate) type Case<F> = (&'static str, fn(F, &str));

/// Runs each case, naming the one that failed.
pub(crate) fn run_cases<F: Copy>(suite: &str, cases: &[Case<F>], factory: F, listen: &str) {
    mark_suite_thread();
    for (name, case) in cases {
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(factory, listen)));
        if let Err(payload) = result {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("{suite} compliance case {name:?} on {listen} failed: {msg}");
        }
        eprintln!("{suite} compliance on {listen}: {name}: ok in {} ms", started.elapsed().as_millis());
    }
}

/// Asserts that `result` is an error with `code` and a one-line message.
pub(crate) fn expect_err<T: std::fmt::Debug>(result: Result<T>, code: ErrorCode, what: &str) {
    match result {
        Ok(v) => panic!("{what}: expected a {code} error, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.code(), code, "{what}: wrong error code (message: {e})");
            check_message(&e.to_string(), what);
        }
    }
}

/// Error messages are one line a person can act on.
pub(crate) fn check_message(message: &str, what: &str) {
    assert!(!message.trim().is_empty(), "{what}: the error message is empty");
    assert!(!message.contains('\n'), "{what}: the error message is not one line: {message:?}");
}

/// Waits until `cond` holds, polling; panics naming `what` after [`WAIT`].
pub(crate) fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {} s waiting until {what}", WAIT.as_secs());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A multiaddress without its `/p2p/<id>` suffix.
pub(crate) fn strip_p2p(address: &str) -> &str {
    address.find("/p2p/").map_or(address, |i| &address[..i])
}

fn kind_name(kind: EventKind) -> String {
    match kind {
        EventKind::MESSAGE => "MESSAGE".into(),
        EventKind::CONNECTED => "CONNECTED".into(),
        EventKind::DISCONNECTED => "DISCONNECTED".into(),
        EventKind::LISTENING => "LISTENING".into(),
        EventKind::DIAL_FAILED => "DIAL_FAILED".into(),
        EventKind::PING => "PING".into(),
        other => format!("kind {}", other.0),
    }
}

/// One line about an event, for failure messages.
pub(crate) fn describe(e: &Event) -> String {
    let payload = match e.kind {
        EventKind::DIAL_FAILED => format!("{:?}", String::from_utf8_lossy(&e.payload)),
        _ => format!("{} bytes", e.payload.len()),
    };
    format!("{} peer={:?} address={:?} payload={payload}", kind_name(e.kind), e.peer, e.address)
}

/// What is wrong with an event's shape, whatever the case.
fn malformed(e: &Event) -> Option<String> {
    let needs_peer =
        [EventKind::MESSAGE, EventKind::CONNECTED, EventKind::DISCONNECTED, EventKind::PING].contains(&e.kind);
    if needs_peer && e.peer.is_empty() {
        return Some(format!("{} without a peer", kind_name(e.kind)));
    }
    match e.kind {
        EventKind::LISTENING if e.address.is_empty() => Some("LISTENING without an address".into()),
        EventKind::LISTENING if e.address.contains("/p2p/") => {
            Some(format!("LISTENING address {:?} carries a /p2p/ suffix", e.address))
        }
        EventKind::PING if e.payload.len() != 8 => {
            Some(format!("PING payload is {} bytes, not a u64 of nanoseconds", e.payload.len()))
        }
        EventKind::DIAL_FAILED if e.payload.is_empty() || std::str::from_utf8(&e.payload).is_err() => {
            Some("DIAL_FAILED without a UTF-8 reason".into())
        }
        _ => None,
    }
}

#[derive(Default)]
struct State {
    events: VecDeque<(u64, Event)>,
    next_seq: u64,
    refuse: bool,
    refused_messages: u64,
    stalled: bool,
    violations: Vec<String>,
}

/// The suites' event sink: keeps events until a case takes them, can refuse or stall.
#[derive(Default)]
pub(crate) struct Recorder {
    state: Mutex<State>,
    changed: Condvar,
}

struct RecordingSink(Arc<Recorder>);

impl EventSink for RecordingSink {
    fn event(&self, event: Event) -> bool {
        self.0.record(event)
    }
}

impl Recorder {
    /// A recorder and the sink that feeds it.
    pub(crate) fn new() -> (Arc<Self>, Sink) {
        let rec = Arc::new(Self::default());
        let sink = Sink::new(RecordingSink(Arc::clone(&rec)));
        (rec, sink)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, event: Event) -> bool {
        let on_suite_thread = SUITE_THREAD.with(Cell::get);
        let mut s = self.lock();
        if on_suite_thread && s.violations.len() < 10 {
            let v = format!("{} was emitted on the thread calling the transport", describe(&event));
            s.violations.push(v);
        }
        if let Some(v) = malformed(&event)
            && s.violations.len() < 10
        {
            s.violations.push(v);
        }
        let until = Instant::now() + STALL_MAX;
        while s.stalled {
            let now = Instant::now();
            if now >= until {
                s.stalled = false;
                s.violations.push(format!("the sink stayed stalled for {} s", STALL_MAX.as_secs()));
                break;
            }
            s = self.changed.wait_timeout(s, until - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        if s.refuse {
            s.refused_messages += u64::from(event.kind == EventKind::MESSAGE);
            self.changed.notify_all();
            return false;
        }
        if s.events.len() >= MAX_KEPT {
            if s.violations.len() < 10 {
                s.violations.push(format!("more than {MAX_KEPT} events arrived unasked"));
            }
            return false;
        }
        let seq = s.next_seq;
        s.next_seq += 1;
        s.events.push_back((seq, event));
        self.changed.notify_all();
        true
    }

    /// Takes the first event matching `pred`, with its arrival number; panics after `timeout`,
    /// naming `what` and listing the events that did arrive.
    pub(crate) fn wait(&self, what: &str, timeout: Duration, pred: impl Fn(&Event) -> bool) -> (u64, Event) {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if let Some(i) = s.events.iter().position(|(_, e)| pred(e)) {
                return s.events.remove(i).expect("index in range");
            }
            let now = Instant::now();
            if now >= deadline {
                let seen: Vec<String> = s.events.iter().take(8).map(|(_, e)| describe(e)).collect();
                panic!(
                    "timed out after {} s waiting for {what}; {} other events arrived: [{}]",
                    timeout.as_secs(),
                    s.events.len(),
                    seen.join("; ")
                );
            }
            s = self.changed.wait_timeout(s, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Whether an event matching `pred` is waiting (without taking it).
    pub(crate) fn has(&self, pred: impl Fn(&Event) -> bool) -> bool {
        self.lock().events.iter().any(|(_, e)| pred(e))
    }

    /// From now on, answers `false` to every event (`true`), or records again (`false`).
    pub(crate) fn refuse(&self, on: bool) {
        self.lock().refuse = on;
    }

    /// How many `MESSAGE` events it refused.
    pub(crate) fn refused_messages(&self) -> u64 {
        self.lock().refused_messages
    }

    /// Blocks every event delivery until released (at most [`STALL_MAX`]).
    pub(crate) fn stall(&self, on: bool) {
        self.lock().stalled = on;
        self.changed.notify_all();
    }

    /// Panics if an event broke the contract.
    pub(crate) fn check(&self, who: &str) {
        let s = self.lock();
        assert!(s.violations.is_empty(), "events at {who} broke the contract: {}", s.violations.join("; "));
    }
}

/// One node under test: a transport (and a DHT, in the dht suite) listening on one address.
pub(crate) struct Node {
    pub(crate) t: Box<dyn Transport>,
    pub(crate) dht: Option<Box<dyn Dht>>,
    pub(crate) rec: Arc<Recorder>,
    pub(crate) id: String,
    pub(crate) addr: String,
}

impl Node {
    /// Starts `t` listening on `listen` and waits for the resolved address.
    pub(crate) fn listening(
        t: Box<dyn Transport>,
        dht: Option<Box<dyn Dht>>,
        rec: Arc<Recorder>,
        listen: &str,
    ) -> Self {
        let id = t.local_peer_id();
        t.listen(listen).unwrap_or_else(|e| panic!("listen on {listen}: {e}"));
        let (_, e) = rec.wait(&format!("LISTENING after listen({listen})"), WAIT, |e| e.kind == EventKind::LISTENING);
        Self { t, dht, rec, id, addr: e.address }
    }

    /// The node's DHT (dht suite only).
    pub(crate) fn dht(&self) -> &dyn Dht {
        self.dht.as_deref().expect("a node of the dht suite")
    }

    /// Dials `other` and waits for `CONNECTED` on both sides.
    pub(crate) fn connect(&self, other: &Node) {
        self.t.dial(&other.addr).unwrap_or_else(|e| panic!("dial {}: {e}", other.addr));
        self.expect_connected(other);
        other.rec.wait("CONNECTED at the listener, naming the dialer", WAIT, |e| {
            e.kind == EventKind::CONNECTED && e.peer == self.id
        });
    }

    /// Waits for the dialer's `CONNECTED` naming `other`, with an address.
    pub(crate) fn expect_connected(&self, other: &Node) {
        let (_, e) = self.rec.wait("CONNECTED at the dialer, naming the listener", WAIT, |e| {
            e.kind == EventKind::CONNECTED && e.peer == other.id
        });
        assert!(!e.address.is_empty(), "the dialer's CONNECTED event carries no address");
    }

    /// Takes the next message from `from`; returns its arrival number and bytes.
    pub(crate) fn next_message(&self, from: &Node, what: &str) -> (u64, Vec<u8>) {
        let (seq, e) = self.rec.wait(what, WAIT, |e| e.kind == EventKind::MESSAGE && e.peer == from.id);
        (seq, e.payload)
    }

    /// Sends, retrying while the peer's queue is full (`LIMIT`), for at most [`WAIT`].
    pub(crate) fn send_retrying(&self, to: &str, message: &[u8]) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.t.send(to, message.to_vec()) {
                Ok(()) => return,
                Err(e) if e.code() == ErrorCode::LIMIT && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("send of {} bytes to {to}: {e}", message.len()),
            }
        }
    }

    /// Panics if one of its events broke the contract.
    pub(crate) fn check(&self) {
        self.rec.check(&self.id);
    }

    /// The transport, out of the node (whose drop would shut it down).
    pub(crate) fn into_transport(mut self) -> Box<dyn Transport> {
        std::mem::replace(&mut self.t, Box::new(Gone))
    }
}

/// What is left in a [`Node`] whose transport was taken out.
struct Gone;

impl Transport for Gone {
    fn local_peer_id(&self) -> String {
        String::new()
    }
    fn listen(&self, _address: &str) -> Result<()> {
        Ok(())
    }
    fn listen_addrs(&self) -> Vec<String> {
        Vec::new()
    }
    fn dial(&self, _address: &str) -> Result<()> {
        Ok(())
    }
    fn send(&self, _peer: &str, _message: Vec<u8>) -> Result<()> {
        Ok(())
    }
    fn connected_peers(&self) -> Vec<String> {
        Vec::new()
    }
    fn shutdown(&self) {}
}

impl Drop for Node {
    fn drop(&mut self) {
        self.t.shutdown();
    }
}

/// Checks every node's events.
pub(crate) fn check_all(nodes: &[&Node]) {
    for n in nodes {
        n.check();
    }
}
