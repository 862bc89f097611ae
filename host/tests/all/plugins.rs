//! Loading plugins from real `.so` files: acceptance, every refusal, panics at the boundary.

use weft_abi::storage::{Backend, Op};
use weft_abi::{ErrorCode, Kind, LoadError, Plugin, Provider, air};
use weft_host::plugins::{Refusal, Registry, SelectError};

use crate::support::{built_library, dylib, install};

fn probe() -> Plugin {
    Plugin::load(&built_library(&dylib("weft_test_probe"))).expect("probe plugin loads")
}

#[test]
fn loads_a_plugin_and_reads_its_manifest() {
    let p = probe();
    assert_eq!(p.name(), "probe");
    assert_eq!(p.manifest().kinds, vec![Kind::STORAGE, Kind::AIR]);
    assert!(p.provides(Kind::STORAGE) && !p.provides(Kind::TRANSPORT));
    assert_eq!(p.abi_version(), (weft_abi::ABI_MAJOR, weft_abi::ABI_MINOR));
}

#[test]
fn refuses_a_missing_file() {
    let e = Plugin::load(std::path::Path::new("/nonexistent/libweft_plugin_x.so")).unwrap_err();
    assert!(matches!(e, LoadError::Missing { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("/nonexistent/libweft_plugin_x.so") && msg.contains("no such file"), "{msg}");
    assert!(!msg.contains('\n'));
}

#[test]
fn refuses_a_file_that_is_not_a_library() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libweft_plugin_fake.so");
    std::fs::write(&path, b"this is not an ELF file").unwrap();
    let e = Plugin::load(&path).unwrap_err();
    assert!(matches!(e, LoadError::Open { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("libweft_plugin_fake.so") && msg.contains("cannot load the library"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

#[test]
fn refuses_a_library_that_is_not_a_weft_plugin() {
    let e = Plugin::load(&built_library(&dylib("weft_test_foreign"))).unwrap_err();
    assert!(matches!(e, LoadError::NotAPlugin { .. }), "{e:?}");
    assert!(e.to_string().contains("not a weft plugin"), "{e}");
}

#[test]
fn refuses_a_plugin_built_for_another_abi_major_version() {
    let e = Plugin::load(&built_library(&dylib("weft_test_future"))).unwrap_err();
    match &e {
        LoadError::AbiVersion { found_major, host_major, .. } => {
            assert_eq!((*found_major, *host_major), (999, weft_abi::ABI_MAJOR));
        }
        other => panic!("expected an ABI version refusal, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("999.0") && msg.contains("rebuild"), "{msg}");
}

#[test]
fn a_panicking_constructor_is_an_error_and_the_host_goes_on() {
    let p = probe();
    let dir = tempfile::tempdir().unwrap();
    let e = p.storage("panic_in_constructor", dir.path()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::PANIC);
    assert!(e.message().contains("probe constructor asked to panic"), "{e}");
    assert!(e.message().contains("plugin probe (storage)"), "{e}");
    // The same plugin still works afterwards.
    let s = p.storage("", dir.path()).unwrap();
    s.apply(vec![Op::put(b"k".to_vec(), b"v".to_vec())]).unwrap();
    assert_eq!(s.get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn a_panicking_call_is_an_error_and_the_object_stays_usable() {
    let p = probe();
    let dir = tempfile::tempdir().unwrap();
    let s = p.storage("", dir.path()).unwrap();
    s.apply(vec![Op::put(b"a".to_vec(), b"1".to_vec())]).unwrap();
    for _ in 0..3 {
        let e = s.get(b"panic").unwrap_err();
        assert_eq!(e.code(), ErrorCode::PANIC);
        assert!(e.message().contains("storage.get") && e.message().contains("asked to panic"), "{e}");
    }
    assert_eq!(s.get(b"a").unwrap(), Some(b"1".to_vec()));

    let interpreter = p.air("").unwrap();
    let e =
        air::Interpreter::run(&interpreter, air::Request { script: "panic".into(), ..Default::default() }).unwrap_err();
    assert_eq!(e.code(), ErrorCode::PANIC);
    let ok =
        air::Interpreter::run(&interpreter, air::Request { script: "(null)".into(), ..Default::default() }).unwrap();
    assert_eq!(ok.data, b"(null)");
}

#[test]
fn asking_for_a_kind_the_plugin_lacks_is_an_error() {
    let p = probe();
    let e = p.dht("", &[0; 32]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UNSUPPORTED);
    assert!(e.message().contains("does not provide the dht kind"), "{e}");
}

#[test]
fn linked_and_loaded_plugins_behave_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let linked = <weft_test_probe::Probe as Provider>::storage("", dir.path()).unwrap();
    let loaded = probe().storage("", dir.path()).unwrap();
    let backends: [&dyn Backend; 2] = [linked.as_ref(), &loaded];
    let mut outputs = Vec::new();
    for b in backends {
        b.apply(vec![Op::put(b"p/1".to_vec(), b"x".to_vec()), Op::put(b"p/2".to_vec(), b"y".to_vec())]).unwrap();
        b.apply(vec![Op::delete(b"p/1".to_vec()), Op::put(b"q".to_vec(), vec![])]).unwrap();
        outputs.push((
            b.get(b"p/1").unwrap(),
            b.get(b"q").unwrap(),
            b.scan(b"p/", None, 10).unwrap(),
            b.scan(b"", Some(b"p/2"), 10).unwrap(),
            b.stats().unwrap(),
        ));
    }
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn discovery_refuses_duplicates_and_selection_refuses_ambiguity() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    let b = root.path().join("b");
    install(&a, &dylib("weft_test_probe"), &weft_abi::library_file_name("probe"));
    install(&b, &dylib("weft_test_probe"), &weft_abi::library_file_name("probe"));
    install(&a, &weft_abi::library_file_name("sled"), &weft_abi::library_file_name("sled"));
    // Files that are refused are reported, not fatal.
    install(&a, &dylib("weft_test_future"), &weft_abi::library_file_name("future"));
    std::fs::write(a.join(weft_abi::library_file_name("junk")), b"junk").unwrap();

    let registry = Registry::discover(&[a.clone(), b.clone()]);
    let names: Vec<&str> = registry.loaded().iter().map(Plugin::name).collect();
    assert_eq!(names, vec!["probe", "sled"]);
    let refused: Vec<String> = registry.refused().iter().map(ToString::to_string).collect();
    assert_eq!(refused.len(), 3, "{refused:#?}");
    assert!(registry.refused().iter().any(|r| matches!(r, Refusal::Duplicate { name, .. } if name == "probe")));
    assert!(refused.iter().any(|r| r.contains("999.0")), "{refused:#?}");
    assert!(refused.iter().any(|r| r.contains("junk")), "{refused:#?}");

    // Two plugins provide storage: without a choice the host refuses, with one it obeys.
    let e = registry.select(Kind::STORAGE, None).unwrap_err();
    assert!(matches!(e, SelectError::Ambiguous { count: 2, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("probe") && msg.contains("sled") && msg.contains("choose one"), "{msg}");
    assert_eq!(registry.select(Kind::STORAGE, Some("sled")).unwrap().name(), "sled");
    // Only one provides air: chosen without configuration.
    assert_eq!(registry.select(Kind::AIR, None).unwrap().name(), "probe");
    assert!(matches!(registry.select(Kind::TRANSPORT, None), Err(SelectError::NoneProvides { .. })));
    assert!(matches!(registry.select(Kind::AIR, Some("sled")), Err(SelectError::WrongKind { .. })));
    assert!(matches!(registry.select(Kind::AIR, Some("nope")), Err(SelectError::NotFound { .. })));
}
