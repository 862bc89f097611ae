//! `compiler::Error`: everything that can go wrong compiling, caching or loading a module.

use weft_storage::Hash;

use crate::validate::ValidationError;

/// An error of the compiler or its cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The module failed validation; nothing was compiled.
    #[error("module {module} was rejected: {source}")]
    Invalid {
        /// The module's hash.
        module: Hash,
        /// The first problem found.
        #[source]
        source: ValidationError,
    },
    /// wasmtime refused the engine configuration.
    #[error("could not create the wasmtime engine: {reason}; this host or build is not supported")]
    Engine {
        /// wasmtime's explanation.
        reason: String,
    },
    /// Cranelift failed on a module that validated.
    #[error("compiling module {module} failed: {reason}; report this with the module attached")]
    Compile {
        /// The module's hash.
        module: Hash,
        /// wasmtime's explanation.
        reason: String,
    },
    /// An artifact this process just compiled does not load.
    #[error("the artifact just compiled for module {module} does not load: {reason}; this is a bug in weft")]
    Load {
        /// The module's hash.
        module: Hash,
        /// wasmtime's explanation.
        reason: String,
    },
    /// The module's Wasm bytes are not in the store.
    #[error("module {module} is not in the store; add it first (`weft module add`)")]
    ModuleNotFound {
        /// The module's hash.
        module: Hash,
    },
    /// The store failed.
    #[error("storage failed while {action}: {source}")]
    Storage {
        /// What the cache was doing, e.g. "reading the artifact record of module …".
        action: String,
        /// The store's error.
        #[source]
        source: weft_storage::Error,
    },
}

impl Error {
    pub(crate) fn storage(action: impl Into<String>) -> impl FnOnce(weft_storage::Error) -> Error {
        move |source| Error::Storage { action: action.into(), source }
    }
}
