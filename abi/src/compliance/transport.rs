//! The transport compliance suite: what the host relies on from every transport (the contract
//! written down on [`Transport`]).
//!
//! ```ignore
//! weft_abi::compliance::transport::run(&|identity, sink| MyPlugin::transport("", identity, sink).unwrap(), "/memory/0");
//! ```
//!
//! Each case makes its own nodes with fresh identities, so the suite can run beside other tests of
//! the same process. Every wait lasts at most 30 s and fails naming what it waited for; nothing is
//! timed tighter than that.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Instant;

use super::net::{self, Node, Recorder, WAIT, check_all, expect_err, fresh_identity, stranger};
use crate::error::ErrorCode;
use crate::transport::{EventKind, Sink, Transport};

/// Makes the transport under test for a node with this identity (32-byte Ed25519 seed), reporting
/// to `sink`.
pub type Factory<'a> = &'a (dyn Fn(&[u8; 32], Sink) -> Box<dyn Transport> + Sync);

type Case<'a> = net::Case<Factory<'a>>;

/// Runs the whole suite. `listen` is an address that lets each new transport pick a free slot/port
/// (`"/memory/0"`, `"/ip4/127.0.0.1/tcp/0"`). Panics on the first failing case, naming it.
pub fn run(factory: Factory<'_>, listen: &str) {
    let cases: &[Case<'_>] = &[
        ("local peer id is derived from the identity", identity),
        ("listen reports the resolved address", listen_reports),
        ("malformed and unsupported addresses are refused", bad_addresses),
        ("dial connects both sides", dial_connects),
        ("dial with /p2p/: the right peer connects, another peer fails", dial_p2p),
        ("a dial nobody answers is a DIAL_FAILED event", dial_fails),
        ("a message arrives with the sender's id, both ways", message),
        ("1000 messages arrive in order", order),
        ("messages sent concurrently all arrive", concurrent),
        ("the maximum message size", max_size),
        ("send to a peer without a connection", unknown_peer),
        ("a stalled receiver: send says LIMIT, never blocks, loses nothing", backpressure),
        ("a sink that refuses events does not break the transport", refusing_sink),
        ("shutdown", shutdown),
        ("dropping a transport shuts it down", drop_closes),
    ];
    net::run_cases("transport", cases, factory, listen);
}

fn node(factory: Factory<'_>, listen: &str) -> Node {
    let (rec, sink) = Recorder::new();
    Node::listening(factory(&fresh_identity(), sink), None, rec, listen)
}

fn identity(factory: Factory<'_>, _listen: &str) {
    for _ in 0..3 {
        let seed = fresh_identity();
        let (rec, sink) = Recorder::new();
        let t = factory(&seed, sink);
        assert_eq!(t.local_peer_id(), crate::peer_id::peer_id_from_secret(&seed), "local_peer_id of the identity");
        assert!(t.listen_addrs().is_empty(), "a new transport listens nowhere: {:?}", t.listen_addrs());
        assert!(t.connected_peers().is_empty(), "a new transport has no connection");
        t.shutdown();
        rec.check("a fresh transport");
    }
}

fn listen_reports(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    for n in [&a, &b] {
        assert!(!n.addr.contains("/p2p/"), "listen address {:?} carries /p2p/", n.addr);
        if listen.ends_with("/0") {
            assert!(!n.addr.ends_with("/0"), "listen({listen}) reported {:?}: the port/slot is not resolved", n.addr);
        }
        net::wait_until("listen_addrs contains the LISTENING address", || n.t.listen_addrs().contains(&n.addr));
        assert!(n.t.listen_addrs().iter().all(|a| !a.contains("/p2p/")), "listen_addrs carry /p2p/");
    }
    assert_ne!(a.addr, b.addr, "two transports got the same address");
    // A second listener on the same transport adds an address.
    a.t.listen(listen).unwrap_or_else(|e| panic!("a second listen({listen}): {e}"));
    let (_, second) = a.rec.wait("LISTENING after a second listen", WAIT, |e| e.kind == EventKind::LISTENING);
    assert_ne!(second.address, a.addr, "a second listener got the first one's address");
    net::wait_until("listen_addrs holds both addresses", || {
        let addrs = a.t.listen_addrs();
        addrs.contains(&a.addr) && addrs.contains(&second.address)
    });
    check_all(&[&a, &b]);
}

/// Addresses no transport can parse.
const MALFORMED: [&str; 6] =
    ["", "garbage", "/ip4/300.0.0.1/tcp/1", "/memory/not-a-number", "/tcp", "/ip4/127.0.0.1/tcp/99999999"];

fn bad_addresses(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    for addr in MALFORMED {
        expect_err(a.t.listen(addr), ErrorCode::INVALID_ARGUMENT, &format!("listen({addr:?})"));
        expect_err(a.t.dial(addr), ErrorCode::INVALID_ARGUMENT, &format!("dial({addr:?})"));
    }
    // Parses as a multiaddress, but no weft transport speaks uTP.
    let unsupported = "/ip4/127.0.0.1/udp/9/utp";
    expect_err(a.t.listen(unsupported), ErrorCode::INVALID_ARGUMENT, &format!("listen({unsupported:?})"));
    let bad_p2p = format!("{}/p2p/not-a-peer-id!", a.addr);
    expect_err(a.t.dial(&bad_p2p), ErrorCode::INVALID_ARGUMENT, &format!("dial({bad_p2p:?})"));
    assert_eq!(a.t.listen_addrs(), vec![a.addr.clone()], "refused listens added no address");
    check_all(&[&a]);
}

fn dial_connects(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    let c = node(factory, listen);
    a.connect(&b);
    a.connect(&c);
    net::wait_until("the dialer's connected_peers lists both", || {
        let peers = a.t.connected_peers();
        peers.contains(&b.id) && peers.contains(&c.id)
    });
    net::wait_until("the listener's connected_peers lists the dialer", || b.t.connected_peers().contains(&a.id));
    let mut peers = a.t.connected_peers();
    peers.sort();
    peers.dedup();
    assert_eq!(peers.len(), 2, "connected_peers lists open connections only: {peers:?}");
    // Dialling a connected peer again reports CONNECTED again.
    a.t.dial(&b.addr).unwrap_or_else(|e| panic!("dialling a connected peer: {e}"));
    a.expect_connected(&b);
    check_all(&[&a, &b, &c]);
}

fn dial_p2p(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    a.t.dial(&format!("{}/p2p/{}", b.addr, b.id)).unwrap_or_else(|e| panic!("dial with /p2p/: {e}"));
    a.expect_connected(&b);
    b.rec.wait("CONNECTED at the listener", WAIT, |e| e.kind == EventKind::CONNECTED && e.peer == a.id);

    let c = node(factory, listen);
    let other = stranger();
    let wrong = format!("{}/p2p/{other}", b.addr);
    c.t.dial(&wrong).unwrap_or_else(|e| panic!("dial {wrong}: {e}"));
    let (_, e) = c.rec.wait(&format!("DIAL_FAILED for {wrong} (the address is another peer's)"), WAIT, |e| {
        e.kind == EventKind::DIAL_FAILED
    });
    assert_eq!(e.peer, other, "DIAL_FAILED names the peer the address asked for");
    assert!(!c.rec.has(|e| e.kind == EventKind::CONNECTED), "a dial to the wrong peer must not report CONNECTED");
    assert!(!c.t.connected_peers().contains(&b.id), "a dial to the wrong peer left a connection");
    check_all(&[&a, &b, &c]);
}

fn dial_fails(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let (dead_addr, dead_id) = {
        let gone = node(factory, listen);
        gone.t.shutdown();
        (gone.addr.clone(), gone.id.clone())
    };
    a.t.dial(&dead_addr).unwrap_or_else(|e| panic!("dial returns before connecting: {e}"));
    let (_, e) =
        a.rec.wait(&format!("DIAL_FAILED for {dead_addr} (shut down)"), WAIT, |e| e.kind == EventKind::DIAL_FAILED);
    net::check_message(&String::from_utf8_lossy(&e.payload), "the DIAL_FAILED reason");
    let named = format!("{dead_addr}/p2p/{dead_id}");
    a.t.dial(&named).unwrap_or_else(|e| panic!("dial {named}: {e}"));
    let (_, e) = a.rec.wait(&format!("DIAL_FAILED for {named}"), WAIT, |e| e.kind == EventKind::DIAL_FAILED);
    assert_eq!(e.peer, dead_id, "DIAL_FAILED names the peer the address named");
    assert!(a.t.connected_peers().is_empty(), "failed dials left connections");
    check_all(&[&a]);
}

fn message(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    // Send as soon as the dialer is connected, before looking at the receiver.
    a.t.dial(&b.addr).unwrap_or_else(|e| panic!("dial {}: {e}", b.addr));
    a.expect_connected(&b);
    a.t.send(&b.id, b"hello weft".to_vec()).unwrap_or_else(|e| panic!("send: {e}"));
    let (message_seq, bytes) = b.next_message(&a, "the message at the receiver");
    assert_eq!(bytes, b"hello weft", "the exact bytes arrive");
    let (connected_seq, _) =
        b.rec.wait("CONNECTED at the receiver", WAIT, |e| e.kind == EventKind::CONNECTED && e.peer == a.id);
    assert!(connected_seq < message_seq, "the receiver saw the message before CONNECTED of its sender");
    let all: Vec<u8> = (0..=255).collect();
    b.t.send(&a.id, all.clone()).unwrap_or_else(|e| panic!("the listener's send back: {e}"));
    let (_, back) = a.next_message(&b, "the reply at the dialer");
    assert_eq!(back, all, "every byte value arrives unchanged");
    check_all(&[&a, &b]);
}

fn numbered(i: u32, len: usize) -> Vec<u8> {
    let mut m = i.to_le_bytes().to_vec();
    m.extend((0..len).map(|j| (j as u32).wrapping_mul(i).wrapping_add(7) as u8));
    m
}

fn order(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    a.connect(&b);
    for i in 0..1000u32 {
        a.send_retrying(&b.id, &numbered(i, (i as usize * 37) % 700));
    }
    for i in 0..1000u32 {
        let (_, bytes) = b.next_message(&a, &format!("message {i} of 1000"));
        assert_eq!(bytes, numbered(i, (i as usize * 37) % 700), "message {i} arrives in order, unchanged");
    }
    check_all(&[&a, &b]);
}

fn concurrent(factory: Factory<'_>, listen: &str) {
    const THREADS: u8 = 4;
    const EACH: u32 = 250;
    let a = node(factory, listen);
    let b = node(factory, listen);
    let c = node(factory, listen);
    a.connect(&b);
    c.connect(&b);
    std::thread::scope(|s| {
        for (sender, threads) in [(&a, THREADS), (&c, 1)] {
            for thread in 0..threads {
                let b_id = &b.id;
                s.spawn(move || {
                    net::mark_suite_thread();
                    for i in 0..EACH {
                        let mut m = vec![thread];
                        m.extend_from_slice(&i.to_le_bytes());
                        sender.send_retrying(b_id, &m);
                    }
                });
            }
        }
    });
    let mut next: HashMap<(String, u8), u32> = HashMap::new();
    let total = (THREADS as u32 + 1) * EACH;
    for n in 0..total {
        let (_, e) = b
            .rec
            .wait(&format!("message {n} of {total} from concurrent senders"), WAIT, |e| e.kind == EventKind::MESSAGE);
        assert!(e.peer == a.id || e.peer == c.id, "a message from {:?}, which sent nothing", e.peer);
        assert_eq!(e.payload.len(), 5, "a message arrived changed");
        let i = u32::from_le_bytes(e.payload[1..5].try_into().expect("4 bytes"));
        let expected = next.entry((e.peer.clone(), e.payload[0])).or_insert(0);
        assert_eq!(i, *expected, "one thread's messages arrive in the order it sent them");
        *expected += 1;
    }
    assert_eq!(next.values().sum::<u32>(), total);
    check_all(&[&a, &b, &c]);
}

/// `n` bytes of a pattern that a shifted or truncated copy cannot match.
fn pattern(n: usize) -> Vec<u8> {
    let block: Vec<u8> = (0..4093u32).map(|i| (i.wrapping_mul(31) % 251) as u8).collect();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let take = block.len().min(n - out.len());
        out.extend_from_slice(&block[..take]);
    }
    out
}

/// The largest message the suite tries before deciding a transport has no maximum.
const PROBE_CEILING: usize = 256 << 20;

fn max_size(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    a.connect(&b);
    // Sends `n` bytes: Some(true) when it arrived, Some(false) when refused with LIMIT.
    let try_size = |n: usize, buf: &[u8]| -> bool {
        match a.t.send(&b.id, buf[..n].to_vec()) {
            Ok(()) => {
                let (_, got) = b.next_message(&a, &format!("a message of {n} bytes"));
                assert!(
                    got.len() == n && got == buf[..n],
                    "the {n}-byte message arrived changed ({} bytes)",
                    got.len()
                );
                true
            }
            Err(e) if e.code() == ErrorCode::LIMIT => {
                net::check_message(e.message(), "the LIMIT error");
                false
            }
            Err(e) => panic!("send of {n} bytes: expected Ok or a LIMIT error, got {e}"),
        }
    };
    // Doubling from 64 KiB finds a refused size; bisecting finds the exact maximum.
    let mut buf = pattern(64 << 10);
    let mut accepted = 0;
    let mut refused = 64 << 10;
    loop {
        if buf.len() < refused {
            buf = pattern(refused);
        }
        if !try_size(refused, &buf) {
            break;
        }
        assert!(refused < PROBE_CEILING, "a {refused}-byte message was accepted: a transport needs a maximum size");
        accepted = refused;
        refused *= 2;
    }
    assert!(accepted > 0, "a 64 KiB message was refused: particles need at least that much room");
    while refused - accepted > 1 {
        let mid = accepted + (refused - accepted) / 2;
        if try_size(mid, &buf) {
            accepted = mid;
        } else {
            refused = mid;
        }
    }
    eprintln!("transport compliance on {listen}: the maximum message size is {accepted} bytes");
    // Nothing refused arrives: the next message from `a` is this marker.
    a.t.send(&b.id, b"marker".to_vec()).unwrap_or_else(|e| panic!("send after LIMIT: {e}"));
    let (_, got) = b.next_message(&a, "the marker after the refused messages");
    assert_eq!(got, b"marker", "a refused message arrived");
    check_all(&[&a, &b]);
}

fn unknown_peer(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    expect_err(a.t.send(&stranger(), b"x".to_vec()), ErrorCode::NOT_FOUND, "send to a peer nobody knows");
    expect_err(a.t.send(&b.id, b"x".to_vec()), ErrorCode::NOT_FOUND, "send to a peer not connected");
    expect_err(a.t.send("not a peer id", b"x".to_vec()), ErrorCode::INVALID_ARGUMENT, "send to a malformed peer id");
    assert!(!b.rec.has(|e| e.kind == EventKind::MESSAGE), "a refused send delivered a message");
    check_all(&[&a, &b]);
}

/// The most the suite lets a transport accept for a stalled receiver before calling it unbounded.
const BACKPRESSURE_CEILING: usize = 256 << 20;

fn backpressure(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    a.connect(&b);
    b.rec.stall(true);
    let (done_tx, done_rx) = mpsc::channel();
    let mut blocked = false;
    let accepted = std::thread::scope(|s| {
        let (a, b_id) = (&a, &b.id);
        let sender = s.spawn(move || {
            net::mark_suite_thread();
            let mut n = 0u32;
            loop {
                let started = Instant::now();
                let r = a.t.send(b_id, numbered(n, 1024));
                let _ = done_tx.send(started.elapsed());
                match r {
                    Ok(()) => n += 1,
                    Err(e) if e.code() == ErrorCode::LIMIT => return Ok(n),
                    Err(e) => return Err(format!("send {n} to a stalled receiver: expected Ok or LIMIT, got {e}")),
                }
                if n as usize * 1028 > BACKPRESSURE_CEILING {
                    return Err(format!(
                        "{n} messages (1 KiB) accepted for a stalled receiver, no LIMIT: queues must be bounded"
                    ));
                }
            }
        });
        // Every send must come back; one that does not within WAIT is waiting for the network.
        loop {
            match done_rx.recv_timeout(WAIT) {
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    blocked = true;
                    b.rec.stall(false);
                    break;
                }
            }
        }
        sender.join().unwrap_or_else(|_| Err("the sending thread panicked".into()))
    });
    b.rec.stall(false);
    assert!(!blocked, "send blocked for {} s while the receiver was stalled: send must not wait", WAIT.as_secs());
    let accepted = accepted.unwrap_or_else(|e| panic!("{e}"));
    eprintln!("transport compliance on {listen}: {accepted} messages of 1 KiB queued for a stalled receiver");
    for i in 0..accepted {
        let (_, bytes) = b.next_message(&a, &format!("queued message {i} of {accepted} after the receiver resumed"));
        assert_eq!(bytes, numbered(i, 1024), "queued message {i} arrives in order, unchanged");
    }
    a.send_retrying(&b.id, b"after");
    assert_eq!(b.next_message(&a, "a message after the queue drained").1, b"after");
    check_all(&[&a, &b]);
}

fn refusing_sink(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    a.connect(&b);
    b.rec.refuse(true);
    for i in 0..100u32 {
        a.send_retrying(&b.id, &numbered(i, 16));
    }
    net::wait_until("the receiver's sink has refused 100 messages", || b.rec.refused_messages() >= 100);
    b.rec.refuse(false);
    a.send_retrying(&b.id, b"after");
    let (_, got) = b.next_message(&a, "a message once the sink accepts again");
    assert_eq!(got, b"after", "refused events are dropped, not delivered later");
    b.send_retrying(&a.id, b"back");
    assert_eq!(a.next_message(&b, "a message from the refusing side").1, b"back");
    check_all(&[&a, &b]);
}

fn shutdown(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    let c = node(factory, listen);
    a.connect(&b);
    c.connect(&b);
    a.t.shutdown();
    b.rec.wait("DISCONNECTED at the other side of a shut-down transport", WAIT, |e| {
        e.kind == EventKind::DISCONNECTED && e.peer == a.id
    });
    net::wait_until("connected_peers drops the shut-down peer", || !b.t.connected_peers().contains(&a.id));
    a.t.shutdown();
    expect_err(a.t.send(&b.id, b"x".to_vec()), ErrorCode::CLOSED, "send after shutdown");
    expect_err(a.t.dial(&b.addr), ErrorCode::CLOSED, "dial after shutdown");
    expect_err(a.t.listen(listen), ErrorCode::CLOSED, "listen after shutdown");
    assert!(a.t.connected_peers().is_empty(), "connected_peers after shutdown: {:?}", a.t.connected_peers());
    assert!(a.t.listen_addrs().is_empty(), "listen_addrs after shutdown: {:?}", a.t.listen_addrs());
    // The others carry on.
    b.t.send(&c.id, b"still here".to_vec()).unwrap_or_else(|e| panic!("send between the others: {e}"));
    assert_eq!(c.next_message(&b, "a message between the remaining peers").1, b"still here");
    check_all(&[&a, &b, &c]);
}

fn drop_closes(factory: Factory<'_>, listen: &str) {
    let b = node(factory, listen);
    let a = node(factory, listen);
    a.connect(&b);
    a.check();
    let (a_id, a_addr) = (a.id.clone(), a.addr.clone());
    // Dropped without a shutdown call (`Node`'s own drop would call it).
    drop(a.into_transport());
    b.rec.wait("DISCONNECTED after the other transport was dropped", WAIT, |e| {
        e.kind == EventKind::DISCONNECTED && e.peer == a_id
    });
    b.t.dial(&a_addr).unwrap_or_else(|e| panic!("dial {a_addr}: {e}"));
    b.rec.wait(&format!("DIAL_FAILED for {a_addr}: the transport there was dropped"), WAIT, |e| {
        e.kind == EventKind::DIAL_FAILED
    });
    check_all(&[&b]);
}
