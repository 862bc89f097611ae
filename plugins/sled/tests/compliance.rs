//! The storage compliance suite, on sled linked as a library and loaded from its `.so`.

use weft_abi::Provider;
use weft_plugin_sled::SledPlugin;

fn built_plugin() -> std::path::PathBuf {
    weft_abi::compliance::built_library(&weft_abi::library_file_name("sled"))
}

#[test]
fn linked() {
    weft_abi::compliance::storage::run(&|dir| SledPlugin::storage("", dir).unwrap());
}

#[test]
fn loaded_from_the_shared_library() {
    let plugin = weft_abi::Plugin::load(&built_plugin()).unwrap();
    assert_eq!(plugin.name(), "sled");
    weft_abi::compliance::storage::run(&|dir| Box::new(plugin.storage("", dir).unwrap()));
}

#[test]
fn bad_config_is_refused_through_the_abi() {
    let plugin = weft_abi::Plugin::load(&built_plugin()).unwrap();
    let dir = tempfile_dir();
    let e = plugin.storage("cache_capacity_bytes = \"lots\"", &dir).unwrap_err();
    assert_eq!(e.code(), weft_abi::ErrorCode::INVALID_CONFIG);
    assert!(e.message().contains("cache_capacity_bytes"), "{e}");
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("weft-sled-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
