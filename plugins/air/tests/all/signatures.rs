//! Results are signed by the peer that produced them; forged or tampered results are refused.

use weft_plugin_air::data::{CallState, CanonState, Data, State};
use weft_plugin_air::{CallResults, run};

use crate::net::{Net, params, peer};

const AIR: &str =
    "(seq (call @B (\"s\" \"f\") [] x) (seq (seq (ap x $s) (canon @B $s #c)) (call @A (\"s\" \"g\") [x #c])))";

/// Runs until B has answered and sent its data to A; returns (net, B's data).
fn b_data() -> (Net, Vec<u8>) {
    let mut net = Net::new(AIR, &["A", "B"], "A");
    net.deliver(0); // A sends to B
    net.deliver(0); // B calls f, makes the canon, sends to A
    let data = net.queue[0].1.clone();
    (net, data)
}

fn tamper(bytes: &[u8], f: impl Fn(&mut State) -> bool) -> Vec<u8> {
    let mut d = Data::decode(bytes).unwrap();
    assert!(d.trace.iter_mut().any(f), "nothing to tamper with");
    d.encode()
}

#[test]
fn untouched_data_is_accepted() {
    let (mut net, _) = b_data();
    net.run_with(|_| 0);
    assert!(net.outcomes.iter().all(|(_, o)| o.ret_code == 0));
    assert!(net.executed.iter().any(|e| e.1 == "g"));
}

#[test]
fn tampered_service_result_is_refused() {
    let (net, data) = b_data();
    let forged = tamper(&data, |s| match s {
        State::Call(CallState::Executed { result, .. }) => {
            result.value = "\"forged\"".into();
            true
        }
        _ => false,
    });
    let a = net.peers["A"].clone();
    let prev = net.store["A"].clone();
    let out = run(&net.air, &prev, &forged, &params(&net.init, &a), &CallResults::new());
    assert_eq!(out.ret_code, 9, "{}", out.error_message);
    assert_eq!(out.data, prev);
    assert!(out.call_requests.is_empty() && out.next_peers.is_empty());
}

#[test]
fn result_signed_by_another_peer_is_refused() {
    let (net, data) = b_data();
    // C re-signs B's result with its own key: the signature must be B's
    let c = peer("C");
    let key = ed25519_dalek::SigningKey::from_bytes(&c.secret);
    let forged = tamper(&data, |s| match s {
        State::Call(CallState::Executed { result, .. }) => {
            result.signature = weft_plugin_air::data::sign(&key, &result.signed_digest("test-particle", false));
            true
        }
        _ => false,
    });
    let a = net.peers["A"].clone();
    let out = run(&net.air, &net.store["A"], &forged, &params(&net.init, &a), &CallResults::new());
    assert_eq!(out.ret_code, 9, "{}", out.error_message);
}

#[test]
fn tampered_canon_is_refused() {
    let (net, data) = b_data();
    let forged = tamper(&data, |s| match s {
        State::Canon(CanonState::Executed(c)) => {
            c.values.push(c.values[0].clone());
            true
        }
        _ => false,
    });
    let a = net.peers["A"].clone();
    let out = run(&net.air, &net.store["A"], &forged, &params(&net.init, &a), &CallResults::new());
    assert_eq!(out.ret_code, 9, "{}", out.error_message);
}

#[test]
fn signature_is_bound_to_the_particle() {
    let (net, data) = b_data();
    let a = net.peers["A"].clone();
    let mut p = params(&net.init, &a);
    p.particle_id = "another-particle".into();
    let out = run(&net.air, &[], &data, &p, &CallResults::new());
    assert_eq!(out.ret_code, 9, "{}", out.error_message);
}
