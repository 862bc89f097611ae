//! `weft plugins`.

use anyhow::Result;
use weft_abi::Kind;
use weft_host::plugins::Kinds;
use weft_host::{Options, Setup};

/// Lists what was found, what was refused and why, and which plugin serves each kind.
pub fn run(options: &Options) -> Result<()> {
    let setup = Setup::new(options)?;
    let registry = &setup.registry;
    if registry.loaded().is_empty() {
        println!("no plugins found");
    } else {
        println!("{:<10} {:<9} {:<5} {:<22} PATH", "NAME", "VERSION", "ABI", "KINDS");
        for p in registry.loaded() {
            let (major, minor) = p.abi_version();
            println!(
                "{:<10} {:<9} {:<5} {:<22} {}",
                p.name(),
                p.manifest().version,
                format!("{major}.{minor}"),
                Kinds(&p.manifest().kinds).to_string(),
                p.path().display()
            );
        }
    }
    if !registry.refused().is_empty() {
        println!();
        println!("refused:");
        for r in registry.refused() {
            println!("  {r}");
        }
    }
    println!();
    println!("in use:");
    for kind in Kind::ALL {
        if kind == Kind::EFFECTOR {
            // Every effector found serves, unless [plugins] effectors lists the ones to use.
            let line = match &setup.config.plugins.effectors {
                Some(names) if names.is_empty() => "none (configured)".to_owned(),
                Some(names) => format!("{} (configured)", names.join(", ")),
                None => {
                    let names = registry.providers().remove(&kind).unwrap_or_default();
                    if names.is_empty() { "none found".to_owned() } else { format!("{} (all found)", names.join(", ")) }
                }
            };
            println!("  {:<10} {line}", kind.name());
            continue;
        }
        let line = match setup.select(kind) {
            Ok(p) => {
                let how = if setup.config.plugins.choice(kind).is_some() { "configured" } else { "only one found" };
                format!("{} ({how})", p.name())
            }
            Err(e) => format!("- {e}"),
        };
        println!("  {:<10} {line}", kind.name());
    }
    let searched: Vec<String> = registry.dirs().iter().map(|d| d.display().to_string()).collect();
    println!();
    println!("searched: {}", searched.join(", "));
    Ok(())
}
