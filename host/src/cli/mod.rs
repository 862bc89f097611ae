//! The `weft` subcommands. Each prints what a person needs and fails with one line.

pub mod air;
pub mod blueprint;
pub mod cache;
pub mod demo;
pub mod deploy;
pub mod module;
pub mod node;
pub mod plugins;
pub mod precompile;
pub mod run;
pub mod service;

use anyhow::{Context, Result, bail};
use weft_host::Host;
use weft_storage::Hash;

/// An error and its causes on one line: `what: why: deeper why`.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// Logs to stderr; `-v` raises the level, `RUST_LOG` overrides it.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Resolves a module hash or a unique prefix of one (at least 6 hex characters).
pub fn resolve_module(host: &Host, text: &str) -> Result<Hash> {
    let text = text.trim().to_ascii_lowercase();
    if text.len() == 64 {
        return text.parse::<Hash>().with_context(|| format!("{text:?} is not a module hash"));
    }
    if text.len() < 6 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{text:?} is not a module hash or a prefix of one (6 to 64 hex characters)");
    }
    let matches: Vec<Hash> =
        host.store.modules()?.into_iter().map(|m| m.hash).filter(|h| h.to_string().starts_with(&text)).collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no module {text}; see `weft module list`"),
        many => bail!("{} modules start with {text}; give more characters", many.len()),
    }
}

/// Who local commands act as until nodes have identities: the owner of services created from
/// the command line, and the init peer of local calls.
pub const LOCAL_PEER: &str = "local";

/// The host's services, with the capabilities of its effector plugins.
pub fn open_services(host: &Host) -> Result<weft_host::services::Services> {
    let cache = std::sync::Arc::new(weft_compiler::Cache::new(host.store.clone(), host.cache.compiler().clone()));
    let data_dir = &host.setup.data_dir;
    let capabilities = weft_host::effectors::load(&host.setup, &host.store)?;
    Ok(weft_host::services::Services::new(cache, data_dir, LOCAL_PEER, capabilities)?)
}

/// `1.2 MB`-style sizes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_500_000), "1.5 MB");
    }

    #[test]
    fn one_line_joins_causes() {
        let e = anyhow::anyhow!("inner\nsecond line").context("outer");
        assert_eq!(one_line(&e), "outer: inner second line");
    }
}
