//! Opening a node's local state: configuration, plugins, the store and the module cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use weft_abi::Kind;
use weft_storage::Store;

use crate::config::{self, Config, default_data_dir};
use crate::plugins::{Registry, SelectError};

/// Where the host looks for its configuration, data and plugins (from flags and environment).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--data-dir` / `WEFT_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--config`; else `<data dir>/config.toml` when it exists.
    pub config: Option<PathBuf>,
    /// `--plugin-dir`, searched before the configured directories.
    pub plugin_dirs: Vec<PathBuf>,
}

/// Why the host could not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unreadable.
    #[error(transparent)]
    Config(#[from] config::Error),
    /// No usable plugin for a kind.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// The storage plugin could not open its store.
    #[error(
        "storage plugin {plugin} cannot open {dir}: {source}; if another weft process uses this data dir, stop it or pass another --data-dir"
    )]
    Storage {
        /// The plugin.
        plugin: String,
        /// Its directory.
        dir: PathBuf,
        /// What it said.
        source: weft_abi::Error,
    },
    /// A directory could not be created.
    #[error("cannot create {path}: {source}; check permissions or pass another --data-dir")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Wasm engine could not be set up.
    #[error("cannot set up the wasm engine: {0}")]
    Compiler(#[from] weft_compiler::Error),
}

/// Configuration and plugins, without opening storage (enough for `weft plugins`).
#[derive(Debug)]
pub struct Setup {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The configuration in force.
    pub config: Config,
    /// Which file it came from, if any.
    pub config_path: Option<PathBuf>,
    /// The plugins found.
    pub registry: Registry,
}

impl Setup {
    /// Reads the configuration and loads the plugins.
    ///
    /// # Errors
    /// An explicitly given config file is missing or malformed, or the default one is malformed.
    pub fn new(options: &Options) -> Result<Self, Error> {
        let (config, config_path) = match &options.config {
            Some(path) => (Config::from_file(path)?, Some(path.clone())),
            None => {
                let dir = options.data_dir.clone().unwrap_or_else(default_data_dir);
                let path = dir.join("config.toml");
                if path.is_file() { (Config::from_file(&path)?, Some(path)) } else { (Config::default(), None) }
            }
        };
        let data_dir = options.data_dir.clone().or_else(|| config.data_dir.clone()).unwrap_or_else(default_data_dir);
        let mut dirs = options.plugin_dirs.clone();
        dirs.extend(config.plugins.dirs.iter().cloned());
        if let Some(exe_dir) = exe_dir() {
            dirs.push(exe_dir);
        }
        let mut registry = Registry::discover(&dirs);
        for file in &config.plugins.files {
            registry.load(file);
        }
        Ok(Self { data_dir, config, config_path, registry })
    }

    /// The plugin chosen for `kind`.
    ///
    /// # Errors
    /// See [`Registry::select`].
    pub fn select(&self, kind: Kind) -> Result<&weft_abi::Plugin, SelectError> {
        self.registry.select(kind, self.config.plugins.choice(kind))
    }
}

/// The directory of the running executable: default plugins are built next to `weft`.
pub fn exe_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    // Test binaries run from target/<profile>/deps; plugins are one level up.
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf)
    } else {
        Some(dir.to_path_buf())
    }
}

/// A node's local state, opened.
pub struct Host {
    /// Configuration and plugins.
    pub setup: Setup,
    /// The store, over the chosen storage plugin.
    pub store: Store,
    /// The name of the storage plugin in use.
    pub storage_plugin: String,
    /// The AOT module cache.
    pub cache: weft_compiler::Cache,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("data_dir", &self.setup.data_dir)
            .field("storage_plugin", &self.storage_plugin)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Reads the configuration, loads plugins and opens the store and the module cache.
    ///
    /// # Errors
    /// See [`Error`].
    pub fn open(options: &Options) -> Result<Self, Error> {
        let setup = Setup::new(options)?;
        let plugin = setup.select(Kind::STORAGE)?;
        let name = plugin.name().to_owned();
        let dir = setup.data_dir.join("storage").join(&name);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Dir { path: dir.clone(), source })?;
        let backend = plugin
            .storage(&setup.config.plugins.config_text(&name), &dir)
            .map_err(|source| Error::Storage { plugin: name.clone(), dir: dir.clone(), source })?;
        let store = Store::new(Arc::new(backend));
        let compiler = weft_compiler::Compiler::new()?;
        let cache = weft_compiler::Cache::new(store.clone(), Arc::new(compiler));
        Ok(Self { setup, store, storage_plugin: name, cache })
    }
}
