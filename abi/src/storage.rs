//! The `storage` kind: an ordered key-value backend for the node's store.
//!
//! The keyspace is flat and ordered by bytes; the store above it (weft-storage) namespaces keys with
//! prefixes. A backend must make [`Backend::apply`] atomic, and make everything applied so far
//! durable by the time [`Backend::flush`] returns.

use abi_stable::StableAbi;
use abi_stable::sabi_trait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RVec};

use crate::error::{Error, Result, guard};

/// One change in an atomic batch: `value: None` deletes the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The key.
    pub key: Vec<u8>,
    /// The new value, or `None` to delete.
    pub value: Option<Vec<u8>>,
}

impl Op {
    /// Sets `key` to `value`.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into(), value: Some(value.into()) }
    }

    /// Deletes `key` (no error if absent).
    pub fn delete(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into(), value: None }
    }
}

/// What a backend reports about itself.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes the backend occupies on disk (0 if unknown).
    pub disk_bytes: u64,
    /// Number of keys (0 if unknown).
    pub keys: u64,
}

/// A key-value backend, as a plugin author implements it.
///
/// Implementations are shared between threads; every method may be called concurrently.
pub trait Backend: Send + Sync + 'static {
    /// The value under `key`.
    ///
    /// # Errors
    /// I/O or corruption in the backend.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Applies all `ops` atomically: after a crash either all or none are visible.
    ///
    /// # Errors
    /// I/O errors; then none of `ops` is applied.
    fn apply(&self, ops: Vec<Op>) -> Result<()>;

    /// Up to `limit` entries whose key starts with `prefix`, in key order, starting after
    /// `start_after` when given (for paging).
    ///
    /// # Errors
    /// I/O or corruption in the backend.
    fn scan(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Makes everything applied so far durable (fsync).
    ///
    /// # Errors
    /// I/O errors.
    fn flush(&self) -> Result<()>;

    /// Size on disk and key count.
    ///
    /// # Errors
    /// I/O errors.
    fn stats(&self) -> Result<Stats>;
}

#[repr(C)]
#[derive(StableAbi)]
pub(crate) struct RawOp {
    pub(crate) key: RVec<u8>,
    pub(crate) value: ROption<RVec<u8>>,
}

impl From<Op> for RawOp {
    fn from(op: Op) -> Self {
        RawOp { key: op.key.into(), value: op.value.map(RVec::from).into() }
    }
}

impl From<RawOp> for Op {
    fn from(op: RawOp) -> Self {
        Op { key: op.key.into_vec(), value: op.value.map(RVec::into_vec).into_option() }
    }
}

#[repr(C)]
#[derive(StableAbi)]
pub(crate) struct RawEntry {
    pub(crate) key: RVec<u8>,
    pub(crate) value: RVec<u8>,
}

#[sabi_trait]
pub(crate) trait StorageFfi: Send + Sync {
    fn get(&self, key: RSlice<'_, u8>) -> RResult<ROption<RVec<u8>>, Error>;
    fn apply(&self, ops: RVec<RawOp>) -> RResult<(), Error>;
    fn scan(
        &self,
        prefix: RSlice<'_, u8>,
        start_after: ROption<RSlice<'_, u8>>,
        limit: u64,
    ) -> RResult<RVec<RawEntry>, Error>;
    fn flush(&self) -> RResult<(), Error>;
    #[sabi(last_prefix_field)]
    fn stats(&self) -> RResult<Stats, Error>;
}

pub(crate) type StorageBox = StorageFfi_TO<'static, RBox<()>>;

/// Plugin side: wraps an author's backend so that every call is guarded against panics.
struct Exported(Box<dyn Backend>);

impl StorageFfi for Exported {
    fn get(&self, key: RSlice<'_, u8>) -> RResult<ROption<RVec<u8>>, Error> {
        guard("storage.get", || Ok(self.0.get(key.as_slice())?.map(RVec::from).into()))
    }

    fn apply(&self, ops: RVec<RawOp>) -> RResult<(), Error> {
        guard("storage.apply", || self.0.apply(ops.into_iter().map(Op::from).collect()))
    }

    fn scan(
        &self,
        prefix: RSlice<'_, u8>,
        start_after: ROption<RSlice<'_, u8>>,
        limit: u64,
    ) -> RResult<RVec<RawEntry>, Error> {
        guard("storage.scan", || {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let entries = self.0.scan(prefix.as_slice(), start_after.map(|s| s.as_slice()).into_option(), limit)?;
            Ok(entries.into_iter().map(|(k, v)| RawEntry { key: k.into(), value: v.into() }).collect())
        })
    }

    fn flush(&self) -> RResult<(), Error> {
        guard("storage.flush", || self.0.flush())
    }

    fn stats(&self) -> RResult<Stats, Error> {
        guard("storage.stats", || self.0.stats())
    }
}

pub(crate) fn export(backend: Box<dyn Backend>) -> StorageBox {
    StorageFfi_TO::from_value(Exported(backend), TD_Opaque)
}

/// Host side: a backend provided by a loaded plugin. It implements [`Backend`] itself, so the store
/// does not care whether its backend is linked in or loaded from a library.
pub struct Loaded {
    inner: StorageBox,
    plugin: String,
}

impl Loaded {
    pub(crate) fn new(inner: StorageBox, plugin: String) -> Self {
        Self { inner, plugin }
    }

    /// The name of the plugin that provides this backend.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("storage::Loaded").field("plugin", &self.plugin).finish_non_exhaustive()
    }
}

impl Backend for Loaded {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.get(key.into()).into_result()?.map(RVec::into_vec).into_option())
    }

    fn apply(&self, ops: Vec<Op>) -> Result<()> {
        self.inner.apply(ops.into_iter().map(RawOp::from).collect()).into_result()
    }

    fn scan(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let entries =
            self.inner.scan(prefix.into(), start_after.map(RSlice::from).into(), limit as u64).into_result()?;
        Ok(entries.into_iter().map(|e| (e.key.into_vec(), e.value.into_vec())).collect())
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush().into_result()
    }

    fn stats(&self) -> Result<Stats> {
        self.inner.stats().into_result()
    }
}
