//! `weft air check | simulate`: tools for people who write AIR. Neither needs a node: they use the
//! AIR interpreter linked into `weft` (the same crate the `air` plugin is built from).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use weft_plugin_air::parser;

/// `weft air ...`
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and statically check AIR scripts; errors point at line and column.
    Check {
        /// .air files (`-` reads standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a script across simulated peers with scripted services (../shared/air/SIMULATION.md);
    /// prints the steps as one JSON document.
    Simulate {
        /// The scenario (JSON; `-` reads standard input).
        scenario: PathBuf,
    },
}

/// Runs a `weft air` command.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Check { files } => check(&files),
        Command::Simulate { scenario } => simulate(&scenario),
    }
}

fn read_text(path: &Path, what: &str) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read standard input")?;
        return Ok(text);
    }
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow!("{}: not UTF-8 text (byte {}); {what} must be UTF-8", path.display(), e.utf8_error().valid_up_to())
    })
}

fn check(files: &[PathBuf]) -> Result<()> {
    let mut failed = 0;
    for path in files {
        let outcome = read_text(path, "an AIR script").and_then(|script| {
            parser::parse(&script)
                .map(|ast| ast.nodes.len())
                .map_err(|e| anyhow!("{}:{}:{}: {}", path.display(), e.line, e.column, e.kind))
        });
        match outcome {
            Ok(instructions) => println!("{}: ok ({instructions} instructions)", path.display()),
            Err(e) => {
                failed += 1;
                if files.len() == 1 {
                    return Err(e);
                }
                eprintln!("error: {}", super::one_line(&e));
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} scripts have errors", files.len());
    }
    Ok(())
}

fn simulate(path: &Path) -> Result<()> {
    let text = read_text(path, "a scenario")?;
    let output = weft_plugin_air::simulate::simulate(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    println!("{}", serde_json::to_string_pretty(&output).context("printing the simulation")?);
    Ok(())
}
