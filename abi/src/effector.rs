//! The `effector` kind: host capabilities that a blueprint can grant to modules.
//!
//! An effector plugin declares capabilities, each a named set of typed host functions. A module
//! whose config grants the capability may import them; every call says which service and module is
//! calling (so the plugin can scope its state per service) and carries the call parameters.

use abi_stable::StableAbi;
use abi_stable::sabi_trait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RBox, RResult, RString, RVec};

use crate::error::{Error, Result, guard};

/// One host function of a capability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFunction {
    /// The import name modules use.
    pub name: String,
    /// Its signature in the module interface notation, e.g. `fn(query: string) -> bytes`.
    pub signature: String,
}

/// A named set of host functions, granted as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capability {
    /// The capability's name, e.g. `"sqlite"`; it is also the import module name.
    pub name: String,
    /// Its functions.
    pub functions: Vec<HostFunction>,
}

/// What the host knows about the call that reached the effector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallParams {
    /// The particle being processed (empty for a local call).
    pub particle_id: String,
    /// The peer that started the particle.
    pub init_peer_id: String,
    /// The calling service.
    pub service_id: String,
    /// The peer that created the service.
    pub service_owner: String,
    /// The service function the particle called.
    pub function_name: String,
    /// This peer.
    pub host_peer_id: String,
    /// Where the arguments came from, as JSON.
    pub tetraplets: String,
}

/// One call of a host function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The capability.
    pub capability: String,
    /// The function within it.
    pub function: String,
    /// The calling module's name within its service.
    pub module: String,
    /// The call parameters (they include the calling service).
    pub params: CallParams,
    /// The arguments, postcard-encoded as the module ABI specifies.
    pub args: Vec<u8>,
}

/// An effector, as a plugin author implements it.
pub trait Effector: Send + Sync + 'static {
    /// The capabilities it offers.
    fn capabilities(&self) -> Vec<Capability>;
    /// Runs one host function; returns the postcard-encoded result.
    ///
    /// # Errors
    /// Anything the function reports; it reaches the module as an error value, never a trap.
    fn call(&self, call: Call) -> Result<Vec<u8>>;
}

#[repr(C)]
#[derive(StableAbi)]
pub(crate) struct RawHostFunction {
    name: RString,
    signature: RString,
}

#[repr(C)]
#[derive(StableAbi)]
pub(crate) struct RawCapability {
    name: RString,
    functions: RVec<RawHostFunction>,
}

#[repr(C)]
#[derive(StableAbi)]
pub(crate) struct RawCall {
    capability: RString,
    function: RString,
    module: RString,
    particle_id: RString,
    init_peer_id: RString,
    service_id: RString,
    service_owner: RString,
    function_name: RString,
    host_peer_id: RString,
    tetraplets: RString,
    args: RVec<u8>,
}

#[sabi_trait]
pub(crate) trait EffectorFfi: Send + Sync {
    fn capabilities(&self) -> RResult<RVec<RawCapability>, Error>;
    #[sabi(last_prefix_field)]
    fn call(&self, call: RawCall) -> RResult<RVec<u8>, Error>;
}

pub(crate) type EffectorBox = EffectorFfi_TO<'static, RBox<()>>;

struct Exported(Box<dyn Effector>);

impl EffectorFfi for Exported {
    fn capabilities(&self) -> RResult<RVec<RawCapability>, Error> {
        guard("effector.capabilities", || {
            Ok(self
                .0
                .capabilities()
                .into_iter()
                .map(|c| RawCapability {
                    name: c.name.into(),
                    functions: c
                        .functions
                        .into_iter()
                        .map(|f| RawHostFunction { name: f.name.into(), signature: f.signature.into() })
                        .collect(),
                })
                .collect())
        })
    }

    fn call(&self, c: RawCall) -> RResult<RVec<u8>, Error> {
        guard("effector.call", || {
            let call = Call {
                capability: c.capability.into(),
                function: c.function.into(),
                module: c.module.into(),
                params: CallParams {
                    particle_id: c.particle_id.into(),
                    init_peer_id: c.init_peer_id.into(),
                    service_id: c.service_id.into(),
                    service_owner: c.service_owner.into(),
                    function_name: c.function_name.into(),
                    host_peer_id: c.host_peer_id.into(),
                    tetraplets: c.tetraplets.into(),
                },
                args: c.args.into_vec(),
            };
            self.0.call(call).map(RVec::from)
        })
    }
}

pub(crate) fn export(e: Box<dyn Effector>) -> EffectorBox {
    EffectorFfi_TO::from_value(Exported(e), TD_Opaque)
}

/// Host side: an effector provided by a loaded plugin.
pub struct Loaded {
    inner: EffectorBox,
    plugin: String,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("effector::Loaded").field("plugin", &self.plugin).finish_non_exhaustive()
    }
}

impl Loaded {
    pub(crate) fn new(inner: EffectorBox, plugin: String) -> Self {
        Self { inner, plugin }
    }
    /// The name of the plugin that provides this effector.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }
    /// See [`Effector::capabilities`].
    ///
    /// # Errors
    /// The plugin panicked.
    pub fn capabilities(&self) -> Result<Vec<Capability>> {
        Ok(self
            .inner
            .capabilities()
            .into_result()?
            .into_iter()
            .map(|c| Capability {
                name: c.name.into(),
                functions: c
                    .functions
                    .into_iter()
                    .map(|f| HostFunction { name: f.name.into(), signature: f.signature.into() })
                    .collect(),
            })
            .collect())
    }
    /// See [`Effector::call`].
    ///
    /// # Errors
    /// As the plugin reports.
    pub fn call(&self, call: Call) -> Result<Vec<u8>> {
        let p = call.params;
        let raw = RawCall {
            capability: call.capability.into(),
            function: call.function.into(),
            module: call.module.into(),
            particle_id: p.particle_id.into(),
            init_peer_id: p.init_peer_id.into(),
            service_id: p.service_id.into(),
            service_owner: p.service_owner.into(),
            function_name: p.function_name.into(),
            host_peer_id: p.host_peer_id.into(),
            tetraplets: p.tetraplets.into(),
            args: call.args.into(),
        };
        self.inner.call(raw).into_result().map(RVec::into_vec)
    }
}
