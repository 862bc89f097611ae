//! The store: content-addressed blobs and typed records over a key-value backend.

use std::sync::Arc;

use weft_abi::storage::{Backend, Op};

use crate::error::BackendResult;
use crate::records::{self, ArtifactKey, ArtifactRecord, BlueprintRecord, ModuleRecord, ServiceRecord};
use crate::{Error, Hash, Result};

const BLOB: &[u8] = b"blob/";
const MODULE: &[u8] = b"mod/";
const ARTIFACT: &[u8] = b"art/";
const BLUEPRINT: &[u8] = b"bp/";
const SERVICE: &[u8] = b"svc/";
const ALIAS: &[u8] = b"alias/";

/// Entries fetched per backend scan: memory stays bounded whatever the store holds.
const PAGE: usize = 256;

fn key(prefix: &[u8], id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + id.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(id);
    k
}

/// The node's store. Cheap to clone; every clone shares the backend.
///
/// Writes are applied atomically per call; they are durable once [`Store::flush`] returns, and a
/// command reports success only after that.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// A store over `backend` (a linked backend or one loaded from a plugin).
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }

    /// The backend underneath.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Makes every write so far durable.
    ///
    /// # Errors
    /// The backend could not sync.
    pub fn flush(&self) -> Result<()> {
        self.backend.flush().op("flush")
    }

    /// The raw backend key of a blob.
    pub fn blob_key(hash: &Hash) -> Vec<u8> {
        key(BLOB, &hash.0)
    }

    /// Stores `bytes` under their blake3 hash. Idempotent: bytes already present are not rewritten.
    ///
    /// # Errors
    /// The backend failed.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Hash> {
        let hash = Hash::of(bytes);
        if !self.has_blob(&hash)? {
            self.backend.apply(vec![Op::put(Self::blob_key(&hash), bytes.to_vec())]).op("apply")?;
        }
        Ok(hash)
    }

    /// The bytes stored under `hash`, re-hashed: corrupt bytes are an error, never returned.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the bytes do not hash to `hash`; backend failures.
    pub fn get_blob(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        let Some(bytes) = self.backend.get(&Self::blob_key(hash)).op("get")? else { return Ok(None) };
        let actual = Hash::of(&bytes);
        if actual != *hash {
            return Err(Error::Corrupt { hash: *hash, actual });
        }
        Ok(Some(bytes))
    }

    /// Whether a blob is stored under `hash` (without reading or checking it).
    ///
    /// # Errors
    /// The backend failed.
    pub fn has_blob(&self, hash: &Hash) -> Result<bool> {
        let k = Self::blob_key(hash);
        Ok(!self.backend.scan(&k, None, 1).op("scan")?.is_empty())
    }

    /// Removes a blob (no error if absent).
    ///
    /// # Errors
    /// The backend failed.
    pub fn delete_blob(&self, hash: &Hash) -> Result<()> {
        self.backend.apply(vec![Op::delete(Self::blob_key(hash))]).op("apply")
    }

    /// The hashes of every stored blob.
    ///
    /// # Errors
    /// The backend failed.
    pub fn blob_hashes(&self) -> Result<Vec<Hash>> {
        let mut out = Vec::new();
        self.scan(BLOB, |k, _| {
            if let Ok(raw) = <[u8; 32]>::try_from(k) {
                out.push(Hash(raw));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f(key without prefix, value)` for every entry under `prefix`, a page at a time.
    fn scan(&self, prefix: &[u8], mut f: impl FnMut(&[u8], Vec<u8>) -> Result<()>) -> Result<()> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.backend.scan(prefix, after.as_deref(), PAGE).op("scan")?;
            let full = page.len() == PAGE;
            for (k, v) in page {
                f(&k[prefix.len()..], v)?;
                after = Some(k);
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn put_record<T: serde::Serialize>(&self, prefix: &[u8], id: &[u8], value: &T) -> Result<()> {
        self.backend.apply(vec![Op::put(key(prefix, id), records::encode(value))]).op("apply")
    }

    fn get_record<T: serde::de::DeserializeOwned>(
        &self,
        kind: &'static str,
        prefix: &[u8],
        id: &[u8],
        shown: &dyn std::fmt::Display,
    ) -> Result<Option<T>> {
        match self.backend.get(&key(prefix, id)).op("get")? {
            Some(bytes) => records::decode(kind, shown, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn all_records<T: serde::de::DeserializeOwned>(&self, kind: &'static str, prefix: &[u8]) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.scan(prefix, |k, v| {
            out.push(records::decode(kind, &String::from_utf8_lossy(k), &v)?);
            Ok(())
        })?;
        Ok(out)
    }

    fn remove(&self, prefix: &[u8], id: &[u8]) -> Result<()> {
        self.backend.apply(vec![Op::delete(key(prefix, id))]).op("apply")
    }

    /// Stores a module record (its bytes go in with [`Store::put_blob`]).
    ///
    /// # Errors
    /// The backend failed.
    pub fn put_module(&self, r: &ModuleRecord) -> Result<()> {
        self.put_record(MODULE, &r.hash.0, r)
    }

    /// The module record of `hash`.
    ///
    /// # Errors
    /// Backend failure or an unreadable record.
    pub fn module(&self, hash: &Hash) -> Result<Option<ModuleRecord>> {
        self.get_record("module", MODULE, &hash.0, hash)
    }

    /// Every module record.
    ///
    /// # Errors
    /// Backend failure or an unreadable record.
    pub fn modules(&self) -> Result<Vec<ModuleRecord>> {
        self.all_records("module", MODULE)
    }

    /// Removes a module record (not its blob).
    ///
    /// # Errors
    /// The backend failed.
    pub fn remove_module(&self, hash: &Hash) -> Result<()> {
        self.remove(MODULE, &hash.0)
    }

    fn artifact_id(k: &ArtifactKey) -> Vec<u8> {
        key(&k.module.0, &k.engine.0)
    }

    /// Files an artifact record under (module, engine).
    ///
    /// # Errors
    /// The backend failed.
    pub fn put_artifact(&self, k: &ArtifactKey, r: &ArtifactRecord) -> Result<()> {
        self.put_record(ARTIFACT, &Self::artifact_id(k), r)
    }

    /// The artifact record for (module, engine).
    ///
    /// # Errors
    /// Backend failure or an unreadable record.
    pub fn artifact(&self, k: &ArtifactKey) -> Result<Option<ArtifactRecord>> {
        self.get_record("artifact", ARTIFACT, &Self::artifact_id(k), &k.module)
    }

    /// Every artifact record.
    ///
    /// # Errors
    /// Backend failure or an unreadable record.
    pub fn artifacts(&self) -> Result<Vec<(ArtifactKey, ArtifactRecord)>> {
        let mut out = Vec::new();
        self.scan(ARTIFACT, |k, v| {
            let (Ok(module), Ok(engine)) =
                (<[u8; 32]>::try_from(&k[..k.len().min(32)]), <[u8; 32]>::try_from(&k[k.len().min(32)..]))
            else {
                return Err(Error::Record {
                    kind: "artifact",
                    key: format!("{k:02x?}"),
                    reason: "malformed key".into(),
                });
            };
            let key = ArtifactKey { module: Hash(module), engine: Hash(engine) };
            out.push((key, records::decode("artifact", &key.module, &v)?));
            Ok(())
        })?;
        Ok(out)
    }

    /// Removes an artifact record (not its blob).
    ///
    /// # Errors
    /// The backend failed.
    pub fn remove_artifact(&self, k: &ArtifactKey) -> Result<()> {
        self.remove(ARTIFACT, &Self::artifact_id(k))
    }

    /// Stores a blueprint record.
    ///
    /// # Errors
    /// The backend failed.
    pub fn put_blueprint(&self, r: &BlueprintRecord) -> Result<()> {
        self.put_record(BLUEPRINT, &r.id.0, r)
    }

    /// The blueprint `id`.
    ///
    /// # Errors
    /// Backend failure or an unreadable record.
    pub fn blueprint(&self, id: &Hash) -> Result<Option<BlueprintRecord>> {
        self.get_record("blueprint", BLUEPRINT, &id.0, id)
    }

    /// Every blueprint.
    ///
    /// # Errors
    /// Backend failure or an unreadable record.
    pub fn blueprints(&self) -> Result<Vec<BlueprintRecord>> {
        self.all_records("blueprint", BLUEPRINT)
    }

    /// Removes a blueprint record.
    ///
    /// # Errors
    /// The backend failed.
    pub fn remove_blueprint(&self, id: &Hash) -> Result<()> {
        self.remove(BLUEPRINT, &id.0)
    }

    /// Stores a service record.
    ///
    /// # Errors
    /// The backend failed.
    pub fn put_service(&self, r: &ServiceRecord) -> Result<()> {
        self.put_record(SERVICE, r.id.as_bytes(), r)
    }

    /// The service `id`.
    ///
    /// # Errors
    /// Backend failure or an unreadable record.
    pub fn service(&self, id: &str) -> Result<Option<ServiceRecord>> {
        self.get_record("service", SERVICE, id.as_bytes(), &id)
    }

    /// Every service.
    ///
    /// # Errors
    /// Backend failure or an unreadable record.
    pub fn services(&self) -> Result<Vec<ServiceRecord>> {
        self.all_records("service", SERVICE)
    }

    /// Removes a service record.
    ///
    /// # Errors
    /// The backend failed.
    pub fn remove_service(&self, id: &str) -> Result<()> {
        self.remove(SERVICE, id.as_bytes())
    }

    /// Points `alias` at `service_id`.
    ///
    /// # Errors
    /// The backend failed.
    pub fn set_alias(&self, alias: &str, service_id: &str) -> Result<()> {
        self.put_record(ALIAS, alias.as_bytes(), &service_id)
    }

    /// The service an alias points at.
    ///
    /// # Errors
    /// Backend failure or an unreadable record.
    pub fn alias(&self, alias: &str) -> Result<Option<String>> {
        self.get_record("alias", ALIAS, alias.as_bytes(), &alias)
    }

    /// Every alias and its service.
    ///
    /// # Errors
    /// Backend failure or an unreadable record.
    pub fn aliases(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        self.scan(ALIAS, |k, v| {
            let alias = String::from_utf8_lossy(k).into_owned();
            let service = records::decode("alias", &alias, &v)?;
            out.push((alias, service));
            Ok(())
        })?;
        Ok(out)
    }

    /// Removes an alias.
    ///
    /// # Errors
    /// The backend failed.
    pub fn remove_alias(&self, alias: &str) -> Result<()> {
        self.remove(ALIAS, alias.as_bytes())
    }
}
