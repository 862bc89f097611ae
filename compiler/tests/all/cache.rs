//! The AOT cache over a real sled store: hits, corruption, truncation, foreign engines, gc, threads.

use std::sync::Arc;

use weft_abi::storage::Op;
use weft_compiler::{Cache, Compiler, Error, Outcome, Reason, ValidationError};
use weft_storage::{ArtifactKey, ArtifactRecord, BlueprintRecord, Hash, ModuleRecord, Store};

use crate::{call_sum, sled_store, sum_module};

fn compiler() -> Arc<Compiler> {
    Arc::new(Compiler::new().unwrap())
}

/// Puts `wasm` in the store with a module record; returns its hash.
fn add_module(store: &Store, wasm: &[u8], name: &str) -> Hash {
    let hash = store.put_blob(wasm).unwrap();
    store.put_module(&ModuleRecord { hash, name: name.into(), size: wasm.len() as u64, added_ms: 0 }).unwrap();
    hash
}

fn record(cache: &Cache, module: &Hash) -> ArtifactRecord {
    let key = ArtifactKey { module: *module, engine: cache.compiler().fingerprint() };
    cache.store().artifact(&key).unwrap().expect("artifact record")
}

/// Overwrites a blob's bytes in the backend, behind the store's back.
fn overwrite_blob(store: &Store, blob: &Hash, bytes: Vec<u8>) {
    store.backend().apply(vec![Op::put(Store::blob_key(blob), bytes)]).unwrap();
}

#[test]
fn compile_hit_corrupt_recompile_hit() {
    let (_dir, store) = sled_store();
    let module = add_module(&store, &sum_module(), "sum");
    let cache = Cache::new(store.clone(), compiler());
    let engine = cache.compiler().engine().clone();
    assert!(!cache.is_cached(&module).unwrap());

    let (m, outcome) = cache.load(&module).unwrap();
    assert_eq!(outcome, Outcome::Compiled);
    assert_eq!(call_sum(&engine, &m, 100), 5050);
    assert!(cache.is_cached(&module).unwrap());
    let first = record(&cache, &module);
    assert!(first.size > 0);

    let (m, outcome) = cache.load(&module).unwrap();
    assert_eq!(outcome, Outcome::Hit);
    assert_eq!(call_sum(&engine, &m, 100), 5050);

    // Flip bytes in the middle of the artifact (its code, most likely): the store's hash check
    // catches it, the artifact is discarded and rebuilt, and the module still computes correctly.
    let mut bytes = store.get_blob(&first.blob).unwrap().unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0xff;
    }
    overwrite_blob(&store, &first.blob, bytes);
    let (m, outcome) = cache.load(&module).unwrap();
    match outcome {
        Outcome::Recompiled { reason: Reason::CorruptBlob { blob, .. } } => assert_eq!(blob, first.blob),
        other => panic!("expected a recompile of a corrupt blob, got {other:?}"),
    }
    assert_eq!(call_sum(&engine, &m, 100), 5050);
    assert_eq!(call_sum(&engine, &m, 7), 28);

    let (m, outcome) = cache.load(&module).unwrap();
    assert_eq!(outcome, Outcome::Hit);
    assert_eq!(call_sum(&engine, &m, 100), 5050);
}

#[test]
fn truncated_artifact_is_recompiled_never_run() {
    let (_dir, store) = sled_store();
    let module = add_module(&store, &sum_module(), "sum");
    let cache = Cache::new(store.clone(), compiler());
    cache.compile(&module).unwrap();
    let good = record(&cache, &module);
    let bytes = store.get_blob(&good.blob).unwrap().unwrap();

    // Truncated in place: the hash no longer matches.
    overwrite_blob(&store, &good.blob, bytes[..bytes.len() / 2].to_vec());
    let (_, outcome) = cache.load(&module).unwrap();
    assert!(matches!(outcome, Outcome::Recompiled { reason: Reason::CorruptBlob { .. } }), "{outcome:?}");

    // Truncated and properly re-filed (its record names the truncated bytes' own hash): the hash
    // check passes, so wasmtime's own checks must refuse it, and it is recompiled.
    let truncated = store.put_blob(&bytes[..bytes.len() / 2]).unwrap();
    let key = ArtifactKey { module, engine: cache.compiler().fingerprint() };
    store.put_artifact(&key, &ArtifactRecord { blob: truncated, ..good.clone() }).unwrap();
    let (m, outcome) = cache.load(&module).unwrap();
    match outcome {
        Outcome::Recompiled { reason: Reason::Unloadable { blob, .. } } => assert_eq!(blob, truncated),
        other => panic!("expected an unloadable artifact, got {other:?}"),
    }
    assert!(!store.has_blob(&truncated).unwrap(), "the unusable blob is discarded");
    assert_eq!(call_sum(cache.compiler().engine(), &m, 4), 10);
}

#[test]
fn missing_blob_is_recompiled() {
    let (_dir, store) = sled_store();
    let module = add_module(&store, &sum_module(), "sum");
    let cache = Cache::new(store.clone(), compiler());
    cache.compile(&module).unwrap();
    let good = record(&cache, &module);
    store.delete_blob(&good.blob).unwrap();
    assert!(!cache.is_cached(&module).unwrap());
    let (_, outcome) = cache.load(&module).unwrap();
    assert_eq!(outcome, Outcome::Recompiled { reason: Reason::MissingBlob { blob: good.blob } });
    // `compile` repairs it too.
    store.delete_blob(&good.blob).unwrap();
    assert_eq!(
        cache.compile(&module).unwrap(),
        Outcome::Recompiled { reason: Reason::MissingBlob { blob: good.blob } }
    );
    assert_eq!(cache.compile(&module).unwrap(), Outcome::Hit);
}

#[test]
fn foreign_engine_artifact_is_never_loaded() {
    let (_dir, store) = sled_store();
    let module = add_module(&store, &sum_module(), "sum");
    let cache = Cache::new(store.clone(), compiler());
    // An "artifact" from another engine: garbage that would crash if it were ever deserialized.
    let foreign = ArtifactKey { module, engine: Hash([7; 32]) };
    let blob = store.put_blob(b"\x7fELF definitely not for this engine").unwrap();
    store.put_artifact(&foreign, &ArtifactRecord { blob, size: 35, compiled_ms: 0, compile_time_us: 0 }).unwrap();
    assert_ne!(foreign.engine, cache.compiler().fingerprint());

    assert!(!cache.is_cached(&module).unwrap());
    let (m, outcome) = cache.load(&module).unwrap();
    assert_eq!(outcome, Outcome::Compiled, "the foreign artifact was not considered");
    assert_eq!(call_sum(cache.compiler().engine(), &m, 3), 6);
    // Left alone for gc to collect.
    assert!(store.artifact(&foreign).unwrap().is_some());
}

#[test]
fn unknown_and_invalid_modules() {
    let (_dir, store) = sled_store();
    let cache = Cache::new(store.clone(), compiler());
    let missing = Hash::of(b"nothing");
    assert!(matches!(cache.load(&missing), Err(Error::ModuleNotFound { module }) if module == missing));

    let invalid = store.put_blob(&wat::parse_str("(module)").unwrap()).unwrap();
    let err = cache.load(&invalid).unwrap_err();
    assert!(matches!(err, Error::Invalid { source: ValidationError::MissingInterface, .. }), "{err}");
    assert!(!cache.is_cached(&invalid).unwrap(), "nothing compiled, nothing cached");
    assert!(store.artifacts().unwrap().is_empty());
}

#[test]
fn cold_compile_and_cache_hit_agree() {
    let (_dir, store) = sled_store();
    let module = add_module(&store, &sum_module(), "sum");
    let cache = Cache::new(store, compiler());
    let engine = cache.compiler().engine().clone();
    let (cold, outcome) = cache.load(&module).unwrap();
    assert_eq!(outcome, Outcome::Compiled);
    let (warm, outcome) = cache.load(&module).unwrap();
    assert_eq!(outcome, Outcome::Hit);
    let jit = wasmtime::Module::new(&engine, sum_module()).unwrap();
    for n in [0, 1, 2, 10, 1000, 65535, 100_000] {
        let expected = call_sum(&engine, &jit, n);
        assert_eq!(call_sum(&engine, &cold, n), expected, "n = {n}");
        assert_eq!(call_sum(&engine, &warm, n), expected, "n = {n}");
    }
}

#[test]
fn concurrent_loads_compile_once() {
    let (_dir, store) = sled_store();
    let module = add_module(&store, &sum_module(), "sum");
    let cache = Cache::new(store, compiler());
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let (m, outcome) = cache.load(&module).unwrap();
                    assert_eq!(call_sum(cache.compiler().engine(), &m, 10), 55);
                    outcome
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Compiled).count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Hit).count(), 3, "{outcomes:?}");
    assert_eq!(cache.store().artifacts().unwrap().len(), 1);
}

#[test]
fn parallel_precompile_of_many_modules() {
    use rayon::prelude::*;
    let (_dir, store) = sled_store();
    let modules: Vec<Hash> = (0..8)
        .map(|i| {
            let wat = crate::SUM_WAT
                .replace("(memory (export \"memory\") 1)", &format!("(memory (export \"memory\") {})", i + 1));
            let wasm = crate::module(&wat, &weft_compiler::Interface::default());
            add_module(&store, &wasm, &format!("m{i}"))
        })
        .collect();
    let cache = Cache::new(store, compiler());
    let outcomes: Vec<Outcome> = modules.par_iter().map(|m| cache.compile(m).unwrap()).collect();
    assert!(outcomes.iter().all(|o| *o == Outcome::Compiled));
    assert!(modules.iter().all(|m| cache.is_cached(m).unwrap()));
    assert!(modules.par_iter().all(|m| cache.compile(m).unwrap() == Outcome::Hit));
}

#[test]
fn gc_drops_unreferenced_and_foreign_artifacts() {
    let (_dir, store) = sled_store();
    let cache = Cache::new(store.clone(), compiler());
    let variant = |pages: u32| {
        let wat =
            crate::SUM_WAT.replace("(memory (export \"memory\") 1)", &format!("(memory (export \"memory\") {pages})"));
        crate::module(&wat, &weft_compiler::Interface::default())
    };
    let kept = add_module(&store, &variant(1), "kept");
    let removed = add_module(&store, &variant(2), "removed");
    let pinned = add_module(&store, &variant(3), "pinned");
    for m in [kept, removed, pinned] {
        cache.compile(&m).unwrap();
    }
    // `removed` loses its module record; `pinned` too, but a pinned blueprint still uses it.
    store.remove_module(&removed).unwrap();
    store.remove_module(&pinned).unwrap();
    store
        .put_blueprint(&BlueprintRecord {
            id: Hash::of(b"blueprint"),
            name: "bp".into(),
            modules: vec![pinned],
            encoding: vec![],
            pinned: true,
            added_ms: 0,
        })
        .unwrap();
    // And an artifact made by another engine, for a module that is still around.
    let foreign = ArtifactKey { module: kept, engine: Hash([9; 32]) };
    let foreign_blob = store.put_blob(&[1, 2, 3]).unwrap();
    store
        .put_artifact(&foreign, &ArtifactRecord { blob: foreign_blob, size: 3, compiled_ms: 0, compile_time_us: 0 })
        .unwrap();

    let removed_record = record(&cache, &removed);
    // `keep` retains what the host still needs: here it keeps `removed` for one round.
    let report = cache.gc(|m| *m == removed).unwrap();
    assert_eq!(report, weft_compiler::GcReport { removed: 1, freed_bytes: 3, kept: 3 });
    assert!(cache.is_cached(&removed).unwrap());

    let report = cache.gc(|_| false).unwrap();
    assert_eq!(report, weft_compiler::GcReport { removed: 1, freed_bytes: removed_record.size, kept: 2 });

    assert!(cache.is_cached(&kept).unwrap());
    assert!(cache.is_cached(&pinned).unwrap());
    assert!(!cache.is_cached(&removed).unwrap());
    assert!(!store.has_blob(&removed_record.blob).unwrap());
    assert!(store.artifact(&foreign).unwrap().is_none());
    assert!(!store.has_blob(&foreign_blob).unwrap());
    // The Wasm of the removed module is not the cache's to delete.
    assert!(store.has_blob(&removed).unwrap());

    assert_eq!(cache.gc(|_| false).unwrap(), weft_compiler::GcReport { removed: 0, freed_bytes: 0, kept: 2 });
}

#[test]
fn artifact_of_another_engine_filed_under_ours_is_refused() {
    // A real artifact from a differently configured engine (wasmtime's defaults), filed under this
    // compiler's fingerprint as if the store had been tampered with: its blob hash matches, but
    // wasmtime's own header check refuses it, so it is discarded and never run.
    let (_dir, store) = sled_store();
    let module = add_module(&store, &sum_module(), "sum");
    let cache = Cache::new(store.clone(), compiler());
    let other = wasmtime::Engine::new(wasmtime::Config::new().cranelift_opt_level(wasmtime::OptLevel::None)).unwrap();
    let foreign = other.precompile_module(&sum_module()).unwrap();
    let blob = store.put_blob(&foreign).unwrap();
    let key = ArtifactKey { module, engine: cache.compiler().fingerprint() };
    store
        .put_artifact(&key, &ArtifactRecord { blob, size: foreign.len() as u64, compiled_ms: 0, compile_time_us: 0 })
        .unwrap();

    let (m, outcome) = cache.load(&module).unwrap();
    match outcome {
        Outcome::Recompiled { reason: Reason::Unloadable { blob: b, .. } } => assert_eq!(b, blob),
        other => panic!("expected the foreign artifact to be refused, got {other:?}"),
    }
    assert_eq!(call_sum(cache.compiler().engine(), &m, 5), 15);
    assert_eq!(cache.load(&module).unwrap().1, Outcome::Hit);
}

#[test]
fn cache_and_compiler_are_shareable_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Cache>();
    shareable::<Compiler>();
    shareable::<Error>();
}
