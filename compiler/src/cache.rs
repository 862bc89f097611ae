//! The AOT cache: compiled artifacts in the content-addressed store, keyed by module and engine.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::{Engine, Module};
use weft_storage::{ArtifactKey, ArtifactRecord, Hash, Store};

use crate::engine::Compiler;
use crate::error::Error;

/// How [`Cache::load`] or [`Cache::compile`] got the artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A valid artifact was already cached.
    Hit,
    /// Nothing was cached: the module was validated and compiled.
    Compiled,
    /// A cached artifact was unusable: it was discarded and the module compiled again.
    Recompiled {
        /// What was wrong with the discarded artifact.
        reason: Reason,
    },
}

/// Why a cached artifact was discarded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The record names a blob the store does not have.
    MissingBlob {
        /// The blob the record names.
        blob: Hash,
    },
    /// The blob's bytes no longer hash to the blob's id.
    CorruptBlob {
        /// The blob the record names.
        blob: Hash,
        /// What its bytes hash to now.
        actual: Hash,
    },
    /// The blob is intact but wasmtime refused it (truncated, or built by an incompatible engine).
    Unloadable {
        /// The blob the record names.
        blob: Hash,
        /// wasmtime's explanation.
        message: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::MissingBlob { blob } => write!(f, "artifact blob {blob} is missing"),
            Reason::CorruptBlob { blob, actual } => {
                write!(f, "artifact blob {blob} is corrupt (its bytes hash to {actual})")
            }
            Reason::Unloadable { blob, message } => write!(f, "artifact blob {blob} does not load: {message}"),
        }
    }
}

/// What [`Cache::gc`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Artifact records removed.
    pub removed: usize,
    /// Bytes of artifact blobs deleted.
    pub freed_bytes: u64,
    /// Artifact records kept.
    pub kept: usize,
}

/// Compiled artifacts over a [`Store`]: load a module by hash, compiling it only when no valid
/// artifact for this [`Compiler`]'s fingerprint is cached.
///
/// Every method may be called from many threads at once; concurrent requests for the same module
/// compile it once.
pub struct Cache {
    store: Store,
    compiler: Arc<Compiler>,
    /// One lock per module being compiled, so that concurrent loads of it compile once.
    compiling: Mutex<HashMap<Hash, Arc<Mutex<()>>>>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache").field("compiler", &self.compiler).finish_non_exhaustive()
    }
}

/// What a lookup found.
enum Lookup {
    Loaded(Module),
    Absent,
    Unusable(ArtifactRecord, Reason),
}

impl Cache {
    /// A cache of `compiler`'s artifacts in `store`.
    pub fn new(store: Store, compiler: Arc<Compiler>) -> Self {
        Self { store, compiler, compiling: Mutex::new(HashMap::new()) }
    }

    /// The compiler (and through it the engine) artifacts are made with.
    pub fn compiler(&self) -> &Arc<Compiler> {
        &self.compiler
    }

    /// The store artifacts live in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn key(&self, module: &Hash) -> ArtifactKey {
        ArtifactKey { module: *module, engine: self.compiler.fingerprint() }
    }

    /// The compiled module `module`, from the cache when a valid artifact is there, otherwise
    /// validated and compiled from its Wasm bytes in the store (and cached).
    ///
    /// A cached artifact whose blob is missing, corrupt or refused by wasmtime is discarded and the
    /// module recompiled: it is never executed.
    ///
    /// # Errors
    /// [`Error::ModuleNotFound`] if the store lacks the module's bytes, [`Error::Invalid`] if they do
    /// not validate, [`Error::Compile`] or [`Error::Storage`].
    pub fn load(&self, module: &Hash) -> Result<(Module, Outcome), Error> {
        let key = self.key(module);
        // The common case, a valid artifact, takes no lock.
        if let Lookup::Loaded(m) = self.lookup(&key)? {
            return Ok((m, Outcome::Hit));
        }
        let lock = self.lock(module);
        let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        // Look again under the lock: another thread may have compiled or repaired it meanwhile,
        // and an unusable artifact is discarded only by the thread that will replace it.
        let reason = match self.lookup(&key)? {
            Lookup::Loaded(m) => return Ok((m, Outcome::Hit)),
            Lookup::Absent => None,
            Lookup::Unusable(record, reason) => {
                self.discard(&key, &record)?;
                Some(reason)
            }
        };
        let record = self.compile_and_store(&key)?;
        // Load what was stored, through the same checked path as a hit: the bytes handed to
        // wasmtime always come from the store and match their record's hash.
        let loaded = match Verified::from_store(&self.store, &record) {
            Ok(Some(artifact)) => deserialize(self.compiler.engine(), &artifact).map_err(|e| format!("{e:#}")),
            Ok(None) => Err("it is missing right after being stored".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        let loaded = loaded.map_err(|reason| Error::Load { module: *module, reason })?;
        Ok((loaded, outcome(reason)))
    }

    /// Makes sure a valid-looking artifact of `module` is cached, compiling it if not; loads
    /// nothing. A present record whose blob is missing counts as not cached. (Corrupt bytes are
    /// found, and repaired, by [`Cache::load`], which re-hashes the blob.)
    ///
    /// # Errors
    /// As [`Cache::load`].
    pub fn compile(&self, module: &Hash) -> Result<Outcome, Error> {
        let key = self.key(module);
        if self.is_cached(module)? {
            return Ok(Outcome::Hit);
        }
        let lock = self.lock(module);
        let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let reason = match self.cached_record(&key)? {
            Some(record) if self.has_blob(&record)? => return Ok(Outcome::Hit),
            Some(record) => {
                self.discard(&key, &record)?;
                Some(Reason::MissingBlob { blob: record.blob })
            }
            None => None,
        };
        self.compile_and_store(&key)?;
        Ok(outcome(reason))
    }

    /// Whether an artifact record of `module` for this compiler exists and its blob is present.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub fn is_cached(&self, module: &Hash) -> Result<bool, Error> {
        match self.cached_record(&self.key(module))? {
            Some(record) => self.has_blob(&record),
            None => Ok(false),
        }
    }

    /// Drops artifacts (records and blobs) that no longer serve anything: those made by another
    /// engine fingerprint (an older weft or wasmtime, another CPU), and those of modules that have
    /// no module record, are not in a pinned blueprint, and for which `keep` returns false (the
    /// host passes e.g. "a service still runs it"; `|_| false` keeps nothing extra). Module Wasm
    /// blobs are never touched.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub fn gc(&self, keep: impl Fn(&Hash) -> bool) -> Result<GcReport, Error> {
        let store = &self.store;
        let fingerprint = self.compiler.fingerprint();
        let modules: HashSet<Hash> =
            store.modules().map_err(Error::storage("listing modules for gc"))?.into_iter().map(|m| m.hash).collect();
        let pinned: HashSet<Hash> = store
            .blueprints()
            .map_err(Error::storage("listing blueprints for gc"))?
            .into_iter()
            .filter(|b| b.pinned)
            .flat_map(|b| b.modules)
            .collect();
        let artifacts = store.artifacts().map_err(Error::storage("listing artifacts for gc"))?;

        let (keep, drop): (Vec<_>, Vec<_>) = artifacts.into_iter().partition(|(key, _)| {
            key.engine == fingerprint
                && (modules.contains(&key.module) || pinned.contains(&key.module) || keep(&key.module))
        });
        let kept_blobs: HashSet<Hash> = keep.iter().map(|(_, record)| record.blob).collect();
        let mut report = GcReport { kept: keep.len(), ..GcReport::default() };
        let mut deleted = HashSet::new();
        for (key, record) in &drop {
            store
                .remove_artifact(key)
                .map_err(Error::storage(format!("removing the artifact record of module {}", key.module)))?;
            report.removed += 1;
            if !kept_blobs.contains(&record.blob) && deleted.insert(record.blob) {
                store
                    .delete_blob(&record.blob)
                    .map_err(Error::storage(format!("deleting artifact blob {}", record.blob)))?;
                report.freed_bytes += record.size;
            }
        }
        if report.removed > 0 {
            store.flush().map_err(Error::storage("flushing after gc"))?;
        }
        Ok(report)
    }

    fn lock(&self, module: &Hash) -> Arc<Mutex<()>> {
        let mut map = self.compiling.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget locks nobody else holds, so the map stays as small as the set of modules in flight.
        map.retain(|_, lock| Arc::strong_count(lock) > 1);
        map.entry(*module).or_default().clone()
    }

    fn cached_record(&self, key: &ArtifactKey) -> Result<Option<ArtifactRecord>, Error> {
        self.store
            .artifact(key)
            .map_err(Error::storage(format!("reading the artifact record of module {}", key.module)))
    }

    fn has_blob(&self, record: &ArtifactRecord) -> Result<bool, Error> {
        self.store.has_blob(&record.blob).map_err(Error::storage(format!("looking up artifact blob {}", record.blob)))
    }

    fn lookup(&self, key: &ArtifactKey) -> Result<Lookup, Error> {
        let Some(record) = self.cached_record(key)? else {
            return Ok(Lookup::Absent);
        };
        let artifact = match Verified::from_store(&self.store, &record) {
            Ok(Some(artifact)) => artifact,
            Ok(None) => return Ok(Lookup::Unusable(record.clone(), Reason::MissingBlob { blob: record.blob })),
            Err(weft_storage::Error::Corrupt { hash, actual }) => {
                return Ok(Lookup::Unusable(record, Reason::CorruptBlob { blob: hash, actual }));
            }
            Err(e) => return Err(Error::storage(format!("reading artifact blob {}", record.blob))(e)),
        };
        match deserialize(self.compiler.engine(), &artifact) {
            Ok(module) => Ok(Lookup::Loaded(module)),
            Err(e) => {
                let reason = Reason::Unloadable { blob: record.blob, message: format!("{e:#}") };
                Ok(Lookup::Unusable(record, reason))
            }
        }
    }

    /// Removes an unusable artifact's record, then its blob.
    fn discard(&self, key: &ArtifactKey, record: &ArtifactRecord) -> Result<(), Error> {
        self.store
            .remove_artifact(key)
            .map_err(Error::storage(format!("discarding the artifact record of module {}", key.module)))?;
        self.store
            .delete_blob(&record.blob)
            .map_err(Error::storage(format!("discarding artifact blob {}", record.blob)))
    }

    /// Reads the module's Wasm, validates and compiles it, stores the artifact and its record.
    fn compile_and_store(&self, key: &ArtifactKey) -> Result<ArtifactRecord, Error> {
        let module = &key.module;
        let wasm = self
            .store
            .get_blob(module)
            .map_err(Error::storage(format!("reading the wasm of module {module}")))?
            .ok_or(Error::ModuleNotFound { module: *module })?;
        self.compiler.validate(&wasm)?;
        let (artifact, compile_time_us) = self.compiler.precompile_validated(&wasm, module)?;
        let blob = self
            .store
            .put_blob(&artifact)
            .map_err(Error::storage(format!("storing the artifact of module {module}")))?;
        let record = ArtifactRecord { blob, size: artifact.len() as u64, compiled_ms: now_ms(), compile_time_us };
        self.store
            .put_artifact(key, &record)
            .map_err(Error::storage(format!("storing the artifact record of module {module}")))?;
        self.store.flush().map_err(Error::storage(format!("flushing the artifact of module {module}")))?;
        Ok(record)
    }
}

fn outcome(reason: Option<Reason>) -> Outcome {
    match reason {
        Some(reason) => Outcome::Recompiled { reason },
        None => Outcome::Compiled,
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// Artifact bytes weft may hand to wasmtime's deserializer. The only way to make one is to read the
/// blob an artifact record names from our own store: the store re-hashes what it returns and
/// reports bytes that do not match the recorded blake3 as corruption instead of returning them.
/// The cache only reads records stored under this compiler's fingerprint, including right after
/// compiling (the fresh artifact is loaded back from the store, not from memory).
struct Verified {
    bytes: Vec<u8>,
}

impl Verified {
    /// The blob `record` names, if the store has it and its bytes still hash to its id.
    fn from_store(store: &Store, record: &ArtifactRecord) -> Result<Option<Self>, weft_storage::Error> {
        Ok(store.get_blob(&record.blob)?.map(|bytes| Verified { bytes }))
    }
}

/// Loads a compiled artifact. This is the only `unsafe` in the crate.
///
/// # Safety
/// `Module::deserialize` trusts its input: bytes that wasmtime did not produce, or that were
/// altered, could run arbitrary native code. This function is safe to call because a [`Verified`]
/// only holds bytes read back from our own store whose blake3 matched the blob hash of an artifact
/// record made under this engine's fingerprint — bytes that this engine configuration's
/// `precompile_module` produced and that have not changed since. wasmtime still checks the
/// artifact's header against the engine (version, target, flags, features) and refuses a mismatch
/// with an error, which the cache treats as an unusable artifact: discarded, never executed.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &Verified) -> wasmtime::Result<Module> {
    // SAFETY: see the function's `# Safety` section: `Verified` bytes are our own, hash-checked.
    unsafe { Module::deserialize(engine, &artifact.bytes) }
}
