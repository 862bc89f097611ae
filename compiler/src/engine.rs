//! The wasmtime engine weft compiles with, and its fingerprint.

use std::fmt;
use std::hash::{Hash as _, Hasher};
use std::time::Instant;

use wasmtime::{Config, Engine, OptLevel, Strategy, WasmFeatures};
use weft_storage::Hash;

use crate::error::Error;
use crate::features;
use crate::validate::{Limits, ModuleInfo, validate};

/// Bump when the way weft stores or loads artifacts changes; part of the fingerprint.
const ARTIFACT_FORMAT: u32 = 1;

/// Owns the wasmtime [`Engine`] configured for weft and compiles modules ahead of time.
///
/// The engine uses Cranelift at [`OptLevel::Speed`], compiles functions in parallel, has epoch
/// interruption on (the host sets per-call deadlines), and enables exactly the Wasm features that
/// [`validate`] accepts. Cheap to share: wrap it in an `Arc`.
pub struct Compiler {
    engine: Engine,
    fingerprint: Hash,
    limits: Limits,
}

impl fmt::Debug for Compiler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiler").field("fingerprint", &self.fingerprint).field("limits", &self.limits).finish()
    }
}

impl Compiler {
    /// A compiler for this machine with default [`Limits`].
    ///
    /// # Errors
    /// [`Error::Engine`] if wasmtime rejects the configuration (e.g. an unsupported host CPU).
    pub fn new() -> Result<Self, Error> {
        Self::with_limits(Limits::default())
    }

    /// A compiler for this machine that validates modules against `limits`.
    ///
    /// # Errors
    /// [`Error::Engine`] if wasmtime rejects the configuration.
    pub fn with_limits(limits: Limits) -> Result<Self, Error> {
        let engine = Engine::new(&config()).map_err(|e| Error::Engine { reason: format!("{e:#}") })?;
        let fingerprint = fingerprint_of(&engine);
        Ok(Self { engine, fingerprint, limits })
    }

    /// The engine; instantiate loaded modules in stores made from it.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The limits modules are validated against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Identifies what this compiler produces: `blake3` of wasmtime's precompile compatibility hash
    /// (target triple, CPU features, Cranelift flags, tunables, Wasm features, wasmtime version)
    /// and weft's compiler version. Artifacts are keyed by it, so an artifact made by another
    /// engine, CPU or weft version is never loaded.
    pub fn fingerprint(&self) -> Hash {
        self.fingerprint
    }

    /// Validates `wasm` (see [`validate`]), returning what it learned.
    ///
    /// # Errors
    /// [`Error::Invalid`] with the first problem found.
    pub fn validate(&self, wasm: &[u8]) -> Result<ModuleInfo, Error> {
        validate(wasm, &self.limits).map_err(|source| Error::Invalid { module: Hash::of(wasm), source })
    }

    /// Validates `wasm`, then compiles it to an artifact for [`Engine`]'s target
    /// (`Engine::precompile_module`). Nothing compiles a module that did not validate.
    ///
    /// # Errors
    /// [`Error::Invalid`] if validation fails, [`Error::Compile`] if Cranelift fails.
    pub fn precompile(&self, wasm: &[u8]) -> Result<Vec<u8>, Error> {
        self.validate(wasm)?;
        self.precompile_validated(wasm, &Hash::of(wasm)).map(|(artifact, _)| artifact)
    }

    /// Compiles already validated bytes; also returns how long Cranelift took, in microseconds.
    pub(crate) fn precompile_validated(&self, wasm: &[u8], module: &Hash) -> Result<(Vec<u8>, u64), Error> {
        let start = Instant::now();
        let artifact = self
            .engine
            .precompile_module(wasm)
            .map_err(|e| Error::Compile { module: *module, reason: format!("{e:#}") })?;
        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        Ok((artifact, micros))
    }
}

fn config() -> Config {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        .parallel_compilation(true)
        .wasm_features(WasmFeatures::all(), false)
        .wasm_features(features::ENABLED, true);
    config
}

/// Feeds everything `Hash::hash` writes into blake3.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let hash = self.0.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }
}

fn fingerprint_of(engine: &Engine) -> Hash {
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    hasher.write(b"weft engine fingerprint\0");
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let version = format!("weft-compiler {} artifact-format {ARTIFACT_FORMAT}", env!("CARGO_PKG_VERSION"));
    hasher.write(version.as_bytes());
    Hash(*hasher.0.finalize().as_bytes())
}
