//! `run` on arbitrary scripts and data: never panics, whatever the script, the data or the order
//! in which particles arrive.
//!
//! Input: `SCRIPT [0xFF PREV_LEN(u16 LE) PREV CURRENT]`. 0xFF never occurs in UTF-8, so a plain
//! script is a valid input (the seed corpus is the conformance scripts). `@A`, `@B` and `@C` in the
//! script become the quoted peer ids of three fixed peers. Peer A runs the script with PREV and
//! CURRENT; then a small network follows the outcome for a few more runs: call requests are
//! answered from a fixed list of results, and the data is sent to the next peers, so traces made
//! by the interpreter itself (validly signed) get merged too. The data of every run that
//! succeeds must decode (a run copies the bytes of states it kept from the previous data).
#![no_main]

use std::collections::VecDeque;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use weft_plugin_air::data::Data;
use weft_plugin_air::peer_id::peer_id_from_secret;
use weft_plugin_air::{CallResult, CallResults, Limits, Outcome, RunParams, run};

/// Runs after the first one, so an input stays cheap.
const MAX_RUNS: usize = 8;

/// What services answer, by call id.
const RESULTS: [(i32, &str); 6] =
    [(0, "1"), (0, "[1,2,3]"), (0, r#"{"a":["x",{"b":2}]}"#), (0, r#""s""#), (1, "failed"), (0, "[]")];

struct Peer {
    id: String,
    secret: [u8; 32],
}

fn peers() -> &'static [Peer; 3] {
    static PEERS: OnceLock<[Peer; 3]> = OnceLock::new();
    PEERS.get_or_init(|| {
        ["A", "B", "C"].map(|name| {
            let secret = [name.as_bytes()[0]; 32];
            Peer { id: peer_id_from_secret(&secret), secret }
        })
    })
}

fn params(current: &Peer) -> RunParams {
    RunParams {
        init_peer_id: peers()[0].id.clone(),
        current_peer_id: current.id.clone(),
        timestamp: 1_700_000_000_000,
        ttl: 120_000,
        particle_id: "fuzz-particle".into(),
        secret_key: current.secret.to_vec(),
        limits: Limits::default(),
    }
}

fn split(input: &[u8]) -> Option<(String, &[u8], &[u8])> {
    let (script, rest) = match input.iter().position(|&b| b == 0xFF) {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &[][..]),
    };
    let mut script = std::str::from_utf8(script).ok()?.to_string();
    for p in ["A", "B", "C"].iter().zip(peers()) {
        script = script.replace(&format!("@{}", p.0), &format!("\"{}\"", p.1.id));
    }
    let (prev, current) = match rest {
        [lo, hi, data @ ..] => data.split_at(usize::from(u16::from_le_bytes([*lo, *hi])).min(data.len())),
        _ => (&[][..], &[][..]),
    };
    Some((script, prev, current))
}

fuzz_target!(|input: &[u8]| {
    let Some((script, prev, current)) = split(input) else { return };
    let peers = peers();
    let first = run(&script, prev, current, &params(&peers[0]), &CallResults::new());
    let _ = first.error_message.len();
    // data a run wrote (parts copied from `prev` included) always decodes
    if first.ret_code == 0 {
        assert!(Data::decode(&first.data).is_ok(), "a successful run wrote data that does not decode");
    }

    // what each peer holds, and particles (peer, data, results) not delivered yet
    let mut held: [Vec<u8>; 3] = [first.data.clone(), Vec::new(), Vec::new()];
    let mut queue = VecDeque::new();
    let follow = |from: usize, out: &Outcome, queue: &mut VecDeque<_>| {
        if !out.call_requests.is_empty() {
            let results: CallResults = out
                .call_requests
                .iter()
                .map(|r| {
                    let (ret_code, result) = RESULTS[r.id as usize % RESULTS.len()];
                    (r.id, CallResult { ret_code, result: result.into() })
                })
                .collect();
            queue.push_back((from, Vec::new(), results));
        }
        for next in &out.next_peers {
            if let Some(to) = peers.iter().position(|p| &p.id == next) {
                queue.push_back((to, out.data.clone(), CallResults::new()));
            }
        }
    };
    follow(0, &first, &mut queue);
    for _ in 0..MAX_RUNS {
        let Some((at, data, results)) = queue.pop_front() else { break };
        let out = run(&script, &held[at], &data, &params(&peers[at]), &results);
        if out.ret_code == 0 {
            assert!(Data::decode(&out.data).is_ok(), "a successful run wrote data that does not decode");
        }
        held[at] = out.data.clone();
        follow(at, &out, &mut queue);
    }
});
