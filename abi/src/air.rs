//! The `air` kind: runs one step of an AIR script, sans I/O.
//!
//! `(script, prev_data, current_data, run parameters, call results) -> outcome`. The host owns the
//! particle: it stores the returned data, executes the call requests and sends the particle to the
//! next peers. Values cross as JSON text; the interpreter's data is opaque bytes in its own format.

use abi_stable::StableAbi;
use abi_stable::sabi_trait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RBox, RResult, RString, RVec};

use crate::error::{Error, Result, guard};

/// The particle and peer a run happens for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunParams {
    /// The peer that started the particle.
    pub init_peer_id: String,
    /// The peer running this step.
    pub current_peer_id: String,
    /// The particle's id.
    pub particle_id: String,
    /// The particle's timestamp, ms since the Unix epoch.
    pub timestamp: u64,
    /// The particle's time to live, ms.
    pub ttl: u32,
    /// The current peer's ed25519 secret key: the interpreter signs the results this peer produced.
    pub signing_key: Vec<u8>,
}

/// The answer to one call request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallResult {
    /// The id of the request it answers.
    pub id: u32,
    /// 0 for success; anything else is a service error.
    pub ret_code: i64,
    /// The result (or the error message) as JSON text.
    pub result: String,
}

/// One run of the interpreter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// The AIR script.
    pub script: String,
    /// The data this peer stored after its previous run (empty at first).
    pub prev_data: Vec<u8>,
    /// The data that arrived with the particle.
    pub current_data: Vec<u8>,
    /// Particle and peer.
    pub params: RunParams,
    /// Answers to earlier call requests.
    pub call_results: Vec<CallResult>,
}

/// A service call the host must make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRequest {
    /// Unique per peer and particle; the answer carries it back.
    pub id: u32,
    /// The service to call.
    pub service_id: String,
    /// The function to call.
    pub function_name: String,
    /// The arguments as a JSON array.
    pub arguments: String,
    /// Where each argument came from, as JSON (`[[{peer_pk, service_id, function_name, lens}]]`).
    pub tetraplets: String,
}

/// What a run produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// 0 on success, else an AIR error code (catchable 10000.., uncatchable 20000..).
    pub ret_code: i64,
    /// Empty on success.
    pub error_message: String,
    /// The new data: store it and send it on.
    pub data: Vec<u8>,
    /// Peers the particle goes to next.
    pub next_peers: Vec<String>,
    /// Calls to make on this peer.
    pub call_requests: Vec<CallRequest>,
}

/// An AIR interpreter, as a plugin author implements it.
pub trait Interpreter: Send + Sync + 'static {
    /// Runs one step.
    ///
    /// # Errors
    /// Only for failures of the interpreter itself; script errors are an [`Outcome`] with a
    /// non-zero `ret_code`.
    fn run(&self, request: Request) -> Result<Outcome>;
}

#[repr(C)]
#[derive(StableAbi)]
pub(crate) struct RawRunParams {
    init_peer_id: RString,
    current_peer_id: RString,
    particle_id: RString,
    timestamp: u64,
    ttl: u32,
    signing_key: RVec<u8>,
}

#[repr(C)]
#[derive(StableAbi)]
pub(crate) struct RawCallResult {
    id: u32,
    ret_code: i64,
    result: RString,
}

#[repr(C)]
#[derive(StableAbi)]
pub(crate) struct RawRequest {
    script: RString,
    prev_data: RVec<u8>,
    current_data: RVec<u8>,
    params: RawRunParams,
    call_results: RVec<RawCallResult>,
}

#[repr(C)]
#[derive(StableAbi)]
pub(crate) struct RawCallRequest {
    id: u32,
    service_id: RString,
    function_name: RString,
    arguments: RString,
    tetraplets: RString,
}

#[repr(C)]
#[derive(StableAbi)]
pub(crate) struct RawOutcome {
    ret_code: i64,
    error_message: RString,
    data: RVec<u8>,
    next_peers: RVec<RString>,
    call_requests: RVec<RawCallRequest>,
}

impl From<Request> for RawRequest {
    fn from(r: Request) -> Self {
        let p = r.params;
        Self {
            script: r.script.into(),
            prev_data: r.prev_data.into(),
            current_data: r.current_data.into(),
            params: RawRunParams {
                init_peer_id: p.init_peer_id.into(),
                current_peer_id: p.current_peer_id.into(),
                particle_id: p.particle_id.into(),
                timestamp: p.timestamp,
                ttl: p.ttl,
                signing_key: p.signing_key.into(),
            },
            call_results: r
                .call_results
                .into_iter()
                .map(|c| RawCallResult { id: c.id, ret_code: c.ret_code, result: c.result.into() })
                .collect(),
        }
    }
}

impl From<RawRequest> for Request {
    fn from(r: RawRequest) -> Self {
        let p = r.params;
        Self {
            script: r.script.into(),
            prev_data: r.prev_data.into_vec(),
            current_data: r.current_data.into_vec(),
            params: RunParams {
                init_peer_id: p.init_peer_id.into(),
                current_peer_id: p.current_peer_id.into(),
                particle_id: p.particle_id.into(),
                timestamp: p.timestamp,
                ttl: p.ttl,
                signing_key: p.signing_key.into_vec(),
            },
            call_results: r
                .call_results
                .into_iter()
                .map(|c| CallResult { id: c.id, ret_code: c.ret_code, result: c.result.into() })
                .collect(),
        }
    }
}

impl From<Outcome> for RawOutcome {
    fn from(o: Outcome) -> Self {
        Self {
            ret_code: o.ret_code,
            error_message: o.error_message.into(),
            data: o.data.into(),
            next_peers: o.next_peers.into_iter().map(RString::from).collect(),
            call_requests: o
                .call_requests
                .into_iter()
                .map(|c| RawCallRequest {
                    id: c.id,
                    service_id: c.service_id.into(),
                    function_name: c.function_name.into(),
                    arguments: c.arguments.into(),
                    tetraplets: c.tetraplets.into(),
                })
                .collect(),
        }
    }
}

impl From<RawOutcome> for Outcome {
    fn from(o: RawOutcome) -> Self {
        Self {
            ret_code: o.ret_code,
            error_message: o.error_message.into(),
            data: o.data.into_vec(),
            next_peers: o.next_peers.into_iter().map(String::from).collect(),
            call_requests: o
                .call_requests
                .into_iter()
                .map(|c| CallRequest {
                    id: c.id,
                    service_id: c.service_id.into(),
                    function_name: c.function_name.into(),
                    arguments: c.arguments.into(),
                    tetraplets: c.tetraplets.into(),
                })
                .collect(),
        }
    }
}

#[sabi_trait]
pub(crate) trait AirFfi: Send + Sync {
    #[sabi(last_prefix_field)]
    fn run(&self, request: RawRequest) -> RResult<RawOutcome, Error>;
}

pub(crate) type AirBox = AirFfi_TO<'static, RBox<()>>;

struct Exported(Box<dyn Interpreter>);

impl AirFfi for Exported {
    fn run(&self, request: RawRequest) -> RResult<RawOutcome, Error> {
        guard("air.run", || self.0.run(request.into()).map(RawOutcome::from))
    }
}

pub(crate) fn export(i: Box<dyn Interpreter>) -> AirBox {
    AirFfi_TO::from_value(Exported(i), TD_Opaque)
}

/// Host side: an interpreter provided by a loaded plugin. Implements [`Interpreter`].
pub struct Loaded {
    inner: AirBox,
    plugin: String,
}

impl Loaded {
    pub(crate) fn new(inner: AirBox, plugin: String) -> Self {
        Self { inner, plugin }
    }
    /// The name of the plugin that provides this interpreter.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("air::Loaded").field("plugin", &self.plugin).finish_non_exhaustive()
    }
}

impl Interpreter for Loaded {
    fn run(&self, request: Request) -> Result<Outcome> {
        self.inner.run(request.into()).into_result().map(Outcome::from)
    }
}
