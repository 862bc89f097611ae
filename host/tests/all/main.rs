//! The host's integration tests: one binary, a module per area.

mod cli;
mod effectors;
mod network;
mod plugins;
pub mod services;
mod support;
