//! Effector plugins as capabilities: which ones a node loads, how their capabilities reach
//! [`Capabilities`], and the per-service state store every effector call gets.
//!
//! A node loads every effector plugin it finds, or those named by `[plugins] effectors = [...]`
//! (docs/configuration.md). Each is constructed with its `[plugins.config.NAME]` text and a
//! directory of its own (`<data dir>/effectors/NAME/`); each capability it declares becomes a
//! [`Capability`] named like it. A call carries the calling service, module, the module's
//! configuration of the capability (from the blueprint), the service's data directory, the time
//! the module has left, the call parameters, and a [`State`](weft_abi::effector::State) scoped to
//! the capability and the service, kept in the node's store (`eff/` keys) over its storage plugin.
//!
//! ```no_run
//! let host = weft_host::Host::open(&weft_host::Options::default())?;
//! let capabilities = weft_host::effectors::load(&host.setup, &host.store)?;
//! println!("capabilities: {}", capabilities.names());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use weft_abi::effector::{Call, Context, Effector, Grant, StateBackend, Usage};
use weft_abi::storage::Op;
use weft_abi::{ErrorCode, Kind};
use weft_compiler::interface::Interface;
use weft_storage::Store;

use crate::host::Setup;
use crate::services::{Capabilities, Capability, CapabilityCall, CapabilityGrant};

/// Longest key of an effector's per-service state.
pub const MAX_STATE_KEY: usize = 1024;
/// Largest value of an effector's per-service state.
pub const MAX_STATE_VALUE: usize = 1 << 20;
/// Most changes in one atomic batch.
pub const MAX_STATE_BATCH: usize = 1024;
/// Most bytes (keys and values) one service may keep in one capability's state.
pub const MAX_STATE_BYTES: u64 = 256 << 20;
/// Most entries one state scan returns.
pub const MAX_STATE_SCAN: usize = 1000;
/// Longest error message of an effector that reaches a module's failure (the rest is cut).
const MAX_MESSAGE: usize = 2048;

/// Why the effectors could not be loaded. One line each.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `[plugins] effectors` names a plugin that was not found.
    #[error(
        "the config asks for effector plugin {name:?}, but it was not found (found: {available}); fix [plugins] effectors in the config"
    )]
    NotFound {
        /// The configured name.
        name: String,
        /// The plugins found.
        available: String,
    },
    /// `[plugins] effectors` names a plugin that provides no effector.
    #[error(
        "the config asks for effector plugin {name:?}, but it provides no effector (it provides {provides}); fix [plugins] effectors in the config"
    )]
    NotAnEffector {
        /// The configured name.
        name: String,
        /// What it provides.
        provides: String,
    },
    /// A plugin's effector could not be constructed or does not say what it offers.
    #[error("effector plugin {plugin}: {source}; check [plugins.config.{plugin}] in the config")]
    Plugin {
        /// The plugin.
        plugin: String,
        /// What it said.
        source: weft_abi::Error,
    },
    /// A plugin declares a capability weft cannot offer.
    #[error("effector plugin {plugin}: capability {name:?}: {reason}; fix the plugin")]
    BadCapability {
        /// The plugin.
        plugin: String,
        /// The capability.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Two plugins declare one capability.
    #[error(
        "capability {name:?} is declared by effector plugins {first} and {second}; list the one to use in [plugins] effectors = [...] in the config"
    )]
    Duplicate {
        /// The capability.
        name: String,
        /// The plugin that declared it first.
        first: String,
        /// The other one.
        second: String,
    },
    /// A plugin directory could not be created.
    #[error("cannot create {path}: {source}; check permissions or pass another --data-dir")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The capabilities of the node's effector plugins: every plugin found that provides the
/// effector kind, or those listed in `[plugins] effectors`. An effector that was found but not
/// asked for by name and fails to start is left out with a warning (services granted its
/// capabilities then fail to create, naming them); one asked for by name is an error.
///
/// # Errors
/// See [`Error`].
pub fn load(setup: &Setup, store: &Store) -> Result<Capabilities, Error> {
    let registry = &setup.registry;
    let (plugins, strict): (Vec<&weft_abi::Plugin>, bool) = match &setup.config.plugins.effectors {
        Some(names) => {
            let mut chosen = Vec::new();
            for name in names {
                let plugin = registry.get(name).ok_or_else(|| Error::NotFound {
                    name: name.clone(),
                    available: list(registry.loaded().iter().map(|p| p.name().to_owned())),
                })?;
                if !plugin.provides(Kind::EFFECTOR) {
                    return Err(Error::NotAnEffector {
                        name: name.clone(),
                        provides: list(plugin.manifest().kinds.iter().map(ToString::to_string)),
                    });
                }
                chosen.push(plugin);
            }
            (chosen, true)
        }
        None => (registry.loaded().iter().filter(|p| p.provides(Kind::EFFECTOR)).collect(), false),
    };
    let mut capabilities = Capabilities::default();
    let mut owners: Vec<(String, String)> = Vec::new();
    for plugin in plugins {
        let name = plugin.name().to_owned();
        let dir = setup.data_dir.join("effectors").join(&name);
        let opened = std::fs::create_dir_all(&dir)
            .map_err(|source| Error::Dir { path: dir.clone(), source })
            .and_then(|()| {
                plugin
                    .effector(&setup.config.plugins.config_text(&name), &dir)
                    .map_err(|source| Error::Plugin { plugin: name.clone(), source })
            })
            .and_then(|loaded| bridge(&name, Arc::new(loaded), store));
        let caps = match opened {
            Ok(caps) => caps,
            Err(e) if !strict => {
                tracing::warn!("{e}; its capabilities are not offered");
                continue;
            }
            Err(e) => return Err(e),
        };
        for cap in caps {
            if let Some((_, first)) = owners.iter().find(|(c, _)| c == cap.name()) {
                return Err(Error::Duplicate { name: cap.name().to_owned(), first: first.clone(), second: name });
            }
            owners.push((cap.name().to_owned(), name.clone()));
            capabilities.add(cap);
        }
    }
    Ok(capabilities)
}

/// The capabilities of one effector (linked or loaded), as [`Capability`]s whose state lives in
/// `store`. `plugin` names it in messages.
///
/// # Errors
/// [`Error::Plugin`] if it cannot say what it offers, [`Error::BadCapability`] for a capability
/// with a bad name, imports, no functions or a duplicate name.
pub fn bridge(plugin: &str, effector: Arc<dyn Effector>, store: &Store) -> Result<Vec<Arc<dyn Capability>>, Error> {
    let declared = effector.capabilities().map_err(|source| Error::Plugin { plugin: plugin.to_owned(), source })?;
    let bad =
        |name: &str, reason: String| Error::BadCapability { plugin: plugin.to_owned(), name: name.into(), reason };
    let mut out: Vec<Arc<dyn Capability>> = Vec::new();
    for (i, c) in declared.into_iter().enumerate() {
        let ok = !c.name.is_empty()
            && c.name.len() <= 64
            && c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.');
        if !ok {
            return Err(bad(&c.name, "use 1 to 64 characters of a-z, A-Z, 0-9, _, - and .".into()));
        }
        if ["weft", "wasi_snapshot_preview1", "wasi_unstable"].contains(&c.name.as_str()) {
            return Err(bad(&c.name, "the name is reserved".into()));
        }
        if out.iter().any(|o| o.name() == c.name) {
            return Err(bad(&c.name, "declared twice".into()));
        }
        if c.interface.functions.is_empty() {
            return Err(bad(&c.name, "it declares no function".into()));
        }
        if !c.interface.imports.is_empty() {
            return Err(bad(&c.name, "a capability's interface declares functions and records, not imports".into()));
        }
        c.interface.check().map_err(|e| bad(&c.name, e.to_string()))?;
        out.push(Arc::new(PluginCapability {
            name: c.name,
            interface: c.interface,
            effector: Arc::clone(&effector),
            store: store.clone(),
            forgets: i == 0,
        }));
    }
    Ok(out)
}

fn list(items: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = items.collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

/// One capability of an effector.
struct PluginCapability {
    name: String,
    interface: Interface,
    effector: Arc<dyn Effector>,
    store: Store,
    /// The effector's first capability tells it about removed services (once per effector).
    forgets: bool,
}

/// An effector's error as one bounded line for a module's failure.
fn message(e: &weft_abi::Error) -> String {
    let mut text = e.message().replace(['\n', '\r'], " ");
    if text.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    if e.code() == ErrorCode::PANIC || e.code() == ErrorCode::OTHER {
        text
    } else {
        format!("{} ({})", text, e.code().name())
    }
}

impl Capability for PluginCapability {
    fn name(&self) -> &str {
        &self.name
    }

    fn interface(&self) -> &Interface {
        &self.interface
    }

    fn grant(&self, grant: &CapabilityGrant<'_>) -> Result<(), String> {
        let ctx = HostContext {
            capability: &self.name,
            function: "",
            service_id: grant.service_id,
            module: grant.module,
            args: &[],
            config: grant.config,
            data_dir: grant.data_dir,
            time_left_ms: 0,
            params: None,
            encoded: OnceLock::new(),
            state: ScopedState::new(&self.store, &self.name, grant.service_id),
        };
        self.effector.grant(&Grant::new(&ctx)).map_err(|e| message(&e))
    }

    fn call(&self, call: &CapabilityCall<'_>, args: &[u8]) -> Result<Vec<u8>, String> {
        if call.data_dir.to_str().is_none() {
            return Err(format!("the service's data directory {} is not UTF-8", call.data_dir.display()));
        }
        let ctx = HostContext {
            capability: &self.name,
            function: call.function,
            service_id: call.service_id,
            module: call.module,
            args,
            config: call.config,
            data_dir: call.data_dir,
            time_left_ms: u64::try_from(call.time_left.as_millis()).unwrap_or(u64::MAX),
            params: Some(call.params),
            encoded: OnceLock::new(),
            state: ScopedState::new(&self.store, &self.name, call.service_id),
        };
        self.effector.call(&Call::new(&ctx)).map_err(|e| message(&e))
    }

    fn forget(&self, service_id: &str) -> Result<(), String> {
        let state = ScopedState::new(&self.store, &self.name, service_id);
        let cleared = state.clear();
        let forgot = if self.forgets { self.effector.forget(service_id).map_err(|e| message(&e)) } else { Ok(()) };
        cleared.and(forgot)
    }
}

/// What the host tells an effector about one call or grant.
struct HostContext<'a> {
    capability: &'a str,
    function: &'a str,
    service_id: &'a str,
    module: &'a str,
    args: &'a [u8],
    config: &'a str,
    data_dir: &'a Path,
    time_left_ms: u64,
    params: Option<&'a crate::services::CallParams>,
    /// The call parameters as the module ABI's record, encoded on first use.
    encoded: OnceLock<Vec<u8>>,
    state: ScopedState<'a>,
}

impl Context for HostContext<'_> {
    fn capability(&self) -> &str {
        self.capability
    }
    fn function(&self) -> &str {
        self.function
    }
    fn service_id(&self) -> &str {
        self.service_id
    }
    fn module(&self) -> &str {
        self.module
    }
    fn args(&self) -> &[u8] {
        self.args
    }
    fn config(&self) -> &str {
        self.config
    }
    fn data_dir(&self) -> &Path {
        self.data_dir
    }
    fn time_left_ms(&self) -> u64 {
        self.time_left_ms
    }
    fn call_parameters(&self) -> &[u8] {
        // postcard of the host's CallParams is the module ABI's call_parameters record.
        self.encoded.get_or_init(|| self.params.map(|p| postcard::to_stdvec(p).unwrap_or_default()).unwrap_or_default())
    }
    fn state(&self) -> &dyn StateBackend {
        &self.state
    }
}

/// Serialises read-modify-write of the usage counters (state writes are small and rare).
static WRITES: Mutex<()> = Mutex::new(());

/// One service's state for one capability: keys `eff/` + len + capability + len + service + `d`
/// + key, and its usage counter under the same prefix + `u`.
struct ScopedState<'a> {
    store: &'a Store,
    prefix: Vec<u8>,
}

fn storage_error(e: &weft_abi::Error) -> weft_abi::Error {
    weft_abi::Error::new(e.code(), format!("the node's store: {}", e.message()))
}

impl<'a> ScopedState<'a> {
    fn new(store: &'a Store, capability: &str, service_id: &str) -> Self {
        let mut prefix = b"eff/".to_vec();
        for part in [capability, service_id] {
            // Names are at most 64 bytes, service ids 32; a length byte keeps scopes apart.
            prefix.push(u8::try_from(part.len()).unwrap_or(u8::MAX));
            prefix.extend_from_slice(part.as_bytes());
        }
        ScopedState { store, prefix }
    }

    fn data_key(&self, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + 1 + key.len());
        k.extend_from_slice(&self.prefix);
        k.push(b'd');
        k.extend_from_slice(key);
        k
    }

    fn usage_key(&self) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.push(b'u');
        k
    }

    fn read_usage(&self) -> weft_abi::Result<Usage> {
        let raw = self.store.backend().get(&self.usage_key()).map_err(|e| storage_error(&e))?;
        Ok(match raw {
            Some(b) if b.len() == 16 => Usage {
                keys: u64::from_le_bytes(<[u8; 8]>::try_from(&b[..8]).unwrap_or_default()),
                bytes: u64::from_le_bytes(<[u8; 8]>::try_from(&b[8..]).unwrap_or_default()),
            },
            _ => Usage::default(),
        })
    }

    /// Deletes everything of this scope.
    fn clear(&self) -> Result<(), String> {
        let _lock = WRITES.lock().unwrap_or_else(PoisonError::into_inner);
        let backend = self.store.backend();
        loop {
            let page = backend.scan(&self.prefix, None, 1000).map_err(|e| storage_error(&e).to_string())?;
            if page.is_empty() {
                break;
            }
            backend
                .apply(page.into_iter().map(|(k, _)| Op::delete(k)).collect())
                .map_err(|e| storage_error(&e).to_string())?;
        }
        self.store.flush().map_err(|e| e.to_string())
    }
}

impl StateBackend for ScopedState<'_> {
    fn get(&self, key: &[u8]) -> weft_abi::Result<Option<Vec<u8>>> {
        if key.len() > MAX_STATE_KEY {
            return Ok(None);
        }
        self.store.backend().get(&self.data_key(key)).map_err(|e| storage_error(&e))
    }

    fn apply(&self, ops: Vec<Op>) -> weft_abi::Result<()> {
        let limit = |m: String| weft_abi::Error::new(ErrorCode::LIMIT, m);
        if ops.len() > MAX_STATE_BATCH {
            return Err(limit(format!("{} changes in one batch; at most {MAX_STATE_BATCH}", ops.len())));
        }
        for op in &ops {
            if op.key.len() > MAX_STATE_KEY {
                return Err(limit(format!("a state key of {} bytes; at most {MAX_STATE_KEY}", op.key.len())));
            }
            if let Some(v) = &op.value
                && v.len() > MAX_STATE_VALUE
            {
                return Err(limit(format!("a state value of {} bytes; at most {MAX_STATE_VALUE}", v.len())));
            }
        }
        let _lock = WRITES.lock().unwrap_or_else(PoisonError::into_inner);
        let backend = self.store.backend();
        let mut usage = self.read_usage()?;
        // Later ops on the same key see the earlier ones.
        let mut pending: std::collections::HashMap<&[u8], Option<usize>> = std::collections::HashMap::new();
        for op in &ops {
            let old = match pending.get(op.key.as_slice()) {
                Some(size) => *size,
                None => backend.get(&self.data_key(&op.key)).map_err(|e| storage_error(&e))?.map(|v| v.len()),
            };
            let new = op.value.as_ref().map(Vec::len);
            if let Some(old) = old {
                usage.keys = usage.keys.saturating_sub(1);
                usage.bytes = usage.bytes.saturating_sub((op.key.len() + old) as u64);
            }
            if let Some(new) = new {
                usage.keys += 1;
                usage.bytes += (op.key.len() + new) as u64;
            }
            pending.insert(op.key.as_slice(), new);
        }
        if usage.bytes > MAX_STATE_BYTES {
            return Err(limit(format!(
                "the service would keep {} bytes of state for this capability; at most {MAX_STATE_BYTES}",
                usage.bytes
            )));
        }
        let mut batch: Vec<Op> =
            ops.iter().map(|op| Op { key: self.data_key(&op.key), value: op.value.clone() }).collect();
        let mut counter = usage.keys.to_le_bytes().to_vec();
        counter.extend_from_slice(&usage.bytes.to_le_bytes());
        batch.push(Op::put(self.usage_key(), counter));
        backend.apply(batch).map_err(|e| storage_error(&e))?;
        self.store.flush().map_err(|e| weft_abi::Error::new(ErrorCode::IO, format!("the node's store: {e}")))
    }

    fn scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> weft_abi::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let full = self.data_key(prefix);
        let after = start_after.map(|a| self.data_key(a));
        let cut = self.prefix.len() + 1;
        let entries = self
            .store
            .backend()
            .scan(&full, after.as_deref(), limit.min(MAX_STATE_SCAN))
            .map_err(|e| storage_error(&e))?;
        Ok(entries.into_iter().map(|(k, v)| (k[cut..].to_vec(), v)).collect())
    }

    fn usage(&self) -> weft_abi::Result<Usage> {
        self.read_usage()
    }
}

impl std::fmt::Debug for PluginCapability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginCapability").field("name", &self.name).finish_non_exhaustive()
    }
}
