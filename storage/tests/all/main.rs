//! weft-storage over the real backends (sled and redb files in temp dirs).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use weft_abi::Provider;
use weft_abi::storage::{Backend, Op, Stats};
use weft_storage::{ArtifactKey, ArtifactRecord, BlueprintRecord, Error, Hash, ModuleRecord, ServiceRecord, Store};

type Opener = fn(&Path) -> Box<dyn Backend>;

/// sled linked as a library.
fn sled(dir: &Path) -> Box<dyn Backend> {
    weft_plugin_sled::SledPlugin::storage("", dir).unwrap()
}

/// redb loaded from its `.so`, as the host does. (Two plugin crates cannot both be linked into one
/// binary: each exports the same plugin symbols.)
fn redb(dir: &Path) -> Box<dyn Backend> {
    static PLUGIN: std::sync::OnceLock<weft_abi::Plugin> = std::sync::OnceLock::new();
    let plugin = PLUGIN.get_or_init(|| {
        let path = weft_abi::compliance::built_library(&weft_abi::library_file_name("redb"));
        weft_abi::Plugin::load(&path).unwrap()
    });
    Box::new(plugin.storage("", dir).unwrap())
}

const BACKENDS: [(&str, Opener); 2] = [("sled", sled), ("redb", redb)];

/// Counts the writes that reach the backend.
struct Counting {
    inner: Box<dyn Backend>,
    writes: AtomicUsize,
}

impl Backend for Counting {
    fn get(&self, key: &[u8]) -> weft_abi::Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn apply(&self, ops: Vec<Op>) -> weft_abi::Result<()> {
        self.writes.fetch_add(ops.len(), Ordering::SeqCst);
        self.inner.apply(ops)
    }
    fn scan(&self, p: &[u8], a: Option<&[u8]>, l: usize) -> weft_abi::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan(p, a, l)
    }
    fn flush(&self) -> weft_abi::Result<()> {
        self.inner.flush()
    }
    fn stats(&self) -> weft_abi::Result<Stats> {
        self.inner.stats()
    }
}

#[test]
fn blob_put_is_idempotent() {
    for (name, open) in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let counting = Arc::new(Counting { inner: open(dir.path()), writes: AtomicUsize::new(0) });
        let store = Store::new(counting.clone());
        let h1 = store.put_blob(b"module bytes").unwrap();
        let h2 = store.put_blob(b"module bytes").unwrap();
        assert_eq!(h1, h2);
        assert_eq!(h1, Hash::of(b"module bytes"));
        assert_eq!(counting.writes.load(Ordering::SeqCst), 1, "{name}: the second put wrote");
        assert!(store.has_blob(&h1).unwrap());
        assert_eq!(store.blob_hashes().unwrap(), vec![h1]);
    }
}

#[test]
fn a_corrupted_blob_is_reported_never_returned() {
    for (name, open) in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(Arc::from(open(dir.path())));
        let h = store.put_blob(b"good bytes").unwrap();
        store.backend().apply(vec![Op::put(Store::blob_key(&h), b"evil bytes".to_vec())]).unwrap();
        match store.get_blob(&h) {
            Err(Error::Corrupt { hash, actual }) => {
                assert_eq!(hash, h);
                assert_eq!(actual, Hash::of(b"evil bytes"));
            }
            other => panic!("{name}: expected a corruption error, got {other:?}"),
        }
        let msg = store.get_blob(&h).unwrap_err().to_string();
        assert!(msg.contains(&h.to_string()) && msg.contains("corrupt"), "{msg}");
        // A truncated value too.
        store.backend().apply(vec![Op::put(Store::blob_key(&h), b"good".to_vec())]).unwrap();
        assert!(matches!(store.get_blob(&h), Err(Error::Corrupt { .. })), "{name}");
        assert_eq!(store.get_blob(&Hash::of(b"absent")).unwrap(), None);
    }
}

fn fill(store: &Store) {
    let m = Hash::of(b"wasm");
    store.put_blob(b"wasm").unwrap();
    store.put_module(&ModuleRecord { hash: m, name: "greeting".into(), size: 4, added_ms: 1 }).unwrap();
    let key = ArtifactKey { module: m, engine: Hash::of(b"engine") };
    store
        .put_artifact(&key, &ArtifactRecord { blob: Hash::of(b"art"), size: 3, compiled_ms: 2, compile_time_us: 5 })
        .unwrap();
    store
        .put_blueprint(&BlueprintRecord {
            id: Hash::of(b"bp"),
            name: "svc".into(),
            modules: vec![m],
            encoding: vec![1, 2, 3],
            pinned: true,
            added_ms: 7,
        })
        .unwrap();
    store
        .put_service(&ServiceRecord {
            id: "s-1".into(),
            blueprint: Hash::of(b"bp"),
            owner: "12D3KooW".into(),
            aliases: vec!["hello".into()],
            created_ms: 9,
        })
        .unwrap();
    store.set_alias("hello", "s-1").unwrap();
}

type Snapshot = (
    Vec<ModuleRecord>,
    Vec<(ArtifactKey, ArtifactRecord)>,
    Vec<BlueprintRecord>,
    Vec<ServiceRecord>,
    Vec<(String, String)>,
    Vec<Hash>,
);

fn snapshot(store: &Store) -> Snapshot {
    (
        store.modules().unwrap(),
        store.artifacts().unwrap(),
        store.blueprints().unwrap(),
        store.services().unwrap(),
        store.aliases().unwrap(),
        store.blob_hashes().unwrap(),
    )
}

#[test]
fn records_round_trip_survive_reopen_and_agree_across_backends() {
    let mut snapshots = Vec::new();
    for (name, open) in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let store = Store::new(Arc::from(open(dir.path())));
            fill(&store);
            let m = Hash::of(b"wasm");
            assert_eq!(store.module(&m).unwrap().unwrap().name, "greeting");
            assert_eq!(store.service("s-1").unwrap().unwrap().aliases, vec!["hello".to_string()]);
            assert_eq!(store.alias("hello").unwrap().as_deref(), Some("s-1"));
            assert!(store.blueprint(&Hash::of(b"bp")).unwrap().unwrap().pinned);
            store.flush().unwrap();
            snapshot(&store)
        };
        let store = Store::new(Arc::from(open(dir.path())));
        assert_eq!(snapshot(&store), before, "{name}: records changed across a reopen");
        // Removal.
        store.remove_alias("hello").unwrap();
        store.remove_service("s-1").unwrap();
        store.remove_artifact(&before.1[0].0).unwrap();
        assert!(store.alias("hello").unwrap().is_none() && store.services().unwrap().is_empty());
        assert!(store.artifacts().unwrap().is_empty());
        snapshots.push(before);
    }
    assert_eq!(snapshots[0], snapshots[1], "sled and redb disagree");
}

#[test]
fn a_record_of_an_unknown_format_is_an_error() {
    for (name, open) in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(Arc::from(open(dir.path())));
        fill(&store);
        let mut key = b"svc/".to_vec();
        key.extend_from_slice(b"s-1");
        let mut raw = store.backend().get(&key).unwrap().unwrap();
        raw[0] = 200;
        store.backend().apply(vec![Op::put(key, raw)]).unwrap();
        match store.service("s-1") {
            Err(Error::Record { kind: "service", reason, .. }) => assert!(reason.contains("200"), "{reason}"),
            other => panic!("{name}: expected a record error, got {other:?}"),
        }
        assert!(store.services().is_err());
    }
}

#[test]
fn listings_page_through_many_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(Arc::from(sled(dir.path())));
    for i in 0..1000u32 {
        let hash = Hash::of(&i.to_le_bytes());
        store.put_module(&ModuleRecord { hash, name: format!("m{i}"), size: 1, added_ms: 0 }).unwrap();
    }
    assert_eq!(store.modules().unwrap().len(), 1000);
}
