//! What a remote peer sends that a node must drop: expired, forged, duplicate, oversized and
//! malformed particles, and particles beyond its limits. Each is counted, and the node goes on.

use serde_json::json;
use weft_host::identity::Identity;
use weft_host::node::{Stats, now_ms};
use weft_host::particle::Particle;

use super::{Net, Transport, on_both, q, run, wait_until};

on_both!(bad_particles_are_dropped_and_counted, limits_on_particles_in_flight_are_enforced);

fn echo_script(relay: &str) -> String {
    let r = q(relay);
    format!(r#"(seq (call {r} ("op" "identity") ["pong"] x) (call %init_peer_id% ("return" "") [x]))"#)
}

fn wait_stat(net: &Net, what: &str, f: impl Fn(&Stats) -> bool) {
    wait_until(what, || f(&net.node(0).stats()));
}

fn bad_particles_are_dropped_and_counted(t: Transport) {
    let net = Net::start_with(t, 1, |_| vec![], |_, c| c.limits.max_particle_size = 64 << 10);
    let me = Identity::generate().unwrap();
    let client = net.client_with(0, me.clone());
    let relay = net.id(0);
    let send = |bytes: Vec<u8>| client.core().transport().send(&relay, bytes).expect("the transport takes it");
    let fresh = || Particle::new(&me, echo_script(&relay), now_ms(), 20_000).unwrap();

    // expired: started a minute ago with a ttl of one second
    let mut p = Particle::new(&me, echo_script(&relay), now_ms() - 60_000, 1_000).unwrap();
    send(p.encode());
    wait_stat(&net, "the expired particle is dropped", |s| s.dropped_expired == 1);
    // from the future, and with a ttl above the node's limit
    p = Particle::new(&me, echo_script(&relay), now_ms() + 3_600_000, 1_000).unwrap();
    send(p.encode());
    p = Particle::new(&me, echo_script(&relay), now_ms(), u32::MAX).unwrap();
    send(p.encode());
    wait_stat(&net, "the future and the long-lived particle are dropped", |s| s.dropped_expired == 3);

    // forged: the script changed after signing; a signature by another key; a stranger's id
    let mut p = fresh();
    p.script = p.script.replace("pong", "forged");
    send(p.encode());
    let mut p = fresh();
    p.signature = Identity::generate().unwrap().sign(&p.signed_digest()).to_vec();
    send(p.encode());
    let mut p = fresh();
    p.init_peer_id = "not-a-peer".into();
    send(p.encode());
    wait_stat(&net, "the forged particles are dropped", |s| s.dropped_signature == 3);

    // malformed bytes and an unknown format
    send(b"\x01garbage that is not a particle".to_vec());
    send(vec![9, 1, 2, 3]);
    send(Vec::new());
    wait_stat(&net, "the malformed messages are dropped", |s| s.dropped_malformed == 3);

    // oversized: over the node's 64 KiB (the transport still carries it)
    let mut p = fresh();
    p.data = vec![7; 100 << 10];
    send(p.encode());
    wait_stat(&net, "the oversized particle is dropped", |s| s.dropped_oversized == 1);

    // a duplicate: the same bytes twice; the second is dropped, the first runs
    let p = fresh();
    let bytes = p.encode();
    send(bytes.clone());
    send(bytes);
    wait_stat(&net, "the duplicate is dropped", |s| s.dropped_duplicate == 1);
    let s = net.node(0).stats();
    assert_eq!(s.accepted, 1, "only the first copy was accepted: {s:?}");

    // none of it took the node down: a good particle still runs
    assert_eq!(run(&client, &echo_script(&relay)).value, json!("pong"));
    let s = net.node(0).stats();
    assert_eq!(s.dropped_limit, 0, "{s:?}");
}

/// A node keeps at most `max_particles_per_peer` particles of one init peer in flight (each
/// lives until its ttl), and `max_particles` in all.
fn limits_on_particles_in_flight_are_enforced(t: Transport) {
    let net = Net::start_with(t, 1, |_| vec![], |_, c| {
        c.limits.max_particles_per_peer = 3;
        c.limits.max_particles = 5;
    });
    let relay = net.id(0);
    // a script that never finishes on the node: it waits for a peer that never answers
    let stuck = format!("(call {} (\"op\" \"noop\") [])", q(&Identity::generate().unwrap().peer_id().to_owned()));
    let send_from = |me: &Identity, client: &weft_host::client::Client, n: usize| {
        for _ in 0..n {
            let p = Particle::new(me, stuck.clone(), now_ms(), 20_000).unwrap();
            client.core().transport().send(&relay, p.encode()).unwrap();
        }
    };
    let a = Identity::generate().unwrap();
    let ca = net.client_with(0, a.clone());
    send_from(&a, &ca, 4);
    wait_stat(&net, "the 4th particle of one peer is refused", |s| s.accepted == 3 && s.dropped_limit == 1);
    let b = Identity::generate().unwrap();
    let cb = net.client_with(0, b.clone());
    send_from(&b, &cb, 3);
    wait_stat(&net, "the 6th particle in flight is refused", |s| s.accepted == 5 && s.dropped_limit == 2);
    assert_eq!(net.node(0).stats().particles, 5);
}
