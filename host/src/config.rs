//! The node's configuration: a TOML file plus command-line flags.
//!
//! ```toml
//! # <data dir>/config.toml (or --config FILE)
//! [plugins]
//! dirs = ["/opt/weft/plugins"]      # searched before the directory of the weft binary
//! files = []                         # extra plugin libraries, by path
//! storage = "sled"                   # which plugin serves each kind (storage defaults to sled)
//! # air = "air"
//! # effectors = ["sqlite", "kv"]  # effector plugins offered (default: every one found)
//!
//! [plugins.config.sled]              # passed to the plugin's constructor as TOML text
//! cache_capacity_bytes = 67108864
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use weft_abi::Kind;

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("config {path}: {source}; check the path")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("config {path}: {message}; fix the file (see docs/configuration.md)")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, on one line.
        message: String,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The data directory (the command line and `WEFT_DATA_DIR` take precedence).
    pub data_dir: Option<PathBuf>,
    /// Plugins.
    #[serde(default)]
    pub plugins: Plugins,
    /// The node: listen addresses, bootstrap peers, owner, limits (`weft node`).
    #[serde(default)]
    pub node: crate::node::Config,
}

/// The `[plugins]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plugins {
    /// Directories searched for `libweft_plugin_*` libraries, before the binary's directory.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Plugin libraries loaded by path.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// The storage plugin. Default: `"sled"`.
    #[serde(default = "default_storage")]
    pub storage: Option<String>,
    /// The transport plugin. Default: `"libp2p"` (tests and simulations use `"memory"`).
    #[serde(default = "default_transport")]
    pub transport: Option<String>,
    /// The DHT plugin (the only one found, if unset).
    pub dht: Option<String>,
    /// The AIR interpreter plugin (the only one found, if unset).
    pub air: Option<String>,
    /// The effector plugins whose capabilities this node offers, by plugin name. Unset: every
    /// effector plugin found (docs/effector-plugins.md).
    pub effectors: Option<Vec<String>>,
    /// Configuration text for each plugin, by plugin name.
    #[serde(default)]
    pub config: BTreeMap<String, toml::Table>,
}

#[allow(clippy::unnecessary_wraps)]
fn default_storage() -> Option<String> {
    Some("sled".into())
}

#[allow(clippy::unnecessary_wraps)]
fn default_transport() -> Option<String> {
    Some("libp2p".into())
}

impl Default for Plugins {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            files: Vec::new(),
            storage: default_storage(),
            transport: default_transport(),
            dht: None,
            air: None,
            effectors: None,
            config: BTreeMap::new(),
        }
    }
}

impl Plugins {
    /// The configured choice for a kind that has exactly one serving plugin.
    pub fn choice(&self, kind: Kind) -> Option<&str> {
        match kind {
            Kind::STORAGE => self.storage.as_deref(),
            Kind::TRANSPORT => self.transport.as_deref(),
            Kind::DHT => self.dht.as_deref(),
            Kind::AIR => self.air.as_deref(),
            _ => None,
        }
    }

    /// The configuration text for plugin `name` (empty when none is given).
    pub fn config_text(&self, name: &str) -> String {
        self.config.get(name).map(|t| toml::to_string(t).unwrap_or_default()).unwrap_or_default()
    }
}

impl Config {
    /// Reads a configuration file.
    ///
    /// # Errors
    /// The file cannot be read or is malformed.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.into(), source })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` is only used in messages.
    ///
    /// # Errors
    /// Malformed TOML or unknown keys.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::Parse {
            path: path.into(),
            message: e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "),
        })
    }
}

/// The default data directory: `$XDG_DATA_HOME/weft`, else `~/.local/share/weft`, else `.weft`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("weft");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/weft");
    }
    PathBuf::from(".weft")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_choose_sled_for_storage() {
        let c = Config::parse("", Path::new("c.toml")).unwrap();
        assert_eq!(c.plugins.choice(Kind::STORAGE), Some("sled"));
        assert_eq!(c.plugins.choice(Kind::AIR), None);
    }

    #[test]
    fn plugin_config_tables_become_text() {
        let c = Config::parse("[plugins.config.sled]\ncache_capacity_bytes = 5\n", Path::new("c.toml")).unwrap();
        assert_eq!(c.plugins.config_text("sled").trim(), "cache_capacity_bytes = 5");
        assert_eq!(c.plugins.config_text("redb"), "");
    }

    #[test]
    fn unknown_keys_are_one_line_errors() {
        let e = Config::parse("[plugins]\nstorge = \"x\"\n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.starts_with("config c.toml: "), "{e}");
        assert!(e.contains("storge"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
