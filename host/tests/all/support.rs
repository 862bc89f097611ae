//! Shared helpers: where the built libraries and the `weft` binary are.

use std::path::{Path, PathBuf};

pub use weft_abi::compliance::built_library;

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
