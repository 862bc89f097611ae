//! The `effector` kind: host capabilities that a blueprint grants to modules, module by module.
//!
//! An effector plugin offers one or more [`Capability`]s: a name (the import module name modules
//! import it under, and blueprints grant it by) and an [`Interface`] of typed functions, in the
//! module ABI's own types ([`crate::interface`], the types of the `weft-interface` section). A
//! module whose blueprint config grants the capability may import those functions; the host checks
//! the module's declared import types against the capability's when it links the service.
//!
//! Each call reaches [`Effector::call`] as a [`Call`]: which capability and function, which service
//! and module is calling (so the plugin can scope its state per service), the call parameters of
//! the particle, the service's data directory, the module's configuration of the capability from
//! the blueprint, how much time the calling module has left, the postcard-encoded arguments, and
//! the service's [`State`] in the node's store. The result is the postcard-encoded results.
//!
//! # Errors and results
//! - An `Err` from [`Effector::call`] fails the calling module's call (it traps, and the service
//!   is re-instantiated before its next call). Use it for what a module cannot handle: malformed
//!   arguments, an unknown function, a broken plugin.
//! - Failures a module should handle (a SQL error, a host not on the allow-list, a timeout) belong
//!   in the results: by convention a function that can fail returns a record whose first field is
//!   `error: optional<string>`, or `optional<string>` alone when it has nothing else to return.
//!
//! # Across the ABI
//! A capability's interface crosses as a `weft-interface` section payload (format version 1,
//! function and record entries only: [`Interface::encode`]); the host decodes it with
//! [`Interface::decode`], which checks every limit of docs/interface-section.md. A call crosses as a
//! host-implemented object whose accessors the plugin calls; nothing is copied that the plugin
//! does not ask for, and the call parameters are the bytes of the module ABI's `call_parameters`
//! record, decoded by [`Call::params`] on demand.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use abi_stable::StableAbi;
use abi_stable::sabi_trait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec};

use crate::error::{Error, ErrorCode, Result, guard, guard_named};
use crate::interface::Interface;
use crate::storage::{Op, RawEntry, RawOp};

/// A named set of typed host functions, granted as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capability {
    /// The capability's name, e.g. `"sqlite"`: the import module name and the name blueprints
    /// grant. 1 to 64 characters of `a-z A-Z 0-9 _ - .`, not `weft` or a WASI module name.
    pub name: String,
    /// Its functions and the records they use (no imports).
    pub interface: Interface,
}

impl Capability {
    /// A capability called `name` with no functions yet.
    ///
    /// ```
    /// use weft_abi::effector::Capability;
    /// use weft_abi::interface::{Function, Type};
    /// let counter = Capability::new("counter")
    ///     .function(Function::new("get").param("name", Type::String).result(Type::S64));
    /// assert_eq!(counter.interface.functions.len(), 1);
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Capability { name: name.into(), interface: Interface::default() }
    }

    /// The same capability with one more function.
    #[must_use]
    pub fn function(mut self, function: crate::interface::Function) -> Self {
        self.interface.functions.push(function);
        self
    }

    /// The same capability with one more record type.
    #[must_use]
    pub fn record(mut self, record: crate::interface::Record) -> Self {
        self.interface.records.push(record);
        self
    }
}

/// How much a scope of [`State`] holds.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Number of keys.
    pub keys: u64,
    /// Bytes of keys and values together.
    pub bytes: u64,
}

/// Host side: the per-service state store behind [`State`]. The host implements it over the node's
/// storage plugin, scoped to one capability and one service; the compliance suite has one in
/// memory.
pub trait StateBackend: Sync {
    /// The value under `key`.
    ///
    /// # Errors
    /// The store failed.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Applies `ops` atomically.
    ///
    /// # Errors
    /// A limit (key or value size, the scope's quota) or the store failed; then nothing is applied.
    fn apply(&self, ops: Vec<Op>) -> Result<()>;
    /// Up to `limit` entries whose key starts with `prefix`, in key order, after `start_after`.
    ///
    /// # Errors
    /// The store failed.
    fn scan(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Keys and bytes held.
    ///
    /// # Errors
    /// The store failed.
    fn usage(&self) -> Result<Usage>;
}

/// Host side: everything the host knows about one call (or grant). [`Call::new`] and
/// [`Grant::new`] wrap it for an effector; across the ABI the plugin reads it through accessors.
pub trait Context: Sync {
    /// The capability called.
    fn capability(&self) -> &str;
    /// The function called; empty for a grant.
    fn function(&self) -> &str;
    /// The calling service.
    fn service_id(&self) -> &str;
    /// The calling module's name in its blueprint.
    fn module(&self) -> &str;
    /// The postcard-encoded arguments (checked against the declared parameter types); empty for
    /// a grant.
    fn args(&self) -> &[u8];
    /// The module's configuration of this capability from the blueprint: a JSON object in
    /// canonical form (sorted keys, no spaces); `{}` when the blueprint gives none.
    fn config(&self) -> &str;
    /// The service's data directory (it exists).
    fn data_dir(&self) -> &Path;
    /// Milliseconds the calling module's call may still run; 0 for a grant.
    fn time_left_ms(&self) -> u64;
    /// The call parameters, encoded as the module ABI's `call_parameters` record
    /// ([`CallParams::encode`]); empty for a grant.
    fn call_parameters(&self) -> &[u8];
    /// The service's state for this capability.
    fn state(&self) -> &dyn StateBackend;
}

/// Where an argument of the service call came from (AIR's tetraplet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tetraplet {
    /// The peer that produced it.
    pub peer_pk: String,
    /// The service that produced it.
    pub service_id: String,
    /// The function that produced it.
    pub function_name: String,
    /// The lambda applied to it.
    pub lens: String,
}

/// The parameters of the service call during which a module called the effector: the module
/// ABI's `call_parameters` record (docs/module-abi.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallParams {
    /// The particle the call comes from (`""` for a local `weft service call`).
    pub particle_id: String,
    /// The peer that started the particle.
    pub init_peer_id: String,
    /// The particle's timestamp, ms since the Unix epoch.
    pub timestamp: u64,
    /// Its time to live, ms.
    pub ttl: u32,
    /// The service called.
    pub service_id: String,
    /// The function the calling module is running.
    pub function_name: String,
    /// This peer.
    pub host_peer_id: String,
    /// The peer that created the service.
    pub service_owner: String,
    /// One list per argument of the service call: where its value came from.
    pub tetraplets: Vec<Vec<Tetraplet>>,
}

/// Most tetraplet lists (and tetraplets per list) [`CallParams::decode`] accepts.
const MAX_TETRAPLETS: u64 = 1 << 16;

impl CallParams {
    /// The record's bytes, as `weft.call_parameters` gives them to a module.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for s in [&self.particle_id, &self.init_peer_id] {
            put_str(&mut out, s);
        }
        crate::varint::put(&mut out, self.timestamp);
        crate::varint::put(&mut out, u64::from(self.ttl));
        for s in [&self.service_id, &self.function_name, &self.host_peer_id, &self.service_owner] {
            put_str(&mut out, s);
        }
        crate::varint::put(&mut out, self.tetraplets.len() as u64);
        for list in &self.tetraplets {
            crate::varint::put(&mut out, list.len() as u64);
            for t in list {
                for s in [&t.peer_pk, &t.service_id, &t.function_name, &t.lens] {
                    put_str(&mut out, s);
                }
            }
        }
        out
    }

    /// Reads the record; bytes after it (fields a newer host appends) are ignored.
    ///
    /// # Errors
    /// [`ErrorCode::CORRUPT`]: the bytes do not hold the record.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        let particle_id = r.string()?;
        let init_peer_id = r.string()?;
        let timestamp = r.varint()?;
        let ttl = u32::try_from(r.varint()?).map_err(|_| r.error("ttl does not fit u32"))?;
        let service_id = r.string()?;
        let function_name = r.string()?;
        let host_peer_id = r.string()?;
        let service_owner = r.string()?;
        let lists = r.count()?;
        let mut tetraplets = Vec::new();
        for _ in 0..lists {
            let n = r.count()?;
            let mut list = Vec::new();
            for _ in 0..n {
                list.push(Tetraplet {
                    peer_pk: r.string()?,
                    service_id: r.string()?,
                    function_name: r.string()?,
                    lens: r.string()?,
                });
            }
            tetraplets.push(list);
        }
        Ok(CallParams {
            particle_id,
            init_peer_id,
            timestamp,
            ttl,
            service_id,
            function_name,
            host_peer_id,
            service_owner,
            tetraplets,
        })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    crate::varint::put(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, what: &str) -> Error {
        Error::new(ErrorCode::CORRUPT, format!("call parameters: {what} at byte {}", self.pos))
    }

    fn varint(&mut self) -> Result<u64> {
        match crate::varint::get(self.bytes.get(self.pos..).unwrap_or_default(), 64) {
            Ok((value, n)) => {
                self.pos += n;
                Ok(value)
            }
            Err(crate::varint::Refused::Truncated) => {
                self.pos = self.bytes.len();
                Err(self.error("truncated varint"))
            }
            Err(crate::varint::Refused::Invalid) => Err(self.error("over-long or overflowing varint")),
        }
    }

    fn count(&mut self) -> Result<u64> {
        let n = self.varint()?;
        if n > MAX_TETRAPLETS || n > (self.bytes.len() - self.pos) as u64 {
            return Err(self.error("implausible count"));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String> {
        let len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        let end = self.pos.checked_add(len).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| self.error("string longer than the bytes left"))?;
        let s = std::str::from_utf8(&self.bytes[self.pos..end]).map_err(|_| self.error("string is not utf-8"))?;
        self.pos = end;
        Ok(s.to_owned())
    }
}

/// The calling service's state in the node's store, scoped to one capability: what one service
/// writes here no other service (and no other capability) can read. It lives in the node's storage
/// plugin (sled by default), survives restarts and is deleted with the service.
#[derive(Clone, Copy)]
pub struct State<'a> {
    backend: &'a dyn StateBackend,
}

impl fmt::Debug for State<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("effector::State")
    }
}

impl<'a> State<'a> {
    /// The value under `key`.
    ///
    /// # Errors
    /// The store failed.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.backend.get(key)
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// A limit (the host's: keys up to 1 KiB, values up to 1 MiB) or the store failed.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.backend.apply(vec![Op::put(key, value)])
    }

    /// Deletes `key` (no error if absent).
    ///
    /// # Errors
    /// The store failed.
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.backend.apply(vec![Op::delete(key)])
    }

    /// Applies several changes atomically.
    ///
    /// # Errors
    /// A limit or the store failed; then nothing is applied.
    pub fn apply(&self, ops: Vec<Op>) -> Result<()> {
        self.backend.apply(ops)
    }

    /// Up to `limit` entries whose key starts with `prefix`, in key order, after `start_after`.
    ///
    /// # Errors
    /// The store failed.
    pub fn scan(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.backend.scan(prefix, start_after, limit)
    }

    /// How many keys and bytes this service holds here.
    ///
    /// # Errors
    /// The store failed.
    pub fn usage(&self) -> Result<Usage> {
        self.backend.usage()
    }
}

/// One call of a host function, as an effector receives it.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    ctx: &'a dyn Context,
}

impl fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("effector::Call")
            .field("capability", &self.capability())
            .field("function", &self.function())
            .field("service_id", &self.service_id())
            .field("module", &self.module())
            .field("args", &self.args().len())
            .finish_non_exhaustive()
    }
}

impl<'a> Call<'a> {
    /// Host side: a call described by `ctx`.
    pub fn new(ctx: &'a dyn Context) -> Self {
        Call { ctx }
    }

    /// The capability called (one effector may offer several).
    pub fn capability(&self) -> &'a str {
        self.ctx.capability()
    }

    /// The function called.
    pub fn function(&self) -> &'a str {
        self.ctx.function()
    }

    /// The calling service: scope per-service state by it.
    pub fn service_id(&self) -> &'a str {
        self.ctx.service_id()
    }

    /// The calling module's name in its blueprint.
    pub fn module(&self) -> &'a str {
        self.ctx.module()
    }

    /// The arguments, postcard-encoded (docs/module-abi.md), already checked against the declared
    /// parameter types: `postcard::from_bytes::<(String, i64)>(call.args())` reads `(name: string,
    /// delta: s64)`.
    pub fn args(&self) -> &'a [u8] {
        self.ctx.args()
    }

    /// The calling module's configuration of this capability from its blueprint, as canonical JSON
    /// (`{}` when none): `[modules.capability_config.NAME]` in the blueprint file. It is part of the
    /// blueprint id.
    pub fn config(&self) -> &'a str {
        self.ctx.config()
    }

    /// The calling service's data directory (it exists). Keep per-service files here: the host
    /// removes the directory with the service.
    pub fn data_dir(&self) -> &'a Path {
        self.ctx.data_dir()
    }

    /// How long the calling module's call may still run. The module traps once it is over, so an
    /// effector should give up before.
    pub fn time_left(&self) -> Duration {
        Duration::from_millis(self.ctx.time_left_ms())
    }

    /// The call parameters (particle, init peer, service owner, tetraplets, ...).
    ///
    /// # Errors
    /// [`ErrorCode::CORRUPT`] if the host sent bytes that are not the record.
    pub fn params(&self) -> Result<CallParams> {
        CallParams::decode(self.ctx.call_parameters())
    }

    /// The calling service's state for this capability, in the node's store.
    pub fn state(&self) -> State<'a> {
        State { backend: self.ctx.state() }
    }

    /// The error to return for a function this effector does not offer.
    pub fn unknown_function(&self) -> Error {
        Error::new(
            ErrorCode::UNSUPPORTED,
            format!("capability {} has no function {:?}", self.capability(), self.function()),
        )
    }

    /// The error to return for arguments that do not decode (the host checked them, so this means
    /// the declared types and the decoding disagree).
    pub fn bad_args(&self, reason: impl fmt::Display) -> Error {
        Error::new(
            ErrorCode::INVALID_ARGUMENT,
            format!("{}.{}: arguments do not decode: {reason}", self.capability(), self.function()),
        )
    }
}

/// A capability granted to a module, as the host links a service: the effector's chance to check
/// the module's configuration of it (refusing fails the service's creation, naming module and
/// capability) and to prepare per-service state.
#[derive(Clone, Copy)]
pub struct Grant<'a> {
    ctx: &'a dyn Context,
}

impl fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("effector::Grant")
            .field("capability", &self.capability())
            .field("service_id", &self.service_id())
            .field("module", &self.module())
            .field("config", &self.config())
            .finish()
    }
}

impl<'a> Grant<'a> {
    /// Host side: a grant described by `ctx` (its function, args and call parameters are empty).
    pub fn new(ctx: &'a dyn Context) -> Self {
        Grant { ctx }
    }

    /// The capability granted.
    pub fn capability(&self) -> &'a str {
        self.ctx.capability()
    }

    /// The service being linked.
    pub fn service_id(&self) -> &'a str {
        self.ctx.service_id()
    }

    /// The module the capability is granted to.
    pub fn module(&self) -> &'a str {
        self.ctx.module()
    }

    /// The module's configuration of the capability, canonical JSON (`{}` when none).
    pub fn config(&self) -> &'a str {
        self.ctx.config()
    }

    /// The service's data directory.
    pub fn data_dir(&self) -> &'a Path {
        self.ctx.data_dir()
    }

    /// The service's state for this capability.
    pub fn state(&self) -> State<'a> {
        State { backend: self.ctx.state() }
    }
}

/// An effector, as a plugin author implements it. Shared between threads: calls for different
/// services (and for one service from different modules) may run at once.
pub trait Effector: Send + Sync + 'static {
    /// The capabilities it offers. Asked once, when the host loads the effector.
    ///
    /// # Errors
    /// The effector cannot say (the host then offers none of its capabilities).
    fn capabilities(&self) -> Result<Vec<Capability>>;

    /// Checks the module's configuration of a capability when a service that grants it is linked
    /// (at creation, and again whenever the service is instantiated). The default accepts only
    /// `{}`, so that a configuration an effector does not read is an error, not silently ignored.
    ///
    /// # Errors
    /// [`ErrorCode::INVALID_CONFIG`] naming what is wrong; the service is not created.
    fn grant(&self, grant: &Grant<'_>) -> Result<()> {
        if grant.config() == "{}" {
            Ok(())
        } else {
            Err(Error::config(format!(
                "capability {} takes no configuration, got {}",
                grant.capability(),
                grant.config()
            )))
        }
    }

    /// Runs one host function; returns its postcard-encoded results, which the host checks against
    /// the declared result types before the module sees them.
    ///
    /// # Errors
    /// Fails the calling module's call (see the module docs: report what a module can handle in
    /// the results instead).
    fn call(&self, call: &Call<'_>) -> Result<Vec<u8>>;

    /// The service was removed: drop what is kept for it (open files, caches). Its data directory
    /// and its [`State`] are deleted by the host.
    ///
    /// # Errors
    /// Reported and otherwise ignored.
    fn forget(&self, service_id: &str) -> Result<()> {
        let _ = service_id;
        Ok(())
    }
}

// ------------------------------------------------------------------------------------ the ABI

#[repr(C)]
#[derive(StableAbi)]
pub(crate) struct RawCapability {
    name: RString,
    /// A `weft-interface` section payload: function and record entries.
    interface: RVec<u8>,
}

/// The call (or grant) as the plugin sees it across the boundary: a host object. Methods are
/// only appended; a method added later gets a default body, which an older host answers.
#[sabi_trait]
pub(crate) trait CallFfi: Send + Sync {
    fn capability(&self) -> RStr<'_>;
    fn function(&self) -> RStr<'_>;
    fn service_id(&self) -> RStr<'_>;
    fn module(&self) -> RStr<'_>;
    fn args(&self) -> RSlice<'_, u8>;
    fn config(&self) -> RStr<'_>;
    fn data_dir(&self) -> RStr<'_>;
    fn time_left_ms(&self) -> u64;
    fn call_parameters(&self) -> RSlice<'_, u8>;
    fn state_get(&self, key: RSlice<'_, u8>) -> RResult<ROption<RVec<u8>>, Error>;
    fn state_apply(&self, ops: RVec<RawOp>) -> RResult<(), Error>;
    fn state_scan(
        &self,
        prefix: RSlice<'_, u8>,
        start_after: ROption<RSlice<'_, u8>>,
        limit: u64,
    ) -> RResult<RVec<RawEntry>, Error>;
    #[sabi(last_prefix_field)]
    fn state_usage(&self) -> RResult<Usage, Error>;
}

#[sabi_trait]
pub(crate) trait EffectorFfi: Send + Sync {
    fn capabilities(&self) -> RResult<RVec<RawCapability>, Error>;
    fn grant(&self, grant: CallFfi_TO<'_, RRef<'_, ()>>) -> RResult<(), Error>;
    fn call(&self, call: CallFfi_TO<'_, RRef<'_, ()>>) -> RResult<RVec<u8>, Error>;
    #[sabi(last_prefix_field)]
    fn forget(&self, service_id: RStr<'_>) -> RResult<(), Error>;
}

pub(crate) type EffectorBox = EffectorFfi_TO<'static, RBox<()>>;

/// Host side of a call object: forwards to the host's [`Context`], guarding the host's code so a
/// panic in it does not unwind into the plugin.
struct HostCall<'a>(&'a dyn Context);

impl CallFfi for HostCall<'_> {
    fn capability(&self) -> RStr<'_> {
        self.0.capability().into()
    }
    fn function(&self) -> RStr<'_> {
        self.0.function().into()
    }
    fn service_id(&self) -> RStr<'_> {
        self.0.service_id().into()
    }
    fn module(&self) -> RStr<'_> {
        self.0.module().into()
    }
    fn args(&self) -> RSlice<'_, u8> {
        self.0.args().into()
    }
    fn config(&self) -> RStr<'_> {
        self.0.config().into()
    }
    fn data_dir(&self) -> RStr<'_> {
        // The host only hands out UTF-8 directories (Plugin::effector checks its own).
        self.0.data_dir().to_str().unwrap_or("").into()
    }
    fn time_left_ms(&self) -> u64 {
        self.0.time_left_ms()
    }
    fn call_parameters(&self) -> RSlice<'_, u8> {
        self.0.call_parameters().into()
    }
    fn state_get(&self, key: RSlice<'_, u8>) -> RResult<ROption<RVec<u8>>, Error> {
        guard("host state.get", || Ok(self.0.state().get(key.as_slice())?.map(RVec::from).into()))
    }
    fn state_apply(&self, ops: RVec<RawOp>) -> RResult<(), Error> {
        guard("host state.apply", || self.0.state().apply(ops.into_iter().map(Op::from).collect()))
    }
    fn state_scan(
        &self,
        prefix: RSlice<'_, u8>,
        start_after: ROption<RSlice<'_, u8>>,
        limit: u64,
    ) -> RResult<RVec<RawEntry>, Error> {
        guard("host state.scan", || {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let entries =
                self.0.state().scan(prefix.as_slice(), start_after.map(|s| s.as_slice()).into_option(), limit)?;
            Ok(entries.into_iter().map(|(k, v)| RawEntry { key: k.into(), value: v.into() }).collect())
        })
    }
    fn state_usage(&self) -> RResult<Usage, Error> {
        guard("host state.usage", || self.0.state().usage())
    }
}

/// Plugin side of a call object: the host's object as a [`Context`].
struct Remote<'a, 'b> {
    ffi: CallFfi_TO<'a, RRef<'b, ()>>,
}

impl Context for Remote<'_, '_> {
    fn capability(&self) -> &str {
        self.ffi.capability().as_str()
    }
    fn function(&self) -> &str {
        self.ffi.function().as_str()
    }
    fn service_id(&self) -> &str {
        self.ffi.service_id().as_str()
    }
    fn module(&self) -> &str {
        self.ffi.module().as_str()
    }
    fn args(&self) -> &[u8] {
        self.ffi.args().as_slice()
    }
    fn config(&self) -> &str {
        self.ffi.config().as_str()
    }
    fn data_dir(&self) -> &Path {
        Path::new(self.ffi.data_dir().as_str())
    }
    fn time_left_ms(&self) -> u64 {
        self.ffi.time_left_ms()
    }
    fn call_parameters(&self) -> &[u8] {
        self.ffi.call_parameters().as_slice()
    }
    fn state(&self) -> &dyn StateBackend {
        self
    }
}

impl StateBackend for Remote<'_, '_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.ffi.state_get(key.into()).into_result()?.map(RVec::into_vec).into_option())
    }
    fn apply(&self, ops: Vec<Op>) -> Result<()> {
        self.ffi.state_apply(ops.into_iter().map(RawOp::from).collect()).into_result()
    }
    fn scan(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let entries =
            self.ffi.state_scan(prefix.into(), start_after.map(RSlice::from).into(), limit as u64).into_result()?;
        Ok(entries.into_iter().map(|e| (e.key.into_vec(), e.value.into_vec())).collect())
    }
    fn usage(&self) -> Result<Usage> {
        self.ffi.state_usage().into_result()
    }
}

/// Plugin side: wraps an author's effector so that every call is guarded against panics.
struct Exported(Box<dyn Effector>);

impl EffectorFfi for Exported {
    fn capabilities(&self) -> RResult<RVec<RawCapability>, Error> {
        guard("effector.capabilities", || {
            Ok(self
                .0
                .capabilities()?
                .into_iter()
                .map(|c| RawCapability { name: c.name.into(), interface: c.interface.encode().into() })
                .collect())
        })
    }

    fn grant(&self, grant: CallFfi_TO<'_, RRef<'_, ()>>) -> RResult<(), Error> {
        guard("effector.grant", || {
            let remote = Remote { ffi: grant };
            self.0.grant(&Grant::new(&remote))
        })
    }

    fn call(&self, call: CallFfi_TO<'_, RRef<'_, ()>>) -> RResult<RVec<u8>, Error> {
        let remote = Remote { ffi: call };
        let what = || format!("{}.{}", remote.capability(), remote.function());
        guard_named(what, || self.0.call(&Call::new(&remote)).map(RVec::from))
    }

    fn forget(&self, service_id: RStr<'_>) -> RResult<(), Error> {
        guard("effector.forget", || self.0.forget(service_id.as_str()))
    }
}

pub(crate) fn export(e: Box<dyn Effector>) -> EffectorBox {
    EffectorFfi_TO::from_value(Exported(e), TD_Opaque)
}

/// Host side: an effector provided by a loaded plugin. It implements [`Effector`] itself, so the
/// host and the compliance suite do not care whether an effector is linked in or loaded.
pub struct Loaded {
    inner: EffectorBox,
    plugin: String,
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
}

impl Effector for Loaded {
    /// Decodes each capability's interface with [`Interface::decode`] (every limit of the
    /// interface section applies).
    fn capabilities(&self) -> Result<Vec<Capability>> {
        let raw = self.inner.capabilities().into_result()?;
        raw.into_iter()
            .map(|c| {
                let name: String = c.name.into();
                let interface = Interface::decode(c.interface.as_slice()).map_err(|e| {
                    Error::new(
                        ErrorCode::CORRUPT,
                        format!("plugin {}: capability {name:?}: its interface does not decode: {e}", self.plugin),
                    )
                })?;
                Ok(Capability { name, interface })
            })
            .collect()
    }

    fn grant(&self, grant: &Grant<'_>) -> Result<()> {
        let host = HostCall(grant.ctx);
        self.inner.grant(CallFfi_TO::from_ptr(&host, TD_Opaque)).into_result()
    }

    fn call(&self, call: &Call<'_>) -> Result<Vec<u8>> {
        let host = HostCall(call.ctx);
        self.inner.call(CallFfi_TO::from_ptr(&host, TD_Opaque)).into_result().map(RVec::into_vec)
    }

    fn forget(&self, service_id: &str) -> Result<()> {
        self.inner.forget(service_id.into()).into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_parameters_round_trip_and_tolerate_appended_fields() {
        let p = CallParams {
            particle_id: "p".into(),
            init_peer_id: "i".into(),
            timestamp: u64::MAX,
            ttl: 30_000,
            service_id: "s".into(),
            function_name: "f".into(),
            host_peer_id: "h".into(),
            service_owner: "o".into(),
            tetraplets: vec![vec![], vec![Tetraplet { lens: ".$.x".into(), ..Tetraplet::default() }]],
        };
        let mut bytes = p.encode();
        assert_eq!(CallParams::decode(&bytes).unwrap(), p);
        bytes.extend_from_slice(b"\x05later");
        assert_eq!(CallParams::decode(&bytes).unwrap(), p, "appended fields are ignored");
        let e = CallParams::decode(&bytes[..3]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::CORRUPT);
        let hostile = [0u8, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(CallParams::decode(&hostile).is_err(), "a huge count fails before allocating");
        assert!(CallParams::decode(&[0xff; 12]).is_err());
    }
}
