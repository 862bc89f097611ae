//! The transport and dht compliance suites on the memory plugin, linked as a library and loaded
//! from its `.so`; a 50-node network; bad config through the ABI.

use std::time::{Duration, Instant};

use weft_abi::Provider;
use weft_abi::dht::Dht;
use weft_abi::transport::{Event, EventSink, Sink, Transport};
use weft_plugin_memory::MemoryPlugin;

fn built_plugin() -> std::path::PathBuf {
    weft_abi::compliance::built_library(&weft_abi::library_file_name("memory"))
}

fn load() -> weft_abi::Plugin {
    let plugin = weft_abi::Plugin::load(&built_plugin()).unwrap();
    assert_eq!(plugin.name(), "memory");
    plugin
}

#[test]
fn transport_linked() {
    weft_abi::compliance::transport::run(&|id, sink| MemoryPlugin::transport("", id, sink).unwrap(), "/memory/0");
}

#[test]
fn transport_loaded_from_the_shared_library() {
    let plugin = load();
    weft_abi::compliance::transport::run(&|id, sink| Box::new(plugin.transport("", id, sink).unwrap()), "/memory/0");
}

#[test]
fn dht_linked() {
    weft_abi::compliance::dht::run(
        &|id, sink| (MemoryPlugin::transport("", id, sink).unwrap(), MemoryPlugin::dht("", id).unwrap()),
        "/memory/0",
    );
}

#[test]
fn dht_loaded_from_the_shared_library() {
    let plugin = load();
    weft_abi::compliance::dht::run(
        &|id, sink| (Box::new(plugin.transport("", id, sink).unwrap()), Box::new(plugin.dht("", id).unwrap())),
        "/memory/0",
    );
}

/// A sink for nodes whose events nobody reads.
struct Discard;

impl EventSink for Discard {
    fn event(&self, _event: Event) -> bool {
        true
    }
}

type Make<'a> = &'a dyn Fn(&[u8; 32]) -> (Box<dyn Transport>, Box<dyn Dht>);

/// 50 nodes; node i knows node i-1 and one other earlier node, and bootstraps through them; then
/// every node finds every other.
fn fifty_nodes(make: Make<'_>, tag: u8) {
    const N: usize = 50;
    let started = Instant::now();
    let nodes: Vec<_> = (0..N)
        .map(|i| {
            let mut seed = [tag; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let (t, d) = make(&seed);
            t.listen("/memory/0").unwrap();
            let addr = t.listen_addrs().first().cloned().expect("a listen address");
            (t.local_peer_id(), addr, t, d)
        })
        .collect();
    for i in 1..N {
        let (_, _, _, d) = &nodes[i];
        for j in [i - 1, (i * 7 + 3) % i] {
            d.add_address(&nodes[j].0, &nodes[j].1).unwrap();
        }
        d.bootstrap().unwrap_or_else(|e| panic!("node {i} bootstraps: {e}"));
    }
    let joined = started.elapsed();
    for (i, (_, _, _, d)) in nodes.iter().enumerate() {
        for (j, (id, addr, _, _)) in nodes.iter().enumerate() {
            let found = d.find_peer(id, Duration::from_secs(10)).unwrap_or_else(|e| panic!("node {i} finds {j}: {e}"));
            assert!(found.contains(addr), "node {i} finds node {j} at {found:?}, not {addr}");
        }
    }
    eprintln!(
        "{N} nodes joined in {} ms; {} lookups in {} ms",
        joined.as_millis(),
        N * N,
        (started.elapsed() - joined).as_millis()
    );
}

#[test]
fn fifty_nodes_find_each_other_linked() {
    fifty_nodes(
        &|seed| {
            let t = MemoryPlugin::transport("ping_interval_ms = 0", seed, Sink::new(Discard)).unwrap();
            (t, MemoryPlugin::dht("", seed).unwrap())
        },
        0x50,
    );
}

#[test]
fn fifty_nodes_find_each_other_loaded() {
    let plugin = load();
    fifty_nodes(
        &|seed| {
            let t = plugin.transport("ping_interval_ms = 0", seed, Sink::new(Discard)).unwrap();
            (Box::new(t), Box::new(plugin.dht("", seed).unwrap()))
        },
        0x51,
    );
}

#[test]
fn bad_config_is_refused_through_the_abi() {
    let plugin = load();
    let e = plugin.transport("queue_length = 5", &[7; 32], Sink::new(Discard)).unwrap_err();
    assert_eq!(e.code(), weft_abi::ErrorCode::INVALID_CONFIG);
    assert!(e.message().contains("queue_length"), "{e}");
    let e = plugin.dht(r#"{"k": 20}"#, &[7; 32]).unwrap_err();
    assert_eq!(e.code(), weft_abi::ErrorCode::INVALID_CONFIG);
    assert!(e.message().contains("`k`"), "{e}");
    assert!(!e.message().contains('\n'), "{e}");
}
