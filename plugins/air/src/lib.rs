//! weft's AIR interpreter.
//!
//! AIR is the script a particle carries from peer to peer (see `shared/air/SPEC.md`). This crate
//! has three parts:
//!
//! - [`parser`]: AIR text to a validated syntax tree (iterative; errors carry line and column);
//! - the sans-IO interpreter, [`run`]: one call per particle arrival or batch of service results.
//!   It replays the script over this peer's previous data merged with the data that arrived,
//!   and returns an [`Outcome`]: new [`data`], the peers to send the particle to, and the local
//!   service calls to make. It never touches the network, the clock or the disk;
//! - [`simulate`]: runs a script across simulated peers with scripted services
//!   (`weft air simulate`).
//!
//! Core concepts: the *trace* is the list of states (calls, pars, folds, aps, canons) a run
//! produced; every peer merges the traces it receives with its own, so results flow between
//! parallel branches. Results are signed by the peer that produced them (Ed25519, keyed by the
//! peer id, see [`peer_id`]); a forged result in incoming data is refused. Limits on sizes,
//! nesting and stream length live in [`Limits`].
//!
//! ```
//! use weft_plugin_air::{run, peer_id, CallResult, CallResults, Limits, RunParams};
//!
//! let secret = [7u8; 32];
//! let me = peer_id::peer_id_from_secret(&secret);
//! let params = RunParams {
//!     init_peer_id: me.clone(),
//!     current_peer_id: me.clone(),
//!     timestamp: 1_700_000_000_000,
//!     ttl: 60_000,
//!     particle_id: "particle-1".into(),
//!     secret_key: secret.to_vec(),
//!     limits: Limits::default(),
//! };
//! let air = r#"(call %init_peer_id% ("greeting" "hello") ["world"] x)"#;
//!
//! // first run: the interpreter asks the host to call the service
//! let first = run(air, &[], &[], &params, &CallResults::new());
//! assert_eq!(first.ret_code, 0);
//! let request = &first.call_requests[0];
//! assert_eq!((request.service_id.as_str(), request.function_name.as_str()), ("greeting", "hello"));
//!
//! // second run: feed the result back with the data of the first run
//! let results = CallResults::from([(request.id, CallResult { ret_code: 0, result: "\"hi\"".into() })]);
//! let second = run(air, &first.data, &[], &params, &results);
//! assert_eq!(second.ret_code, 0);
//! assert!(second.call_requests.is_empty() && second.next_peers.is_empty());
//! ```

#![warn(missing_docs)]

pub mod data;
mod exec;
mod hash;
mod interpreter;
mod json;
pub mod parser;
mod scratch;
mod script_cache;
pub use weft_abi::peer_id;
mod plugin;
pub mod simulate;
mod trace;
mod value;

pub use data::{Data, DataError, State};
pub use exec::{CatchableError, ErrorObjectError, ExecError, UncatchableError};
pub use interpreter::{CallRequest, CallResult, CallResults, Limits, Outcome, RunParams, run, run_with_cache};
pub use plugin::AirPlugin;
pub use script_cache::ScriptCache;
pub use trace::TraceError;
pub use value::{LambdaError, Tetraplet, Tetraplets};

/// The conformance and extra scenarios in `tests/` (path and text of each `.json` file), for
/// the tests that run every scenario.
#[cfg(test)]
pub(crate) fn scenario_files() -> Vec<(std::path::PathBuf, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files = Vec::new();
    for sub in ["conformance", "conformance-extra"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("scenario directory") {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).expect("scenario file");
                files.push((path, text));
            }
        }
    }
    assert!(files.len() > 200, "{} scenarios", files.len());
    files
}
