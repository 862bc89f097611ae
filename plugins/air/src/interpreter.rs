//! The interpreter's entry point: [`run`] takes the script, this peer's previous data, the
//! data that arrived, the run parameters and the results of earlier call requests, and returns an
//! [`Outcome`]. No I/O happens here.

use std::collections::{BTreeMap, HashMap};

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value as JValue;

use crate::data::{CallState, CanonResult, CanonState, Data, DataError, ServiceResult, State};
use crate::exec::{Ctx, Engine, ExecError};
use crate::parser::{ParseLimits, parse_with_limits};
use crate::trace::TraceHandler;
use crate::value::Tetraplet;

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
    /// Argument values.
    pub arguments: Vec<JValue>,
    /// Provenance of each argument (one per element for canon streams).
    pub tetraplets: Vec<Vec<Tetraplet>>,
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

fn decode(bytes: &[u8], which: &str) -> Result<Data, (i64, String)> {
    Data::decode(bytes).map_err(|e| match e {
        DataError::Version { .. } => (code::VERSION, format!("{which}: {e}")),
        _ => (code::DATA, format!("{which}: {e}")),
    })
}

/// A signed result in a trace.
#[derive(Clone, Copy, PartialEq)]
enum Signed<'a> {
    Executed(&'a ServiceResult),
    Failed(&'a ServiceResult),
    Canon(&'a CanonResult),
}

impl<'a> Signed<'a> {
    fn of(state: &'a State) -> Option<Self> {
        match state {
            State::Call(CallState::Executed { result, .. }) => Some(Signed::Executed(result)),
            State::Call(CallState::Failed(result)) => Some(Signed::Failed(result)),
            State::Canon(CanonState::Executed(result)) => Some(Signed::Canon(result)),
            _ => None,
        }
    }

    fn signature(self) -> &'a [u8] {
        match self {
            Signed::Executed(r) | Signed::Failed(r) => &r.signature,
            Signed::Canon(r) => &r.signature,
        }
    }

    fn verify(self, particle_id: &str) -> Result<(), String> {
        let (digest, peer) = match self {
            Signed::Executed(r) => (r.signed_digest(particle_id, false), &r.tetraplet.peer_pk),
            Signed::Failed(r) => (r.signed_digest(particle_id, true), &r.tetraplet.peer_pk),
            Signed::Canon(r) => (r.signed_digest(particle_id), &r.tetraplet.peer_pk),
        };
        crate::data::verify(peer, &digest, self.signature())
    }
}

/// Checks the signatures of results in `current` that `prev` does not already hold.
///
/// A result is already held when `prev` has an equal result (same kind, content and signature
/// bytes): `prev_data` is this peer's own data for this particle, whose results were verified
/// when they arrived (or signed here), so the signature over the same digest is valid. Only the
/// other results are hashed and verified; a run without signed results in `current` hashes
/// nothing.
fn verify_current(prev: &Data, current: &Data, particle_id: &str) -> Result<(), String> {
    let mut incoming = current.trace.iter().filter_map(Signed::of).peekable();
    if incoming.peek().is_none() {
        return Ok(());
    }
    let mut known: HashMap<&[u8], Vec<Signed<'_>>> = HashMap::new();
    for s in prev.trace.iter().filter_map(Signed::of) {
        known.entry(s.signature()).or_default().push(s);
    }
    for s in incoming {
        let held = known.get(s.signature()).is_some_and(|same| same.contains(&s));
        if !held {
            s.verify(particle_id)?;
            known.entry(s.signature()).or_default().push(s);
        }
    }
    Ok(())
}

/// Runs the interpreter once.
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
    let prev = match decode(prev_data, "previous data") {
        Ok(d) => d,
        Err((c, m)) => return refuse(prev_data, c, m),
    };
    let current = match decode(current_data, "current data") {
        Ok(d) => d,
        Err((c, m)) => return refuse(prev_data, c, m),
    };
    if let Err(msg) = verify_current(&prev, &current, &params.particle_id) {
        return refuse(prev_data, code::SIGNATURE, format!("signature check failed: {msg}"));
    }
    let parse_limits = ParseLimits { max_depth: limits.max_nesting, max_size: limits.max_air_size };
    let ast = match parse_with_limits(script, parse_limits) {
        Ok(ast) => ast,
        Err(e) => return refuse(prev_data, code::PARSE, e.to_string()),
    };
    let ctx = Ctx {
        init_peer_id: &params.init_peer_id,
        current_peer_id: &params.current_peer_id,
        timestamp: params.timestamp,
        ttl: params.ttl,
        particle_id: &params.particle_id,
        key: SigningKey::from_bytes(&secret),
        limits,
    };
    let trace = TraceHandler::new(prev.trace, current.trace);
    let result = Engine::new(&ast, ctx, trace, prev.lcid, call_results).run();
    let (ret_code, error_message) = match &result.result {
        Ok(()) if !result.unconsumed.is_empty() => (
            code::UNPROCESSED_CALL_RESULTS,
            format!("call results {:?} were not consumed by any call", result.unconsumed),
        ),
        Ok(()) => (0, String::new()),
        Err(ExecError::Uncatchable(e)) => return refuse(prev_data, e.code(), e.to_string()),
        Err(e @ ExecError::Catchable(_)) => (e.code(), e.message()),
    };
    let data =
        Data { interpreter_version: env!("CARGO_PKG_VERSION").to_string(), trace: result.trace, lcid: result.lcid };
    Outcome {
        ret_code,
        error_message,
        data: data.encode(),
        next_peers: result.next_peers,
        call_requests: result.call_requests,
    }
}
