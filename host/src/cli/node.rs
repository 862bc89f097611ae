//! `weft node` — run a peer until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::{Context, Result};
use weft_host::node::Node;
use weft_host::{Host, Options};

/// `weft node` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A multiaddress to listen on (repeatable; replaces `[node] listen`; default /ip4/0.0.0.0/tcp/7770).
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<String>,
    /// A peer to connect to at start, ending in /p2p/<peer id> (repeatable; added to `[node] bootstrap`).
    #[arg(long = "bootstrap", value_name = "ADDR")]
    pub bootstrap: Vec<String>,
    /// Also write the listen addresses to this file, one per line, once listening.
    #[arg(long, value_name = "FILE")]
    pub addr_file: Option<PathBuf>,
}

/// Runs `weft node`.
pub fn run(options: &Options, args: Args) -> Result<()> {
    let host = Host::open(options)?;
    let mut config = host.setup.config.node.clone();
    if !args.listen.is_empty() {
        config.listen = args.listen;
    }
    config.bootstrap.extend(args.bootstrap);
    let data_dir = host.setup.data_dir.clone();
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    })
    .context("cannot install the SIGINT/SIGTERM handler")?;
    let node = Node::start(host, config)?;
    let addrs = node.listen_addrs();
    println!("weft node {} (data dir {})", node.peer_id(), data_dir.display());
    for a in &addrs {
        println!("listening on {a}");
    }
    if let Some(file) = &args.addr_file {
        std::fs::write(file, addrs.join("\n") + "\n").with_context(|| format!("cannot write {}", file.display()))?;
    }
    let _ = rx.recv();
    eprintln!("shutting down");
    let stats = node.stats();
    node.shutdown();
    eprintln!(
        "stopped: {} particles received, {} accepted, {} sent, {} dropped",
        stats.received,
        stats.accepted,
        stats.sent,
        stats.dropped_oversized
            + stats.dropped_malformed
            + stats.dropped_signature
            + stats.dropped_expired
            + stats.dropped_duplicate
            + stats.dropped_limit
    );
    Ok(())
}
