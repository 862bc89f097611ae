//! The host's integration tests: one binary, a module per area.

mod cli;
mod plugins;
pub mod services;
mod support;
