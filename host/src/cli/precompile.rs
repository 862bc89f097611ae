//! `weft precompile`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use weft_host::{Host, Options};
use weft_storage::Hash;

use super::{one_line, resolve_module};

/// `weft precompile [--all | HASH...]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Every stored module (the default when no hash is given).
    #[arg(long, conflicts_with = "modules")]
    all: bool,
    /// Module hashes (or unique prefixes).
    modules: Vec<String>,
}

/// Compiles what is not cached yet, in parallel, with a progress bar.
pub fn run(options: &Options, args: &Args) -> Result<()> {
    let host = Host::open(options)?;
    let wanted: Vec<Hash> = if args.modules.is_empty() {
        host.store.modules()?.into_iter().map(|m| m.hash).collect()
    } else {
        args.modules.iter().map(|m| resolve_module(&host, m)).collect::<Result<_>>()?
    };
    let mut todo = Vec::new();
    for hash in &wanted {
        if !host.cache.is_cached(hash)? {
            todo.push(*hash);
        }
    }
    let already = wanted.len() - todo.len();
    if todo.is_empty() {
        println!("nothing to compile: {already} module(s) already compiled for this engine");
        return Ok(());
    }
    let started = Instant::now();
    let bar = ProgressBar::new(todo.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} compiling [{bar:30}] {pos}/{len} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let failed = AtomicUsize::new(0);
    let errors: Vec<String> = todo
        .par_iter()
        .filter_map(|hash| {
            let name = host.store.module(hash).ok().flatten().map(|m| m.name).unwrap_or_default();
            bar.set_message(name.clone());
            let result = host.cache.compile(hash);
            bar.inc(1);
            match result {
                Ok(_) => None,
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    Some(format!("module {} ({name}): {}", hash.short(), one_line(&e.into())))
                }
            }
        })
        .collect();
    bar.finish_and_clear();
    for e in &errors {
        eprintln!("error: {e}");
    }
    let failed = failed.into_inner();
    let compiled = todo.len() - failed;
    println!(
        "compiled {compiled} module(s) in {:.2} s on {} threads ({already} already compiled)",
        started.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    if failed > 0 {
        bail!("{failed} module(s) failed to compile; see the lines above");
    }
    Ok(())
}
