//! Transport behaviour specific to this plugin.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use weft_abi::ErrorCode;
use weft_abi::dht::Dht as _;
use weft_abi::peer_id::peer_id_from_secret;
use weft_abi::transport::{EventKind, Sink, Transport as _};
use weft_plugin_libp2p::Transport;

use super::{Peer, TCP, WS, seed};

#[test]
fn websocket_listen_and_dial() {
    let a = Peer::new("", WS);
    assert!(a.addr.starts_with("/ip4/127.0.0.1/tcp/") && a.addr.ends_with("/ws"), "{}", a.addr);
    assert!(!a.addr.contains("/tcp/0/"), "port not resolved: {}", a.addr);
    let b = Peer::new("", ""); // a client that does not listen, as a browser would be
    b.t.dial(&a.addr).unwrap();
    let e = b.events.wait("CONNECTED over ws", |e| e.kind == EventKind::CONNECTED && e.peer == a.id);
    assert_eq!(e.address, a.addr, "the dialer's CONNECTED carries the address dialled");
    a.events.wait("CONNECTED at the ws listener", |e| e.kind == EventKind::CONNECTED && e.peer == b.id);
    b.t.send(&a.id, b"over websocket".to_vec()).unwrap();
    assert_eq!(a.message_from(&b), b"over websocket");
    a.t.send(&b.id, b"and back".to_vec()).unwrap();
    assert_eq!(b.message_from(&a), b"and back");
}

#[test]
fn tcp_and_websocket_on_one_node() {
    let a = Peer::new("", TCP);
    a.t.listen(WS).unwrap();
    let ws = a.events.wait("the second LISTENING", |e| e.kind == EventKind::LISTENING).address;
    assert!(ws.ends_with("/ws"));
    let addrs = a.t.listen_addrs();
    assert!(addrs.contains(&a.addr) && addrs.contains(&ws), "{addrs:?}");
    let b = Peer::new("", TCP);
    b.t.dial(&format!("{ws}/p2p/{}", a.id)).unwrap();
    b.events.wait("CONNECTED over ws with /p2p/", |e| e.kind == EventKind::CONNECTED && e.peer == a.id);
    b.t.send(&a.id, vec![1, 2, 3]).unwrap();
    assert_eq!(a.message_from(&b), [1, 2, 3]);
}

#[test]
fn a_mebibyte_message() {
    let a = Peer::new("", TCP);
    let b = Peer::new("", TCP);
    a.connect(&b);
    let big: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    a.t.send(&b.id, big.clone()).unwrap();
    a.t.send(&b.id, b"after".to_vec()).unwrap();
    assert_eq!(b.message_from(&a), big);
    assert_eq!(b.message_from(&a), b"after");
}

#[test]
fn ping_events_carry_the_round_trip_time() {
    let a = Peer::new("ping_interval_ms = 200", TCP);
    let b = Peer::new("ping_interval_ms = 200", TCP);
    a.connect(&b);
    for _ in 0..2 {
        let e = a.events.wait("a PING naming the peer", |e| e.kind == EventKind::PING && e.peer == b.id);
        let rtt = u64::from_le_bytes(e.payload.as_slice().try_into().expect("8 bytes"));
        assert!(rtt > 0 && rtt < 30_000_000_000, "rtt {rtt} ns");
    }
    b.events.wait("a PING on the listening side too", |e| e.kind == EventKind::PING && e.peer == a.id);
}

#[test]
fn the_sink_may_call_back_into_the_plugin() {
    // B echoes every message from inside its sink.
    let a = Peer::new("", TCP);
    let b = Peer::new("", TCP);
    let t = Arc::downgrade(&b.t);
    b.events.set_hook(move |e| {
        if let (EventKind::MESSAGE, Some(t)) = (e.kind, t.upgrade()) {
            t.send(&e.peer, [b"echo: ".as_slice(), &e.payload].concat()).unwrap();
        }
    });
    a.connect(&b);
    for i in 0..20u8 {
        a.t.send(&b.id, vec![i]).unwrap();
    }
    for i in 0..20u8 {
        assert_eq!(a.message_from(&b), [b"echo: ".as_slice(), &[i]].concat());
    }
}

#[test]
fn shutdown_from_inside_the_sink() {
    let a = Peer::new("", TCP);
    let b = Peer::new("", TCP);
    let t = Arc::downgrade(&b.t);
    b.events.set_hook(move |e| {
        if let (EventKind::MESSAGE, Some(t)) = (e.kind, t.upgrade()) {
            t.shutdown();
        }
    });
    a.connect(&b);
    a.t.send(&b.id, b"stop".to_vec()).unwrap();
    a.events
        .wait("DISCONNECTED after b shut down in its sink", |e| e.kind == EventKind::DISCONNECTED && e.peer == b.id);
    assert_eq!(b.t.send(&a.id, vec![1]).unwrap_err().code(), ErrorCode::CLOSED);
}

#[test]
fn blocking_dht_calls_inside_the_sink_are_refused_not_deadlocked() {
    let a = Peer::new("", TCP);
    let seed_b = seed();
    let events = Arc::new(super::Events::default());
    let answers = Arc::new(Mutex::new(Vec::new()));
    {
        let dht = weft_plugin_libp2p::Dht::new("", &seed_b).unwrap();
        let answers = Arc::clone(&answers);
        events.set_hook(move |e| {
            if e.kind == EventKind::MESSAGE {
                let r = dht.find_peer("12D3KooWANqfCDrV79MZdMnMqTvDdqSAPSxdgFY1L6DCq2DVGB4D", Duration::from_secs(10));
                answers.lock().unwrap().push(r.map_err(|e| e.to_string()));
            }
        });
    }
    let b = Transport::new("", &seed_b, Sink::new(super::Feed(Arc::clone(&events)))).unwrap();
    b.listen(TCP).unwrap();
    let addr = events.wait("LISTENING", |e| e.kind == EventKind::LISTENING).address;
    a.t.dial(&addr).unwrap();
    let b_id = b.local_peer_id();
    a.events.wait("CONNECTED", |e| e.kind == EventKind::CONNECTED && e.peer == b_id);
    a.t.send(&b_id, b"x".to_vec()).unwrap();
    events.wait("the MESSAGE", |e| e.kind == EventKind::MESSAGE);
    let answers = answers.lock().unwrap();
    let err = answers[0].as_ref().unwrap_err();
    assert!(err.contains("inside the transport's event sink"), "{err}");
    b.shutdown();
}

#[test]
fn errors_carry_codes_and_one_line_messages() {
    let a = Peer::new("", TCP);
    let code = |r: weft_abi::Result<()>| r.unwrap_err().code();
    assert_eq!(code(a.t.dial("/memory/5")), ErrorCode::INVALID_ARGUMENT);
    assert_eq!(code(a.t.listen("/ip4/127.0.0.1/udp/0/quic-v1")), ErrorCode::INVALID_ARGUMENT);
    assert_eq!(code(a.t.dial(&format!("{}/p2p/{}", a.addr, a.id))), ErrorCode::INVALID_ARGUMENT);
    assert_eq!(code(a.t.send(&a.id, vec![1])), ErrorCode::INVALID_ARGUMENT);
    // A port taken by a's own listener, and one taken by another program.
    let e = a.t.listen(&a.addr).unwrap_err();
    assert_eq!(e.code(), ErrorCode::IO, "{e}");
    assert!(e.message().contains(&a.addr) && !e.message().contains('\n'), "{e}");
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = format!("/ip4/127.0.0.1/tcp/{}", other.local_addr().unwrap().port());
    assert_eq!(code(a.t.listen(&taken)), ErrorCode::IO);
    let b = Peer::new("", TCP);
    assert_eq!(code(b.t.listen(&a.addr)), ErrorCode::IO, "another node's port");
    a.t.shutdown();
    a.t.shutdown();
    assert_eq!(code(a.dht.bootstrap()), ErrorCode::CLOSED);
    assert_eq!(a.dht.find_peer(&a.id, Duration::from_secs(1)).map(|_| ()).map_err(|e| e.code()), Ok(()));
    assert_eq!(code(a.dht.add_address(&peer_id_from_secret(&seed()), "/ip4/127.0.0.1/tcp/1")), ErrorCode::CLOSED);
    assert_eq!(a.dht.neighborhood(b"k", 3, Duration::from_secs(1)).unwrap_err().code(), ErrorCode::CLOSED);
}

#[test]
fn one_transport_per_identity() {
    let s = seed();
    let first = Transport::new("", &s, Sink::new(super::Feed(Default::default()))).unwrap();
    let e = Transport::new("", &s, Sink::new(super::Feed(Default::default()))).unwrap_err();
    assert!(e.message().contains("already runs"), "{e}");
    first.shutdown();
    // After shutdown, the identity starts a new node.
    let again = Transport::new("", &s, Sink::new(super::Feed(Default::default()))).unwrap();
    again.listen(TCP).unwrap();
    again.shutdown();
}

#[test]
fn bad_config_is_refused_through_the_abi() {
    let plugin = weft_abi::Plugin::load(&super::built_plugin()).unwrap();
    assert!(plugin.provides(weft_abi::Kind::TRANSPORT) && plugin.provides(weft_abi::Kind::DHT));
    let sink = || Sink::new(super::Feed(Default::default()));
    for (config, key) in
        [("max_msg_size = 5", "max_msg_size"), (r#"{"queu_len": 4}"#, "queu_len"), ("mode = \"relay\"", "relay")]
    {
        let e = plugin.transport(config, &seed(), sink()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::INVALID_CONFIG, "{config}: {e}");
        assert!(e.message().contains(key) && !e.message().contains('\n'), "{config}: {e}");
        let e = plugin.dht(config, &seed()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::INVALID_CONFIG, "{config}: {e}");
        assert!(e.message().contains(key), "{config}: {e}");
    }
    let e = plugin.transport("", &[1, 2, 3], sink()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::INVALID_ARGUMENT, "{e}");
    // Good config, through the ABI too.
    let t = plugin.transport("queue_len = 8\nmode = \"client\"", &seed(), sink()).unwrap();
    t.shutdown().unwrap();
}
