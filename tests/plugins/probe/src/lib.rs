//! A weft plugin for the host's tests: the `probe` plugin provides an in-memory storage backend
//! and an AIR "interpreter" that echoes, and panics on demand, so tests can check that a panic in
//! a plugin becomes an error and the host keeps running.
//!
//! - storage config `panic_in_constructor` panics in the constructor;
//! - `get` of the key `b"panic"` panics; every other key works;
//! - air `run` with the script `"panic"` panics, anything else echoes the script back as data.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use weft_abi::{Error, Kind, Manifest, Provider, Result, air, storage};

/// The provider.
#[derive(Debug)]
pub struct Probe;

#[derive(Default)]
struct Memory(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);

impl storage::Backend for Memory {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        assert!(key != b"panic", "probe asked to panic");
        Ok(self.0.lock().map_err(|_| Error::other("poisoned"))?.get(key).cloned())
    }

    fn apply(&self, ops: Vec<storage::Op>) -> Result<()> {
        let mut map = self.0.lock().map_err(|_| Error::other("poisoned"))?;
        for op in ops {
            match op.value {
                Some(v) => map.insert(op.key, v),
                None => map.remove(&op.key),
            };
        }
        Ok(())
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let map = self.0.lock().map_err(|_| Error::other("poisoned"))?;
        Ok(map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn stats(&self) -> Result<storage::Stats> {
        let keys = self.0.lock().map_err(|_| Error::other("poisoned"))?.len() as u64;
        Ok(storage::Stats { disk_bytes: 0, keys })
    }
}

struct Echo;

impl air::Interpreter for Echo {
    fn run(&self, request: air::Request) -> Result<air::Outcome> {
        assert!(request.script != "panic", "probe interpreter asked to panic");
        Ok(air::Outcome { data: request.script.into_bytes(), ..air::Outcome::default() })
    }
}

impl Provider for Probe {
    fn manifest() -> Manifest {
        Manifest {
            name: "probe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "test plugin: in-memory storage and an echo interpreter that panic on demand".into(),
            kinds: vec![Kind::STORAGE, Kind::AIR],
        }
    }

    fn storage(config: &str, _dir: &Path) -> Result<Box<dyn storage::Backend>> {
        assert!(config.trim() != "panic_in_constructor", "probe constructor asked to panic");
        Ok(Box::new(Memory::default()))
    }

    fn air(_config: &str) -> Result<Box<dyn air::Interpreter>> {
        Ok(Box::new(Echo))
    }
}

weft_abi::export_plugin!(Probe);
