//! Criterion benches of [`weft_plugin_air::run`] on the shapes of the reference interpreter's
//! own benchmarks (AquaVM `benches/performance_metering`, `junk/gen-bench-data`).
//!
//! ```text
//! WEFT_BENCH_CLOCK=cpu cargo bench -p weft-plugin-air --bench interpreter -- \
//!     --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Every case is one realistic call of `run` with signatures on: each peer has a real 32-byte
//! Ed25519 secret (seed = sha256("air-oracle:" + name), the keys the oracle gives peers of that
//! name, so `benches/oracle_times.mjs` times the very same scripts), its peer id comes from
//! `peer_id::peer_id_from_secret`, every run that produces results signs them (one Ed25519
//! signature over the digests of all of that peer's results, see `data`), and every result that
//! arrives in `current_data` is checked against a signature of its peer (each signature not
//! already held in `prev_data` is verified).
//! Each case is timed twice: `NAME` is `run` as a node calls it, with the script's syntax tree
//! from the process-wide [`ScriptCache`] (the script ran before: a peer runs a particle's script
//! on every arrival and every batch of results, and one application's particles share it), and
//! `NAME/cold` parses and validates the script inside the timed run (its first run in the
//! process).
//! The input data of each case is produced by real runs of the interpreter (except the 10,000
//! results of B in `seq_tree_10k_calls`, see [`forge_seq_tree_b`]), prepared once outside the
//! timed loop; the timed loop is exactly one `run` call (parse, decode, verify, merge, execute,
//! encode) and dropping its `Outcome`.
//!
//! The numbers, the reference's published times and the oracle's times on the same machine are
//! in the README ("Performance").

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use weft_plugin_air::data::{ArgumentHash, Attestation, CallState, OutputKind, ServiceResult, State};
use weft_plugin_air::{
    CallResult, CallResults, Data, Limits, Outcome, RunParams, ScriptCache, Tetraplet, peer_id, run, run_with_cache,
};

const PARTICLE_ID: &str = "bench-particle";

/// A peer with the oracle's key for its name.
#[derive(Clone)]
struct Peer {
    secret: [u8; 32],
    id: String,
}

fn peer(name: &str) -> Peer {
    let secret: [u8; 32] = Sha256::digest(format!("air-oracle:{name}").as_bytes()).into();
    Peer { secret, id: peer_id::peer_id_from_secret(&secret) }
}

fn params(init: &Peer, current: &Peer) -> RunParams {
    RunParams {
        init_peer_id: init.id.clone(),
        current_peer_id: current.id.clone(),
        timestamp: 1_700_000_000_000,
        ttl: 120_000,
        particle_id: PARTICLE_ID.into(),
        secret_key: current.secret.to_vec(),
        limits: Limits::default(),
    }
}

/// One run, asserting success (the bench inputs must be valid, or the numbers mean nothing).
fn ok_run(air: &str, prev: &[u8], cur: &[u8], p: &RunParams, results: &CallResults) -> Outcome {
    let out = run(air, prev, cur, p, results);
    assert_eq!(out.ret_code, 0, "{}", out.error_message);
    out
}

// `balanced_seq` and `mod scripts`: the shapes, shared with `native-oracle`.
include!("common/shapes.rs");

fn substitute(air: &str, a: &Peer, b: &Peer) -> String {
    air.replace("@A", &format!("\"{}\"", a.id)).replace("@B", &format!("\"{}\"", b.id))
}

/// Answers every call request of `out` with `answer`.
fn answer_all(out: &Outcome, answer: impl Fn(&weft_plugin_air::CallRequest) -> String) -> CallResults {
    out.call_requests.iter().map(|r| (r.id, CallResult { ret_code: 0, result: answer(r) })).collect()
}

/// B's data after it executed the `n` calls of [`scripts::seq_tree`] (and sent the particle to A),
/// built directly from the data types: B would need `n` runs over a growing trace (O(n²), about a
/// minute for n = 10,000). [`check_forge`] proves, at a small `n`, that the bytes are exactly what
/// real runs produce.
fn forge_seq_tree_b(n: usize, a: &Peer, b: &Peer) -> Vec<u8> {
    let key = ed25519_dalek::SigningKey::from_bytes(&b.secret);
    let tetraplet = std::sync::Arc::new(Tetraplet::new(&b.id, "svc", "get"));
    let mut trace = Vec::with_capacity(n + 1);
    let mut digests = Vec::with_capacity(n);
    for i in 0..n {
        let args = vec![serde_json::json!(i)];
        let result = ServiceResult {
            value: serde_json::json!(format!("result {i}")).to_string().into(),
            tetraplet: tetraplet.clone(),
            argument_hash: ArgumentHash::of(serde_json::to_string(&args).expect("json").as_bytes()),
        };
        digests.push(result.digest(false));
        trace.push(State::Call(CallState::Executed { result, output: OutputKind::Scalar }));
    }
    let _ = a;
    trace.push(State::Call(CallState::SentBy { peer: b.id.as_str().into(), call_id: None }));
    // B signs once, at the end of its last run, over the digests of all its results
    let attestations = vec![Attestation::sign(&key, PARTICLE_ID, &b.id, digests)];
    Data { interpreter_version: env!("CARGO_PKG_VERSION").to_string(), trace, lcid: n as u32, attestations }.encode()
}

/// The seq-tree service on B: `get [i]` answers "result i".
fn seq_tree_answer(r: &weft_plugin_air::CallRequest) -> String {
    serde_json::json!(format!("result {}", r.arguments[0])).to_string()
}

/// Runs [`scripts::seq_tree`] for real (A, then B until it sends to A) and returns B's data.
fn real_seq_tree_b(n: usize, a: &Peer, b: &Peer) -> Vec<u8> {
    let air = substitute(&scripts::seq_tree(n), a, b);
    let first = ok_run(&air, &[], &[], &params(a, a), &CallResults::new());
    let pb = params(a, b);
    let mut out = ok_run(&air, &[], &first.data, &pb, &CallResults::new());
    while !out.call_requests.is_empty() {
        let results = answer_all(&out, seq_tree_answer);
        out = ok_run(&air, &out.data, &[], &pb, &results);
    }
    assert_eq!(out.next_peers, vec![a.id.clone()]);
    out.data
}

fn check_forge(a: &Peer, b: &Peer) {
    for n in [1, 7, 16] {
        assert!(forge_seq_tree_b(n, a, b) == real_seq_tree_b(n, a, b), "forged seq-tree data differs at n = {n}");
    }
}

/// The clock of the benches: wall time, or with `WEFT_BENCH_CLOCK=cpu` the CPU time of the
/// benchmarking thread. On a machine shared with other jobs (the 2-core dev box) wall time
/// counts the time the thread waits for a core; CPU time is the closer estimate of what an idle
/// machine's wall clock shows (`run` is single-threaded and does no I/O).
struct Clock {
    cpu: bool,
    origin: std::time::Instant,
}

impl Clock {
    fn from_env() -> Self {
        let cpu = std::env::var("WEFT_BENCH_CLOCK").is_ok_and(|v| v == "cpu");
        Clock { cpu: cpu && thread_cpu_ns().is_some(), origin: std::time::Instant::now() }
    }

    fn now(&self) -> u64 {
        match self.cpu {
            true => thread_cpu_ns().unwrap_or(0),
            false => self.origin.elapsed().as_nanos() as u64,
        }
    }
}

/// CPU time of the calling thread in ns (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`).
#[cfg(target_os = "linux")]
fn thread_cpu_ns() -> Option<u64> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable `struct timespec` (two 64-bit fields on 64-bit Linux)
    // and the clock id is a constant the kernel knows.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_ns() -> Option<u64> {
    None
}

impl Measurement for Clock {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        self.now()
    }
    fn end(&self, start: u64) -> u64 {
        self.now().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanos
    }
}

/// Formats nanoseconds like criterion's wall-time formatter.
struct Nanos;

impl ValueFormatter for Nanos {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e3, "µs"),
            t if t < 1e9 => (1e6, "ms"),
            _ => (1e9, "s"),
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }
    fn scale_throughputs(&self, _typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match throughput {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Elements(n) => *n as f64,
            _ => 1.0,
        };
        values.iter_mut().for_each(|v| *v = n * 1e9 / *v);
        "/s"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

/// A case's inputs, prepared on first use: criterion calls a bench closure only when the bench
/// matches the command-line filter, so `cargo bench … -- seq_tree` prepares nothing else.
struct Case {
    air: String,
    prev: Vec<u8>,
    cur: Vec<u8>,
    params: RunParams,
    results: CallResults,
}

fn bench_case(g: &mut BenchmarkGroup<'_, Clock>, name: &str, prepare: impl FnOnce() -> Case) {
    let case = std::cell::OnceCell::new();
    let prepare = std::cell::Cell::new(Some(prepare));
    let get = || -> &Case { case.get_or_init(|| (prepare.take().expect("prepared once"))()) };
    // `run` as a node calls it: the script ran before (while preparing), so its syntax tree comes
    // from the process-wide cache
    g.bench_function(name, |bch| {
        let c = get();
        bch.iter(|| run(black_box(&c.air), &c.prev, &c.cur, &c.params, &c.results))
    });
    // the first run of a script in the process: parsed and validated inside the timed run
    let cold = ScriptCache::new(0, 0);
    g.bench_function(format!("{name}/cold"), |bch| {
        let c = get();
        bch.iter(|| run_with_cache(black_box(&c.air), &c.prev, &c.cur, &c.params, &c.results, &cold))
    });
}

fn benches(c: &mut Criterion<Clock>) {
    let a = peer("A");
    let b = peer("B");
    let pa = params(&a, &a);
    if let Some(dir) = std::env::var_os("WEFT_AIR_BENCH_DUMP") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("dump dir");
        for (name, air) in [
            ("chained_ap_10k", scripts::chained_ap(10_000)),
            ("seq_tree_10k_calls", scripts::seq_tree(10_000)),
            ("parser_10000_100", scripts::parser_10000_100()),
            ("fold_500", scripts::FOLD_CALLS.to_string()),
            ("stream_merge_1000", scripts::STREAM.to_string()),
        ] {
            std::fs::write(dir.join(format!("{name}.air")), air).expect("write script");
        }
    }
    let case = |air: String, prev: Vec<u8>, cur: Vec<u8>, results: CallResults| Case {
        air,
        prev,
        cur,
        params: pa.clone(),
        results,
    };
    let none = CallResults::new;

    let mut g = c.benchmark_group("air");

    // 1. `(null)` with empty data: the fixed cost of a run (key, decode, parse, encode).
    bench_case(&mut g, "null", || case("(null)".into(), vec![], vec![], none()));

    // 2. 10,000 chained scalar `ap`s in a balanced seq tree, first run on A with empty data:
    //    parsing a ~230 KB script and executing 20,000 instructions (no trace states: scalar aps
    //    are not recorded, as in the reference).
    bench_case(&mut g, "chained_ap_10k", || {
        let air = scripts::chained_ap(10_000);
        ok_run(&air, &[], &[], &pa, &none());
        case(air, vec![], vec![], none())
    });

    //    The reference's own shape of this row (`parser-10000-100`, see `scripts`): parsing a
    //    ~600 KB script of 10,000 `ap`s, whose first run stops at its first call.
    bench_case(&mut g, "parser_10000_100", || {
        let air = scripts::parser_10000_100();
        let out = ok_run(&air, &[], &[], &pa, &none());
        assert_eq!(out.next_peers, vec!["peer".to_string()]);
        case(air, vec![], vec![], none())
    });

    // 3. 10,000 calls on peer B in a balanced seq tree, then one call on A. The trace already
    //    holds every result (as the reference's `long_data` does): A's data holds the 10,000
    //    results signed by B (A verified them when B's data arrived, in the `first_arrival` case
    //    below) plus A's own pending call; the timed run is A's run that gets that call's result
    //    (prev = A's data, current = empty): replay 10,000 calls from the trace (argument hash
    //    and tetraplet checks, 10,000 scalars bound), consume one result and sign it, encode
    //    10,001 states. No Ed25519 verification happens: prev_data is this peer's own.
    let seq_tree = std::cell::OnceCell::new();
    let seq_tree_inputs = || {
        seq_tree.get_or_init(|| {
            check_forge(&a, &b);
            let air = substitute(&scripts::seq_tree(10_000), &a, &b);
            let a_first = ok_run(&air, &[], &[], &pa, &none());
            let b_data = forge_seq_tree_b(10_000, &a, &b);
            (air, a_first.data, b_data)
        })
    };
    bench_case(&mut g, "seq_tree_10k_calls", || {
        let (air, a_first, b_data) = seq_tree_inputs().clone();
        let merged = ok_run(&air, &a_first, &b_data, &pa, &none());
        assert_eq!(merged.call_requests.len(), 1);
        let done = answer_all(&merged, |_| "\"ok\"".into());
        let last = ok_run(&air, &merged.data, &[], &pa, &done);
        assert!(last.call_requests.is_empty() && last.next_peers.is_empty());
        case(air, merged.data, vec![], done)
    });
    //    Same script, the run where B's data arrives at A for the first time (prev = A's first
    //    data, current = B's data): as above plus checking B's signatures: 10,000 result digests
    //    (blake3) looked up in B's attestation, whose Ed25519 signature is verified once (like
    //    the reference, which verifies one signature per peer). Not a reference shape.
    //    Same script, A's first run (empty data): parse and validate it, bind `b`, send the
    //    particle to B for the first call. This is the reference's own shape of this row
    //    (`parser-calls-10000-100`, "multiple calls parser benchmark": parse 21.5 ms, execution
    //    50 µs of 23.5 ms in its report).
    bench_case(&mut g, "seq_tree_10k_calls/first_run", || {
        let air = substitute(&scripts::seq_tree(10_000), &a, &b);
        let out = ok_run(&air, &[], &[], &pa, &none());
        assert_eq!(out.next_peers, vec![b.id.clone()]);
        case(air, vec![], vec![], none())
    });
    g.sample_size(10);
    bench_case(&mut g, "seq_tree_10k_calls/first_arrival", || {
        let (air, a_first, b_data) = seq_tree_inputs().clone();
        case(air, a_first, b_data, none())
    });
    g.sample_size(100);

    // 4. The reference's `call_requests500`: the second run of the fold script on A, fed the
    //    result of `init` (a list of 500 strings): consume and sign that one result, then the
    //    fold issues 500 call requests with 24 arguments each (tetraplets included).
    let fold_runs = std::cell::OnceCell::new();
    let fold_inputs = || {
        fold_runs.get_or_init(|| {
            let air = scripts::FOLD_CALLS;
            let list: Vec<String> = (0..500).map(|i| i.to_string()).collect();
            let run1 = ok_run(air, &[], &[], &pa, &none());
            let init_result = answer_all(&run1, |_| serde_json::to_string(&list).expect("json"));
            let run2 = ok_run(air, &run1.data, &[], &pa, &init_result);
            assert_eq!(run2.call_requests.len(), 500);
            (run1, init_result, run2)
        })
    };
    bench_case(&mut g, "fold_500_call_requests", || {
        let (run1, init_result, _) = fold_inputs();
        case(scripts::FOLD_CALLS.into(), run1.data.clone(), vec![], init_result.clone())
    });

    // 5. The reference's `call_results500`: the third run, fed the 500 results (each service
    //    answers with its arguments, as the reference's generator does): 500 results consumed
    //    and pushed to the stream; A signs the digests of its 501 results (one signature).
    bench_case(&mut g, "call_results_500", || {
        let (_, _, run2) = fold_inputs();
        let results = answer_all(run2, |r| serde_json::to_string(&r.arguments).expect("json"));
        let run3 = ok_run(scripts::FOLD_CALLS, &run2.data, &[], &pa, &results);
        assert!(run3.call_requests.is_empty());
        case(scripts::FOLD_CALLS.into(), run2.data.clone(), vec![], results)
    });

    // 6. A stream of 1,000 values produced on B (1,000 calls, all signed by B), merged into a
    //    run on A: A's prev_data is its first run (the call sent to B), current_data is B's
    //    data. The run checks B's 1,001 results (digests against B's attestation, one Ed25519
    //    verification), replays the fold over the list (1,000 pars, 1,000 stream values),
    //    takes the canon of the stream and signs it.
    bench_case(&mut g, "stream_merge_1000", || {
        let air = substitute(scripts::STREAM, &a, &b);
        let pb = params(&a, &b);
        let items: Vec<String> = (0..1000).map(|i| format!("item-{i}")).collect();
        let a1 = ok_run(&air, &[], &[], &pa, &none());
        let b1 = ok_run(&air, &[], &a1.data, &pb, &none());
        let b2 = ok_run(&air, &b1.data, &[], &pb, &answer_all(&b1, |_| serde_json::to_string(&items).expect("json")));
        assert_eq!(b2.call_requests.len(), 1000);
        let b3 = ok_run(&air, &b2.data, &[], &pb, &answer_all(&b2, |r| format!("{{\"value\":{}}}", r.arguments[0])));
        assert_eq!(b3.next_peers, vec![a.id.clone()]);
        let merged = ok_run(&air, &a1.data, &b3.data, &pa, &none());
        assert!(merged.call_requests.is_empty() && merged.next_peers.is_empty());
        case(air, a1.data, b3.data, none())
    });

    // 7. A peer that makes 1,000 local calls one after another (a balanced seq tree of calls on
    //    %init_peer_id%): each run consumes one result, issues the next request and signs all of
    //    this peer's results. Timed: the run that consumes the 1,000th (999 results replayed,
    //    1,000 results signed, the digests of the 999 carried ones taken from the previous
    //    attestation). Not a reference shape: the steady state of a long particle on one peer.
    bench_case(&mut g, "local_calls_1000", || {
        let leaves: Vec<String> =
            (0..1000).map(|i| format!(r#"(call %init_peer_id% ("svc" "get") [{i}] r{i})"#)).collect();
        let air = balanced_seq(leaves);
        let answer = |out: &Outcome| answer_all(out, |r| format!("\"result {}\"", r.arguments[0]));
        let mut out = ok_run(&air, &[], &[], &pa, &none());
        for _ in 1..1000 {
            out = ok_run(&air, &out.data, &[], &pa, &answer(&out));
        }
        assert_eq!(out.call_requests.len(), 1);
        let results = answer(&out);
        assert!(ok_run(&air, &out.data, &[], &pa, &results).call_requests.is_empty());
        case(air, out.data, vec![], results)
    });
    g.finish();
}

criterion_group! {
    name = interpreter;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = benches
}
criterion_main!(interpreter);
