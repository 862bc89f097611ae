//! Host side: loading a plugin library and calling its constructors.

use std::fmt;
use std::path::{Path, PathBuf};

use abi_stable::library::{LibraryError, RawLibrary, lib_header_from_raw_library};

use crate::air;
use crate::dht;
use crate::effector;
use crate::error::{Error, ErrorCode, Result};
use crate::manifest::{Kind, Manifest};
use crate::root::{ABI_MAJOR, ABI_SYMBOL, PluginRef};
use crate::storage;
use crate::transport::{self, Sink};

/// Why a library was refused. Each message is one line: the file, the problem, what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// No file at the path.
    #[error("plugin {path}: no such file; check the path or the plugin directory in the config")]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The dynamic loader could not open it (not a shared library, wrong architecture, missing
    /// dependency).
    #[error("plugin {path}: cannot load the library: {reason}")]
    Open {
        /// The path.
        path: PathBuf,
        /// What the dynamic loader said.
        reason: String,
    },
    /// A shared library, but not a weft plugin.
    #[error(
        "plugin {path}: not a weft plugin (no {symbol} symbol); weft plugins export one with weft_abi::export_plugin!"
    )]
    NotAPlugin {
        /// The path.
        path: PathBuf,
        /// The missing symbol.
        symbol: &'static str,
    },
    /// Built for an ABI version this host cannot use.
    #[error(
        "plugin {path}: built for weft plugin ABI {found_major}.{found_minor}, this weft speaks {host_major}.x; rebuild the plugin against weft-abi {host_major}.x"
    )]
    AbiVersion {
        /// The path.
        path: PathBuf,
        /// The plugin's major version.
        found_major: u32,
        /// The plugin's minor version.
        found_minor: u32,
        /// The host's major version.
        host_major: u32,
    },
    /// abi_stable found the root module's layout incompatible.
    #[error("plugin {path}: its ABI layout does not match this weft's ({detail}); rebuild it against this weft-abi")]
    Layout {
        /// The path.
        path: PathBuf,
        /// The first line of abi_stable's report.
        detail: String,
    },
    /// The plugin's own initialisation or manifest failed or panicked.
    #[error("plugin {path}: {error}")]
    Init {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        error: Error,
    },
    /// The manifest is unusable.
    #[error("plugin {path}: invalid manifest: {reason}")]
    Manifest {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// A loaded plugin library. Libraries are never unloaded: this handle can be dropped, the code
/// stays mapped (objects it made may still be alive).
pub struct Plugin {
    path: PathBuf,
    manifest: Manifest,
    abi: (u32, u32),
    module: PluginRef,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("manifest", &self.manifest)
            .field("abi", &self.abi)
            .finish_non_exhaustive()
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("unknown");
    line.chars().take(300).collect()
}

fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(format!("name {name:?} must be 1-64 characters of a-z, 0-9, '-' or '_'")) }
}

impl Plugin {
    /// Loads the library at `path` and checks that it is a weft plugin this host can use.
    ///
    /// # Errors
    /// Every refusal is a [`LoadError`] naming the file and what to do.
    pub fn load(path: &Path) -> std::result::Result<Self, LoadError> {
        let path_buf = path.to_path_buf();
        if !path.is_file() {
            return Err(LoadError::Missing { path: path_buf });
        }
        let raw = RawLibrary::load_at(path).map_err(|e| LoadError::Open {
            path: path_buf.clone(),
            reason: match e {
                LibraryError::OpenError { err, .. } => first_line(&err.to_string()),
                other => first_line(&other.to_string()),
            },
        })?;
        // SAFETY: every weft plugin exports WEFT_PLUGIN_ABI as `static [u32; 2]`; a library that
        // exports a different thing under this name is not one we can defend against.
        let (major, minor) = match unsafe { raw.get::<*const [u32; 2]>(ABI_SYMBOL) } {
            Ok(symbol) => {
                let [major, minor] = unsafe { **symbol };
                (major, minor)
            }
            Err(_) => {
                std::mem::forget(raw);
                return Err(LoadError::NotAPlugin { path: path_buf, symbol: "WEFT_PLUGIN_ABI" });
            }
        };
        if major != ABI_MAJOR {
            std::mem::forget(raw);
            return Err(LoadError::AbiVersion {
                path: path_buf,
                found_major: major,
                found_minor: minor,
                host_major: ABI_MAJOR,
            });
        }
        // SAFETY: the header is only used while the library stays loaded, which is forever.
        let header = match unsafe { lib_header_from_raw_library(&raw) } {
            Ok(h) => h,
            Err(_) => {
                std::mem::forget(raw);
                return Err(LoadError::NotAPlugin { path: path_buf, symbol: "abi_stable root module" });
            }
        };
        // Plugins are never unloaded (objects they made may outlive every handle).
        std::mem::forget(raw);
        let module = header.init_root_module::<PluginRef>().map_err(|e| match e {
            LibraryError::RootModule { err, .. } => LoadError::Init {
                path: path_buf.clone(),
                error: Error::new(
                    ErrorCode::PANIC,
                    format!("plugin initialisation failed: {}", first_line(&err.to_string())),
                ),
            },
            other => LoadError::Layout { path: path_buf.clone(), detail: first_line(&other.to_string()) },
        })?;
        let manifest: Manifest = (module.manifest())()
            .into_result()
            .map_err(|error| LoadError::Init { path: path_buf.clone(), error })?
            .into();
        check_name(&manifest.name).map_err(|reason| LoadError::Manifest { path: path_buf.clone(), reason })?;
        if manifest.kinds.is_empty() {
            return Err(LoadError::Manifest { path: path_buf, reason: "it provides no kind".into() });
        }
        Ok(Self { path: path_buf, manifest, abi: (major, minor), module })
    }

    /// Where it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What it says about itself.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Its name (from the manifest).
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The ABI version it was built for, `(major, minor)`.
    pub fn abi_version(&self) -> (u32, u32) {
        self.abi
    }

    /// Whether it provides `kind` (and this host can construct it).
    pub fn provides(&self, kind: Kind) -> bool {
        self.manifest.provides(kind) && kind.is_known()
    }

    fn missing(&self, kind: Kind) -> Error {
        Error::unsupported(format!("plugin {} does not provide the {kind} kind;", self.name()))
    }

    fn ctx(&self, kind: Kind) -> String {
        format!("plugin {} ({kind})", self.name())
    }

    /// Constructs its storage backend over `dir`.
    ///
    /// # Errors
    /// The plugin has no storage kind, or its constructor failed or panicked.
    pub fn storage(&self, config: &str, dir: &Path) -> Result<storage::Loaded> {
        let ctor = self.module.storage().ok_or_else(|| self.missing(Kind::STORAGE))?;
        let dir = dir.to_str().ok_or_else(|| Error::config(format!("path {} is not UTF-8", dir.display())))?;
        let inner = ctor(config.into(), dir.into()).into_result().map_err(|e| e.context(self.ctx(Kind::STORAGE)))?;
        Ok(storage::Loaded::new(inner, self.name().to_owned()))
    }

    /// Constructs its transport for the node with secret key `identity`, reporting to `sink`.
    ///
    /// # Errors
    /// The plugin has no transport kind, or its constructor failed or panicked.
    pub fn transport(&self, config: &str, identity: &[u8], sink: Sink) -> Result<transport::Loaded> {
        let ctor = self.module.transport().ok_or_else(|| self.missing(Kind::TRANSPORT))?;
        let inner = ctor(config.into(), identity.into(), sink.into_raw())
            .into_result()
            .map_err(|e| e.context(self.ctx(Kind::TRANSPORT)))?;
        Ok(transport::Loaded::new(inner, self.name().to_owned()))
    }

    /// Constructs its DHT for the node with secret key `identity`.
    ///
    /// # Errors
    /// The plugin has no dht kind, or its constructor failed or panicked.
    pub fn dht(&self, config: &str, identity: &[u8]) -> Result<dht::Loaded> {
        let ctor = self.module.dht().ok_or_else(|| self.missing(Kind::DHT))?;
        let inner = ctor(config.into(), identity.into()).into_result().map_err(|e| e.context(self.ctx(Kind::DHT)))?;
        Ok(dht::Loaded::new(inner, self.name().to_owned()))
    }

    /// Constructs its AIR interpreter.
    ///
    /// # Errors
    /// The plugin has no air kind, or its constructor failed or panicked.
    pub fn air(&self, config: &str) -> Result<air::Loaded> {
        let ctor = self.module.air().ok_or_else(|| self.missing(Kind::AIR))?;
        let inner = ctor(config.into()).into_result().map_err(|e| e.context(self.ctx(Kind::AIR)))?;
        Ok(air::Loaded::new(inner, self.name().to_owned()))
    }

    /// Constructs its effector over `dir`.
    ///
    /// # Errors
    /// The plugin has no effector kind, or its constructor failed or panicked.
    pub fn effector(&self, config: &str, dir: &Path) -> Result<effector::Loaded> {
        let ctor = self.module.effector().ok_or_else(|| self.missing(Kind::EFFECTOR))?;
        let dir = dir.to_str().ok_or_else(|| Error::config(format!("path {} is not UTF-8", dir.display())))?;
        let inner = ctor(config.into(), dir.into()).into_result().map_err(|e| e.context(self.ctx(Kind::EFFECTOR)))?;
        Ok(effector::Loaded::new(inner, self.name().to_owned()))
    }
}

/// The file name a plugin crate named `weft-plugin-NAME` builds to on this platform
/// (`libweft_plugin_NAME.so` on Linux).
pub fn library_file_name(name: &str) -> String {
    format!("{}weft_plugin_{}{}", std::env::consts::DLL_PREFIX, name.replace('-', "_"), std::env::consts::DLL_SUFFIX)
}

/// Whether a file name looks like a weft plugin library (`libweft_plugin_*.so` on Linux).
pub fn is_plugin_file_name(file_name: &str) -> bool {
    let prefix = format!("{}weft_plugin_", std::env::consts::DLL_PREFIX);
    file_name.starts_with(&prefix) && file_name.ends_with(std::env::consts::DLL_SUFFIX)
}
