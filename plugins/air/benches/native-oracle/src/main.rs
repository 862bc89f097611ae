//! The reference interpreter, AquaVM 0.62.0 (`aquavm-air`), built natively and timed on the shapes
//! of `benches/interpreter.rs`: the same scripts, peers (seed = sha256("air-oracle:" + name)),
//! particle id, timestamp, ttl, call results and order of runs as the bench and
//! `oracle_times.mjs` (which runs the same AquaVM as Wasm under node + marine-js). The
//! reference's published times come from its native benchmarks; this gives the same kind of
//! number on this machine.
//!
//! ```text
//! cd plugins/air/benches/native-oracle
//! cargo run --release -- [--time SECONDS] [--only NAME,NAME] [--cache DIR]
//! ```
//!
//! Each case is prepared by real runs of AquaVM, then its one timed run (`execute_air`: parse,
//! data deserialization, verification of the other peers' signatures, execution, signing,
//! serialization) is repeated for `--time` seconds (default 3) after a 1 s warm-up. Reported:
//! the median and the fastest run. `--cache DIR` writes B's data of the seq tree (10,000 runs of
//! B over a growing trace) as `seq_tree_10000_b.bin`, the file `oracle_times.mjs --cache DIR`
//! reads, so the Wasm oracle does not have to prepare it again (AquaVM's data does not depend
//! on how it was built).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use air_interpreter_interface::{
    CallArgumentsRepr, CallRequestsRepr, CallResultsRepr, CallServiceResult, InterpreterOutcome, RunParameters,
};
use air_interpreter_sede::{FromSerialized, ToSerialized};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PARTICLE_ID: &str = "bench-particle";

#[derive(Clone)]
struct Peer {
    secret: [u8; 32],
    id: String,
}

fn peer(name: &str) -> Peer {
    let secret: [u8; 32] = Sha256::digest(format!("air-oracle:{name}").as_bytes()).into();
    let public = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key();
    // libp2p peer id: identity multihash of the protobuf PublicKey { Ed25519, 32 bytes }
    let mut bytes = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    bytes.extend_from_slice(public.as_bytes());
    Peer { secret, id: bs58::encode(bytes).into_string() }
}

fn params(init: &Peer, current: &Peer) -> RunParameters {
    const LIMIT: u64 = 4 << 30; // what @fluencelabs/avm passes (hard limits off)
    RunParameters::new(
        init.id.clone(),
        current.id.clone(),
        1_700_000_000_000,
        120_000,
        0, // Ed25519
        current.secret.to_vec(),
        PARTICLE_ID.into(),
        LIMIT,
        LIMIT,
        LIMIT,
        false,
    )
}

/// An outcome with its call requests decoded: (id, arguments).
struct Out {
    data: Vec<u8>,
    next_peers: Vec<String>,
    requests: Vec<(u32, Vec<Value>)>,
}

type Results = HashMap<String, CallServiceResult>;

fn invoke(p: &RunParameters, air: &str, prev: &[u8], cur: &[u8], results: &Results) -> InterpreterOutcome {
    let results = CallResultsRepr.serialize(results).expect("call results serialize");
    air::execute_air(air.to_string(), prev.to_vec(), cur.to_vec(), p.clone(), results)
}

fn ok_run(p: &RunParameters, air: &str, prev: &[u8], cur: &[u8], results: &Results) -> Out {
    let out = invoke(p, air, prev, cur, results);
    assert_eq!(out.ret_code, 0, "{}", out.error_message);
    let requests = CallRequestsRepr.deserialize(&out.call_requests).expect("call requests");
    let mut requests: Vec<(u32, Vec<Value>)> = requests
        .into_iter()
        .map(|(id, r)| (id, CallArgumentsRepr.deserialize(&r.arguments).expect("arguments")))
        .collect();
    requests.sort_by_key(|(id, _)| *id);
    Out { data: out.data, next_peers: out.next_peer_pks, requests }
}

/// Answers every request of `out` with `f(arguments)` (a JSON value, written as JSON text as
/// js-client does).
fn answer_all(out: &Out, f: impl Fn(&[Value]) -> Value) -> Results {
    out.requests.iter().map(|(id, args)| (id.to_string(), CallServiceResult::ok(&f(args)))).collect()
}

// `balanced_seq` and `mod scripts`: the bench's own shapes, the same text.
include!("../../common/shapes.rs");

struct Case {
    name: &'static str,
    p: RunParameters,
    air: String,
    prev: Vec<u8>,
    cur: Vec<u8>,
    results: Results,
}

fn time(c: &Case, seconds: f64) -> (usize, f64, f64) {
    let once = || {
        let t = Instant::now();
        let out = invoke(&c.p, &c.air, &c.prev, &c.cur, &c.results);
        let dt = t.elapsed();
        assert_eq!(out.ret_code, 0, "{}: {}", c.name, out.error_message);
        drop(out);
        dt
    };
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(1) {
        once();
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds || samples.len() < 5 {
        samples.push(once().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    (samples.len(), samples[samples.len() / 2], samples[0])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let seconds: f64 = opt("--time").map_or(3.0, |s| s.parse().expect("--time SECONDS"));
    let only: Option<Vec<String>> = opt("--only").map(|s| s.split(',').map(str::to_string).collect());
    let cache = opt("--cache");
    // a case is prepared when a name given is a prefix of it or names one of its extra cases
    // (`seq_tree_10k_calls/first_arrival`), and timed when a name given is a prefix of it that
    // does not stop at a `/`
    let wanted =
        |n: &str| only.as_ref().is_none_or(|o| o.iter().any(|w| n.starts_with(w.as_str()) || w.starts_with(n)));
    let timed = |n: &str| {
        only.as_ref().is_none_or(|o| o.iter().any(|w| n.starts_with(w.as_str()) && !n[w.len()..].starts_with('/')))
    };

    let a = peer("A");
    let b = peer("B");
    let (pa, pb) = (params(&a, &a), params(&a, &b));
    let sub = |air: &str| air.replace("@A", &format!("\"{}\"", a.id)).replace("@B", &format!("\"{}\"", b.id));
    let none = Results::new();
    let mut cases: Vec<Case> = Vec::new();

    if wanted("null") {
        cases.push(Case {
            name: "null",
            p: pa.clone(),
            air: "(null)".into(),
            prev: vec![],
            cur: vec![],
            results: none.clone(),
        });
    }
    if wanted("chained_ap_10k") {
        let air = scripts::chained_ap(10_000);
        ok_run(&pa, &air, &[], &[], &none);
        cases.push(Case {
            name: "chained_ap_10k",
            p: pa.clone(),
            air,
            prev: vec![],
            cur: vec![],
            results: none.clone(),
        });
    }
    if wanted("parser_10000_100") {
        let air = scripts::parser_10000_100();
        let out = ok_run(&pa, &air, &[], &[], &none);
        assert_eq!(out.next_peers, vec!["peer".to_string()], "the first run stops at the call");
        cases.push(Case {
            name: "parser_10000_100",
            p: pa.clone(),
            air,
            prev: vec![],
            cur: vec![],
            results: none.clone(),
        });
    }
    if wanted("seq_tree_10k_calls") {
        let n = 10_000;
        let air = sub(&scripts::seq_tree(n));
        let a_first = ok_run(&pa, &air, &[], &[], &none);
        let file = cache.as_ref().map(|d| std::path::Path::new(d).join(format!("seq_tree_{n}_b.bin")));
        let b_data = match file.as_ref().filter(|f| f.exists()) {
            Some(f) => std::fs::read(f).expect("read B's cached data"),
            None => {
                let t = Instant::now();
                let mut out = ok_run(&pb, &air, &[], &a_first.data, &none);
                let mut runs = 1;
                while !out.requests.is_empty() {
                    let results = answer_all(&out, |args| json!(format!("result {}", args[0])));
                    out = ok_run(&pb, &air, &out.data, &[], &results);
                    runs += 1;
                    if runs % 1000 == 0 {
                        eprintln!("seq tree: B {runs} runs, {:.0} s", t.elapsed().as_secs_f64());
                    }
                }
                eprintln!("seq tree: B's {runs} runs took {:.1} s", t.elapsed().as_secs_f64());
                if let Some(f) = &file {
                    std::fs::create_dir_all(f.parent().expect("a directory")).expect("cache directory");
                    std::fs::write(f, &out.data).expect("write B's data");
                }
                out.data
            }
        };
        let merged = ok_run(&pa, &air, &a_first.data, &b_data, &none);
        assert_eq!(merged.requests.len(), 1, "expected the call on A");
        let done = answer_all(&merged, |_| json!("ok"));
        let last = ok_run(&pa, &air, &merged.data, &[], &done);
        assert!(last.requests.is_empty() && last.next_peers.is_empty(), "seq tree did not finish");
        cases.push(Case {
            name: "seq_tree_10k_calls",
            p: pa.clone(),
            air: air.clone(),
            prev: merged.data,
            cur: vec![],
            results: done,
        });
        cases.push(Case {
            name: "seq_tree_10k_calls/first_run",
            p: pa.clone(),
            air: air.clone(),
            prev: vec![],
            cur: vec![],
            results: none.clone(),
        });
        cases.push(Case {
            name: "seq_tree_10k_calls/first_arrival",
            p: pa.clone(),
            air,
            prev: a_first.data,
            cur: b_data,
            results: none.clone(),
        });
    }
    if wanted("fold_500_call_requests") || wanted("call_results_500") {
        let list: Vec<Value> = (0..500).map(|i| json!(i.to_string())).collect();
        let run1 = ok_run(&pa, scripts::FOLD_CALLS, &[], &[], &none);
        let init = answer_all(&run1, |_| Value::Array(list.clone()));
        let run2 = ok_run(&pa, scripts::FOLD_CALLS, &run1.data, &[], &init);
        assert_eq!(run2.requests.len(), 500, "expected 500 call requests");
        let results = answer_all(&run2, |args| Value::Array(args.to_vec()));
        let run3 = ok_run(&pa, scripts::FOLD_CALLS, &run2.data, &[], &results);
        assert!(run3.requests.is_empty(), "fold did not finish");
        if wanted("fold_500_call_requests") {
            cases.push(Case {
                name: "fold_500_call_requests",
                p: pa.clone(),
                air: scripts::FOLD_CALLS.into(),
                prev: run1.data,
                cur: vec![],
                results: init,
            });
        }
        if wanted("call_results_500") {
            cases.push(Case {
                name: "call_results_500",
                p: pa.clone(),
                air: scripts::FOLD_CALLS.into(),
                prev: run2.data,
                cur: vec![],
                results,
            });
        }
    }
    if wanted("stream_merge_1000") {
        let air = sub(scripts::STREAM);
        let items: Vec<Value> = (0..1000).map(|i| json!(format!("item-{i}"))).collect();
        let a1 = ok_run(&pa, &air, &[], &[], &none);
        let b1 = ok_run(&pb, &air, &[], &a1.data, &none);
        let b2 = ok_run(&pb, &air, &b1.data, &[], &answer_all(&b1, |_| Value::Array(items.clone())));
        assert_eq!(b2.requests.len(), 1000, "expected 1000 call requests");
        let b3 = ok_run(&pb, &air, &b2.data, &[], &answer_all(&b2, |args| json!({ "value": args[0] })));
        assert_eq!(b3.next_peers, vec![a.id.clone()], "B did not send to A");
        let merged = ok_run(&pa, &air, &a1.data, &b3.data, &none);
        assert!(merged.requests.is_empty() && merged.next_peers.is_empty(), "A did not finish");
        cases.push(Case { name: "stream_merge_1000", p: pa.clone(), air, prev: a1.data, cur: b3.data, results: none });
    }

    let mut report = serde_json::Map::new();
    for c in cases.iter().filter(|c| timed(c.name)) {
        let (runs, median, min) = time(c, seconds);
        println!("{:36} median {median:.3} ms  min {min:.3} ms  ({runs} runs)", c.name);
        report.insert(c.name.into(), json!({ "runs": runs, "median_ms": median, "min_ms": min }));
    }
    println!("{}", json!({ "aquavm_air": "0.62.0", "build": "native", "report": report }));
}
