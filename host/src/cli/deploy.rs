//! `weft deploy FILE --peer ADDR` — upload modules and blueprints, create services, print ids.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use weft_host::client::Client;
use weft_host::deploy;
use weft_host::{Options, Setup};

/// `weft deploy` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A deploy file (`[[services]]` with `blueprint`, `alias`, `peers`) or a blueprint file
    /// (deployed to the relay).
    pub file: PathBuf,
    /// The node to connect to: a multiaddress ending in /p2p/<peer id>.
    #[arg(long, value_name = "ADDR", env = "WEFT_PEER")]
    pub peer: String,
    /// With a blueprint file: an alias for the service.
    #[arg(long)]
    pub alias: Option<String>,
    /// Time for each deployment particle.
    #[arg(long, default_value = "60s", value_parser = super::run::parse_duration)]
    pub ttl: Duration,
}

/// Runs `weft deploy`.
pub fn run(options: &Options, args: Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", args.file.display()))?;
    // A deploy file has [[services]]; anything else is taken as a blueprint file.
    let plans = if text.contains("[[services]]") {
        deploy::plan_file(&args.file)?
    } else {
        vec![deploy::plan_blueprint(&args.file, args.alias.clone(), Vec::new())?]
    };
    let setup = Setup::new(options)?;
    let client = Client::connect(&setup, &args.peer)?;
    let done = deploy::deploy(&client, &plans, args.ttl)?;
    for d in &done {
        println!(
            "{}  on {}  service {}  blueprint {}  ({:.0} ms)",
            d.name,
            d.peer,
            d.service_id,
            d.blueprint_id,
            d.elapsed.as_secs_f64() * 1e3
        );
    }
    client.close();
    Ok(())
}
