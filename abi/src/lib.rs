//! The stable ABI between the weft host and its plugins.
//!
//! weft's host is small; transport, DHT, AIR interpreter, storage backends and effector
//! capabilities are **plugins**: native shared libraries the host loads at start. This crate is
//! the contract between them, and the only crate that knows the plugin boundary is built with
//! [abi_stable](https://docs.rs/abi_stable) — plugin authors and the host see plain Rust traits.
//!
//! # Concepts
//! - A plugin library implements [`Provider`] and exports it with [`export_plugin!`]: a
//!   [`Manifest`] (name, version, the [`Kind`]s it provides) and one constructor per kind, taking
//!   the plugin's configuration as text.
//! - Each kind has a trait a plugin author implements — [`storage::Backend`],
//!   [`transport::Transport`], [`dht::Dht`], [`air::Interpreter`], [`effector::Effector`] — and a
//!   `Loaded` handle the host gets back from [`Plugin`].
//! - Every fallible call returns [`Error`]: a stable [`ErrorCode`] and a message. A panic inside
//!   a plugin call is caught at the boundary and becomes an error with [`ErrorCode::PANIC`];
//!   the host keeps running. (Plugins must be built with `panic = "unwind"`, the default.)
//! - Versioning: `WEFT_PLUGIN_ABI = [major, minor]` is read first. The host loads plugins of its
//!   major version only; within a major version the root module and the kinds' vtables are only
//!   appended to, so older and newer minors load. abi_stable then checks the layout of everything
//!   reachable from the root module.
//!
//! # Example: a storage plugin
//! ```
//! use std::collections::BTreeMap;
//! use std::path::Path;
//! use std::sync::Mutex;
//! use weft_abi::{Kind, Manifest, Provider, Result, storage};
//!
//! #[derive(Default)]
//! struct Mem(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);
//!
//! impl storage::Backend for Mem {
//!     fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> { Ok(self.0.lock().unwrap().get(key).cloned()) }
//!     fn apply(&self, ops: Vec<storage::Op>) -> Result<()> {
//!         let mut map = self.0.lock().unwrap();
//!         for op in ops {
//!             match op.value { Some(v) => { map.insert(op.key, v); } None => { map.remove(&op.key); } }
//!         }
//!         Ok(())
//!     }
//!     fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
//!         let map = self.0.lock().unwrap();
//!         Ok(map.range(prefix.to_vec()..)
//!             .take_while(|(k, _)| k.starts_with(prefix))
//!             .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a))
//!             .take(limit)
//!             .map(|(k, v)| (k.clone(), v.clone()))
//!             .collect())
//!     }
//!     fn flush(&self) -> Result<()> { Ok(()) }
//!     fn stats(&self) -> Result<storage::Stats> { Ok(storage::Stats::default()) }
//! }
//!
//! struct MemPlugin;
//! impl Provider for MemPlugin {
//!     fn manifest() -> Manifest {
//!         Manifest { name: "mem".into(), version: "0.1.0".into(),
//!                    description: "in-memory storage".into(), kinds: vec![Kind::STORAGE] }
//!     }
//!     fn storage(_config: &str, _dir: &Path) -> Result<Box<dyn storage::Backend>> {
//!         Ok(Box::new(Mem::default()))
//!     }
//! }
//! weft_abi::export_plugin!(MemPlugin);
//! # fn main() {}
//! ```

// abi_stable's `#[sabi_trait]` expands to impls that rustc's non-local-definitions lint flags.
#![allow(non_local_definitions)]

mod error;
mod loader;
mod manifest;
mod root;

#[cfg(feature = "compliance")]
pub mod compliance;

pub mod air;
pub mod dht;
pub mod effector;
pub mod interface;
pub mod peer_id;
pub mod storage;
pub mod transport;
pub mod varint;

pub use error::{Error, ErrorCode, Result, guard};
pub use loader::{LoadError, Plugin, is_plugin_file_name, library_file_name};
pub use manifest::{Kind, Manifest};
pub use root::{ABI_MAJOR, ABI_MINOR, PluginModule, PluginRef, Provider};

#[doc(hidden)]
pub mod __private {
    pub use crate::root::lib_header;
    pub use abi_stable::library::LibHeader;
}
