//! The dht compliance suite: what the host relies on from every DHT (the contract written down on
//! [`Dht`]), run on nodes made of a transport and the DHT that shares its network stack.
//!
//! ```ignore
//! weft_abi::compliance::dht::run(
//!     &|identity, sink| {
//!         (MyPlugin::transport("", identity, sink).unwrap(), MyPlugin::dht("", identity).unwrap())
//!     },
//!     "/memory/0",
//! );
//! ```
//!
//! A DHT may learn of peers a moment after they joined, so lookups that must succeed are retried
//! until they do, for at most 30 s each; what the suite demands is the final answer.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::net::{self, Node, Recorder, WAIT, check_all, expect_err, fresh_identity, stranger, strip_p2p};
use crate::dht::Dht;
use crate::error::{ErrorCode, Result};
use crate::transport::{Sink, Transport};

/// One node under test: a transport and the dht that shares its network stack (same identity).
pub type Factory<'a> = &'a (dyn Fn(&[u8; 32], Sink) -> (Box<dyn Transport>, Box<dyn Dht>) + Sync);

type Case<'a> = net::Case<Factory<'a>>;

/// How long one lookup of the suite may take.
const LOOKUP: Duration = Duration::from_secs(5);

/// Runs the whole suite. `listen` is an address that lets each new transport pick a free slot/port
/// (`"/memory/0"`, `"/ip4/127.0.0.1/tcp/0"`). Panics on the first failing case, naming it.
pub fn run(factory: Factory<'_>, listen: &str) {
    let cases: &[Case<'_>] = &[
        ("bootstrap with no known peer is an error", bootstrap_alone),
        ("malformed peer ids and addresses are refused", bad_arguments),
        ("find_peer through a common neighbour, then dial and send", through_neighbour),
        ("a peer nobody knows is not found, within the timeout", unknown),
        ("neighborhood is the XOR-closest peers, closest first", neighborhood),
    ];
    net::run_cases("dht", cases, factory, listen);
}

fn node(factory: Factory<'_>, listen: &str) -> Node {
    let (rec, sink) = Recorder::new();
    let seed = fresh_identity();
    let (t, d) = factory(&seed, sink);
    Node::listening(t, Some(d), rec, listen)
}

/// `b` learns of `a` and joins through it.
fn join_through(b: &Node, a: &Node) {
    b.dht().add_address(&a.id, &a.addr).unwrap_or_else(|e| panic!("add_address({}, {}): {e}", a.id, a.addr));
    b.dht().bootstrap().unwrap_or_else(|e| panic!("bootstrap through one known peer: {e}"));
}

/// Calls `lookup` until it returns `Ok` for which `good` holds; panics after [`WAIT`] with the last
/// answer.
fn retry<T: std::fmt::Debug>(what: &str, mut lookup: impl FnMut() -> Result<T>, good: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let last = lookup();
        if let Ok(v) = &last
            && good(v)
        {
            return last.expect("checked");
        }
        assert!(Instant::now() < deadline, "{what}: still wrong after {} s; last answer: {last:?}", WAIT.as_secs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bootstrap_alone(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    match a.dht().bootstrap() {
        Ok(()) => panic!("bootstrap with no known peer returned Ok"),
        Err(e) => net::check_message(e.message(), "bootstrap with no known peer"),
    }
    check_all(&[&a]);
}

fn bad_arguments(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    let d = a.dht();
    expect_err(d.add_address("not a peer id", &b.addr), ErrorCode::INVALID_ARGUMENT, "add_address of a malformed id");
    expect_err(d.add_address(&b.id, "garbage"), ErrorCode::INVALID_ARGUMENT, "add_address of a malformed address");
    let other = format!("{}/p2p/{}", b.addr, stranger());
    expect_err(d.add_address(&b.id, &other), ErrorCode::INVALID_ARGUMENT, "add_address whose /p2p/ is another peer");
    expect_err(
        d.find_peer("not a peer id", Duration::from_secs(1)),
        ErrorCode::INVALID_ARGUMENT,
        "find_peer of a malformed id",
    );
    // The same address with the right /p2p/ suffix is fine.
    d.add_address(&b.id, &format!("{}/p2p/{}", b.addr, b.id)).unwrap_or_else(|e| panic!("add_address with /p2p/: {e}"));
    check_all(&[&a, &b]);
}

fn through_neighbour(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    let c = node(factory, listen);
    join_through(&a, &b);
    // C gives B's address in its /p2p/ form.
    c.dht().add_address(&b.id, &format!("{}/p2p/{}", b.addr, b.id)).unwrap_or_else(|e| panic!("add_address: {e}"));
    c.dht().bootstrap().unwrap_or_else(|e| panic!("bootstrap: {e}"));

    let known = retry("find_peer of the peer A was told about", || a.dht().find_peer(&b.id, LOOKUP), |v| !v.is_empty());
    assert!(known.iter().any(|x| strip_p2p(x) == b.addr), "find_peer(B) on A: {known:?} lacks {}", b.addr);

    let found = retry("find_peer(C) on A, which knows only B", || a.dht().find_peer(&c.id, LOOKUP), |v| !v.is_empty());
    for addr in &found {
        a.t.dial(addr).unwrap_or_else(|e| panic!("dial of the address find_peer returned ({addr}): {e}"));
    }
    a.expect_connected(&c);
    a.send_retrying(&c.id, b"found you");
    assert_eq!(c.next_message(&a, "the message from the peer that looked C up").1, b"found you");
    retry("find_peer(A) on C, which knows only B", || c.dht().find_peer(&a.id, LOOKUP), |v| !v.is_empty());
    check_all(&[&a, &b, &c]);
}

fn unknown(factory: Factory<'_>, listen: &str) {
    let a = node(factory, listen);
    let b = node(factory, listen);
    join_through(&a, &b);
    let timeout = Duration::from_secs(3);
    let started = Instant::now();
    let result = a.dht().find_peer(&stranger(), timeout);
    let took = started.elapsed();
    match result {
        Ok(addrs) => panic!("find_peer of a peer nobody knows returned {addrs:?}"),
        Err(e) => {
            assert!(
                e.code() == ErrorCode::NOT_FOUND || e.code() == ErrorCode::TIMEOUT,
                "find_peer of a peer nobody knows: expected NOT_FOUND or TIMEOUT, got {} ({e})",
                e.code()
            );
            net::check_message(e.message(), "find_peer of a peer nobody knows");
        }
    }
    assert!(took < timeout + WAIT, "find_peer with a 3 s timeout took {} s", took.as_secs());
    check_all(&[&a, &b]);
}

/// Kademlia's distance between a key and a peer id: sha256(key) XOR sha256(multihash bytes).
fn distance(key: &[u8], peer: &str) -> [u8; 32] {
    let bytes = crate::peer_id::base58_decode(peer).unwrap_or_else(|| panic!("{peer:?} is not base58"));
    let (k, p) = (Sha256::digest(key), Sha256::digest(bytes));
    std::array::from_fn(|i| k[i] ^ p[i])
}

fn neighborhood(factory: Factory<'_>, listen: &str) {
    const NODES: usize = 6;
    let hub = node(factory, listen);
    let mut nodes = vec![];
    for _ in 1..NODES {
        let n = node(factory, listen);
        join_through(&n, &hub);
        nodes.push(n);
    }
    nodes.insert(0, hub);
    let keys: [&[u8]; 3] = [b"weft", b"", &[0xff; 40]];
    for key in keys {
        for q in [&nodes[1], &nodes[NODES - 1], &nodes[0]] {
            let mut others: Vec<&str> = nodes.iter().filter(|n| n.id != q.id).map(|n| n.id.as_str()).collect();
            others.sort_by_key(|id| distance(key, id));
            for count in [1, 3, 20] {
                let expected: Vec<String> = others.iter().take(count).map(|s| (*s).to_owned()).collect();
                let what = format!("neighborhood({key:?}, {count}) on {} (expected {expected:?})", q.id);
                retry(&what, || q.dht().neighborhood(key, count, LOOKUP), |got| *got == expected);
            }
        }
    }
    check_all(&nodes.iter().collect::<Vec<_>>());
}
