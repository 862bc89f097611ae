//! The shared transport and dht compliance suites on loopback TCP, against the plugin linked as a
//! library and loaded from its `.so`, and the plugin's own network tests (`network/`).

mod network;

use weft_abi::Provider;
use weft_abi::dht::Dht;
use weft_abi::transport::Transport;
use weft_plugin_libp2p::Libp2pPlugin;

const TCP: &str = "/ip4/127.0.0.1/tcp/0";

fn built_plugin() -> std::path::PathBuf {
    weft_abi::compliance::built_library(&weft_abi::library_file_name("libp2p"))
}

#[test]
fn transport_linked() {
    weft_abi::compliance::transport::run(
        &|identity, sink| -> Box<dyn Transport> { Libp2pPlugin::transport("", identity, sink).unwrap() },
        TCP,
    );
}

#[test]
fn transport_loaded_from_the_shared_library() {
    let plugin = weft_abi::Plugin::load(&built_plugin()).unwrap();
    assert_eq!(plugin.name(), "libp2p");
    weft_abi::compliance::transport::run(
        &|identity, sink| -> Box<dyn Transport> { Box::new(plugin.transport("", identity, sink).unwrap()) },
        TCP,
    );
}

#[test]
fn dht_linked() {
    weft_abi::compliance::dht::run(
        &|identity, sink| -> (Box<dyn Transport>, Box<dyn Dht>) {
            (Libp2pPlugin::transport("", identity, sink).unwrap(), Libp2pPlugin::dht("", identity).unwrap())
        },
        TCP,
    );
}

#[test]
fn dht_loaded_from_the_shared_library() {
    let plugin = weft_abi::Plugin::load(&built_plugin()).unwrap();
    weft_abi::compliance::dht::run(
        &|identity, sink| -> (Box<dyn Transport>, Box<dyn Dht>) {
            (Box::new(plugin.transport("", identity, sink).unwrap()), Box::new(plugin.dht("", identity).unwrap()))
        },
        TCP,
    );
}
