//! Running services: linking a blueprint's modules into instances and calling them.
//!
//! Each module of a service gets its own wasmtime [`Store`] — its own memory, memory limit and
//! epoch deadline — so nothing is shared between modules. An import of an earlier module's
//! function is a host function that copies the argument bytes out of the caller's memory, checks
//! them against the callee's declared types, calls the callee (`allocate`, copy, call, copy out,
//! `release`), checks the results and copies them into a buffer from the caller's `allocate`
//! (docs/module-abi.md, "Calling a function").

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::{
    Caller, Engine, Extern, Func, Instance as WasmInstance, Linker, Memory, ResourceLimiter, Store, Trap, TypedFunc,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use weft_compiler::abi;
use weft_compiler::codec::{Codec, Signature};
use weft_compiler::interface::{Import, Interface, Type};
use weft_storage::Hash;

use super::blueprint::{Blueprint, ModuleSpec};
use super::capability::{Capabilities, CapabilityCall, CapabilityGrant};

/// How often the epoch advances; per-call time limits are rounded up to it.
pub const TICK: Duration = Duration::from_millis(5);

/// Most bytes of a `weft.set_error` message kept.
const MAX_ERROR_MESSAGE: usize = 4096;

/// Where a value given to a service came from (AIR's tetraplet).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
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

/// The parameters of a call, as a module reads them with `weft.call_parameters`. The field order
/// is the ABI's (docs/module-abi.md): postcard of this struct is the record's encoding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CallParams {
    /// The particle the call comes from ("" for a local call).
    pub particle_id: String,
    /// The peer that started the particle.
    pub init_peer_id: String,
    /// The particle's timestamp, ms since the Unix epoch.
    pub timestamp: u64,
    /// Its time to live, ms.
    pub ttl: u32,
    /// The service called.
    pub service_id: String,
    /// The function called.
    pub function_name: String,
    /// This peer.
    pub host_peer_id: String,
    /// The peer that created the service.
    pub service_owner: String,
    /// One list per argument.
    pub tetraplets: Vec<Vec<Tetraplet>>,
}

/// Why a call failed inside a module.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// Ran past its per-call time limit.
    Timeout {
        /// The limit, ms.
        limit_ms: u64,
    },
    /// Tried to grow its memory past its limit.
    OutOfMemory {
        /// The limit, bytes.
        limit: u64,
        /// What it asked for, bytes.
        wanted: u64,
    },
    /// Overflowed its stack.
    StackOverflow,
    /// Trapped; with the module's own message (`weft.set_error`, e.g. a panic) if it left one.
    Trap {
        /// What wasmtime reports (`wasm \`unreachable\` instruction executed`, ...).
        trap: String,
        /// The module's message.
        message: Option<String>,
    },
    /// Called WASI `proc_exit`.
    Exit(i32),
    /// Broke the calling convention (a range outside its memory, a missing export).
    Abi(String),
    /// Its results, or the arguments it passed to another module, do not match the declared types.
    Values(String),
    /// A capability failed.
    Capability(String),
}

/// A failed call: which module and function, and why. `via` lists the calls that led there,
/// outermost first, when a module failed inside another module's import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The module that failed.
    pub module: String,
    /// Its function that was running.
    pub function: String,
    /// What happened.
    pub kind: FailureKind,
    /// `module.function` of the callers, outermost first.
    pub via: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for v in &self.via {
            write!(f, "{v} → ")?;
        }
        write!(f, "{}.{}: ", self.module, self.function)?;
        match &self.kind {
            FailureKind::Timeout { limit_ms } => {
                write!(
                    f,
                    "ran past its time limit of {limit_ms} ms (raise time_limit in the blueprint if it needs more)"
                )
            }
            FailureKind::OutOfMemory { limit, wanted } => write!(
                f,
                "ran out of memory: it tried to grow its memory to {} but its limit is {} (raise max_memory in the blueprint)",
                mib(*wanted),
                mib(*limit)
            ),
            FailureKind::StackOverflow => f.write_str("overflowed its stack (unbounded recursion?)"),
            FailureKind::Trap { trap, message: Some(m) } => write!(f, "failed: {m} ({trap})"),
            FailureKind::Trap { trap, message: None } => write!(f, "trapped: {trap}"),
            FailureKind::Exit(code) => write!(f, "exited with code {code} (WASI proc_exit)"),
            FailureKind::Abi(what) => write!(f, "broke the module ABI: {what}"),
            FailureKind::Values(what) => f.write_str(what),
            FailureKind::Capability(what) => write!(f, "capability failed: {what}"),
        }
    }
}

impl std::error::Error for Failure {}

fn mib(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

/// A failure of a nested call, carried through the calling module's trap.
#[derive(Debug)]
struct Nested(Failure);

impl fmt::Display for Nested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Nested {}

/// A module compiled and loaded, with its interface.
pub(crate) struct Loaded {
    pub(crate) module: wasmtime::Module,
    pub(crate) interface: &'static Interface,
    pub(crate) codec: Codec<'static>,
}

/// Interfaces live as long as the process: a codec borrows its interface, and instances of a
/// module share both. One per distinct module loaded, so this grows only with the modules a node
/// has run.
fn intern(hash: Hash, interface: Interface) -> &'static Interface {
    static INTERNED: OnceLock<Mutex<HashMap<Hash, &'static Interface>>> = OnceLock::new();
    let map = INTERNED.get_or_init(Default::default);
    let mut map = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    map.entry(hash).or_insert_with(|| Box::leak(Box::new(interface)))
}

impl Loaded {
    pub(crate) fn new(hash: Hash, module: wasmtime::Module, interface: Interface) -> Self {
        let interface = intern(hash, interface);
        Loaded { module, interface, codec: Codec::new(interface) }
    }
}

/// Per-module state inside its store.
pub(crate) struct State {
    wasi: WasiP1Ctx,
    limiter: Limiter,
    /// The module's `weft.set_error` message for the current call.
    error: Option<String>,
    params: Arc<CallParams>,
    /// When the current call runs out of time (for capabilities: how long they may take).
    deadline: Instant,
    /// Its own exports, for host functions that write into its memory.
    memory: Option<Memory>,
    allocate: Option<TypedFunc<i32, i32>>,
}

struct Limiter {
    max_memory: usize,
    denied: Option<usize>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.denied = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// One linked module.
pub(crate) struct Instance {
    name: String,
    store: Store<State>,
    memory: Memory,
    allocate: TypedFunc<i32, i32>,
    release: TypedFunc<(i32, i32), ()>,
    functions: HashMap<String, TypedFunc<(i32, i32), i64>>,
    loaded: Arc<Loaded>,
    ticks: u64,
    time_limit_ms: u64,
    max_memory: u64,
}

type Shared = Arc<Mutex<Instance>>;

fn lock(instance: &Shared) -> std::sync::MutexGuard<'_, Instance> {
    instance.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Instance {
    fn failure(&self, function: &str, kind: FailureKind) -> Failure {
        Failure { module: self.name.clone(), function: function.to_owned(), kind, via: Vec::new() }
    }

    /// Turns an error out of a call into this module into a [`Failure`].
    fn classify(&mut self, function: &str, error: wasmtime::Error) -> Failure {
        if let Some(Nested(inner)) = error.downcast_ref::<Nested>() {
            let mut inner = inner.clone();
            inner.via.insert(0, format!("{}.{function}", self.name));
            return inner;
        }
        let state = self.store.data_mut();
        let message = state.error.take();
        let kind = if let Some(wanted) = state.limiter.denied.take() {
            FailureKind::OutOfMemory { limit: self.max_memory, wanted: wanted as u64 }
        } else if let Some(trap) = error.downcast_ref::<Trap>() {
            match trap {
                Trap::Interrupt => FailureKind::Timeout { limit_ms: self.time_limit_ms },
                Trap::StackOverflow => FailureKind::StackOverflow,
                other => FailureKind::Trap { trap: other.to_string(), message },
            }
        } else if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            FailureKind::Exit(exit.0)
        } else {
            FailureKind::Trap { trap: one_line(&error), message }
        };
        self.failure(function, kind)
    }

    fn begin(&mut self, params: &Arc<CallParams>) {
        let state = self.store.data_mut();
        state.params = Arc::clone(params);
        state.error = None;
        state.limiter.denied = None;
        state.deadline = Instant::now() + Duration::from_millis(self.time_limit_ms);
        self.store.set_epoch_deadline(self.ticks);
    }

    /// Copies `bytes` into a fresh buffer of this module: `(ptr, len)`; `(0, 0)` for no bytes.
    fn put(&mut self, function: &str, bytes: &[u8]) -> Result<(i32, i32), Failure> {
        if bytes.is_empty() {
            return Ok((0, 0));
        }
        let Ok(len) = i32::try_from(bytes.len()) else {
            return Err(self.failure(function, FailureKind::Abi(format!("{} bytes do not fit in wasm32", bytes.len()))));
        };
        let ptr = self.allocate.call(&mut self.store, len).map_err(|e| self.classify(function, e))?;
        if self.memory.write(&mut self.store, ptr as u32 as usize, bytes).is_err() {
            let size = self.memory.data_size(&self.store);
            let what = format!(
                "allocate({len}) returned {}, which with {len} bytes lies outside its memory of {size} bytes",
                ptr as u32
            );
            return Err(self.failure(function, FailureKind::Abi(what)));
        }
        Ok((ptr, len))
    }

    /// Calls `function` with encoded arguments; returns the encoded results (not yet checked).
    fn call_bytes(&mut self, function: &str, args: &[u8], params: &Arc<CallParams>) -> Result<Vec<u8>, Failure> {
        let Some(func) = self.functions.get(function).cloned() else {
            return Err(self.failure(function, FailureKind::Abi("no such function".into())));
        };
        self.begin(params);
        let (ptr, len) = self.put(function, args)?;
        let packed = func.call(&mut self.store, (ptr, len)).map_err(|e| self.classify(function, e))?;
        let (rptr, rlen) = ((packed as u64 >> 32) as usize, (packed as u64 & 0xffff_ffff) as usize);
        if rlen == 0 {
            return Ok(Vec::new());
        }
        let data = self.memory.data(&self.store);
        let Some(bytes) = rptr.checked_add(rlen).and_then(|end| data.get(rptr..end)) else {
            let what = format!(
                "{function} returned {rlen} bytes at {rptr}, outside its memory of {} bytes; return (ptr << 32) | len",
                data.len()
            );
            return Err(self.failure(function, FailureKind::Abi(what)));
        };
        let bytes = bytes.to_vec();
        self.release.call(&mut self.store, (rptr as i32, rlen as i32)).map_err(|e| self.classify(function, e))?;
        Ok(bytes)
    }

    /// Calls `function` and checks its results against its declared types.
    fn call_checked(&mut self, function: &str, args: &[u8], params: &Arc<CallParams>) -> Result<Vec<u8>, Failure> {
        let results = self.call_bytes(function, args, params)?;
        let loaded = Arc::clone(&self.loaded);
        if let Some(f) = loaded.interface.function(function)
            && let Err(e) = loaded.codec.check_results(f, &results)
        {
            return Err(self.failure(function, FailureKind::Values(format!("returned bad results: {e}"))));
        }
        Ok(results)
    }
}

/// A linked service: its modules' instances, the facade last.
pub(crate) struct Linked {
    instances: Vec<Shared>,
}

impl Linked {
    fn facade(&self) -> &Shared {
        // A blueprint has at least one module (Blueprint::check).
        &self.instances[self.instances.len() - 1]
    }

    /// The facade's loaded module (interface and codec).
    pub(crate) fn facade_loaded(&self) -> Arc<Loaded> {
        Arc::clone(&lock(self.facade()).loaded)
    }

    /// Calls a facade function with encoded arguments; results are checked.
    pub(crate) fn call_bytes(&self, function: &str, args: &[u8], params: &Arc<CallParams>) -> Result<Vec<u8>, Failure> {
        lock(self.facade()).call_checked(function, args, params)
    }

    /// Calls a facade function with encoded arguments, results unchecked (for benchmarks of the
    /// raw path and callers that check themselves).
    pub(crate) fn call_raw(&self, function: &str, args: &[u8], params: &Arc<CallParams>) -> Result<Vec<u8>, Failure> {
        lock(self.facade()).call_bytes(function, args, params)
    }
}

/// Why a service could not be linked. One line, naming the module and import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(pub String);

/// Shared by all services of a host: the engine, WASI and `weft` host functions, capabilities and
/// the epoch ticker.
pub(crate) struct Runtime {
    engine: Engine,
    base: Linker<State>,
    pub(crate) capabilities: Capabilities,
    ticker: Ticker,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = Arc::clone(&stop);
        let spawned = std::thread::Builder::new().name("weft-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start the epoch thread, time limits will not fire: {e}");
        }
        Ticker { stop }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    pub(crate) fn new(engine: &Engine, capabilities: Capabilities) -> Result<Self, LinkError> {
        let mut base = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut base, |s: &mut State| &mut s.wasi)
            .map_err(|e| LinkError(format!("cannot set up WASI: {e}")))?;
        base.func_wrap(abi::HOST_MODULE, abi::CALL_PARAMETERS, call_parameters)
            .and_then(|l| l.func_wrap(abi::HOST_MODULE, abi::SET_ERROR, set_error))
            .map_err(|e| LinkError(format!("cannot set up the weft host functions: {e}")))?;
        Ok(Runtime { engine: engine.clone(), base, capabilities, ticker: Ticker::start(engine) })
    }

    /// Instantiates a blueprint's modules in order. `loaded[i]` is module `i`, `dir` the
    /// service's data directory, `service_id`/`owner` for capability calls.
    pub(crate) fn link(
        &self,
        blueprint: &Blueprint,
        loaded: &[Arc<Loaded>],
        dir: &Path,
        service_id: &str,
    ) -> Result<Linked, LinkError> {
        let _ = &self.ticker;
        let mut instances: Vec<Shared> = Vec::with_capacity(loaded.len());
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        for (spec, loaded) in blueprint.modules.iter().zip(loaded) {
            let instance = self.instantiate(spec, loaded, &instances, &by_name, dir, service_id)?;
            by_name.insert(&spec.name, instances.len());
            instances.push(Arc::new(Mutex::new(instance)));
        }
        Ok(Linked { instances })
    }

    fn instantiate(
        &self,
        spec: &ModuleSpec,
        loaded: &Arc<Loaded>,
        earlier: &[Shared],
        by_name: &HashMap<&str, usize>,
        dir: &Path,
        service_id: &str,
    ) -> Result<Instance, LinkError> {
        let name = &spec.name;
        let config = &spec.config;
        let mut wasi = WasiCtxBuilder::new();
        for (k, v) in &config.env {
            wasi.env(k, v);
        }
        for (guest, host) in &config.mapped_dirs {
            let host_dir = dir.join(host);
            std::fs::create_dir_all(&host_dir).map_err(|e| {
                LinkError(format!("module {name}: cannot create mapped dir {}: {e}", host_dir.display()))
            })?;
            wasi.preopened_dir(&host_dir, guest, FsPerms::ReadWrite)
                .map_err(|e| LinkError(format!("module {name}: cannot map {guest} to {}: {e}", host_dir.display())))?;
        }
        let state = State {
            wasi: wasi.build_p1(),
            limiter: Limiter { max_memory: usize::try_from(config.max_memory).unwrap_or(usize::MAX), denied: None },
            error: None,
            params: Arc::default(),
            deadline: Instant::now(),
            memory: None,
            allocate: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let ticks = config.time_limit_ms.div_ceil(TICK.as_millis() as u64) + 1;
        store.set_epoch_deadline(ticks);

        // Each granted capability that this node has checks the module's configuration of it.
        for cap in &config.capabilities {
            if let Some(capability) = self.capabilities.get(cap) {
                let grant =
                    CapabilityGrant { service_id, module: name, config: config.capability_config(cap), data_dir: dir };
                capability.grant(&grant).map_err(|e| {
                    LinkError(format!(
                        "module {name}: capability `{cap}` refuses its configuration: {e}; fix \
                         [modules.capability_config.{cap}] in the blueprint"
                    ))
                })?;
            }
        }
        let mut externs: Vec<Extern> = Vec::new();
        for import in loaded.module.imports() {
            let (module, field) = (import.module(), import.name());
            let found = if module == abi::HOST_MODULE || module == "wasi_snapshot_preview1" {
                self.base.get_by_import(&mut store, &import)
            } else if let Some(declared) = loaded.interface.import(module, field) {
                Some(
                    self.resolve(spec, loaded.interface, declared, earlier, by_name, &mut store, service_id, dir)?
                        .into(),
                )
            } else {
                None
            };
            match found {
                Some(e) => externs.push(e),
                None => {
                    return Err(LinkError(format!(
                        "module {name}: import `{module}.{field}` is neither WASI, weft nor declared in its interface"
                    )));
                }
            }
        }
        let instance = WasmInstance::new(&mut store, &loaded.module, &externs).map_err(|e| {
            let denied = store.data_mut().limiter.denied.take();
            match denied {
                Some(wanted) => LinkError(format!(
                    "module {name}: its initial memory of {} is above its max_memory of {}",
                    mib(wanted as u64),
                    mib(config.max_memory)
                )),
                None => LinkError(format!("module {name}: cannot instantiate: {}", one_line(&e))),
            }
        })?;
        let missing = |what: &str| LinkError(format!("module {name}: {what}; see docs/module-abi.md"));
        let memory = instance.get_memory(&mut store, abi::MEMORY).ok_or_else(|| missing("it exports no memory"))?;
        let allocate = instance
            .get_typed_func::<i32, i32>(&mut store, abi::ALLOCATE)
            .map_err(|_| missing("it exports no `allocate: (i32) -> i32`"))?;
        let release = instance
            .get_typed_func::<(i32, i32), ()>(&mut store, abi::RELEASE)
            .map_err(|_| missing("it exports no `release: (i32, i32)`"))?;
        let mut functions = HashMap::new();
        for f in &loaded.interface.functions {
            let func = instance
                .get_typed_func::<(i32, i32), i64>(&mut store, &f.name)
                .map_err(|_| missing(&format!("its function `{}` is not `(i32, i32) -> i64`", f.name)))?;
            functions.insert(f.name.clone(), func);
        }
        let state = store.data_mut();
        state.memory = Some(memory);
        state.allocate = Some(allocate.clone());
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, abi::INITIALIZE) {
            init.call(&mut store, ())
                .map_err(|e| LinkError(format!("module {name}: _initialize failed: {}", one_line(&e))))?;
        }
        Ok(Instance {
            name: name.clone(),
            store,
            memory,
            allocate,
            release,
            functions,
            loaded: Arc::clone(loaded),
            ticks,
            time_limit_ms: config.time_limit_ms,
            max_memory: config.max_memory,
        })
    }

    /// A host function for `declared`: an earlier module's export, or a granted capability.
    #[allow(clippy::too_many_arguments)]
    fn resolve(
        &self,
        spec: &ModuleSpec,
        caller_iface: &Interface,
        declared: &Import,
        earlier: &[Shared],
        by_name: &HashMap<&str, usize>,
        store: &mut Store<State>,
        service_id: &str,
        dir: &Path,
    ) -> Result<Func, LinkError> {
        let (module, field) = (declared.module.as_str(), declared.name.as_str());
        let at = format!("module {}: import `{module}.{field}`", spec.name);
        if let Some(&i) = by_name.get(module) {
            let callee = Arc::clone(&earlier[i]);
            let (callee_loaded, callee_name) = {
                let c = lock(&callee);
                (Arc::clone(&c.loaded), c.name.clone())
            };
            let Some(target) = callee_loaded.interface.function(field) else {
                let names: Vec<&str> = callee_loaded.interface.functions.iter().map(|f| f.name.as_str()).collect();
                return Err(LinkError(format!(
                    "{at}: module {module} exports no function `{field}` (it exports: {})",
                    if names.is_empty() { "nothing".into() } else { names.join(", ") }
                )));
            };
            same_signature(&at, declared, caller_iface, target.into(), callee_loaded.interface)?;
            let function = field.to_owned();
            let label = format!("{callee_name}.{function}");
            let func =
                Func::wrap(store, move |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> wasmtime::Result<i64> {
                    let args = read_caller(&mut caller, ptr, len, &label)?;
                    let results = {
                        let mut callee = lock(&callee);
                        let loaded = Arc::clone(&callee.loaded);
                        if let Some(f) = loaded.interface.function(&function)
                            && let Err(e) = loaded.codec.check_args(f, &args)
                        {
                            let kind = FailureKind::Values(format!("was passed bad arguments: {e}"));
                            return Err(wasmtime::Error::new(Nested(callee.failure(&function, kind))));
                        }
                        let params = Arc::new(CallParams {
                            function_name: function.clone(),
                            tetraplets: Vec::new(),
                            ..(*caller.data().params).clone()
                        });
                        callee.call_checked(&function, &args, &params).map_err(|f| wasmtime::Error::new(Nested(f)))?
                    };
                    write_caller(&mut caller, &results)
                });
            return Ok(func);
        }
        if !spec.config.capabilities.contains(module) {
            let earlier_names: Vec<&str> = by_name.keys().copied().collect();
            return Err(LinkError(format!(
                "{at}: `{module}` is not an earlier module of the blueprint{} and not a capability granted to {}; \
                 grant it with capabilities = [\"{module}\"] or put module {module} before it",
                if earlier_names.is_empty() { String::new() } else { format!(" ({})", earlier_names.join(", ")) },
                spec.name
            )));
        }
        let Some(capability) = self.capabilities.get(module) else {
            return Err(LinkError(format!(
                "{at}: capability `{module}` is granted, but no effector on this node provides it (it has: {})",
                self.capabilities.names()
            )));
        };
        let Some(target) = capability.interface().function(field) else {
            return Err(LinkError(format!("{at}: capability `{module}` offers no function `{field}`")));
        };
        same_signature(&at, declared, caller_iface, target.into(), capability.interface())?;
        let function = field.to_owned();
        let label = format!("{module}.{function}");
        let (service_id, module_name, dir) = (service_id.to_owned(), spec.name.clone(), dir.to_path_buf());
        let config = spec.config.capability_config(module).to_owned();
        let cap_name = module.to_owned();
        // One codec per import, over the capability's interface kept for the process (as modules').
        let mut key = b"weft capability interface\0".to_vec();
        key.extend(capability.interface().encode());
        let iface = intern(Hash::of(&key), capability.interface().clone());
        let codec = Codec::new(iface);
        Ok(Func::wrap(store, move |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> wasmtime::Result<i64> {
            let args = read_caller(&mut caller, ptr, len, &label)?;
            let fail = |kind| {
                wasmtime::Error::new(Nested(Failure {
                    module: cap_name.clone(),
                    function: function.clone(),
                    kind,
                    via: Vec::new(),
                }))
            };
            let Some(f) = iface.function(&function) else {
                return Err(fail(FailureKind::Capability("function vanished".into())));
            };
            codec
                .check_args(f, &args)
                .map_err(|e| fail(FailureKind::Values(format!("was passed bad arguments: {e}"))))?;
            let call = CapabilityCall {
                service_id: &service_id,
                module: &module_name,
                function: &function,
                params: &caller.data().params,
                data_dir: &dir,
                config: &config,
                time_left: caller.data().deadline.saturating_duration_since(Instant::now()),
            };
            let results = capability.call(&call, &args).map_err(|e| fail(FailureKind::Capability(e)))?;
            codec
                .check_results(f, &results)
                .map_err(|e| fail(FailureKind::Values(format!("returned bad results: {e}"))))?;
            write_caller(&mut caller, &results)
        }))
    }
}

/// Checks that an import's declared types equal the target's, structurally.
fn same_signature(
    at: &str,
    declared: &Import,
    caller: &Interface,
    target: Signature<'_>,
    callee: &Interface,
) -> Result<(), LinkError> {
    let render = |params: &[(String, Type)], results: &[Type]| {
        let p: Vec<String> = params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        let r: Vec<String> = results.iter().map(Type::to_string).collect();
        format!("({}) -> ({})", p.join(", "), r.join(", "))
    };
    let same = declared.params.len() == target.params.len()
        && declared.results.len() == target.results.len()
        && declared.params.iter().zip(target.params).all(|((_, a), (_, b))| same_type(a, caller, b, callee, 0))
        && declared.results.iter().zip(target.results).all(|(a, b)| same_type(a, caller, b, callee, 0));
    if same {
        return Ok(());
    }
    Err(LinkError(format!(
        "{at}: declared as {} but the target is {}; rebuild the importing module against the current interface",
        render(&declared.params, &declared.results),
        render(target.params, target.results)
    )))
}

/// Structural type equality; records compare field by field (names may differ).
fn same_type(a: &Type, ai: &Interface, b: &Type, bi: &Interface, depth: usize) -> bool {
    if depth > 64 {
        // Recursive records: equal so far, and the recursion repeats.
        return true;
    }
    match (a, b) {
        (Type::Optional(x), Type::Optional(y)) | (Type::Array(x), Type::Array(y)) => same_type(x, ai, y, bi, depth + 1),
        (Type::Record(x), Type::Record(y)) => match (ai.record(x), bi.record(y)) {
            (Some(rx), Some(ry)) => {
                rx.fields.len() == ry.fields.len()
                    && rx.fields.iter().zip(&ry.fields).all(|((_, fx), (_, fy))| same_type(fx, ai, fy, bi, depth + 1))
            }
            _ => false,
        },
        _ => a == b,
    }
}

fn one_line(e: &wasmtime::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// Copies `len` bytes at `ptr` out of the calling module's memory.
fn read_caller(caller: &mut Caller<'_, State>, ptr: i32, len: i32, label: &str) -> wasmtime::Result<Vec<u8>> {
    let memory = caller.data().memory.ok_or_else(|| wasmtime::Error::msg("the caller has no memory"))?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    let data = memory.data(&caller);
    match start.checked_add(len).and_then(|end| data.get(start..end)) {
        Some(bytes) => Ok(bytes.to_vec()),
        None => Err(wasmtime::Error::msg(format!(
            "call to {label}: arguments ({len} bytes at {start}) lie outside the caller's memory of {} bytes",
            data.len()
        ))),
    }
}

/// Copies `bytes` into a buffer from the calling module's `allocate`; returns `(ptr << 32) | len`.
fn write_caller(caller: &mut Caller<'_, State>, bytes: &[u8]) -> wasmtime::Result<i64> {
    if bytes.is_empty() {
        return Ok(0);
    }
    let (Some(memory), Some(allocate)) = (caller.data().memory, caller.data().allocate.clone()) else {
        return Err(wasmtime::Error::msg("the caller exports no memory or allocate"));
    };
    let len = i32::try_from(bytes.len()).map_err(|_| wasmtime::Error::msg("results too large for wasm32"))?;
    let ptr = allocate.call(&mut *caller, len)?;
    memory.write(&mut *caller, ptr as u32 as usize, bytes).map_err(|_| {
        wasmtime::Error::msg(format!("allocate({len}) returned {}, outside the caller's memory", ptr as u32))
    })?;
    Ok(((ptr as u32 as i64) << 32) | i64::from(len))
}

/// `weft.call_parameters() -> i64`.
fn call_parameters(mut caller: Caller<'_, State>) -> wasmtime::Result<i64> {
    let bytes = postcard::to_stdvec(&*caller.data().params).map_err(|e| wasmtime::Error::msg(e.to_string()))?;
    write_caller(&mut caller, &bytes)
}

/// `weft.set_error(ptr, len)`.
fn set_error(mut caller: Caller<'_, State>, ptr: i32, len: i32) {
    let len = (len as u32 as usize).min(MAX_ERROR_MESSAGE);
    let Some(memory) = caller.data().memory else { return };
    let start = ptr as u32 as usize;
    let message = {
        let data = memory.data(&caller);
        start.checked_add(len).and_then(|end| data.get(start..end)).map(|b| String::from_utf8_lossy(b).into_owned())
    };
    if let Some(m) = message {
        caller.data_mut().error = Some(m.replace('\n', " "));
    }
}
