//! `weft service create | call | list | remove | interface | alias` — local services, no network.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Subcommand;
use weft_host::services::CallParams;
use weft_host::{Host, Options};

use super::{LOCAL_PEER, blueprint, open_services};

/// `weft service ...`
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a service from a blueprint (an id, a unique prefix, or a blueprint .toml file,
    /// which is added first); prints the service id.
    Create {
        /// Blueprint id, prefix, or file.
        blueprint: String,
        /// A name to call the service by instead of its id.
        #[arg(long)]
        alias: Option<String>,
    },
    /// Call a function of a service with JSON arguments; prints the result as JSON.
    Call {
        /// Service id or alias.
        service: String,
        /// The facade function.
        function: String,
        /// Arguments: a JSON array (by position) or object (by parameter name). Default: none.
        #[arg(default_value = "[]")]
        args: String,
        /// Print the result indented.
        #[arg(long)]
        pretty: bool,
    },
    /// List the services.
    List,
    /// Remove a service, its aliases and its data directory.
    Remove {
        /// Service id or alias.
        service: String,
    },
    /// Show a service's API: the facade's functions and records.
    Interface {
        /// Service id or alias.
        service: String,
    },
    /// Give a service another alias.
    Alias {
        /// The alias.
        alias: String,
        /// Service id or alias.
        service: String,
    },
}

/// Runs a `weft service` command.
pub fn run(options: &Options, command: Command) -> Result<()> {
    match command {
        Command::Create { blueprint, alias } => create(options, &blueprint, alias.as_deref()),
        Command::Call { service, function, args, pretty } => call(options, &service, &function, &args, pretty),
        Command::List => list(options),
        Command::Remove { service } => {
            let host = Host::open(options)?;
            let services = open_services(&host)?;
            let id = services.resolve(&service)?;
            services.remove(&id, LOCAL_PEER, Some(LOCAL_PEER))?;
            println!("removed {id}");
            Ok(())
        }
        Command::Interface { service } => {
            let host = Host::open(options)?;
            let iface = open_services(&host)?.interface(&service)?;
            for r in &iface.records {
                println!("{r}");
            }
            for f in &iface.functions {
                println!("{f}");
            }
            Ok(())
        }
        Command::Alias { alias, service } => {
            let host = Host::open(options)?;
            open_services(&host)?.add_alias(&alias, &service)?;
            println!("{alias} -> {}", open_services(&host)?.resolve(&alias)?);
            Ok(())
        }
    }
}

fn create(options: &Options, target: &str, alias: Option<&str>) -> Result<()> {
    let path = Path::new(target);
    let id = if path.is_file() {
        blueprint::add(options, path)?
    } else {
        let host = Host::open(options)?;
        blueprint::resolve(&host, target).with_context(|| format!("{target}: not a file, and not a blueprint"))?
    };
    let host = Host::open(options)?;
    let service = open_services(&host)?.create(&id, LOCAL_PEER, alias)?;
    println!("{service}");
    Ok(())
}

fn call(options: &Options, service: &str, function: &str, args: &str, pretty: bool) -> Result<()> {
    let args: serde_json::Value = serde_json::from_str(args).map_err(|e| {
        anyhow::anyhow!("arguments {args:?} are not JSON: {e}; pass e.g. '[\"Ann\"]' or '{{\"name\": \"Ann\"}}'")
    })?;
    let host = Host::open(options)?;
    let services = open_services(&host)?;
    let params = CallParams { init_peer_id: LOCAL_PEER.into(), ..CallParams::default() };
    let result = services.call(service, function, &args, params)?;
    let text = if pretty { serde_json::to_string_pretty(&result)? } else { serde_json::to_string(&result)? };
    println!("{text}");
    Ok(())
}

fn list(options: &Options) -> Result<()> {
    let host = Host::open(options)?;
    let services = open_services(&host)?;
    let mut list = services.list()?;
    if list.is_empty() {
        println!("no services; create one with `weft service create BLUEPRINT`");
        return Ok(());
    }
    list.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)));
    println!("{:<32}  {:<20} {:<20} BLUEPRINT", "ID", "ALIASES", "NAME");
    for s in list {
        let name = host.store.blueprint(&s.blueprint)?.map(|b| b.name).unwrap_or_else(|| "?".into());
        let aliases = if s.aliases.is_empty() { "-".into() } else { s.aliases.join(",") };
        println!("{:<32}  {:<20} {:<20} {}", s.id, aliases, name, s.blueprint);
    }
    Ok(())
}
