//! Shared helpers: where the built libraries and the `weft` binary are.

use std::path::{Path, PathBuf};

/// The cargo target profile directory (`target/debug`).
pub fn target_dir() -> PathBuf {
    weft_host::exe_dir().expect("test binary has a directory")
}

/// A library built by this workspace, by file name (`libweft_test_probe.so`): cargo puts the
/// `.so` of a dependency in `deps/`, and uplifts it next to the binaries on `cargo build`.
pub fn built_library(file_name: &str) -> PathBuf {
    let dir = target_dir();
    for candidate in [dir.join(file_name), dir.join("deps").join(file_name)] {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{file_name} was not built in {} (it is a dev-dependency of weft-host, so cargo should build it)",
        dir.display()
    );
}

/// `lib<name>.so` on Linux.
pub fn dylib(name: &str) -> String {
    format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX)
}

/// Copies a built library into `dir` under `as_name`; a copy loads as a fresh instance.
pub fn install(dir: &Path, file_name: &str, as_name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let to = dir.join(as_name);
    std::fs::copy(built_library(file_name), &to).unwrap();
    to
}

/// The directory holding the default plugins (`libweft_plugin_sled.so`, ...).
pub fn default_plugin_dir() -> PathBuf {
    built_library(&weft_abi::library_file_name("sled")).parent().unwrap().to_path_buf()
}
