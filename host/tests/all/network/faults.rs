//! What a remote peer sends that a node must drop: expired, forged, duplicate, oversized and
//! malformed particles, and particles beyond its limits. Each is counted, and the node goes on.

use serde_json::json;
use weft_host::identity::Identity;
use weft_host::node::{Stats, now_ms};
use weft_host::particle::Particle;

use super::{Net, Transport, on_both, q, run, wait_until};

on_both!(
    bad_particles_are_dropped_and_counted,
    limits_on_particles_in_flight_are_enforced,
    idle_particles_sleep_and_wake_with_their_data,
    dormant_data_beyond_its_budget_is_dropped_first_to_expire_first,
    a_full_actor_queue_drops_and_counts,
    max_seen_bounds_the_duplicate_memory,
    a_full_event_queue_drops_and_counts,
    max_concurrent_calls_serialises_calls,
    max_linked_services_comes_from_the_node_limits,
);

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
    let net = Net::start_with(
        t,
        1,
        |_| vec![],
        |_, c| {
            c.limits.max_particles_per_peer = 3;
            c.limits.max_particles = 5;
            // the stuck particles keep their actors for the whole test
            c.limits.actor_idle_ms = 60_000;
        },
    );
    let relay = net.id(0);
    // a script that never finishes on the node: it waits for a peer that never answers
    let stuck = format!("(call {} (\"op\" \"noop\") [])", q(Identity::generate().unwrap().peer_id()));
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

/// A par join on the relay where one branch is slower than the relay's idle time: the relay's
/// actor goes dormant after the fast branch and wakes, with its data, when the slow one returns.
fn idle_particles_sleep_and_wake_with_their_data(t: Transport) {
    let net = Net::start_with(
        t,
        3,
        |_| vec![0],
        |i, c| {
            if i == 0 {
                c.limits.actor_idle_ms = 100;
            }
        },
    );
    let client = net.client(0);
    let (r, b, c) = (q(&net.id(0)), q(&net.id(1)), q(&net.id(2)));
    let back = format!(r#"(seq (call {r} ("op" "noop") []) (call %init_peer_id% ("op" "noop") []))"#);
    let script = format!(
        r#"(seq
  (call {r} ("op" "noop") [])
  (seq
    (par
      (seq (call {b} ("peer" "timeout") [1500 "slow"] x) {back})
      (seq (call {c} ("op" "identity") ["fast"] y) {back}))
    (call %init_peer_id% ("return" "") [x y])))"#
    );
    assert_eq!(run(&client, &script).value, json!(["slow", "fast"]));
    let s = net.node(0).stats();
    assert!(s.woken >= 1, "the relay's actor slept and woke: {s:?}");
    assert_eq!(s.dormant_evicted, 0, "{s:?}");
}

/// With room for almost nothing, each idle particle's data pushes out the one that expires first.
fn dormant_data_beyond_its_budget_is_dropped_first_to_expire_first(t: Transport) {
    let net = Net::start_with(
        t,
        1,
        |_| vec![],
        |_, c| {
            c.limits.actor_idle_ms = 20;
            c.limits.max_dormant_bytes = 1;
        },
    );
    let client = net.client(0);
    let relay = net.id(0);
    for _ in 0..3 {
        assert_eq!(run(&client, &echo_script(&relay)).value, json!("pong"));
    }
    wait_stat(&net, "two dormant particles are evicted", |s| s.dormant_evicted >= 2 && s.particles == 0);
    assert!(net.node(0).stats().dormant <= 1);
}

/// One particle id flooded with more messages than its actor's queue holds while the actor is
/// busy: the surplus is dropped and counted.
fn a_full_actor_queue_drops_and_counts(t: Transport) {
    let net = Net::start_with(t, 1, |_| vec![], |_, c| c.limits.actor_queue = 1);
    let me = Identity::generate().unwrap();
    let client = net.client_with(0, me.clone());
    let relay = net.id(0);
    // a script whose first run on the relay takes a while: a fold over a long array
    let p = Particle::new(&me, echo_script(&relay), now_ms(), 20_000).unwrap();
    for i in 0..200u32 {
        // same particle, different (junk) data each time: not duplicates, all for one actor
        let mut copy = p.clone();
        copy.data = i.to_le_bytes().to_vec();
        client.core().transport().send(&relay, copy.encode()).unwrap();
    }
    wait_stat(&net, "some copies are dropped at the actor's queue", |s| s.dropped_limit > 0 && s.accepted >= 1);
}

/// With room for one hash, a copy sent after another message is not recognised any more (and the
/// actor takes it as a re-arrival); with the default it is dropped.
fn max_seen_bounds_the_duplicate_memory(t: Transport) {
    for (max_seen, duplicates) in [(1, 0), (100_000, 1)] {
        let net = Net::start_with(t, 1, |_| vec![], |_, c| c.limits.max_seen = max_seen);
        let me = Identity::generate().unwrap();
        let client = net.client_with(0, me.clone());
        let relay = net.id(0);
        let a = Particle::new(&me, echo_script(&relay), now_ms(), 20_000).unwrap().encode();
        let b = Particle::new(&me, echo_script(&relay), now_ms(), 20_000).unwrap().encode();
        for bytes in [a.clone(), b, a] {
            client.core().transport().send(&relay, bytes).unwrap();
        }
        wait_stat(&net, "all three are handled", |s| s.accepted + s.dropped_duplicate == 3);
        assert_eq!(net.node(0).stats().dropped_duplicate, duplicates, "max_seen = {max_seen}");
    }
}

/// A flood of particles into an event queue of one: the transport's sink refuses what does not
/// fit, the node counts it and goes on.
fn a_full_event_queue_drops_and_counts(t: Transport) {
    let net = Net::start_with(t, 1, |_| vec![], |_, c| c.limits.event_queue = 1);
    let me = Identity::generate().unwrap();
    let client = net.client_with(0, me.clone());
    let relay = net.id(0);
    let flood: Vec<Vec<u8>> =
        (0..2000).map(|_| Particle::new(&me, echo_script(&relay), now_ms(), 20_000).unwrap().encode()).collect();
    for bytes in flood {
        let _ = client.core().transport().send(&relay, bytes);
    }
    wait_stat(&net, "events are dropped", |s| s.events_dropped > 0);
    // the node still answers (the client's reply may need a retry while the flood drains)
    wait_until("the node answers again", || {
        client.run(&echo_script(&relay), serde_json::Map::new(), std::time::Duration::from_secs(2)).is_ok()
    });
}

/// Two half-second timeouts in parallel take a second with one call at a time.
fn max_concurrent_calls_serialises_calls(t: Transport) {
    let net = Net::start_with(t, 1, |_| vec![], |_, c| c.limits.max_concurrent_calls = 1);
    let client = net.client(0);
    let r = q(&net.id(0));
    let script = format!(
        r#"(seq
  (par
    (seq (call {r} ("peer" "timeout") [500 "a"] a) (call %init_peer_id% ("op" "noop") []))
    (seq (call {r} ("peer" "timeout") [500 "b"] b) (call %init_peer_id% ("op" "noop") [])))
  (call %init_peer_id% ("return" "") [a b]))"#
    );
    let run = run(&client, &script);
    assert_eq!(run.value, json!(["a", "b"]));
    // a lower bound only: the second call could not start before the first ended
    assert!(run.elapsed >= std::time::Duration::from_millis(1000), "{:?}", run.elapsed);
}

/// `[node.limits] max_linked_services` is the bound the node's services keep (what happens at
/// the bound: `services::the_least_recently_used_service_is_unlinked_beyond_the_maximum`).
fn max_linked_services_comes_from_the_node_limits(t: Transport) {
    let net = Net::start_with(t, 1, |_| vec![], |_, c| c.limits.max_linked_services = 3);
    assert_eq!(net.node(0).services().max_linked(), 3);
    let default = Net::start(t, 1, |_| vec![]);
    assert_eq!(default.node(0).services().max_linked(), weft_host::services::MAX_LINKED);
}
