//! The example plugin's tests (docs/effector-plugins.md, step 5): the shared effector compliance
//! suite on the plugin linked as a library and loaded from its `.so`, then its own behaviour
//! through the suite's test host.

use std::path::Path;

use weft_abi::Provider;
use weft_abi::compliance::effector::{self, Harness, Sample, StateProbe, Suite, TestCall};
use weft_abi::effector::Effector;
use weft_plugin_counter::{Count, CounterPlugin};

fn args<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap()
}

/// A number standing for a marker string.
fn number(marker: &str) -> i64 {
    marker.bytes().fold(7i64, |h, b| (h * 31 + i64::from(b)) % 1_000_000_007)
}

fn suite(open: &dyn Fn(&Path) -> Box<dyn Effector>) -> Suite<'_> {
    Suite {
        open,
        // At least one call per capability that must succeed.
        samples: vec![
            Sample::new("counter", "add", args(&("visits", 1i64))),
            Sample::new("counter", "get", args(&("visits",))),
        ],
        // The plugin keeps per-service state: write a marker (as a number), read it back.
        state: Some(StateProbe {
            write: Box::new(|marker| Sample::new("counter", "add", args(&("probe", number(marker))))),
            read: Sample::new("counter", "get", args(&("probe",))),
            seen: Box::new(|bytes, marker| postcard::from_bytes::<i64>(bytes).unwrap() == number(marker)),
        }),
    }
}

#[test]
fn linked() {
    effector::run(&suite(&|dir| CounterPlugin::effector("", dir).unwrap()));
}

#[test]
fn loaded_from_the_shared_library() {
    let path = weft_abi::compliance::built_library(&weft_abi::library_file_name("counter"));
    let plugin = weft_abi::Plugin::load(&path).unwrap();
    effector::run(&suite(&|dir| Box::new(plugin.effector("", dir).unwrap())));
}

#[test]
fn counts_per_service_up_to_the_modules_max() {
    let dir = tempfile::tempdir().unwrap();
    let e = CounterPlugin::effector("", dir.path()).unwrap();
    let h = Harness::new(dir.path());
    let add = |service: &str, delta: i64| {
        let call = TestCall::new("counter", "add", args(&("hits", delta))).service(service).config(r#"{"max":10}"#);
        postcard::from_bytes::<Count>(&h.grant_and_call(e.as_ref(), &call).unwrap()).unwrap()
    };
    assert_eq!(add("a", 4), Count { error: None, value: 4 });
    assert_eq!(add("a", 6), Count { error: None, value: 10 });
    assert_eq!(add("a", 1), Count { error: Some("counter \"hits\" would pass its max of 10".into()), value: 10 });
    assert_eq!(add("b", 1).value, 1, "another service counts on its own");
    let bad = TestCall::new("counter", "add", Vec::new()).config(r#"{"maximum":3}"#);
    assert!(h.grant(e.as_ref(), &bad).unwrap_err().message().contains("unknown field `maximum`"));
    assert!(CounterPlugin::effector("x = 1", dir.path()).is_err());
}
