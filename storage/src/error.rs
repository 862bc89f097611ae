//! The store's errors.

use crate::Hash;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend failed.
    #[error("storage {op} failed: {source}")]
    Backend {
        /// What the store was doing (`"get"`, `"apply"`, ...).
        op: &'static str,
        /// The backend's error.
        source: weft_abi::Error,
    },
    /// A blob's bytes do not hash to its key.
    #[error(
        "blob {hash} is corrupt (its bytes hash to {actual}); it was not used — remove it and add the content again"
    )]
    Corrupt {
        /// The key it is stored under.
        hash: Hash,
        /// What the stored bytes hash to.
        actual: Hash,
    },
    /// A record cannot be decoded.
    #[error("{kind} record {key} cannot be read: {reason}")]
    Record {
        /// The record type.
        kind: &'static str,
        /// Its key, printable.
        key: String,
        /// Why.
        reason: String,
    },
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) trait BackendResult<T> {
    fn op(self, op: &'static str) -> Result<T>;
}

impl<T> BackendResult<T> for weft_abi::Result<T> {
    fn op(self, op: &'static str) -> Result<T> {
        self.map_err(|source| Error::Backend { op, source })
    }
}
