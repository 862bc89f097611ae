//! Limits set in the config: message size at both ends, the per-peer queue, all queues together.

use std::net::TcpListener;

use weft_abi::ErrorCode;
use weft_abi::dht::Dht as _;
use weft_abi::transport::{EventKind, Transport as _};

use super::{Peer, TCP};

#[test]
fn oversized_messages_are_refused_at_the_sender() {
    let a = Peer::new("max_message_size = 1024", TCP);
    let b = Peer::new("", TCP);
    a.connect(&b);
    let e = a.t.send(&b.id, vec![0; 1025]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::LIMIT);
    assert!(e.message().contains("1025") && e.message().contains("max_message_size"), "{e}");
    a.t.send(&b.id, vec![9; 1024]).unwrap();
    assert_eq!(b.message_from(&a), vec![9; 1024]);
}

#[test]
fn a_receiver_never_accepts_more_than_its_own_limit() {
    let a = Peer::new("", TCP);
    let b = Peer::new("max_message_size = 1000", TCP);
    a.connect(&b);
    a.t.send(&b.id, vec![1; 5000]).unwrap(); // fine for a, too large for b
    a.t.send(&b.id, b"small".to_vec()).unwrap();
    assert_eq!(b.message_from(&a), b"small", "the oversized message was dropped, the next one arrived");
    assert!(!b.events.has(|e| e.kind == EventKind::MESSAGE), "nothing else arrived");
    // The connection survived the refused stream.
    assert!(b.t.connected_peers().contains(&a.id));
    b.t.send(&a.id, b"still connected".to_vec()).unwrap();
    assert_eq!(a.message_from(&b), b"still connected");
}

#[test]
fn max_connections_is_enforced() {
    let b = Peer::new("max_connections = 1", TCP);
    let a = Peer::new("", TCP);
    let c = Peer::new("", TCP);
    a.connect(&b);
    c.t.dial(&b.addr).unwrap();
    // c may see the handshake finish before b drops the connection, or the dial fail outright.
    c.events.wait("the refused connection to end", |e| {
        e.kind == EventKind::DISCONNECTED || e.kind == EventKind::DIAL_FAILED
    });
    assert!(!b.events.has(|e| e.kind == EventKind::CONNECTED && e.peer == c.id), "b accepted a second peer");
    assert_eq!(b.t.connected_peers(), vec![a.id.clone()]);
    // The first peer is unaffected.
    a.t.send(&b.id, b"still fine".to_vec()).unwrap();
    assert_eq!(b.message_from(&a), b"still fine");
}

#[test]
fn a_full_queue_is_a_limit_error() {
    // A peer whose address accepts TCP connections and never answers: messages stay queued.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let a = Peer::new("queue_len = 3", TCP);
    let silent = weft_abi::peer_id::peer_id_from_secret(&super::seed()); // no node has it
    a.dht.add_address(&silent, &format!("/ip4/127.0.0.1/tcp/{port}")).unwrap();
    for i in 0..3u8 {
        a.t.send(&silent, vec![i]).unwrap_or_else(|e| panic!("message {i}: {e}"));
    }
    let e = a.t.send(&silent, vec![3]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::LIMIT, "{e}");
    assert!(e.message().contains("queue") && e.message().contains("queue_len"), "{e}");
    drop(hole);
}

#[test]
fn queue_bytes_total_bounds_the_queues_of_all_peers_together() {
    // Two peers whose addresses accept TCP connections and never answer: messages stay queued,
    // each peer's queue is far from its own bounds, the node's total is not.
    let holes = [TcpListener::bind("127.0.0.1:0").unwrap(), TcpListener::bind("127.0.0.1:0").unwrap()];
    let a = Peer::new("queue_bytes_total = 1000", TCP);
    let silent: Vec<String> = holes
        .iter()
        .map(|hole| {
            let id = weft_abi::peer_id::peer_id_from_secret(&super::seed());
            a.dht.add_address(&id, &format!("/ip4/127.0.0.1/tcp/{}", hole.local_addr().unwrap().port())).unwrap();
            id
        })
        .collect();
    a.t.send(&silent[0], vec![0; 600]).unwrap();
    a.t.send(&silent[1], vec![1; 400]).unwrap();
    for (peer, size) in [(&silent[1], 1), (&silent[0], 1)] {
        let e = a.t.send(peer, vec![2; size]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::LIMIT, "{e}");
        assert!(e.message().contains("queue_bytes_total") && e.message().contains("1000 bytes"), "{e}");
    }
    drop(holes);
}
