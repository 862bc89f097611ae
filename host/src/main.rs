//! `weft`: run and manage a weft node.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// weft: a peer-to-peer platform for distributed services.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None)]
struct Args {
    /// The node's data directory (default: $XDG_DATA_HOME/weft or ~/.local/share/weft).
    #[arg(long, global = true, env = "WEFT_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The configuration file (default: <data dir>/config.toml when it exists).
    #[arg(long, global = true, env = "WEFT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// A directory with plugin libraries, searched before the configured ones (repeatable).
    #[arg(long = "plugin-dir", global = true, value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the plugins found, their kinds and versions, and why any was refused.
    Plugins,
    /// Manage the node's modules.
    #[command(subcommand)]
    Module(cli::module::Command),
    /// Compile modules ahead of time into the cache, on all cores.
    Precompile(cli::precompile::Args),
    /// Manage the AOT cache.
    #[command(subcommand)]
    Cache(cli::cache::Command),
    /// Manage blueprints: the pinned recipes of services.
    #[command(subcommand)]
    Blueprint(cli::blueprint::Command),
    /// Create, call and manage services on this node's data dir (no network needed).
    #[command(subcommand)]
    Service(cli::service::Command),
    /// Check AIR scripts and simulate them across peers.
    #[command(subcommand)]
    Air(cli::air::Command),
    /// Run a peer until SIGINT or SIGTERM.
    Node(cli::node::Args),
    /// Send an AIR script through a peer and print what comes back.
    Run(cli::run::Args),
    /// Upload modules and blueprints to peers and create services there.
    Deploy(cli::deploy::Args),
    /// Start a small local network, deploy a service and run a script through it.
    Demo(cli::demo::Args),
}

/// `weft ... | head` should end quietly, as other command-line tools do, instead of panicking on
/// the first write to a closed pipe: restore the default SIGPIPE action, which Rust's runtime sets
/// to "ignore" before `main`.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    restore_sigpipe();
    let args = Args::parse();
    cli::init_logging(args.verbose);
    let options = weft_host::Options {
        data_dir: args.data_dir.clone(),
        config: args.config.clone(),
        plugin_dirs: args.plugin_dirs.clone(),
    };
    let result = match args.command {
        Command::Plugins => cli::plugins::run(&options),
        Command::Module(cmd) => cli::module::run(&options, cmd),
        Command::Precompile(a) => cli::precompile::run(&options, &a),
        Command::Cache(cmd) => cli::cache::run(&options, cmd),
        Command::Air(cmd) => cli::air::run(cmd),
        Command::Blueprint(cmd) => cli::blueprint::run(&options, cmd),
        Command::Service(cmd) => cli::service::run(&options, cmd),
        Command::Node(a) => cli::node::run(&options, a),
        Command::Run(a) => cli::run::run(&options, a),
        Command::Deploy(a) => cli::deploy::run(&options, a),
        Command::Demo(a) => cli::demo::run(&options, &a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
