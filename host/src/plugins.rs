//! Finding plugin libraries, loading them, and choosing which one serves each kind.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use weft_abi::{Kind, LoadError, Plugin, is_plugin_file_name};

/// Why no plugin could be chosen for a kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// Nothing found provides the kind.
    #[error(
        "no plugin provides {kind} (searched {dirs}); build the workspace or add a plugin directory with --plugin-dir"
    )]
    NoneProvides {
        /// The kind.
        kind: Kind,
        /// The directories searched.
        dirs: String,
    },
    /// The configured plugin was not found.
    #[error(
        "the config asks for plugin {name:?} for {kind}, but it was not found (found: {available}); fix [plugins] {kind} in the config"
    )]
    NotFound {
        /// The kind.
        kind: Kind,
        /// The configured name.
        name: String,
        /// Names of the plugins found.
        available: String,
    },
    /// The configured plugin does not provide the kind.
    #[error(
        "the config asks for plugin {name:?} for {kind}, but it does not provide {kind} (it provides {provides}); fix [plugins] {kind} in the config"
    )]
    WrongKind {
        /// The kind.
        kind: Kind,
        /// The configured name.
        name: String,
        /// What it provides.
        provides: String,
    },
    /// Several plugins provide a kind of which one is expected, and the config does not choose.
    #[error(
        "{count} plugins provide {kind}: {candidates}; choose one with `{kind} = \"NAME\"` under [plugins] in the config"
    )]
    Ambiguous {
        /// The kind.
        kind: Kind,
        /// How many.
        count: usize,
        /// `name (path)` of each.
        candidates: String,
    },
}

/// A refused library and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// It did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Another library already uses its name.
    #[error("plugin {path}: its name {name:?} is already taken by {first}; remove one of the two")]
    Duplicate {
        /// The refused library.
        path: PathBuf,
        /// The name.
        name: String,
        /// The library that was loaded first.
        first: PathBuf,
    },
}

/// Everything found in the plugin directories.
#[derive(Debug, Default)]
pub struct Registry {
    dirs: Vec<PathBuf>,
    loaded: Vec<Plugin>,
    refused: Vec<Refusal>,
}

impl Registry {
    /// Loads every `libweft_plugin_*` library in `dirs` (in order; within a directory, by file
    /// name). Missing directories are skipped. Refused libraries are kept with their reason.
    pub fn discover(dirs: &[PathBuf]) -> Self {
        let mut files = Vec::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            let mut names: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_plugin_file_name))
                .collect();
            names.sort();
            files.extend(names);
        }
        let mut registry = Self { dirs: dirs.to_vec(), ..Self::default() };
        for file in files {
            registry.load(&file);
        }
        registry
    }

    /// Loads one more library (an explicitly configured file, or one found by [`Self::discover`]).
    /// Returns whether it was accepted.
    pub fn load(&mut self, path: &Path) -> bool {
        match Plugin::load(path) {
            Ok(plugin) => {
                if let Some(first) = self.loaded.iter().find(|p| p.name() == plugin.name()) {
                    // The same file reached twice (e.g. two dirs that are one) is not a conflict.
                    if same_file(first.path(), path) {
                        return true;
                    }
                    self.refused.push(Refusal::Duplicate {
                        path: path.to_path_buf(),
                        name: plugin.name().to_owned(),
                        first: first.path().to_path_buf(),
                    });
                    return false;
                }
                self.loaded.push(plugin);
                true
            }
            Err(e) => {
                self.refused.push(e.into());
                false
            }
        }
    }

    /// The directories searched, in order.
    pub fn dirs(&self) -> &[std::path::PathBuf] {
        &self.dirs
    }

    /// The plugins that loaded.
    pub fn loaded(&self) -> &[Plugin] {
        &self.loaded
    }

    /// The libraries that were refused, with why.
    pub fn refused(&self) -> &[Refusal] {
        &self.refused
    }

    /// The plugin named `name`.
    pub fn get(&self, name: &str) -> Option<&Plugin> {
        self.loaded.iter().find(|p| p.name() == name)
    }

    /// The plugin that serves `kind`: the one named by `choice`, or else the only one providing
    /// it.
    ///
    /// # Errors
    /// The choice is unknown or does not provide the kind; nothing provides it; or several do
    /// and there is no choice.
    pub fn select(&self, kind: Kind, choice: Option<&str>) -> Result<&Plugin, SelectError> {
        if let Some(name) = choice {
            let plugin = self.get(name).ok_or_else(|| SelectError::NotFound {
                kind,
                name: name.to_owned(),
                available: list(self.loaded.iter().map(|p| p.name().to_owned())),
            })?;
            if !plugin.provides(kind) {
                return Err(SelectError::WrongKind {
                    kind,
                    name: name.to_owned(),
                    provides: list(plugin.manifest().kinds.iter().map(ToString::to_string)),
                });
            }
            return Ok(plugin);
        }
        let candidates: Vec<&Plugin> = self.loaded.iter().filter(|p| p.provides(kind)).collect();
        match candidates.as_slice() {
            [] => {
                Err(SelectError::NoneProvides { kind, dirs: list(self.dirs.iter().map(|d| d.display().to_string())) })
            }
            [one] => Ok(one),
            many => Err(SelectError::Ambiguous {
                kind,
                count: many.len(),
                candidates: list(many.iter().map(|p| format!("{} ({})", p.name(), p.path().display()))),
            }),
        }
    }

    /// For each known kind, the names of the plugins that provide it.
    pub fn providers(&self) -> BTreeMap<Kind, Vec<&str>> {
        let mut map: BTreeMap<Kind, Vec<&str>> = Kind::ALL.iter().map(|k| (*k, Vec::new())).collect();
        for p in &self.loaded {
            for k in &p.manifest().kinds {
                if let Some(v) = map.get_mut(k) {
                    v.push(p.name());
                }
            }
        }
        map
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = items.collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

/// Display helper: `storage, air`.
#[derive(Debug, Clone, Copy)]
pub struct Kinds<'a>(pub &'a [Kind]);

impl fmt::Display for Kinds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&names.join(", "))
    }
}
