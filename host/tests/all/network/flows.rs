//! Particles through several peers, in sequence and in parallel, with fallbacks and services.

use serde_json::{Map, json};

use super::{Net, Transport, examples, on_both, q, run, run_with};
use weft_host::deploy;

on_both!(
    through_three_peers_and_back,
    par_fan_out_to_four_peers_joined_at_the_client,
    xor_falls_back_when_a_peer_is_down,
    deploy_call_remove_through_particles
);

/// client → A → B → C → B → A → client, each hop over a connection the bootstrap made.
fn through_three_peers_and_back(t: Transport) {
    let net = Net::start(t, 3, |i| vec![i - 1]);
    let client = net.client(0);
    let (a, b, c) = (q(&net.id(0)), q(&net.id(1)), q(&net.id(2)));
    let script = format!(
        r#"(seq
  (call {a} ("op" "identity") ["a"] x)
  (seq
    (call {b} ("op" "identity") ["b"] y)
    (seq
      (call {c} ("peer" "identify") [] info)
      (seq
        (call {b} ("op" "noop") [])
        (seq
          (call {a} ("op" "array") [x y info.$.peer_id] all)
          (call %init_peer_id% ("return" "") [all]))))))"#
    );
    let r = run(&client, &script);
    assert_eq!(r.value, json!(["a", "b", net.id(2)]));
    // every node ran the particle at least once and sent it on
    for i in 0..3 {
        let s = net.node(i).stats();
        assert!(s.accepted >= 1 && s.sent >= 1, "node {i}: {s:?}");
    }
    // and a second particle takes the same path
    assert_eq!(run(&client, &script).value, json!(["a", "b", net.id(2)]));
}

/// The relay fans out to four peers at once; each answers with its id; the relay joins them
/// and the client gets all four.
fn par_fan_out_to_four_peers_joined_at_the_client(t: Transport) {
    let net = Net::start(t, 5, |_| vec![0]);
    let client = net.client(0);
    let r = q(&net.id(0));
    // each branch comes back through the relay to the client: `par` is complete as soon as one
    // branch is (AIR semantics), so the join happens where the values are awaited, at the client
    let branch = |i: usize| {
        format!(
            "(seq (call {} (\"peer\" \"identify\") [] i{i}) (seq (call {r} (\"op\" \"noop\") []) (call %init_peer_id% (\"op\" \"noop\") [])))",
            q(&net.id(i))
        )
    };
    let script = format!(
        r#"(seq
  (call {r} ("op" "noop") [])
  (seq
    (par {} (par {} (par {} {})))
    (call %init_peer_id% ("return" "") [i1.$.peer_id i2.$.peer_id i3.$.peer_id i4.$.peer_id])))"#,
        branch(1),
        branch(2),
        branch(3),
        branch(4)
    );
    let got = run(&client, &script);
    assert_eq!(got.value, json!([net.id(1), net.id(2), net.id(3), net.id(4)]));
    // the four branches ran in parallel: the relay sent the particle to each of the four
    assert!(net.node(0).stats().sent >= 5, "{:?}", net.node(0).stats());
}

/// B is down: the relay cannot connect to it, the `match` on `peer.connect` fails, and `xor`
/// takes the fallback on C. A node never fails a call by itself because a peer is unreachable
/// (see docs/network.md): a script asks `peer.connect` (or races `peer.timeout`).
fn xor_falls_back_when_a_peer_is_down(t: Transport) {
    let mut net = Net::start(t, 3, |_| vec![0]);
    let b = net.id(1);
    net.stop(1);
    super::wait_until("the relay sees B gone", || !net.node(0).core().is_connected(&b));
    let client = net.client(0);
    let (r, b, c) = (q(&net.id(0)), q(&b), q(&net.id(2)));
    let script = format!(
        r#"(seq
  (call {r} ("op" "noop") [])
  (seq
    (xor
      (seq
        (call {r} ("peer" "connect") [{b}] ok)
        (seq
          (match ok true (null))
          (seq (call {b} ("op" "identity") ["from B"] x) (call {r} ("op" "noop") []))))
      (seq (call {c} ("op" "identity") ["fallback on C"] x) (call {r} ("op" "noop") [])))
    (call %init_peer_id% ("return" "") [x])))"#
    );
    assert_eq!(run(&client, &script).value, json!("fallback on C"));
}

/// A blueprint deployed through particles, its service called through a particle, then removed
/// by its owner (and not by anyone else).
fn deploy_call_remove_through_particles(t: Transport) {
    let net = Net::start(t, 2, |_| vec![0]);
    let client = net.client(0);
    let target = net.id(1);
    let plan = deploy::plan_blueprint(
        &examples().join("blueprints/greeting.toml"),
        Some("hello".into()),
        vec![target.clone()],
    )
    .expect("the blueprint reads");
    let done = deploy::deploy(&client, &[plan], super::TTL).expect("deploys");
    assert_eq!(done.len(), 1);
    let service = done[0].service_id.clone();
    assert_eq!(service.len(), 32, "{done:?}");
    // stored on the target with the client as owner
    let record = net.node(1).services().record(&service).unwrap();
    assert_eq!(record.owner, client.peer_id());
    assert_eq!(record.aliases, vec!["hello".to_owned()]);

    let (r, p) = (q(&net.id(0)), q(&target));
    let call = |service: &str| {
        format!(
            r#"(seq (call {r} ("op" "noop") [])
  (xor
    (seq (call {p} ({s} "greet") [name] greeting) (seq (call {r} ("op" "noop") []) (call %init_peer_id% ("return" "") [greeting])))
    (seq (call {r} ("op" "noop") []) (call %init_peer_id% ("errorHandlingSrv" "error") [%last_error%]))))"#,
            s = q(service)
        )
    };
    let mut data = Map::new();
    data.insert("name".into(), json!("Ann"));
    let script_by_alias = call("hello").replace("[name]", "[\"Ann\"]");
    assert_eq!(run(&client, &script_by_alias).value, json!("Hello, Ann!"));
    let script_by_id = format!("(seq (call %init_peer_id% (\"getDataSrv\" \"name\") [] name) {})", call(&service));
    assert_eq!(run_with(&client, &script_by_id, data).value, json!("Hello, Ann!"));

    // srv.list shows it; someone else may not remove it
    let list = format!(
        r#"(seq (call {r} ("op" "noop") []) (seq (call {p} ("srv" "list") [] l) (seq (call {r} ("op" "noop") []) (call %init_peer_id% ("return" "") [l]))))"#
    );
    let listed = run(&client, &list).value;
    assert!(listed.as_array().unwrap().iter().any(|s| s["id"] == json!(service)), "{listed}");
    let remove = format!(
        r#"(seq (call {r} ("op" "noop") [])
  (xor
    (seq (call {p} ("srv" "remove") [{s}]) (seq (call {r} ("op" "noop") []) (call %init_peer_id% ("return" "") ["removed"])))
    (seq (call {r} ("op" "noop") []) (call %init_peer_id% ("errorHandlingSrv" "error") [%last_error%]))))"#,
        s = q(&service)
    );
    let stranger = net.client(0);
    let e = stranger.run(&remove, Map::new(), super::TTL).unwrap_err().to_string();
    assert!(e.contains("only") || e.contains("owner"), "{e}");
    assert!(net.node(1).services().record(&service).is_ok(), "a stranger removed the service");
    assert_eq!(run(&client, &remove).value, json!("removed"));
    assert!(net.node(1).services().record(&service).is_err(), "the owner's remove did not happen");
    // calling it now fails with a clear error through errorHandlingSrv
    let e = client.run(&script_by_alias, Map::new(), super::TTL).unwrap_err().to_string();
    assert!(e.contains("hello"), "{e}");
}
