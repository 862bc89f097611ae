//! `weft cache gc`.

use anyhow::Result;
use clap::Subcommand;
use weft_host::{Host, Options};

use super::human_size;

/// `weft cache ...`
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drop compiled artifacts that no stored module references (or that another engine made).
    Gc,
}

/// Runs a `weft cache` command.
pub fn run(options: &Options, command: Command) -> Result<()> {
    match command {
        Command::Gc => {
            let host = Host::open(options)?;
            let report = host.cache.gc(|_| false)?;
            host.store.flush()?;
            println!(
                "removed {} artifact(s), {} freed; kept {}",
                report.removed,
                human_size(report.freed_bytes),
                report.kept
            );
            Ok(())
        }
    }
}
