//! Services: blueprints stored and pinned, services created from them, called, listed, removed.
//!
//! A [`Services`] sits on a host's store and module cache. Blueprints and service records live in
//! the store; each service gets a data directory `<data dir>/services/<id>/` that its modules'
//! `mapped_dirs` point into. Services are instantiated lazily, on their first call in a process,
//! and re-instantiated (fresh memories, same files) after a call fails inside a module.

pub mod blueprint;
pub mod capability;
mod runtime;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use weft_compiler::interface::Interface;
use weft_compiler::{Cache, codec};
use weft_storage::{BlueprintRecord, Hash, ServiceRecord, Store};

pub use blueprint::{Blueprint, BlueprintError, ModuleConfig, ModuleSpec};
pub use capability::{Capabilities, Capability, CapabilityCall, CapabilityGrant};
pub use runtime::{CallParams, Failure, FailureKind, LinkError, TICK, Tetraplet};
use runtime::{Linked, Loaded, Runtime};

/// Why a services operation failed. One line each, naming what and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No service with that id or alias.
    #[error("no service {0}; see `weft service list`")]
    NoService(String),
    /// No blueprint with that id.
    #[error("no blueprint {0}; see `weft blueprint list`")]
    NoBlueprint(String),
    /// A blueprint module that is not stored.
    #[error("blueprint module {name}: module {hash} is not stored; add it with `weft module add`")]
    MissingModule {
        /// The module's name in the blueprint.
        name: String,
        /// Its id.
        hash: Hash,
    },
    /// The blueprint breaks a rule.
    #[error(transparent)]
    Blueprint(#[from] BlueprintError),
    /// Linking failed (an unresolved or ungranted import, a signature mismatch, instantiation).
    #[error("cannot create the service: {0}")]
    Link(#[from] LinkError),
    /// The facade has no such function.
    #[error("the service has no function {function}; it has: {available}")]
    NoFunction {
        /// The function asked for.
        function: String,
        /// The facade's functions.
        available: String,
    },
    /// The JSON arguments do not fit the function's parameters.
    #[error(transparent)]
    Args(codec::Error),
    /// The call failed inside a module; the service stays usable.
    #[error(transparent)]
    Failed(#[from] Failure),
    /// The alias is taken by another service.
    #[error("alias {alias} already names service {service}; remove it first or pick another")]
    AliasTaken {
        /// The alias.
        alias: String,
        /// The service it names.
        service: String,
    },
    /// Only the service's owner may do that.
    #[error("only the service's owner ({owner}) may remove service {service}")]
    NotOwner {
        /// The service.
        service: String,
        /// Its owner.
        owner: String,
    },
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] weft_storage::Error),
    /// Loading or compiling a module failed.
    #[error(transparent)]
    Compile(#[from] weft_compiler::Error),
    /// A module's stored bytes no longer carry a readable interface.
    #[error("module {hash}: {reason}")]
    Interface {
        /// The module.
        hash: Hash,
        /// What is wrong.
        reason: String,
    },
    /// A file system operation on a service's directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Most services kept instantiated at once in one process; the least recently called idle one
/// is dropped beyond it (and instantiated again on its next call).
pub const MAX_LINKED: usize = 1000;

/// A service known to this process, instantiated on first use.
struct Live {
    record: ServiceRecord,
    blueprint: Blueprint,
    dir: PathBuf,
    /// When it was last called (a tick of [`Services`]' clock), to unlink the least recently used.
    used: AtomicU64,
    linked: Mutex<Option<Linked>>,
}

/// The services of one host.
pub struct Services {
    store: Store,
    cache: Arc<Cache>,
    runtime: Runtime,
    dir: PathBuf,
    host_peer_id: String,
    loaded: Mutex<HashMap<Hash, Arc<Loaded>>>,
    live: Mutex<HashMap<String, Arc<Live>>>,
    clock: AtomicU64,
    max_linked: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh service id: 32 hex digits, unique on this peer (random enough: time, process, counter).
fn new_service_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut h = blake3::Hasher::new();
    h.update(b"weft service id\0");
    h.update(&nanos.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(format!("{:?}", std::thread::current().id()).as_bytes());
    h.finalize().to_hex()[..32].to_owned()
}

impl Services {
    /// Services over `cache` (and its store), with service data under `data_dir/services`.
    /// `host_peer_id` is what modules see as this peer.
    ///
    /// # Errors
    /// [`Error::Link`] if WASI cannot be set up.
    pub fn new(cache: Arc<Cache>, data_dir: &Path, host_peer_id: &str, capabilities: Capabilities) -> Result<Self> {
        let runtime = Runtime::new(cache.compiler().engine(), capabilities)?;
        Ok(Services {
            store: cache.store().clone(),
            cache,
            runtime,
            dir: data_dir.join("services"),
            host_peer_id: host_peer_id.to_owned(),
            loaded: Mutex::default(),
            live: Mutex::default(),
            clock: AtomicU64::new(0),
            max_linked: std::sync::atomic::AtomicUsize::new(MAX_LINKED),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    // ---------------------------------------------------------------- blueprints

    /// Checks and stores a blueprint whose modules are all stored; returns its id. Adding the same
    /// blueprint again changes nothing (a pin stays).
    ///
    /// # Errors
    /// A broken rule, a module that is not stored, storage.
    pub fn add_blueprint(&self, blueprint: &Blueprint) -> Result<Hash> {
        blueprint.check()?;
        for m in &blueprint.modules {
            if self.store.module(&m.module)?.is_none() {
                return Err(Error::MissingModule { name: m.name.clone(), hash: m.module });
            }
        }
        let encoding = blueprint.encode();
        let id = Hash::of(&encoding);
        if self.store.blueprint(&id)?.is_none() {
            self.store.put_blueprint(&BlueprintRecord {
                id,
                name: blueprint.name.clone(),
                modules: blueprint.modules.iter().map(|m| m.module).collect(),
                encoding,
                pinned: false,
                added_ms: now_ms(),
            })?;
            self.store.flush()?;
        }
        Ok(id)
    }

    /// A stored blueprint.
    ///
    /// # Errors
    /// [`Error::NoBlueprint`], a record that does not decode, storage.
    pub fn blueprint(&self, id: &Hash) -> Result<(BlueprintRecord, Blueprint)> {
        let record = self.store.blueprint(id)?.ok_or_else(|| Error::NoBlueprint(id.to_string()))?;
        let blueprint = Blueprint::decode(&record.encoding)?;
        Ok((record, blueprint))
    }

    /// Pins or unpins a blueprint: a pinned blueprint's modules keep their compiled artifacts
    /// through `weft cache gc`.
    ///
    /// # Errors
    /// [`Error::NoBlueprint`], storage.
    pub fn pin(&self, id: &Hash, pinned: bool) -> Result<()> {
        let mut record = self.store.blueprint(id)?.ok_or_else(|| Error::NoBlueprint(id.to_string()))?;
        if record.pinned != pinned {
            record.pinned = pinned;
            self.store.put_blueprint(&record)?;
            self.store.flush()?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- services

    fn load(&self, hash: &Hash) -> Result<Arc<Loaded>> {
        if let Some(l) = guard(&self.loaded).get(hash) {
            return Ok(Arc::clone(l));
        }
        let (module, _) = self.cache.load(hash)?;
        let wasm = self.store.get_blob(hash)?.ok_or_else(|| Error::Interface {
            hash: *hash,
            reason: "its Wasm bytes are missing from the store; add the module again".into(),
        })?;
        let interface = weft_compiler::read_interface(&wasm)
            .map_err(|e| Error::Interface { hash: *hash, reason: e.to_string() })?;
        let loaded = Arc::new(Loaded::new(*hash, module, interface));
        guard(&self.loaded).insert(*hash, Arc::clone(&loaded));
        Ok(loaded)
    }

    fn link(&self, blueprint: &Blueprint, dir: &Path, service_id: &str) -> Result<Linked> {
        let loaded = blueprint.modules.iter().map(|m| self.load(&m.module)).collect::<Result<Vec<_>>>()?;
        Ok(self.runtime.link(blueprint, &loaded, dir, service_id)?)
    }

    /// Links a stored blueprint without creating a service: checks that [`Services::create`]
    /// would succeed (every import resolves, every capability is granted and present, initial
    /// memories fit their limits). Mapped dirs are made in a scratch directory, removed after.
    ///
    /// # Errors
    /// As [`Services::create`].
    pub fn check_blueprint(&self, blueprint_id: &Hash) -> Result<()> {
        let (_, blueprint) = self.blueprint(blueprint_id)?;
        let scratch = self.dir.join(".check").join(new_service_id());
        std::fs::create_dir_all(&scratch).map_err(|source| Error::Io { path: scratch.clone(), source })?;
        // The instances (and their open directories) are dropped before the scratch dir goes.
        let checked = self.link(&blueprint, &scratch, "check").map(drop);
        let _ = std::fs::remove_dir_all(&scratch);
        checked
    }

    /// Creates a service from a stored blueprint: links it (so an unresolved or ungranted
    /// import fails here, naming module and import), makes its data directory, stores its record
    /// and alias. Returns the service id.
    ///
    /// # Errors
    /// See [`Error`].
    pub fn create(&self, blueprint_id: &Hash, owner: &str, alias: Option<&str>) -> Result<String> {
        let (_, blueprint) = self.blueprint(blueprint_id)?;
        if let Some(alias) = alias {
            check_alias(alias)?;
            if let Some(service) = self.store.alias(alias)? {
                return Err(Error::AliasTaken { alias: alias.to_owned(), service });
            }
        }
        let mut id = new_service_id();
        while self.store.service(&id)?.is_some() {
            id = new_service_id();
        }
        let dir = self.dir.join(&id);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
        let linked = match self.link(&blueprint, &dir, &id) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let record = ServiceRecord {
            id: id.clone(),
            blueprint: *blueprint_id,
            owner: owner.to_owned(),
            aliases: alias.map(|a| vec![a.to_owned()]).unwrap_or_default(),
            created_ms: now_ms(),
        };
        self.store.put_service(&record)?;
        if let Some(alias) = alias {
            self.store.set_alias(alias, &id)?;
        }
        self.store.flush()?;
        let live = Live { record, blueprint, dir, used: AtomicU64::new(self.tick()), linked: Mutex::new(Some(linked)) };
        guard(&self.live).insert(id.clone(), Arc::new(live));
        self.linked_one_more(&id);
        Ok(id)
    }

    /// The id of a service named by id or alias.
    ///
    /// # Errors
    /// [`Error::NoService`], storage.
    pub fn resolve(&self, service: &str) -> Result<String> {
        if self.store.service(service)?.is_some() {
            return Ok(service.to_owned());
        }
        self.store.alias(service)?.ok_or_else(|| Error::NoService(service.to_owned()))
    }

    fn live(&self, service: &str) -> Result<Arc<Live>> {
        if let Some(l) = guard(&self.live).get(service) {
            return Ok(Arc::clone(l));
        }
        let id = self.resolve(service)?;
        if let Some(l) = guard(&self.live).get(&id) {
            return Ok(Arc::clone(l));
        }
        let record = self.store.service(&id)?.ok_or_else(|| Error::NoService(service.to_owned()))?;
        let (_, blueprint) = self.blueprint(&record.blueprint)?;
        let dir = self.dir.join(&id);
        let live = Arc::new(Live { record, blueprint, dir, used: AtomicU64::new(0), linked: Mutex::new(None) });
        guard(&self.live).insert(id, Arc::clone(&live));
        Ok(live)
    }

    /// The services on this peer.
    ///
    /// # Errors
    /// Storage.
    pub fn list(&self) -> Result<Vec<ServiceRecord>> {
        Ok(self.store.services()?)
    }

    /// The service's record.
    ///
    /// # Errors
    /// [`Error::NoService`], storage.
    pub fn record(&self, service: &str) -> Result<ServiceRecord> {
        Ok(self.live(service)?.record.clone())
    }

    /// The service's data directory.
    ///
    /// # Errors
    /// [`Error::NoService`], storage.
    pub fn data_dir(&self, service: &str) -> Result<PathBuf> {
        Ok(self.live(service)?.dir.clone())
    }

    /// The facade's interface: the service's API.
    ///
    /// # Errors
    /// [`Error::NoService`], storage, loading the module.
    pub fn interface(&self, service: &str) -> Result<Interface> {
        let live = self.live(service)?;
        let facade = live.blueprint.facade().ok_or_else(|| Error::NoService(service.to_owned()))?;
        Ok(self.load(&facade.module)?.interface.clone())
    }

    /// Removes a service: its record, aliases, data directory and effector state (each capability
    /// is told, [`Capability::forget`]). `requester` must be its owner (or `node_owner`, when
    /// given).
    ///
    /// # Errors
    /// [`Error::NoService`], [`Error::NotOwner`], storage, I/O.
    pub fn remove(&self, service: &str, requester: &str, node_owner: Option<&str>) -> Result<()> {
        let id = self.resolve(service)?;
        let record = self.store.service(&id)?.ok_or_else(|| Error::NoService(service.to_owned()))?;
        if record.owner != requester && node_owner != Some(requester) {
            return Err(Error::NotOwner { service: id, owner: record.owner });
        }
        guard(&self.live).remove(&id);
        for (alias, target) in self.store.aliases()? {
            if target == id {
                self.store.remove_alias(&alias)?;
            }
        }
        self.store.remove_service(&id)?;
        self.store.flush()?;
        for failed in self.runtime.capabilities.forget(&id) {
            tracing::warn!(service = %id, "removing the service's effector state: {failed}");
        }
        let dir = self.dir.join(&id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io { path: dir, source }),
        }
    }

    /// Adds an alias for a service.
    ///
    /// # Errors
    /// [`Error::AliasTaken`], [`Error::NoService`], storage.
    pub fn add_alias(&self, alias: &str, service: &str) -> Result<()> {
        check_alias(alias)?;
        let id = self.resolve(service)?;
        if let Some(other) = self.store.alias(alias)?
            && other != id
        {
            return Err(Error::AliasTaken { alias: alias.to_owned(), service: other });
        }
        let mut record = self.store.service(&id)?.ok_or_else(|| Error::NoService(service.to_owned()))?;
        if !record.aliases.iter().any(|a| a == alias) {
            record.aliases.push(alias.to_owned());
            self.store.put_service(&record)?;
        }
        self.store.set_alias(alias, &id)?;
        self.store.flush()?;
        guard(&self.live).remove(&id);
        Ok(())
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// How many services are instantiated now.
    pub fn linked_count(&self) -> usize {
        guard(&self.live).values().filter(|l| l.linked.try_lock().map_or(true, |g| g.is_some())).count()
    }

    /// Keeps at most `n` services instantiated (default [`MAX_LINKED`]; at least 1).
    pub fn set_max_linked(&self, n: usize) {
        self.max_linked.store(n.max(1), Ordering::Relaxed);
    }

    /// The most services kept instantiated ([`Services::set_max_linked`]).
    pub fn max_linked(&self) -> usize {
        self.max_linked.load(Ordering::Relaxed)
    }

    /// After a service was instantiated: when more than the maximum services are, the least
    /// recently called idle one is dropped (its instances and memories; its files stay). Each
    /// instance's memory holds gigabytes of reserved address space, so a node with many
    /// services cannot keep them all instantiated; a dropped one is instantiated again on its
    /// next call, as after a failure.
    fn linked_one_more(&self, just: &str) {
        let live: Vec<Arc<Live>> = guard(&self.live).values().cloned().collect();
        let mut linked: Vec<(u64, Arc<Live>)> = live
            .into_iter()
            .filter(|l| l.record.id != just)
            .filter_map(|l| {
                let is_linked = l.linked.try_lock().is_ok_and(|g| g.is_some());
                is_linked.then(|| (l.used.load(Ordering::Relaxed), l))
            })
            .collect();
        let max = self.max_linked.load(Ordering::Relaxed).max(1);
        if linked.len() < max {
            return;
        }
        linked.sort_by_key(|(used, _)| *used);
        for (_, l) in linked.iter().take(linked.len() + 1 - max) {
            // a service in a call right now is skipped (try_lock): it is not idle
            if let Ok(mut g) = l.linked.try_lock() {
                *g = None;
                tracing::debug!(service = %l.record.id, "unlinked the least recently used service");
            }
        }
    }

    /// Calls a facade function with JSON arguments (an array, or an object by parameter name) and
    /// returns its results as JSON. `params` says where the call comes from; its service id,
    /// function name, host peer and owner are filled in here.
    ///
    /// # Errors
    /// [`Error::NoFunction`], [`Error::Args`] (wrong shape; nothing ran), [`Error::Failed`] (the
    /// module failed; the service is re-instantiated before its next call), loading.
    pub fn call(&self, service: &str, function: &str, args: &Value, params: CallParams) -> Result<Value> {
        let live = self.live(service)?;
        let mut linked = guard(&live.linked);
        live.used.store(self.tick(), Ordering::Relaxed);
        if linked.is_none() {
            *linked = Some(self.link(&live.blueprint, &live.dir, &live.record.id)?);
            self.linked_one_more(&live.record.id);
        }
        let Some(l) = linked.as_ref() else { unreachable!("linked above") };
        let loaded = l.facade_loaded();
        let Some(f) = loaded.interface.function(function) else {
            let names: Vec<String> = loaded.interface.functions.iter().map(ToString::to_string).collect();
            return Err(Error::NoFunction { function: function.to_owned(), available: names.join(", ") });
        };
        let args = loaded.codec.encode_args(f, args).map_err(Error::Args)?;
        let params = Arc::new(CallParams {
            service_id: live.record.id.clone(),
            function_name: function.to_owned(),
            host_peer_id: self.host_peer_id.clone(),
            service_owner: live.record.owner.clone(),
            ..params
        });
        match l.call_bytes(function, &args, &params) {
            Ok(results) => loaded.codec.decode_results(f, &results).map_err(|e| {
                Error::Failed(Failure {
                    module: live.blueprint.facade().map(|m| m.name.clone()).unwrap_or_default(),
                    function: function.to_owned(),
                    kind: FailureKind::Values(format!("returned bad results: {e}")),
                    via: Vec::new(),
                })
            }),
            Err(failure) => {
                tracing::info!(service = %live.record.id, "call failed, re-instantiating: {failure}");
                *linked = None;
                Err(Error::Failed(failure))
            }
        }
    }

    /// Calls a facade function with postcard arguments and returns postcard results, without any
    /// JSON and without checking the results (for benchmarks and for callers that hold bytes).
    ///
    /// # Errors
    /// As [`Services::call`].
    pub fn call_bytes(&self, service: &str, function: &str, args: &[u8], params: &Arc<CallParams>) -> Result<Vec<u8>> {
        let live = self.live(service)?;
        let mut linked = guard(&live.linked);
        live.used.store(self.tick(), Ordering::Relaxed);
        if linked.is_none() {
            *linked = Some(self.link(&live.blueprint, &live.dir, &live.record.id)?);
            self.linked_one_more(&live.record.id);
        }
        let Some(l) = linked.as_ref() else { unreachable!("linked above") };
        l.call_raw(function, args, params).inspect_err(|_| *linked = None).map_err(Error::Failed)
    }
}

fn check_alias(alias: &str) -> Result<(), BlueprintError> {
    let ok = !alias.is_empty()
        && alias.len() <= 64
        && alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(BlueprintError(format!("alias {alias:?}: use 1 to 64 characters of a-z, A-Z, 0-9, _, - and .")))
    }
}
