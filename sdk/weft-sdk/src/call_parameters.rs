use serde::{Deserialize, Serialize};

use crate::abi;

/// The parameters of the call being served, as weft passes them (`weft.call_parameters`).
///
/// In a call from another module of the service, the callee sees the caller's parameters except
/// [`function_name`](Self::function_name) (its own) and [`tetraplets`](Self::tetraplets) (empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CallParameters {
    /// The particle the call comes from (`""` for a local `weft service call`).
    pub particle_id: String,
    /// The peer that started the particle.
    pub init_peer_id: String,
    /// The particle's timestamp, milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The particle's time to live, milliseconds.
    pub ttl: u32,
    /// The service being called.
    pub service_id: String,
    /// The function being called.
    pub function_name: String,
    /// This peer.
    pub host_peer_id: String,
    /// The peer that created the service.
    pub service_owner: String,
    /// One list per argument: where its value came from.
    pub tetraplets: Vec<Vec<Tetraplet>>,
}

/// Where an argument's value came from: the peer, service and function that produced it, and
/// the lens applied to the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tetraplet {
    /// The peer that produced the value.
    pub peer_pk: String,
    /// The service that produced it.
    pub service_id: String,
    /// The function that produced it.
    pub function_name: String,
    /// The lens applied to that function's result (`""` for the whole result).
    pub lens: String,
}

/// The parameters of the current call.
///
/// Call it while serving a call (from an exported function or what it calls), not from
/// `_initialize`. Off `wasm32` it returns what [`set_host_call_parameters`] set last on this
/// thread (the defaults unless set), so that functions using it can be unit-tested on the host.
///
/// # Panics
///
/// If weft passes bytes that are not call parameters (a bug in weft); the call then fails with
/// that message. Fields that a later weft appends after the known ones are ignored.
pub fn call_parameters() -> CallParameters {
    let bytes = abi::host::call_parameters();
    match crate::wire::take_from_bytes::<CallParameters>(&bytes) {
        Ok((parameters, _later_fields)) => parameters,
        Err(e) => panic!("weft.call_parameters: {}", e),
    }
}

/// Sets what [`call_parameters`] returns on this thread, for unit tests on the host.
///
/// Only on targets other than `wasm32`, where there is no weft to ask.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_host_call_parameters(parameters: CallParameters) {
    abi::host::set_call_parameters(parameters)
}

impl CallParameters {
    /// Call parameters with every field empty or zero, to build on in tests.
    pub fn new() -> Self {
        Self::default()
    }
}
