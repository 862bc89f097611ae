//! Untrusted input never panics: each case gives an error outcome with the previous data kept.

use proptest::prelude::*;
use serde_json::json;
use weft_plugin_air::{CallResult, CallResults, Limits, Outcome, run};

use crate::net::{Net, params, peer};

fn first_run(air: &str) -> (Outcome, crate::net::Peer) {
    let a = peer("A");
    let out = run(air, &[], &[], &params(&a, &a), &CallResults::new());
    (out, a)
}

/// Previous data of a peer that made one call request.
fn some_prev() -> (String, Vec<u8>, crate::net::Peer) {
    let a = peer("A");
    let air = format!("(seq (call \"{}\" (\"s\" \"f\") [] x) (call \"{}\" (\"s\" \"g\") [x]))", a.id, a.id);
    let out = run(&air, &[], &[], &params(&a, &a), &CallResults::new());
    assert_eq!(out.ret_code, 0);
    (air, out.data, a)
}

#[test]
fn malformed_data_bytes() {
    let (air, prev, a) = some_prev();
    for bad in [vec![1u8, 0xff, 0xff], vec![7, 1, 2, 3], prev[..prev.len() - 1].to_vec(), vec![1; 1000]] {
        let out = run(&air, &prev, &bad, &params(&a, &a), &CallResults::new());
        assert!(matches!(out.ret_code, 2 | 6), "{}: {}", out.ret_code, out.error_message);
        assert_eq!(out.data, prev);
        assert!(out.next_peers.is_empty() && out.call_requests.is_empty());
    }
}

#[test]
fn deeply_nested_script() {
    let (air0, prev, a) = some_prev();
    let _ = air0;
    let depth = 10_000;
    let deep = "(seq ".repeat(depth) + "(null)" + &" (null))".repeat(depth);
    let out = run(&deep, &prev, &[], &params(&a, &a), &CallResults::new());
    assert_eq!(out.ret_code, 1, "{}", out.error_message);
    assert!(out.error_message.contains("nested deeper than 1000"));
    assert_eq!(out.data, prev);
    // with a higher limit the same depth parses and runs: nothing recurses on the Rust stack
    let mut p = params(&a, &a);
    p.limits.max_nesting = 20_000;
    let deep = "(xor ".repeat(depth) + &format!("(call \"{}\" (\"s\" \"f\") [])", a.id) + &" (null))".repeat(depth);
    let out = run(&deep, &[], &[], &p, &CallResults::new());
    assert_eq!(out.ret_code, 0, "{}", out.error_message);
    assert_eq!(out.call_requests.len(), 1);
}

#[test]
fn long_fold_runs_without_recursion() {
    // 20,000 nested `next`s: the explicit stack handles them
    let a = peer("A");
    let air = format!(
        "(seq (call \"{id}\" (\"s\" \"xs\") [] xs) (fold xs i (seq (null) (next i)) (call \"{id}\" (\"s\" \"last\") [i])))",
        id = a.id
    );
    let first = run(&air, &[], &[], &params(&a, &a), &CallResults::new());
    let xs: Vec<u32> = (0..20_000).collect();
    let results = CallResults::from([(1, CallResult { ret_code: 0, result: json!(xs).to_string() })]);
    let out = run(&air, &first.data, &[], &params(&a, &a), &results);
    assert_eq!(out.ret_code, 0, "{}", out.error_message);
    assert_eq!(*out.call_requests[0].arguments[0], json!(19_999));
}

#[test]
fn ten_megabyte_value() {
    let (air, prev, a) = some_prev();
    let big = json!("x".repeat(10 * 1024 * 1024)).to_string();
    let results = CallResults::from([(1, CallResult { ret_code: 0, result: big })]);
    let out = run(&air, &prev, &[], &params(&a, &a), &results);
    assert_eq!(out.ret_code, 10, "{}", out.error_message);
    assert_eq!(out.data, prev);
}

#[test]
fn stream_past_its_limit() {
    let a = peer("A");
    let air = format!("(seq (call \"{id}\" (\"s\" \"xs\") [] xs) (fold xs i (seq (ap i $s) (next i))))", id = a.id);
    let first = run(&air, &[], &[], &params(&a, &a), &CallResults::new());
    let xs: Vec<u32> = (0..2000).collect();
    let results = CallResults::from([(1, CallResult { ret_code: 0, result: json!(xs).to_string() })]);
    let out = run(&air, &first.data, &[], &params(&a, &a), &results);
    assert_eq!(out.ret_code, 20013, "{}", out.error_message);
    assert_eq!(out.data, first.data);
    assert!(out.call_requests.is_empty());
}

#[test]
fn step_limit_and_bad_key() {
    let (air, prev, a) = some_prev();
    let mut p = params(&a, &a);
    p.limits = Limits { max_steps: 1, ..Limits::default() };
    let out = run(&air, &prev, &[], &p, &CallResults::new());
    assert_eq!(out.ret_code, 20021);
    assert_eq!(out.data, prev);
    let mut p = params(&a, &a);
    p.secret_key = vec![1, 2, 3];
    let out = run(&air, &prev, &[], &p, &CallResults::new());
    assert_eq!(out.ret_code, 7);
    assert_eq!(out.data, prev);
}

#[test]
fn unconsumed_call_results() {
    let (out, a) = first_run("(null)");
    let results = CallResults::from([(5, CallResult { ret_code: 0, result: "1".into() })]);
    let out2 = run("(null)", &out.data, &[], &params(&a, &a), &results);
    assert_eq!(out2.ret_code, 30000);
}

#[test]
fn data_from_another_script_is_refused_not_panicking() {
    // a valid trace that does not fit the script: uncatchable, previous data kept
    let mut net = Net::new("(par (call @B (\"s\" \"f\") [] x) (call @C (\"s\" \"g\") [] y))", &["A", "B", "C"], "A");
    net.run_with(|_| 0);
    let b_data = net.store["B"].clone();
    let a = net.peers["A"].clone();
    let out = run("(seq (ap 1 $s) (null))", &[], &b_data, &params(&a, &a), &CallResults::new());
    assert_eq!(out.ret_code, 20000, "{}", out.error_message);
    assert!(out.data.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_current_data_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), flip in 0usize..4096) {
        let (air, prev, a) = some_prev();
        let out = run(&air, &prev, &bytes, &params(&a, &a), &CallResults::new());
        if out.ret_code != 0 {
            prop_assert_eq!(&out.data, &prev);
        }
        // a valid data with one flipped byte
        let mut d = prev.clone();
        let i = flip % d.len();
        d[i] ^= 0x5a;
        let out = run(&air, &prev, &d, &params(&a, &a), &CallResults::new());
        if out.ret_code != 0 {
            prop_assert_eq!(&out.data, &prev);
        }
    }

    #[test]
    fn arbitrary_scripts_never_panic(script in "[()\\[\\] a-z$#%.:\"0-9!-]{0,80}") {
        let (_, prev, a) = some_prev();
        let out = run(&script, &prev, &[], &params(&a, &a), &CallResults::new());
        if out.ret_code != 0 && out.ret_code < 10000 {
            prop_assert_eq!(&out.data, &prev);
        }
    }
}

/// A's data after its service answered `f` (arguments `args`), for the replay checks below.
fn replayed(args: &str) -> (String, Vec<u8>, crate::net::Peer) {
    let a = peer("A");
    let air = format!("(seq (call \"{id}\" (\"s\" \"f\") [{args}] x) (call \"{id}\" (\"s\" \"g\") [x]))", id = a.id);
    let first = run(&air, &[], &[], &params(&a, &a), &CallResults::new());
    let results = CallResults::from([(1, CallResult { ret_code: 0, result: "\"r\"".into() })]);
    let second = run(&air, &first.data, &[], &params(&a, &a), &results);
    assert_eq!(second.ret_code, 0, "{}", second.error_message);
    assert_eq!(second.call_requests.len(), 1);
    (air, second.data, a)
}

/// Re-signs A's results after `f` changed them (as A itself would: the checks below are about
/// replay, not signatures).
fn resigned(
    data: &[u8],
    a: &crate::net::Peer,
    f: impl FnOnce(&mut weft_plugin_air::data::ServiceResult<'_>),
) -> Vec<u8> {
    use weft_plugin_air::data::{Attestation, CallState, Data, State};
    let mut d = Data::decode(data).unwrap();
    let State::Call(CallState::Executed { result, .. }) = &mut d.trace[0] else { panic!("f's result first") };
    f(result);
    let digests = d.trace.iter().filter_map(State::result).map(|r| r.digest()).collect();
    let key = ed25519_dalek::SigningKey::from_bytes(&a.secret);
    d.attestations = vec![Attestation::sign(&key, "test-particle", &a.id, digests)];
    d.encode()
}

#[test]
fn replay_checks_the_arguments_inline_and_hashed() {
    use weft_plugin_air::data::ArgumentHash;
    // `["short"]` is kept inline, the long list by its hash: both are checked on replay
    let long = format!("\"{}\"", "x".repeat(40));
    for (args, other) in
        [("\"short\"", "[\"other\"]".to_string()), (long.as_str(), format!("[\"{}\"]", "y".repeat(40)))]
    {
        let (air, data, a) = replayed(args);
        // the untouched data replays
        let out = run(&air, &data, &[], &params(&a, &a), &CallResults::new());
        assert_eq!(out.ret_code, 0, "{}", out.error_message);
        // the same result stored for other arguments does not
        let forged = resigned(&data, &a, |r| r.argument_hash = ArgumentHash::of(other.as_bytes()));
        let out = run(&air, &[], &forged, &params(&a, &a), &CallResults::new());
        assert_eq!(out.ret_code, 20017, "{args}: {}", out.error_message);
        assert!(out.error_message.contains("argument hash"), "{}", out.error_message);
        assert!(out.data.is_empty());
    }
}

#[test]
fn replay_checks_the_tetraplet() {
    let (air, data, a) = replayed("1");
    let forged = resigned(&data, &a, |r| {
        r.tetraplet = std::sync::Arc::new(weft_plugin_air::Tetraplet::new(&a.id, "s", "other"))
    });
    let out = run(&air, &[], &forged, &params(&a, &a), &CallResults::new());
    assert_eq!(out.ret_code, 20017, "{}", out.error_message);
    assert!(out.error_message.contains("tetraplet"), "{}", out.error_message);
}

#[test]
fn signed_value_that_is_not_json_is_refused_on_replay() {
    // values are kept as text until used; one that is not JSON is still refused when replayed
    for bad in ["not json", "[1,", "{\"a\":}", "1e99999", "\"\\ud800\"", "\"\\udc00\"", "\"a\u{1}\""] {
        let (air, data, a) = replayed("1");
        let forged = resigned(&data, &a, |r| r.value = bad.into());
        let out = run(&air, &[], &forged, &params(&a, &a), &CallResults::new());
        assert_eq!(out.ret_code, 20019, "{bad}: {}", out.error_message);
        assert!(out.data.is_empty());
    }
}

#[test]
fn a_value_in_the_previous_data_is_checked_where_it_is_used() {
    // this peer's own previous data is trusted as it was written; a value that is not JSON there
    // (a corrupted store) fails the run where it is used, keeping the previous data
    for bad in ["not json", "[1,", "\"a\u{1}\""] {
        let (air, data, a) = replayed("1");
        let corrupt = resigned(&data, &a, |r| r.value = bad.into());
        // `x` (the corrupt value) is an argument of `g`: consuming g's result uses it
        let g = CallResults::from([(2, CallResult { ret_code: 0, result: "\"ok\"".into() })]);
        let out = run(&air, &corrupt, &[], &params(&a, &a), &g);
        assert_eq!(out.ret_code, 20019, "{bad}: {}", out.error_message);
        assert_eq!(out.data, corrupt);
        // replayed without being used: carried as it is
        let out = run(&air, &corrupt, &[], &params(&a, &a), &CallResults::new());
        assert_eq!(out.ret_code, 0, "{bad}: {}", out.error_message);
    }
}

#[test]
fn malformed_text_section_is_refused() {
    use weft_plugin_air::data::Data;
    let (_, data, _) = replayed("1");
    let d = Data::decode(&data).unwrap();
    assert_eq!(Data::decode(&d.encode()).unwrap(), d);
    // every cut and every single-byte change decodes or is refused, never panics
    for i in 0..data.len() {
        let _ = Data::decode(&data[..i]);
        for flip in [0x01, 0x80, 0xff] {
            let mut bad = data.clone();
            bad[i] ^= flip;
            let _ = Data::decode(&bad);
        }
    }
}
