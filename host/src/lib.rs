//! The weft host: the node's local state (configuration, plugins, store, module cache) and the
//! `weft` command.
//!
//! The host is small on purpose: transport, DHT, AIR interpreter, storage backends and effector
//! capabilities are plugins it loads at start ([`plugins::Registry`]), chosen by the
//! configuration ([`config::Config`]). [`Host::open`] puts the pieces together.
//!
//! ```no_run
//! let host = weft_host::Host::open(&weft_host::Options::default())?;
//! for module in host.store.modules()? {
//!     println!("{} {}", module.hash, module.name);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod client;
pub mod config;
pub mod deploy;
pub mod effectors;
mod host;
pub mod identity;
pub mod modules;
pub mod node;
pub mod particle;
pub mod plugins;
pub mod services;

pub use host::{Error, Host, Options, Setup, exe_dir};
