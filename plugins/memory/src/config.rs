//! The plugin's configuration, one table shared by its transport and its dht.

use serde::Deserialize;
use weft_abi::{Error, Result};

/// The `memory` plugin's configuration (TOML or JSON text; every key optional).
///
/// ```toml
/// max_message_size = 16777216   # bytes; larger messages are a LIMIT error at the sender
/// queue_len = 1024              # messages queued per peer before send says LIMIT
/// queue_bytes = 67108864        # bytes queued per peer before send says LIMIT
/// max_connections = 1024        # open connections per transport
/// ping_interval_ms = 15000      # PING events per connection; 0 turns pings off
/// bootstrap_timeout_ms = 10000  # how long dht bootstrap may spend on its lookups
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The largest message a transport sends or accepts, in bytes.
    pub max_message_size: usize,
    /// Messages queued from one peer to another (not yet handed to the receiver's sink) before
    /// `send` answers `LIMIT`.
    pub queue_len: usize,
    /// Bytes queued from one peer to another before `send` answers `LIMIT`. An empty queue takes a
    /// message of any allowed size.
    pub queue_bytes: usize,
    /// Open connections per transport; dials beyond it fail.
    pub max_connections: usize,
    /// How often each connection is pinged, in ms (a `PING` event at the pinging side, and one
    /// right after a dial connects); 0 turns pings off.
    pub ping_interval_ms: u64,
    /// How long `bootstrap` may spend on its lookups, in ms.
    pub bootstrap_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_message_size: 16 << 20,
            queue_len: 1024,
            queue_bytes: 64 << 20,
            max_connections: 1024,
            ping_interval_ms: 15_000,
            bootstrap_timeout_ms: 10_000,
        }
    }
}

impl Config {
    /// Parses the configuration: JSON when it starts with `{`, TOML otherwise; empty means
    /// defaults.
    ///
    /// # Errors
    /// Malformed text, an unknown key or a bad value, as `INVALID_CONFIG` naming it.
    pub fn parse(text: &str) -> Result<Self> {
        let config: Self = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| Error::config(format!("memory plugin config (JSON): {e}")))?
        } else {
            toml::from_str(text).map_err(|e| toml_error(text, &e))?
        };
        for (key, value) in [
            ("max_message_size", config.max_message_size),
            ("queue_len", config.queue_len),
            ("queue_bytes", config.queue_bytes),
            ("max_connections", config.max_connections),
        ] {
            if value == 0 {
                return Err(Error::config(format!("memory plugin config: {key} must be at least 1")));
            }
        }
        Ok(config)
    }
}

/// A TOML error on one line: `line N (`the line`): what`.
fn toml_error(text: &str, e: &toml::de::Error) -> Error {
    let what = e.message().lines().next().unwrap_or("invalid");
    match e.span() {
        Some(span) => {
            let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            Error::config(format!("memory plugin config line {line_no} (`{line}`): {what}"))
        }
        None => Error::config(format!("memory plugin config: {what}")),
    }
}

#[cfg(test)]
mod tests {
    use weft_abi::ErrorCode;

    use super::*;

    #[test]
    fn defaults_toml_and_json() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        assert_eq!(Config::parse(" \n").unwrap().max_message_size, 16 << 20);
        assert_eq!(Config::parse("queue_len = 8").unwrap().queue_len, 8);
        let c = Config::parse(r#"{"max_message_size": 100, "ping_interval_ms": 0}"#).unwrap();
        assert_eq!((c.max_message_size, c.ping_interval_ms, c.queue_len), (100, 0, 1024));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_naming_them() {
        for (text, needle) in [
            ("queue_length = 5", "queue_length"),
            (r#"{"max_size": 5}"#, "max_size"),
            ("queue_len = -1", "queue_len"),
            ("queue_len = 0", "queue_len"),
            ("max_message_size = \"big\"", "max_message_size"),
            ("{ not json", "JSON"),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert_eq!(e.code(), ErrorCode::INVALID_CONFIG, "{text}");
            assert!(e.message().contains(needle), "{text}: {e}");
            assert!(!e.message().contains('\n'), "{text}: one line: {e}");
        }
    }
}
