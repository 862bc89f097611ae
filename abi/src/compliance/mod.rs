//! Compliance suites: what every plugin of a kind must do, run from each plugin's
//! `tests/compliance.rs` against the linked library *and* the loaded `.so`.
//!
//! Enabled with the `compliance` feature (a dev-dependency feature of plugin crates).
//!
//! - [`storage`]: key-value backends.
//! - [`effector`]: effectors (host capabilities), with [`effector::Harness`], a test host.
//! - [`transport`]: transports, with the contract written on [`crate::transport::Transport`].
//! - [`dht`]: DHTs, each with the transport sharing its network stack ([`crate::dht::Dht`]).

pub mod dht;
pub mod effector;
mod net;
pub mod storage;
pub mod transport;

use std::path::PathBuf;

/// A library that cargo built for the running test binary, by file name
/// (`weft_abi::library_file_name("sled")`, `libweft_test_probe.so`): cargo puts the `.so` of a
/// dependency in `target/<profile>/deps/` next to test binaries, and uplifts it to
/// `target/<profile>/` on `cargo build`. Panics, naming both places, when it is in neither.
pub fn built_library(file_name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the test binary's directory");
    let candidates = [deps.join(file_name), deps.parent().unwrap_or(deps).join(file_name)];
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
        panic!(
            "{file_name} was not built in {} or its parent: make its crate a dev-dependency of this one",
            deps.display()
        )
    })
}
