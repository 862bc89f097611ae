//! `weft module add | list | inspect`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use weft_compiler::{Limits, ModuleInfo, validate};
use weft_host::{Host, Options};
use weft_storage::Hash;

use super::{human_size, resolve_module};

/// `weft module ...`
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate modules and store them; prints each module's hash.
    ///
    /// Nothing is stored unless every file is valid.
    Add {
        /// .wasm (or .wat) files.
        files: Vec<PathBuf>,
        /// Also add every .wasm and .wat file in this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// List the stored modules.
    List,
    /// Show a module's size, exports, imports, interface, and whether it is compiled.
    Inspect {
        /// A module hash (or a unique prefix of at least 6 characters), or a .wasm file.
        module: String,
    },
}

/// Runs a `weft module` command.
pub fn run(options: &Options, command: Command) -> Result<()> {
    match command {
        Command::Add { files, dir } => add(options, files, dir.as_deref()),
        Command::List => list(options),
        Command::Inspect { module } => inspect(options, &module),
    }
}

fn wasm_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read directory {}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "wasm" || e == "wat"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no .wasm or .wat files in this directory", dir.display());
    }
    Ok(files)
}

/// Reads and validates one file; the error names the file.
pub(super) fn read_valid(path: &Path, limits: &Limits) -> Result<(Vec<u8>, ModuleInfo)> {
    let mut bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    // WebAssembly text is accepted too: the module is its binary encoding.
    if path.extension().is_some_and(|e| e == "wat") {
        bytes = wat::parse_bytes(&bytes)
            .map_err(|e| {
                anyhow::anyhow!("{}: invalid WebAssembly text: {}", path.display(), e.to_string().replace('\n', " "))
            })?
            .into_owned();
    }
    let info = validate(&bytes, limits).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((bytes, info))
}

pub(super) fn module_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "module".into())
}

fn add(options: &Options, mut files: Vec<PathBuf>, dir: Option<&Path>) -> Result<()> {
    if let Some(dir) = dir {
        files.extend(wasm_files_in(dir)?);
    }
    if files.is_empty() {
        bail!("nothing to add: give .wasm files or --dir DIR");
    }
    // Validate everything before touching the store: one bad file stores nothing.
    let limits = Limits::default();
    let mut valid = Vec::new();
    let mut failures = Vec::new();
    for path in &files {
        match read_valid(path, &limits) {
            Ok(v) => valid.push((path, v)),
            Err(e) => failures.push(e),
        }
    }
    if let Some(last) = failures.pop() {
        for e in &failures {
            eprintln!("error: {}", super::one_line(e));
        }
        if !failures.is_empty() {
            return Err(last.context(format!(
                "{} of {} files are invalid; nothing was added",
                failures.len() + 1,
                files.len()
            )));
        }
        return Err(last);
    }
    let host = Host::open(options)?;
    let mut lines = Vec::new();
    for (path, (bytes, info)) in valid {
        let (hash, existed) = store_module(&host, path, &bytes, &info)?;
        let note = if existed { "  (already stored)" } else { "" };
        lines.push(format!("{hash}  {}  {}{note}", module_name(path), human_size(bytes.len() as u64)));
    }
    // Report success only once the writes are durable.
    host.store.flush().context("cannot make the store durable")?;
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

/// Stores validated module bytes (not flushed); returns the id and whether it was stored before.
pub(super) fn store_module(host: &Host, path: &Path, bytes: &[u8], info: &ModuleInfo) -> Result<(Hash, bool)> {
    weft_host::modules::store(&host.store, bytes, info, &module_name(path))
        .with_context(|| format!("{}: cannot store", path.display()))
}

fn list(options: &Options) -> Result<()> {
    let host = Host::open(options)?;
    let mut modules = host.store.modules()?;
    if modules.is_empty() {
        println!("no modules; add some with `weft module add FILE.wasm`");
        return Ok(());
    }
    modules.sort_by(|a, b| a.name.cmp(&b.name).then(a.hash.cmp(&b.hash)));
    println!("{:<64}  {:<20} {:>10}  COMPILED", "HASH", "NAME", "SIZE");
    for m in modules {
        let cached = if host.cache.is_cached(&m.hash)? { "yes" } else { "no" };
        println!("{}  {:<20} {:>10}  {cached}", m.hash, m.name, human_size(m.size));
    }
    Ok(())
}

fn inspect(options: &Options, target: &str) -> Result<()> {
    let path = Path::new(target);
    let (info, name, stored, cached) = if path.is_file() {
        let (_, info) = read_valid(path, &Limits::default())?;
        // A file can be inspected without a node; say whether the node has it when its store opens.
        let state = match Host::open(options) {
            Ok(host) => {
                let stored = host.store.module(&info.hash)?.is_some();
                let cached = host.cache.is_cached(&info.hash)?;
                (yes_no(stored), yes_no(cached))
            }
            Err(e) => {
                tracing::info!("not reading the node's store: {e}");
                ("unknown (the node's store cannot be opened; -v says why)", "unknown")
            }
        };
        let (stored, cached) = state;
        (info, module_name(path), stored, cached)
    } else {
        let host = Host::open(options)?;
        let hash =
            resolve_module(&host, target).with_context(|| format!("{target}: not a file, and not a stored module"))?;
        let record = host.store.module(&hash)?.with_context(|| format!("no module {hash}"))?;
        let bytes = host
            .store
            .get_blob(&hash)?
            .with_context(|| format!("module {hash}: its bytes are missing from the store"))?;
        let info = validate(&bytes, &Limits::default()).map_err(|e| anyhow::anyhow!("module {hash}: {e}"))?;
        let cached = host.cache.is_cached(&hash)?;
        (info, record.name, "yes", yes_no(cached))
    };
    print!("{}", weft_compiler::describe(&info, &name));
    println!("stored     {stored}");
    println!("compiled   {}", if cached == "yes" { "yes (for this engine)" } else { cached });
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
