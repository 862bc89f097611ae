//! Peers found through the DHT: a particle to a peer the sender has no connection to, and 50
//! nodes that all find each other.

use serde_json::json;
use weft_abi::dht::Dht as _;

use super::{Net, Transport, on_both, q, run};

on_both!(a_peer_reached_only_through_a_kademlia_lookup);

/// A and C know only B. The client's script goes A → C → A: A has no connection to C and finds
/// it through the DHT, then dials it.
fn a_peer_reached_only_through_a_kademlia_lookup(t: Transport) {
    // node 0 = B, node 1 = A, node 2 = C; A and C bootstrap from B. libp2p's Kademlia dials the
    // peers its lookups meet (A's bootstrap may meet C): connections nothing uses close after
    // 300 ms here, so the test waits until A has none to C.
    if t == Transport::Tcp {
        super::LIBP2P_CONFIG.with(|c| *c.borrow_mut() = Some("idle_connection_timeout_ms = 300".into()));
    }
    let mut net = Net::start(t, 2, |_| vec![0]);
    net.add(&[0]);
    super::LIBP2P_CONFIG.with(|c| *c.borrow_mut() = None);
    let (a, c) = (net.id(1), net.id(2));
    super::wait_until("A has no connection to C", || !net.node(1).core().is_connected(&c));
    let client = net.client(1);
    let script = format!(
        r#"(seq
  (call {a} ("op" "noop") [])
  (seq
    (call {c} ("peer" "identify") [] info)
    (seq
      (call {a} ("op" "noop") [])
      (call %init_peer_id% ("return" "") [info.$.peer_id]))))"#,
        a = q(&a),
        c = q(&c)
    );
    assert_eq!(run(&client, &script).value, json!(c));
    assert!(net.node(1).core().is_connected(&c), "A connected to C after the lookup");
    // kad.neighborhood answers from the DHT too
    let script = format!(
        r#"(seq (call {a} ("kad" "neighborhood") [{a}] peers) (call %init_peer_id% ("return" "") [peers]))"#,
        a = q(&a)
    );
    let peers = run(&client, &script).value;
    assert!(peers.as_array().is_some_and(|p| !p.is_empty()), "{peers}");
}

/// 50 nodes on the memory transport, each bootstrapped from one earlier node: every node finds
/// every other through the DHT, and a particle visits all 50 in a shuffled order (each hop a
/// lookup and a dial where no connection exists).
#[test]
fn fifty_nodes_all_reach_each_other_through_the_dht() {
    let n = 50;
    let net = Net::start_with(Transport::Memory, n, |i| vec![(i * 7919) % i], |_, c| c.workers = Some(1));
    let ids: Vec<String> = (0..n).map(|i| net.id(i)).collect();
    // every node bootstraps again now that all are up (as nodes do periodically)
    for i in 0..n {
        net.node(i).core().dht().expect("memory has a dht").bootstrap().expect("bootstrap");
    }
    let mut missing = Vec::new();
    for i in 0..n {
        let dht = net.node(i).core().dht().unwrap();
        for (j, id) in ids.iter().enumerate() {
            if i != j && dht.find_peer(id, std::time::Duration::from_secs(10)).map_or(true, |a| a.is_empty()) {
                missing.push((i, j));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} lookups failed: {:?}",
        missing.len(),
        n * (n - 1),
        &missing[..missing.len().min(10)]
    );

    // one particle through all of them, in a shuffled order, then back to the client's relay
    let mut order: Vec<usize> = (1..n).collect();
    let mut x: usize = 12345;
    for k in (1..order.len()).rev() {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        order.swap(k, (x >> 33) % (k + 1));
    }
    let mut script = format!("(call %init_peer_id% (\"return\" \"\") [\"toured {} nodes\"])", n);
    script = format!("(seq (call {} (\"op\" \"noop\") []) {script})", q(&ids[0]));
    for &i in order.iter().rev() {
        script = format!("(seq (call {} (\"op\" \"noop\") []) {script})", q(&ids[i]));
    }
    script = format!("(seq (call {} (\"op\" \"noop\") []) {script})", q(&ids[0]));
    let client = net.client(0);
    assert_eq!(run(&client, &script).value, json!(format!("toured {n} nodes")));
}
