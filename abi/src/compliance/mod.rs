//! Compliance suites: what every plugin of a kind must do, run from each plugin's
//! `tests/compliance.rs` against the linked library *and* the loaded `.so`.
//!
//! Enabled with the `compliance` feature (a dev-dependency feature of plugin crates).

pub mod storage;
