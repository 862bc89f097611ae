//! weft's store: content-addressed blobs and typed records over a key-value backend.
//!
//! - **Blobs** are kept under the blake3 hash of their bytes ([`Hash`]). `put` is idempotent;
//!   `get` re-hashes what it read and reports [`Error::Corrupt`] instead of returning bad bytes.
//!   Module bytes and compiled artifacts are blobs.
//! - **Records** describe modules, AOT artifacts, blueprints, services and aliases: postcard with a
//!   leading format-version byte, so a newer format is refused with a clear error, not misread.
//! - The **backend** is any [`weft_abi::storage::Backend`]: a storage plugin loaded by the host
//!   (sled by default, redb as the alternative), or one linked in. Memory use is bounded: every
//!   listing pages through the backend.
//!
//! ```
//! use std::sync::Arc;
//! use weft_storage::{Hash, Store, testing::MemoryBackend};
//!
//! let store = Store::new(Arc::new(MemoryBackend::default()));
//! let hash = store.put_blob(b"\0asm...")?;
//! assert_eq!(hash, Hash::of(b"\0asm..."));
//! assert_eq!(store.get_blob(&hash)?.as_deref(), Some(&b"\0asm..."[..]));
//! store.flush()?;
//! # Ok::<(), weft_storage::Error>(())
//! ```

mod error;
mod hash;
mod records;
mod store;
pub mod testing;

pub use error::{Error, Result};
pub use hash::{Hash, ParseHashError};
pub use records::{ArtifactKey, ArtifactRecord, BlueprintRecord, ModuleRecord, ServiceRecord};
pub use store::Store;
