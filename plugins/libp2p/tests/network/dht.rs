//! Kademlia through the plugin: lookups via a common neighbour, client mode, shared nodes.

use std::time::Duration;

use weft_abi::ErrorCode;
use weft_abi::dht::Dht as _;
use weft_abi::transport::{EventKind, Transport as _};

use super::{Peer, TCP, eventually};

const LOOKUP: Duration = Duration::from_secs(5);

#[test]
fn a_finds_c_through_b() {
    let a = Peer::new("", TCP);
    let b = Peer::new("", TCP);
    let c = Peer::new("", TCP);
    assert_eq!(a.dht.bootstrap().unwrap_err().code(), ErrorCode::NOT_FOUND);
    a.dht.add_address(&b.id, &b.addr).unwrap();
    a.dht.bootstrap().unwrap();
    c.dht.add_address(&b.id, &format!("{}/p2p/{}", b.addr, b.id)).unwrap();
    c.dht.bootstrap().unwrap();
    let found = eventually("A finds C", || a.dht.find_peer(&c.id, LOOKUP).ok());
    assert!(found.contains(&c.addr), "{found:?} lacks {}", c.addr);
    a.t.dial(&found[0]).unwrap();
    a.events.wait("CONNECTED to C", |e| e.kind == EventKind::CONNECTED && e.peer == c.id);
    a.t.send(&c.id, b"found you".to_vec()).unwrap();
    assert_eq!(c.message_from(&a), b"found you");
    // neighborhood: the two others, closest first
    let near = eventually("A's neighborhood holds B and C", || {
        a.dht.neighborhood(b"some key", 5, LOOKUP).ok().filter(|n| n.len() == 2)
    });
    assert!(near.contains(&b.id) && near.contains(&c.id) && !near.contains(&a.id), "{near:?}");
    assert_eq!(a.dht.neighborhood(b"some key", 0, LOOKUP).unwrap(), Vec::<String>::new());
}

#[test]
fn a_client_uses_the_dht_without_serving_it() {
    let b = Peer::new("", TCP);
    let c = Peer::new("", TCP);
    let app = Peer::new("mode = \"client\"", "");
    c.dht.add_address(&b.id, &b.addr).unwrap();
    c.dht.bootstrap().unwrap();
    app.dht.add_address(&b.id, &b.addr).unwrap();
    app.dht.bootstrap().unwrap();
    // The client finds servers through its relay...
    let found = eventually("the client finds C", || app.dht.find_peer(&c.id, LOOKUP).ok());
    assert!(found.contains(&c.addr), "{found:?}");
    // ...and the servers never count it as a DHT peer.
    let near = eventually("B's neighborhood holds C", || {
        b.dht.neighborhood(app.id.as_bytes(), 20, LOOKUP).ok().filter(|n| n.contains(&c.id))
    });
    assert!(!near.contains(&app.id), "a client showed up in the DHT: {near:?}");
    // It still receives particles over its connection to B.
    assert!(b.t.connected_peers().contains(&app.id));
    b.t.send(&app.id, b"result".to_vec()).unwrap();
    assert_eq!(app.message_from(&b), b"result");
}

#[test]
fn transport_and_dht_of_one_identity_share_the_node() {
    let b = Peer::new("", TCP);
    let a = Peer::new("", TCP);
    // Only a's transport dials; b's dht learns a's listen address from that connection (identify).
    a.connect(&b);
    let addrs =
        eventually("b's dht knows a's address", || b.dht.find_peer(&a.id, LOOKUP).ok().filter(|v| v.contains(&a.addr)));
    assert!(addrs.iter().all(|x| !x.contains("/p2p/")), "{addrs:?}");
    // ...and b's transport can send to a peer its dht was told about.
    let c = Peer::new("", TCP);
    b.dht.add_address(&c.id, &c.addr).unwrap();
    b.t.send(&c.id, b"dialled on demand".to_vec()).unwrap();
    assert_eq!(c.message_from(&b), b"dialled on demand");
}
