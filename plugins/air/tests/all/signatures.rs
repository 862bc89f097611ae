//! Results are signed by the peer that produced them (one attestation per peer and run over the
//! digests of its results); forged or tampered results and attestations are refused.

use weft_plugin_air::data::{Attestation, CallState, CanonState, Data, State};
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

fn tamper(bytes: &[u8], f: impl Fn(&mut State<'_>) -> bool) -> Vec<u8> {
    let mut d = Data::decode(bytes).unwrap();
    assert!(d.trace.iter_mut().any(f), "nothing to tamper with");
    d.encode()
}

fn tamper_data(bytes: &[u8], f: impl FnOnce(&mut Data<'_>)) -> Vec<u8> {
    let mut d = Data::decode(bytes).unwrap();
    f(&mut d);
    d.encode()
}

/// Runs A on B's (possibly forged) data and asserts the signature check refused it.
fn assert_refused(net: &Net, forged: &[u8]) {
    let a = net.peers["A"].clone();
    let prev = net.store["A"].clone();
    let out = run(&net.air, &prev, forged, &params(&net.init, &a), &CallResults::new());
    assert_eq!(out.ret_code, 9, "{}", out.error_message);
    assert_eq!(out.data, prev);
    assert!(out.call_requests.is_empty() && out.next_peers.is_empty());
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
    let c = peer("C");
    let key = ed25519_dalek::SigningKey::from_bytes(&c.secret);
    let b_id = net.peers["B"].id.clone();
    // C alters B's result and attests the forged digest with its own (valid) key: the result
    // names B, so only B's attestation counts
    let forged = tamper_data(&data, |d| {
        let State::Call(CallState::Executed { result, .. }) = &mut d.trace[0] else { panic!("B's call first") };
        result.value = "\"forged\"".into();
        let digest = result.digest(false);
        d.attestations.push(Attestation::sign(&key, "test-particle", &c.id, vec![digest]));
    });
    assert_refused(&net, &forged);
    // C alters B's result and re-signs B's attestation (digests updated) with C's key
    let forged = tamper_data(&data, |d| {
        let State::Call(CallState::Executed { result, .. }) = &mut d.trace[0] else { panic!("B's call first") };
        result.value = "\"forged\"".into();
        let digest = result.digest(false);
        let b = d.attestations.iter_mut().find(|a| *a.peer == *b_id).expect("B's attestation");
        b.digests.to_mut()[0] = digest;
        let resigned = Attestation::sign(&key, "test-particle", &b_id, b.digests.to_vec());
        *b = resigned;
    });
    assert_refused(&net, &forged);
}

#[test]
fn results_in_another_order_than_their_attestation_are_accepted() {
    // a peer's attestation usually lists its digests in trace order; the check does not rely
    // on it: B's two digests reversed, or split over two attestations of B in reverse order,
    // each signed by B, still cover B's results
    let (net, data) = b_data();
    let b = net.peers["B"].clone();
    let key = ed25519_dalek::SigningKey::from_bytes(&b.secret);
    let a = net.peers["A"].clone();
    let reversed = tamper_data(&data, |d| {
        let i = d.attestations.iter().position(|x| *x.peer == *b.id).expect("B's attestation");
        let mut digests = d.attestations[i].digests.to_vec();
        assert_eq!(digests.len(), 2);
        digests.reverse();
        d.attestations[i] = Attestation::sign(&key, "test-particle", &b.id, digests);
    });
    let split = tamper_data(&data, |d| {
        let i = d.attestations.iter().position(|x| *x.peer == *b.id).expect("B's attestation");
        let digests = d.attestations[i].digests.to_vec();
        d.attestations[i] = Attestation::sign(&key, "test-particle", &b.id, vec![digests[1]]);
        d.attestations.push(Attestation::sign(&key, "test-particle", &b.id, vec![digests[0]]));
    });
    for (what, data) in [("reversed", reversed), ("split", split)] {
        let out = run(&net.air, &net.store["A"], &data, &params(&net.init, &a), &CallResults::new());
        assert_eq!(out.ret_code, 0, "{what}: {}", out.error_message);
    }
    // and a forged second result is refused after an in-order first one
    let forged = tamper(&data, |s| match s {
        State::Canon(CanonState::Executed(c)) => {
            c.values[0].value = "\"forged\"".into();
            true
        }
        _ => false,
    });
    assert_refused(&net, &forged);
}

#[test]
fn tampered_attestation_is_refused() {
    let (net, data) = b_data();
    // an extra digest in B's attestation breaks its signature, even if it covers nothing
    let forged = tamper_data(&data, |d| d.attestations[0].digests.to_mut().push([7; 32]));
    assert_refused(&net, &forged);
    // a flipped signature byte
    let forged = tamper_data(&data, |d| d.attestations[0].signature[10] ^= 1);
    assert_refused(&net, &forged);
    // no attestation at all: B's results are not covered
    let forged = tamper_data(&data, |d| d.attestations.clear());
    assert_refused(&net, &forged);
}

#[test]
fn attestations_travel_and_are_replaced_by_their_peer() {
    let (mut net, _) = b_data();
    net.run_with(|_| 0);
    let a = net.peers["A"].id.clone();
    let b = net.peers["B"].id.clone();
    let d = Data::decode(&net.store["A"]).unwrap();
    // A holds B's attestation (covering B's service result and canon) and its own single one
    let peers: Vec<&str> = d.attestations.iter().map(|x| &*x.peer).collect();
    assert_eq!(peers.iter().filter(|p| **p == b).count(), 1, "{peers:?}");
    assert_eq!(peers.iter().filter(|p| **p == a).count(), 1, "{peers:?}");
    let own = d.attestations.iter().find(|x| *x.peer == *a).unwrap();
    own.verify("test-particle").unwrap();
    let b_att = d.attestations.iter().find(|x| *x.peer == *b).unwrap();
    assert_eq!(b_att.digests.len(), 2);
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

/// The digests this peer signs, computed afresh from the results in `data`'s trace.
fn own_digests(data: &Data<'_>, me: &str) -> Vec<[u8; 32]> {
    data.trace.iter().filter_map(State::result).filter(|r| r.peer() == me).map(|r| r.digest()).collect()
}

#[test]
fn digests_carried_from_the_previous_data_are_the_results_digests() {
    // one peer consumes its results one run at a time: each run signs all of them again, with
    // the digests of the carried ones taken from its previous attestation (service results,
    // a failed call and a canon among them; a result that comes back changed is hashed again)
    let air = r#"
(seq
   (seq
      (call %init_peer_id% ("s" "f") [0] $st)
      (canon %init_peer_id% $st #c))
   (seq
      (xor (call %init_peer_id% ("s" "bad") [1] y) (null))
      (seq
         (call %init_peer_id% ("s" "f") [2 #c] r2)
         (seq (call %init_peer_id% ("s" "f") [3] r3) (call %init_peer_id% ("s" "f") [4] r4)))))
"#;
    let a = peer("A");
    let p = params(&a, &a);
    let mut out = run(air, &[], &[], &p, &CallResults::new());
    let mut runs = 0;
    while !out.call_requests.is_empty() {
        let results: CallResults = out
            .call_requests
            .iter()
            .map(|r| {
                let rc = if r.function_name == "bad" { 1 } else { 0 };
                (r.id, weft_plugin_air::CallResult { ret_code: rc, result: format!("\"answer {}\"", r.id) })
            })
            .collect();
        let prev = out.data.clone();
        out = run(air, &prev, &[], &p, &results);
        runs += 1;
        let d = Data::decode(&out.data).unwrap();
        let own: Vec<&Attestation<'_>> = d.attestations.iter().filter(|x| *x.peer == *a.id).collect();
        assert_eq!(own.len(), 1, "run {runs}");
        assert_eq!(&*own[0].digests, own_digests(&d, &a.id).as_slice(), "run {runs}");
        own[0].verify("test-particle").unwrap();
    }
    assert_eq!(runs, 5);
    let d = Data::decode(&out.data).unwrap();
    assert!(d.trace.iter().any(|s| matches!(s, State::Call(CallState::Failed(_)))));
    assert_eq!(own_digests(&d, &a.id).len(), 6);
}
