//! Helpers for tests of crates that use a store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use weft_abi::storage::{Backend, Op, Stats};
use weft_abi::{Error, Result};

/// An in-memory backend: a `BTreeMap` under a mutex. Not durable; for tests.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryBackend {
    fn map(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>>> {
        self.map.lock().map_err(|_| Error::other("memory backend poisoned by an earlier panic"))
    }
}

impl Backend for MemoryBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.map()?.get(key).cloned())
    }

    fn apply(&self, ops: Vec<Op>) -> Result<()> {
        let mut map = self.map()?;
        for op in ops {
            match op.value {
                Some(v) => map.insert(op.key, v),
                None => map.remove(&op.key),
            };
        }
        Ok(())
    }

    fn scan(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        use std::ops::Bound;
        let map = self.map()?;
        let lower = match start_after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        Ok(map
            .range((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn stats(&self) -> Result<Stats> {
        let map = self.map()?;
        let bytes = map.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
        Ok(Stats { disk_bytes: bytes, keys: map.len() as u64 })
    }
}
