//! The effector compliance suite on `kv`, linked as a library and loaded from its `.so`, and the
//! plugin's own behaviour through the suite's test host.

use std::path::Path;

use weft_abi::Provider;
use weft_abi::compliance::effector::{self, Harness, Sample, StateProbe, Suite, TestCall};
use weft_abi::effector::Effector;
use weft_plugin_kv::KvPlugin;

fn args<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap()
}

fn suite(open: &dyn Fn(&Path) -> Box<dyn Effector>) -> Suite<'_> {
    Suite {
        open,
        samples: vec![
            Sample::new("kv", "set", args(&("k", "v"))),
            Sample::new("kv", "get", args(&("k",))),
            Sample::new("kv", "remove", args(&("k",))),
            Sample::new("kv", "keys", args(&("", None::<String>, 10u32))),
        ],
        state: Some(StateProbe {
            write: Box::new(|marker| Sample::new("kv", "set", args(&("probe", marker)))),
            read: Sample::new("kv", "get", args(&("probe",))),
            seen: Box::new(|bytes, marker| {
                postcard::from_bytes::<Option<String>>(bytes).unwrap().as_deref() == Some(marker)
            }),
        }),
    }
}

#[test]
fn linked() {
    effector::run(&suite(&|dir| KvPlugin::effector("", dir).unwrap()));
}

#[test]
fn loaded_from_the_shared_library() {
    let path = weft_abi::compliance::built_library(&weft_abi::library_file_name("kv"));
    let plugin = weft_abi::Plugin::load(&path).unwrap();
    assert_eq!(plugin.name(), "kv");
    effector::run(&suite(&|dir| Box::new(plugin.effector("", dir).unwrap())));
}

fn call<T: serde::de::DeserializeOwned>(h: &Harness, e: &dyn Effector, c: TestCall) -> T {
    postcard::from_bytes(&h.call(e, &c).unwrap()).unwrap()
}

#[test]
fn limits_come_back_as_errors_and_keys_list_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let e = KvPlugin::effector("max_value_bytes = 8\nmax_bytes = 40\nmax_key_bytes = 4", dir.path()).unwrap();
    let h = Harness::new(dir.path());
    let set = |k: &str, v: &str| TestCall::new("kv", "set", args(&(k, v)));
    let err: Option<String> = call(&h, e.as_ref(), set("k", "123456789"));
    assert_eq!(err.as_deref(), Some("kv.set: the value is 9 bytes; at most 8 are allowed"));
    let err: Option<String> = call(&h, e.as_ref(), set("kkkkk", "v"));
    assert!(err.unwrap().contains("the key is 5 bytes"));
    for k in ["b", "a", "ab", "c"] {
        assert_eq!(call::<Option<String>>(&h, e.as_ref(), set(k, "12345678")), None);
    }
    let err: Option<String> = call(&h, e.as_ref(), set("d", "12345678"));
    assert!(err.unwrap().contains("at most 40 are allowed"), "the per-service quota");
    assert_eq!(call::<Option<String>>(&h, e.as_ref(), set("c", "1")), None, "overwriting frees space");
    let keys: Vec<String> = call(&h, e.as_ref(), TestCall::new("kv", "keys", args(&("a", None::<String>, 10u32))));
    assert_eq!(keys, ["a", "ab"]);
    let keys: Vec<String> = call(&h, e.as_ref(), TestCall::new("kv", "keys", args(&("", Some("ab"), 1u32))));
    assert_eq!(keys, ["b"], "paging with after and limit");
    assert!(call::<bool>(&h, e.as_ref(), TestCall::new("kv", "remove", args(&("a",)))));
    assert!(!call::<bool>(&h, e.as_ref(), TestCall::new("kv", "remove", args(&("a",)))));
    let e = KvPlugin::effector("max_key_bytes = 5000", dir.path()).err().unwrap();
    assert!(e.message().contains("max_key_bytes"), "{e}");
}
