//! The `sled` storage plugin: weft's default key-value backend, over sled 0.34.
//!
//! Configuration (TOML, every key optional):
//!
//! ```toml
//! cache_capacity_bytes = 67108864   # page cache; sled's own default (1 GiB) is too large for a node
//! flush_every_ms = 500              # background flush period; 0 turns it off
//! mode = "low_space"                # or "high_throughput"
//! ```
//!
//! One sled tree holds the flat keyspace; [`apply`](weft_abi::storage::Backend::apply) is one
//! `sled::Batch` (atomic), and [`flush`](weft_abi::storage::Backend::flush) is `Db::flush` (fsync).

use std::ops::Bound;
use std::path::Path;

use serde::Deserialize;
use weft_abi::storage::{Backend, Op, Stats};
use weft_abi::{Error, ErrorCode, Kind, Manifest, Provider, Result};

/// A TOML error on one line: `line N (`the line`): what`.
fn config_error(text: &str, e: &toml::de::Error) -> Error {
    let what = e.message().lines().next().unwrap_or("invalid");
    match e.span() {
        Some(span) => {
            let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            Error::config(format!("sled plugin config line {line_no} (`{line}`): {what}"))
        }
        None => Error::config(format!("sled plugin config: {what}")),
    }
}

/// The plugin provider.
#[derive(Debug)]
pub struct SledPlugin;

/// The plugin's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// sled's page cache, in bytes.
    pub cache_capacity_bytes: u64,
    /// Background flush period in ms; 0 disables it (then only explicit flushes persist).
    pub flush_every_ms: u64,
    /// `"low_space"` or `"high_throughput"`.
    pub mode: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { cache_capacity_bytes: 64 << 20, flush_every_ms: 500, mode: "low_space".into() }
    }
}

impl Config {
    /// Parses the configuration text (empty means defaults).
    ///
    /// # Errors
    /// Malformed TOML, unknown keys or bad values, as [`ErrorCode::INVALID_CONFIG`].
    pub fn parse(text: &str) -> Result<Self> {
        let c: Self = toml::from_str(text).map_err(|e| config_error(text, &e))?;
        if c.mode != "low_space" && c.mode != "high_throughput" {
            return Err(Error::config(format!(
                "sled plugin config: mode {:?} is not \"low_space\" or \"high_throughput\"",
                c.mode
            )));
        }
        Ok(c)
    }
}

/// A sled database as a weft storage backend.
#[derive(Debug)]
pub struct Sled {
    db: sled::Db,
}

fn io(context: &str, e: sled::Error) -> Error {
    let code = match e {
        sled::Error::Corruption { .. } => ErrorCode::CORRUPT,
        _ => ErrorCode::IO,
    };
    Error::new(code, format!("sled {context}: {e}"))
}

impl Sled {
    /// Opens (or creates) the database in `dir`.
    ///
    /// # Errors
    /// The directory is unusable or locked by another process.
    pub fn open(dir: &Path, config: &Config) -> Result<Self> {
        let mode = if config.mode == "high_throughput" { sled::Mode::HighThroughput } else { sled::Mode::LowSpace };
        let flush = (config.flush_every_ms > 0).then_some(config.flush_every_ms);
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(config.cache_capacity_bytes)
            .flush_every_ms(flush)
            .mode(mode)
            .open()
            .map_err(|e| {
                let text = e.to_string();
                if text.contains("lock") {
                    Error::new(
                        ErrorCode::IO,
                        format!("sled database {} is in use by another process ({text})", dir.display()),
                    )
                } else {
                    io(&format!("cannot open {}", dir.display()), e)
                }
            })?;
        Ok(Self { db })
    }
}

impl Backend for Sled {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key).map_err(|e| io("get", e))?.map(|v| v.to_vec()))
    }

    fn apply(&self, ops: Vec<Op>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op.value {
                Some(v) => batch.insert(op.key, v),
                None => batch.remove(op.key),
            }
        }
        self.db.apply_batch(batch).map_err(|e| io("apply", e))
    }

    fn scan(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let iter = match start_after {
            Some(after) if after >= prefix => self.db.range::<&[u8], _>((Bound::Excluded(after), Bound::Unbounded)),
            _ => self.db.range::<&[u8], _>((Bound::Included(prefix), Bound::Unbounded)),
        };
        let mut out = Vec::new();
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(|e| io("scan", e))?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(|e| io("flush", e))
    }

    fn stats(&self) -> Result<Stats> {
        let disk_bytes = self.db.size_on_disk().map_err(|e| io("size_on_disk", e))?;
        Ok(Stats { disk_bytes, keys: self.db.len() as u64 })
    }
}

impl Provider for SledPlugin {
    fn manifest() -> Manifest {
        Manifest {
            name: "sled".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "key-value storage on sled 0.34 (default)".into(),
            kinds: vec![Kind::STORAGE],
        }
    }

    fn storage(config: &str, dir: &Path) -> Result<Box<dyn Backend>> {
        Ok(Box::new(Sled::open(dir, &Config::parse(config)?)?))
    }
}

weft_abi::export_plugin!(SledPlugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_errors() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.cache_capacity_bytes, 64 << 20);
        let e = Config::parse("cache_capacity = 5").unwrap_err();
        assert_eq!(e.code(), ErrorCode::INVALID_CONFIG);
        assert!(e.message().contains("cache_capacity"), "{e}");
        assert!(Config::parse("mode = \"fast\"").unwrap_err().message().contains("fast"));
        assert!(Config::parse("flush_every_ms = -1").is_err());
    }
}
