//! Storing modules: validated bytes as a blob plus a [`ModuleRecord`].

use weft_compiler::{Limits, ModuleInfo, validate};
use weft_storage::{Hash, ModuleRecord, Store};

use crate::node::now_ms;

/// Why a module was not stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a valid weft module.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error("cannot store the module: {0}")]
    Storage(#[from] weft_storage::Error),
}

/// Validates `bytes` (every rule of `weft module add`).
///
/// # Errors
/// [`Error::Invalid`], naming what is wrong.
pub fn check(bytes: &[u8]) -> Result<ModuleInfo, Error> {
    validate(bytes, &Limits::default()).map_err(|e| Error::Invalid(e.to_string()))
}

/// Stores validated module bytes under `name` (not flushed); returns the id and whether it was
/// stored before.
///
/// # Errors
/// Storage.
pub fn store(store: &Store, bytes: &[u8], info: &ModuleInfo, name: &str) -> Result<(Hash, bool), Error> {
    let existed = store.module(&info.hash)?.is_some();
    let hash = store.put_blob(bytes)?;
    debug_assert_eq!(hash, info.hash);
    if !existed {
        store.put_module(&ModuleRecord {
            hash,
            name: name.to_owned(),
            size: bytes.len() as u64,
            added_ms: now_ms(),
        })?;
    }
    Ok((hash, existed))
}
