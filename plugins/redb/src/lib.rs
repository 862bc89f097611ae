//! The `redb` storage plugin: the alternative key-value backend, over redb 4.
//!
//! It proves that storage is swappable (`[plugins] storage = "redb"`). One table in
//! `DIR/weft.redb` holds the flat keyspace.
//!
//! Durability: each [`apply`](weft_abi::storage::Backend::apply) is one write transaction committed
//! with `Durability::None` (atomic and visible at once, no fsync), and
//! [`flush`](weft_abi::storage::Backend::flush) commits an empty transaction with
//! `Durability::Immediate`, which persists everything before it. This mirrors sled (batches are
//! atomic, `flush` syncs) and keeps a burst of small writes from paying one fsync each.
//!
//! Configuration (TOML, every key optional): `cache_size_bytes = 67108864`.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition, TableError};
use serde::Deserialize;
use weft_abi::storage::{Backend, Op, Stats};
use weft_abi::{Error, ErrorCode, Kind, Manifest, Provider, Result};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("weft");

/// The file inside the plugin's directory.
pub const FILE_NAME: &str = "weft.redb";

/// A TOML error on one line: `line N (`the line`): what`.
fn config_error(text: &str, e: &toml::de::Error) -> Error {
    let what = e.message().lines().next().unwrap_or("invalid");
    match e.span() {
        Some(span) => {
            let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            Error::config(format!("redb plugin config line {line_no} (`{line}`): {what}"))
        }
        None => Error::config(format!("redb plugin config: {what}")),
    }
}

/// The plugin provider.
#[derive(Debug)]
pub struct RedbPlugin;

/// The plugin's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// redb's page cache, in bytes.
    pub cache_size_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { cache_size_bytes: 64 << 20 }
    }
}

impl Config {
    /// Parses the configuration text (empty means defaults).
    ///
    /// # Errors
    /// Malformed TOML or unknown keys, as [`ErrorCode::INVALID_CONFIG`].
    pub fn parse(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| config_error(text, &e))
    }
}

/// A redb database as a weft storage backend.
pub struct Redb {
    db: Database,
    path: std::path::PathBuf,
}

impl std::fmt::Debug for Redb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redb").field("path", &self.path).finish_non_exhaustive()
    }
}

fn io(context: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::IO, format!("redb {context}: {e}"))
}

impl Redb {
    /// Opens (or creates) `dir/weft.redb`.
    ///
    /// # Errors
    /// The file is unusable, corrupt, or in use by another process.
    pub fn open(dir: &Path, config: &Config) -> Result<Self> {
        let path = dir.join(FILE_NAME);
        let db = Database::builder().set_cache_size(config.cache_size_bytes).create(&path).map_err(|e| {
            let text = e.to_string();
            if text.to_lowercase().contains("already open") || text.to_lowercase().contains("lock") {
                Error::new(
                    ErrorCode::IO,
                    format!("redb database {} is in use by another process ({text})", path.display()),
                )
            } else {
                io(&format!("cannot open {}", path.display()), text)
            }
        })?;
        Ok(Self { db, path })
    }

    fn commit(&self, durability: Durability, ops: Vec<Op>) -> Result<()> {
        let mut tx = self.db.begin_write().map_err(|e| io("begin_write", e))?;
        tx.set_durability(durability).map_err(|e| io("set_durability", e))?;
        {
            let mut table = tx.open_table(TABLE).map_err(|e| io("open_table", e))?;
            for op in ops {
                match op.value {
                    Some(v) => {
                        table.insert(op.key.as_slice(), v.as_slice()).map_err(|e| io("insert", e))?;
                    }
                    None => {
                        table.remove(op.key.as_slice()).map_err(|e| io("remove", e))?;
                    }
                }
            }
        }
        tx.commit().map_err(|e| io("commit", e))
    }
}

impl Backend for Redb {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read().map_err(|e| io("begin_read", e))?;
        let table = match tx.open_table(TABLE) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(io("open_table", e)),
        };
        Ok(table.get(key).map_err(|e| io("get", e))?.map(|v| v.value().to_vec()))
    }

    fn apply(&self, ops: Vec<Op>) -> Result<()> {
        self.commit(Durability::None, ops)
    }

    fn scan(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        use std::ops::Bound;
        let tx = self.db.begin_read().map_err(|e| io("begin_read", e))?;
        let table = match tx.open_table(TABLE) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(io("open_table", e)),
        };
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let range = table.range::<&[u8]>((lower, Bound::Unbounded)).map_err(|e| io("range", e))?;
        let mut out = Vec::new();
        for item in range {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(|e| io("scan", e))?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn flush(&self) -> Result<()> {
        self.commit(Durability::Immediate, Vec::new())
    }

    fn stats(&self) -> Result<Stats> {
        let disk_bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let tx = self.db.begin_read().map_err(|e| io("begin_read", e))?;
        let keys = match tx.open_table(TABLE) {
            Ok(t) => t.len().map_err(|e| io("len", e))?,
            Err(TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(io("open_table", e)),
        };
        Ok(Stats { disk_bytes, keys })
    }
}

impl Provider for RedbPlugin {
    fn manifest() -> Manifest {
        Manifest {
            name: "redb".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "key-value storage on redb".into(),
            kinds: vec![Kind::STORAGE],
        }
    }

    fn storage(config: &str, dir: &Path) -> Result<Box<dyn Backend>> {
        Ok(Box::new(Redb::open(dir, &Config::parse(config)?)?))
    }
}

weft_abi::export_plugin!(RedbPlugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_errors() {
        assert_eq!(Config::parse("").unwrap().cache_size_bytes, 64 << 20);
        let e = Config::parse("cache = 1").unwrap_err();
        assert_eq!(e.code(), ErrorCode::INVALID_CONFIG);
        assert!(e.message().contains("cache"), "{e}");
    }
}
