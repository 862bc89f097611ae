//! `weft blueprint add | list | show | pin | unpin`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use weft_compiler::Limits;
use weft_host::services::blueprint::{Draft, Source};
use weft_host::services::{Blueprint, ModuleSpec};
use weft_host::{Host, Options};
use weft_storage::Hash;

use super::module::{module_name, read_valid, store_module};
use super::{human_size, open_services, resolve_module};

/// `weft blueprint ...`
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a blueprint TOML file and the modules it names by path; prints the blueprint id.
    ///
    /// Nothing is stored unless every module is valid and the blueprint follows the rules.
    Add {
        /// The blueprint file (see docs/services.md).
        file: PathBuf,
    },
    /// List the stored blueprints.
    List,
    /// Show a blueprint: its modules in order (the last is the facade) and their configs.
    Show {
        /// A blueprint id or a unique prefix (at least 6 characters).
        blueprint: String,
    },
    /// Protect a blueprint's modules' compiled artifacts from `weft cache gc`.
    Pin {
        /// A blueprint id or a unique prefix.
        blueprint: String,
    },
    /// Undo `pin`.
    Unpin {
        /// A blueprint id or a unique prefix.
        blueprint: String,
    },
}

/// Runs a `weft blueprint` command.
pub fn run(options: &Options, command: Command) -> Result<()> {
    match command {
        Command::Add { file } => {
            let id = add(options, &file)?;
            println!("{id}");
            Ok(())
        }
        Command::List => list(options),
        Command::Show { blueprint } => show(options, &blueprint),
        Command::Pin { blueprint } => pin(options, &blueprint, true),
        Command::Unpin { blueprint } => pin(options, &blueprint, false),
    }
}

/// Adds the blueprint in `file` (and the modules it names by path); returns its id.
pub(super) fn add(options: &Options, file: &Path) -> Result<Hash> {
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let draft = Draft::parse(&text, dir, &file.display().to_string())?;
    // Validate every module file before opening (and writing to) the store.
    let limits = Limits::default();
    let mut files = Vec::new();
    for (_, source, _) in &draft.modules {
        if let Source::Path(path) = source {
            files.push(Some(read_valid(path, &limits).with_context(|| format!("blueprint {}", file.display()))?));
        } else {
            files.push(None);
        }
    }
    let host = Host::open(options)?;
    let services = open_services(&host)?;
    let mut modules = Vec::new();
    for ((name, source, config), valid) in draft.modules.into_iter().zip(&files) {
        let (hash, default_name) = match (&source, valid) {
            (Source::Path(path), Some((_, info))) => (info.hash, module_name(path)),
            (Source::Hash(text), _) => {
                let hash = resolve_module(&host, text).with_context(|| format!("blueprint {}", file.display()))?;
                let record = host.store.module(&hash)?.with_context(|| format!("no module {hash}"))?;
                (hash, record.name)
            }
            (Source::Path(_), None) => unreachable!("every path was read above"),
        };
        modules.push((ModuleSpec { name: name.unwrap_or(default_name), module: hash, config }, source));
    }
    let blueprint = Blueprint { name: draft.name, modules: modules.iter().map(|(m, _)| m.clone()).collect() };
    blueprint.check().with_context(|| format!("blueprint {}", file.display()))?;
    for ((_, source), valid) in modules.iter().zip(&files) {
        if let (Source::Path(path), Some((bytes, info))) = (source, valid) {
            store_module(&host, path, bytes, info)?;
        }
    }
    let id = services.add_blueprint(&blueprint)?;
    Ok(id)
}

/// Resolves a blueprint id or a unique prefix of at least 6 hex characters.
pub(super) fn resolve(host: &Host, text: &str) -> Result<Hash> {
    let text = text.trim().to_ascii_lowercase();
    if text.len() < 6 || text.len() > 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{text:?} is not a blueprint id or a prefix of one (6 to 64 hex characters)");
    }
    let matches: Vec<Hash> =
        host.store.blueprints()?.into_iter().map(|b| b.id).filter(|h| h.to_string().starts_with(&text)).collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no blueprint {text}; see `weft blueprint list`"),
        many => bail!("{} blueprints start with {text}; give more characters", many.len()),
    }
}

fn list(options: &Options) -> Result<()> {
    let host = Host::open(options)?;
    let mut blueprints = host.store.blueprints()?;
    if blueprints.is_empty() {
        println!("no blueprints; add one with `weft blueprint add FILE.toml`");
        return Ok(());
    }
    blueprints.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    println!("{:<64}  {:<20} {:>7}  PINNED", "ID", "NAME", "MODULES");
    for b in blueprints {
        println!("{}  {:<20} {:>7}  {}", b.id, b.name, b.modules.len(), if b.pinned { "yes" } else { "no" });
    }
    Ok(())
}

fn show(options: &Options, text: &str) -> Result<()> {
    let host = Host::open(options)?;
    let id = resolve(&host, text)?;
    let services = open_services(&host)?;
    let (record, blueprint) = services.blueprint(&id)?;
    println!("blueprint  {} ({})", blueprint.name, record.id);
    println!("pinned     {}", if record.pinned { "yes" } else { "no" });
    for (i, m) in blueprint.modules.iter().enumerate() {
        let role = if i + 1 == blueprint.modules.len() { "  (facade)" } else { "" };
        let c = &m.config;
        println!("module     {}{role}", m.name);
        println!("  id           {}", m.module);
        println!("  max_memory   {}", human_size(c.max_memory));
        println!("  time_limit   {} ms", c.time_limit_ms);
        for (k, v) in &c.env {
            println!("  env          {k}={v}");
        }
        for (g, h) in &c.mapped_dirs {
            println!("  mapped_dir   {g} -> <service dir>/{h}");
        }
        if !c.capabilities.is_empty() {
            println!("  capabilities {}", c.capabilities.iter().cloned().collect::<Vec<_>>().join(", "));
        }
        for (cap, config) in &c.capability_config {
            println!("  config       {cap} {config}");
        }
    }
    Ok(())
}

fn pin(options: &Options, text: &str, pinned: bool) -> Result<()> {
    let host = Host::open(options)?;
    let id = resolve(&host, text)?;
    open_services(&host)?.pin(&id, pinned)?;
    println!("{} {id}", if pinned { "pinned" } else { "unpinned" });
    Ok(())
}
