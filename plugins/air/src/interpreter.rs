//! The interpreter's entry point: [`run`] takes the script, this peer's previous data, the
//! data that arrived, the run parameters and the results of earlier call requests, and returns an
//! [`Outcome`]. No I/O happens here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value as JValue;

use crate::data::{Attestation, Data, DataError, Produced, State, TetrapletDigests};
use crate::exec::{Ctx, Engine, ExecError};
use crate::hash::{FastMap, FastSet};
use crate::parser::{ParseBuffers, ParseLimits};
use crate::scratch;
use crate::script_cache::ScriptCache;
use crate::trace::TraceHandler;
use crate::value::Tetraplets;

/// Limits that protect a peer from hostile scripts and data. Each one turns into an error
/// outcome (with the previous data kept), never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Script size in bytes (preparation error 10).
    pub max_air_size: usize,
    /// Size of `prev_data` and of `current_data` in bytes (preparation error 10).
    pub max_data_size: usize,
    /// Size of one call result text in bytes (preparation error 10).
    pub max_call_result_size: usize,
    /// Instruction nesting accepted by the parser (parse error 1).
    pub max_nesting: usize,
    /// Values per stream (uncatchable 20013).
    pub max_stream_len: usize,
    /// States in the result trace (uncatchable 20021).
    pub max_trace_len: usize,
    /// Instructions executed in one run (uncatchable 20021).
    pub max_steps: u64,
    /// Open instructions at once, e.g. nested `next` (uncatchable 20021).
    pub max_stack: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_air_size: 4 * 1024 * 1024,
            max_data_size: 64 * 1024 * 1024,
            max_call_result_size: 4 * 1024 * 1024,
            max_nesting: 1000,
            max_stream_len: 1024,
            max_trace_len: 1_000_000,
            max_steps: 10_000_000,
            max_stack: 1_000_000,
        }
    }
}

/// Parameters of one run.
#[derive(Clone)]
pub struct RunParams {
    /// The particle's init peer id.
    pub init_peer_id: String,
    /// This peer's id (`12D3KooW…`, see [`crate::peer_id`]).
    pub current_peer_id: String,
    /// The particle's timestamp (ms).
    pub timestamp: u64,
    /// The particle's ttl (ms).
    pub ttl: u32,
    /// The particle id (salts the signatures).
    pub particle_id: String,
    /// 32-byte Ed25519 secret seed of this peer: it signs the results this peer produces.
    pub secret_key: Vec<u8>,
    /// Limits.
    pub limits: Limits,
}

impl std::fmt::Debug for RunParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunParams")
            .field("init_peer_id", &self.init_peer_id)
            .field("current_peer_id", &self.current_peer_id)
            .field("timestamp", &self.timestamp)
            .field("ttl", &self.ttl)
            .field("particle_id", &self.particle_id)
            .field("secret_key", &"<redacted>")
            .field("limits", &self.limits)
            .finish()
    }
}

/// A service's answer to a call request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallResult {
    /// 0 for success.
    pub ret_code: i32,
    /// The result as JSON text (or the error message when `ret_code ≠ 0`).
    pub result: String,
}

/// Call results by call id.
pub type CallResults = BTreeMap<u32, CallResult>;

/// A local service call the host must perform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRequest {
    /// Call id (unique per particle and peer); the result is passed back under it.
    pub id: u32,
    /// Service.
    pub service_id: String,
    /// Function.
    pub function_name: String,
    /// Argument values (shared with the interpreter's variables: cloning one is cheap).
    pub arguments: Vec<Arc<JValue>>,
    /// Provenance of each argument (one per element for canon streams).
    pub tetraplets: Vec<Tetraplets>,
}

/// What a run returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// 0 on success; else the error code (SPEC §1.5).
    pub ret_code: i64,
    /// Empty on success.
    pub error_message: String,
    /// The new data (the previous data, unchanged, after a preparation or uncatchable error).
    pub data: Vec<u8>,
    /// Peers to send the particle to.
    pub next_peers: Vec<String>,
    /// Local calls to perform.
    pub call_requests: Vec<CallRequest>,
}

/// Preparation error codes.
mod code {
    pub const PARSE: i64 = 1;
    pub const DATA: i64 = 2;
    pub const VERSION: i64 = 6;
    pub const KEY: i64 = 7;
    pub const SIGNATURE: i64 = 9;
    pub const SIZE: i64 = 10;
    pub const UNPROCESSED_CALL_RESULTS: i64 = 30000;
}

fn refuse(prev_data: &[u8], ret_code: i64, error_message: String) -> Outcome {
    Outcome { ret_code, error_message, data: prev_data.to_vec(), next_peers: Vec::new(), call_requests: Vec::new() }
}

fn decode_error(which: &str, e: DataError) -> (i64, String) {
    match e {
        DataError::Version { .. } => (code::VERSION, format!("{which}: {e}")),
        _ => (code::DATA, format!("{which}: {e}")),
    }
}

fn decode<'a>(bytes: &'a [u8], which: &str, trace: Vec<State<'a>>) -> Result<Data<'a>, (i64, String)> {
    Data::decode_into(bytes, trace).map_err(|e| decode_error(which, e))
}

/// Checks that every result in `current` is covered by a valid attestation of its producer.
///
/// Attestations in `current` that `prev` already holds (same peer, digests and signature) are
/// trusted: `prev_data` is this peer's own data for this particle, whose attestations were
/// verified when they arrived (or signed here). Every other attestation in `current` is verified
/// (one Ed25519 verification each), and must be valid even if it covers nothing. Then each result
/// in `current` is hashed and its digest looked up among the attestations of the peer named in
/// its tetraplet: those of `current`, then those of `prev`.
fn verify_current(prev: &Data<'_>, current: &Data<'_>, particle_id: &str) -> Result<(), String> {
    if current.attestations.is_empty() && !current.trace.iter().any(|s| s.result().is_some()) {
        return Ok(());
    }
    let held: HashMap<&[u8], &Attestation> = prev.attestations.iter().map(|a| (a.signature.as_slice(), a)).collect();
    for a in &current.attestations {
        if !held.get(a.signature.as_slice()).is_some_and(|p| *p == a) {
            a.verify(particle_id)?;
        }
    }
    fn covered<'s>(attestations: &'s [Attestation<'_>]) -> FastMap<&'s str, FastSet<[u8; 32]>> {
        let mut sets: FastMap<&str, FastSet<[u8; 32]>> = FastMap::default();
        for a in attestations {
            sets.entry(&*a.peer).or_default().extend(a.digests.iter().copied());
        }
        sets
    }
    // A peer's attestation lists the digests of its results in trace order (that is how
    // `attestations` signs), and its data usually arrives as it sent it: each result is first
    // compared with the next digest of its peer's first attestation in `current`. Only a result
    // that is not that digest is looked up in the sets of all attestations (built then).
    let mut next: Vec<(&[[u8; 32]], usize)> = Vec::with_capacity(current.attestations.len());
    let mut first_of: FastMap<&str, usize> = FastMap::default();
    for a in &current.attestations {
        first_of.entry(&*a.peer).or_insert_with(|| {
            next.push((&a.digests, 0));
            next.len() - 1
        });
    }
    let mut from_current = None;
    let mut from_prev = None;
    let mut memo = TetrapletDigests::default();
    // the entry in `next` of the last result's tetraplet (results of one service share it)
    let mut last: (*const crate::value::Tetraplet, Option<usize>) = (std::ptr::null(), None);
    for r in current.trace.iter().filter_map(State::result) {
        let digest = r.digest_with(&mut memo);
        let peer = r.peer();
        let t = Arc::as_ptr(r.tetraplet());
        if last.0 != t {
            last = (t, first_of.get(peer).copied());
        }
        if let Some(e) = last.1 {
            let (digests, k) = &mut next[e];
            if digests.get(*k) == Some(&digest) {
                *k += 1;
                continue;
            }
        }
        let from_current = from_current.get_or_insert_with(|| covered(&current.attestations));
        if from_current.get(peer).is_some_and(|s| s.contains(&digest)) {
            continue;
        }
        let from_prev = from_prev.get_or_insert_with(|| covered(&prev.attestations));
        if !from_prev.get(peer).is_some_and(|s| s.contains(&digest)) {
            return Err(format!("a result of peer '{peer}' is not covered by a valid signature of that peer"));
        }
    }
    Ok(())
}

/// Whether a result was produced by `me`. Results of one service share their tetraplet: the
/// peer is compared once per tetraplet.
fn produced_by(me: &str) -> impl FnMut(&Produced<'_, '_>) -> bool + '_ {
    let mut last: (*const crate::value::Tetraplet, bool) = (std::ptr::null(), false);
    move |r| {
        let t = Arc::as_ptr(r.tetraplet());
        if last.0 != t {
            last = (t, r.peer() == me);
        }
        last.1
    }
}

/// The digests of this peer's results in its previous data, from its attestation there: a
/// result carried from that data into the new trace (the same state) is not hashed again. A run
/// that adds one result to a trace of `n` of its own otherwise hashes all `n + 1` (half of such
/// a run's work at `n` = 1,000).
///
/// The attestation lists its digests in trace order, one per result of this peer (that is how
/// [`attestations`] signs); the i-th result of this peer in the previous trace has the i-th
/// digest. A result of the new trace is found by the address of its value's bytes (each result
/// in the previous data has its own bytes there) and taken only if it is that state: same kind,
/// same text, same tetraplet, same argument form. Used only when the previous data is of this
/// interpreter version and holds exactly one attestation of this peer covering exactly its
/// results; otherwise every digest is computed. (A wrong reuse could only make the new signature
/// fail to cover a result, which the next peer refuses; it can't make it cover another.)
#[derive(Default)]
struct Reuse<'p, 'a> {
    prev: &'p [State<'a>],
    digests: std::borrow::Cow<'p, [[u8; 32]]>,
    /// (address of the value's bytes, index in `prev`, index in `digests`), by address.
    by_address: Vec<(usize, u32, u32)>,
}

impl<'p, 'a> Reuse<'p, 'a> {
    fn new(prev: &'p [State<'a>], digests: std::borrow::Cow<'p, [[u8; 32]]>, me: &str) -> Self {
        let mut by_address = Vec::new();
        let mut k = 0u32;
        let mut mine = produced_by(me);
        for (i, s) in prev.iter().enumerate() {
            let Some(r) = s.result() else { continue };
            if !mine(&r) {
                continue;
            }
            if let Produced::Executed(sr) | Produced::Failed(sr) = r {
                by_address.push((sr.value.as_ptr() as usize, i as u32, k));
            }
            k += 1;
        }
        if k as usize != digests.len() {
            return Reuse::default();
        }
        by_address.sort_unstable_by_key(|e| e.0);
        Reuse { prev, digests, by_address }
    }

    /// The digest of `r` when it is a state of the previous data.
    #[inline]
    fn digest(&self, r: &Produced<'_, '_>) -> Option<[u8; 32]> {
        let (Produced::Executed(new) | Produced::Failed(new)) = r else { return None };
        let address = new.value.as_ptr() as usize;
        let at = self.by_address.binary_search_by_key(&address, |e| e.0).ok()?;
        let (_, i, k) = self.by_address[at];
        let old = self.prev[i as usize].result()?;
        let same_kind = matches!(
            (r, old),
            (Produced::Executed(_), Produced::Executed(_)) | (Produced::Failed(_), Produced::Failed(_))
        );
        let (Produced::Executed(old) | Produced::Failed(old)) = old else { return None };
        let same = same_kind
            && new.value.len() == old.value.len()
            && new.argument_hash == old.argument_hash
            && (Arc::ptr_eq(&new.tetraplet, &old.tetraplet) || new.tetraplet == old.tetraplet);
        same.then(|| self.digests[k as usize])
    }
}

/// The attestations of the new data: those of both inputs (once each), without those made
/// redundant by a larger one of the same peer, and — when this run produced results — without
/// this peer's old ones, replaced by one signature over all of its results in the new trace.
///
/// `prev_trace`: the previous data's trace, when the digests of its attestations may be reused
/// (see [`Reuse`]).
fn attestations<'t, 'a: 't>(
    prev: Vec<Attestation<'a>>,
    current: Vec<Attestation<'a>>,
    trace: impl Iterator<Item = &'t State<'a>>,
    prev_trace: Option<&[State<'a>]>,
    produced: bool,
    params: &RunParams,
    secret: &[u8; 32],
) -> Vec<Attestation<'a>> {
    let me = params.current_peer_id.as_str();
    // this peer's one attestation in its previous data (before the loop drops it)
    let reuse = match (produced, prev_trace) {
        (true, Some(prev_trace)) => {
            let mut mine = prev.iter().filter(|a| &*a.peer == me);
            match (mine.next(), mine.next()) {
                (Some(a), None) => Reuse::new(prev_trace, a.digests.clone(), me),
                _ => Reuse::default(),
            }
        }
        _ => Reuse::default(),
    };
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut all: Vec<Attestation<'a>> = Vec::with_capacity(prev.len() + current.len() + 1);
    for a in prev.into_iter().chain(current) {
        if produced && &*a.peer == me {
            continue;
        }
        if seen.insert(a.signature.clone()) {
            all.push(a);
        }
    }
    // per peer with several: keep the largest first, then only those that add a digest
    let mut per_peer: HashMap<Arc<str>, usize> = HashMap::new();
    for a in &all {
        *per_peer.entry(a.peer.clone()).or_default() += 1;
    }
    if per_peer.values().any(|n| *n > 1) {
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.sort_by_key(|i| std::cmp::Reverse(all[*i].digests.len()));
        let mut keep = vec![true; all.len()];
        let mut union: HashMap<Arc<str>, HashSet<[u8; 32]>> = HashMap::new();
        for i in order {
            let a = &all[i];
            if per_peer[&a.peer] < 2 {
                continue;
            }
            let set = union.entry(a.peer.clone()).or_default();
            let before = set.len();
            set.extend(a.digests.iter().copied());
            keep[i] = set.len() > before || a.digests.is_empty() && before == 0;
        }
        let mut k = keep.into_iter();
        all.retain(|_| k.next().unwrap_or(true));
    }
    if produced {
        let mut memo = TetrapletDigests::default();
        let mut mine = produced_by(me);
        let digests: Vec<[u8; 32]> = trace
            .filter_map(State::result)
            .filter(|r| mine(r))
            .map(|r| reuse.digest(&r).unwrap_or_else(|| r.digest_with(&mut memo)))
            .collect();
        if !digests.is_empty() {
            let key = crate::peer_id::signing_key(secret);
            all.push(Attestation::sign(&key, &params.particle_id, me, digests));
        }
    }
    all
}

/// Runs the interpreter once, reusing the parsed script from [`ScriptCache::global`] when the
/// same text ran before (see [`run_with_cache`]).
///
/// Never panics on untrusted input: malformed data, oversized inputs, deep scripts and
/// forged results all give an error [`Outcome`]. Preparation errors (1–10) and uncatchable
/// errors (20000…) return `prev_data` unchanged with no next peers and no call requests; a
/// catchable error escaping the script returns the new data with its code (10000…).
pub fn run(
    script: &str,
    prev_data: &[u8],
    current_data: &[u8],
    params: &RunParams,
    call_results: &CallResults,
) -> Outcome {
    run_with_cache(script, prev_data, current_data, params, call_results, ScriptCache::global())
}

/// [`run`] with a given cache of parsed scripts (`&ScriptCache::new(0, 0)`: parse every time).
pub fn run_with_cache(
    script: &str,
    prev_data: &[u8],
    current_data: &[u8],
    params: &RunParams,
    call_results: &CallResults,
    scripts: &ScriptCache,
) -> Outcome {
    let limits = &params.limits;
    if script.len() > limits.max_air_size {
        let msg = format!("script is {} bytes, the limit is {}", script.len(), limits.max_air_size);
        return refuse(prev_data, code::SIZE, msg);
    }
    for (which, d) in [("previous data", prev_data), ("current data", current_data)] {
        if d.len() > limits.max_data_size {
            let msg = format!("{which} is {} bytes, the limit is {}", d.len(), limits.max_data_size);
            return refuse(prev_data, code::SIZE, msg);
        }
    }
    if let Some((id, r)) = call_results.iter().find(|(_, r)| r.result.len() > limits.max_call_result_size) {
        let msg = format!("call result {id} is {} bytes, the limit is {}", r.result.len(), limits.max_call_result_size);
        return refuse(prev_data, code::SIZE, msg);
    }
    let Ok(secret) = <[u8; 32]>::try_from(params.secret_key.as_slice()) else {
        let msg =
            format!("malformed key pair: expected a 32-byte Ed25519 secret, got {} bytes", params.secret_key.len());
        return refuse(prev_data, code::KEY, msg);
    };
    let mut buffers = scratch::take();
    let mut layout = std::mem::take(&mut buffers.layout);
    // a run refused from here on still hands its buffers back for the next run (a hostile
    // particle does not make the next one fault its memory in again)
    let give_back = |b: scratch::Buffers<'_>| scratch::give(b.emptied());
    let prev = match Data::decode_with_layout(prev_data, buffers.prev, &mut layout) {
        Ok(d) => d,
        Err(e) => {
            give_back(scratch::Buffers { prev: Vec::new(), layout, ..buffers });
            let (c, m) = decode_error("previous data", e);
            return refuse(prev_data, c, m);
        }
    };
    let current = match decode(current_data, "current data", buffers.cur) {
        Ok(d) => d,
        Err((c, m)) => {
            give_back(scratch::Buffers { prev: prev.trace, layout, cur: Vec::new(), ..buffers });
            return refuse(prev_data, c, m);
        }
    };
    if let Err(msg) = verify_current(&prev, &current, &params.particle_id) {
        give_back(scratch::Buffers { prev: prev.trace, layout, cur: current.trace, ..buffers });
        return refuse(prev_data, code::SIGNATURE, format!("signature check failed: {msg}"));
    }
    let parse_limits = ParseLimits { max_depth: limits.max_nesting, max_size: limits.max_air_size };
    let mut parse_buffers = buffers.parse;
    let parsed = match scripts.parse(script, parse_limits, &mut parse_buffers) {
        Ok(parsed) => parsed,
        Err(e) => {
            give_back(scratch::Buffers {
                prev: prev.trace,
                layout,
                cur: current.trace,
                parse: parse_buffers,
                ..buffers
            });
            return refuse(prev_data, code::PARSE, e.to_string());
        }
    };
    let ast = parsed.ast();
    let ctx = Ctx {
        init_peer_id: &params.init_peer_id,
        current_peer_id: &params.current_peer_id,
        timestamp: params.timestamp,
        ttl: params.ttl,
        limits,
        constant_args: parsed.constant_args(),
    };
    let trace = TraceHandler::with_buffers(prev.trace, current.trace, buffers.result, buffers.pos_map);
    let result = Engine::new(ast, ctx, trace, prev.lcid, call_results, buffers.texts, buffers.env).run();
    let spare = result.spare;
    let (ret_code, error_message) = match &result.result {
        Ok(()) if !result.unconsumed.is_empty() => (
            code::UNPROCESSED_CALL_RESULTS,
            format!("call results {:?} were not consumed by any call", result.unconsumed),
        ),
        Ok(()) => (0, String::new()),
        Err(ExecError::Uncatchable(e)) => {
            let [prev, cur] = spare.inputs;
            let (pos_map, texts, env, result) = (spare.pos_map, spare.texts, spare.env, result.trace);
            let parse = ParseBuffers::default();
            let mut kept = scratch::Buffers { prev, layout, cur, result, pos_map, texts, env, parse }.emptied();
            kept.parse = parsed.into_buffers(parse_buffers).kept(scratch::MAX_KEPT_BYTES);
            scratch::give(kept);
            return refuse(prev_data, e.code(), e.to_string());
        }
        Err(e @ ExecError::Catchable(_)) => (e.code(), e.message()),
    };
    let [prev_trace, cur] = spare.inputs;
    // the result trace: the first `shared` states of the previous one, then `result.trace`
    let shared = &prev_trace[..result.shared.min(prev_trace.len())];
    let full = shared.iter().chain(&result.trace);
    // this peer's digests in its previous data, when they are of this version (see `Reuse`)
    let reusable = prev.interpreter_version == env!("CARGO_PKG_VERSION");
    let reuse = reusable.then_some(&*prev_trace);
    let attestations =
        attestations(prev.attestations, current.attestations, full, reuse, result.produced, params, &secret);
    let data = Data {
        interpreter_version: env!("CARGO_PKG_VERSION").to_string(),
        trace: result.trace,
        lcid: result.lcid,
        attestations,
    };
    // a replay's trace starts with its previous one: those states' bytes are copied
    let encoded = data.encode_reusing(&prev_trace, shared.len(), &layout);
    let (next_peers, call_requests) = (result.next_peers, result.call_requests);
    let mut kept = scratch::Buffers {
        prev: prev_trace,
        layout,
        cur,
        result: data.trace,
        pos_map: spare.pos_map,
        texts: spare.texts,
        env: spare.env,
        parse: ParseBuffers::default(),
    }
    .emptied();
    kept.parse = parsed.into_buffers(parse_buffers).kept(scratch::MAX_KEPT_BYTES);
    scratch::give(kept);
    Outcome { ret_code, error_message, data: encoded, next_peers, call_requests }
}
