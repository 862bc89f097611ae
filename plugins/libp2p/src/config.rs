//! The plugin's configuration: the node's `[plugins.config.libp2p]` table as TOML or JSON text.

use std::time::Duration;

use serde::Deserialize;
use weft_abi::{Error, Result};

/// The largest `max_message_size` accepted (1 GiB): the length prefix is a 32-bit varint.
pub const MAX_MESSAGE_SIZE_LIMIT: usize = 1 << 30;

/// Whether this node serves the DHT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A peer of the network: answers Kademlia queries (the default).
    #[default]
    Server,
    /// An application: queries the DHT but does not serve it (and usually does not listen).
    Client,
}

/// The plugin's configuration. Every key is optional; unknown keys are errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The largest particle message sent or accepted, in bytes (default 16 MiB). A receiver never
    /// allocates more than this for one message.
    pub max_message_size: usize,
    /// Messages waiting to be sent to one peer (default 256), besides the batch being written (at
    /// most 64 KiB, or one larger message); a full queue makes `send` fail with `LIMIT`.
    pub queue_len: usize,
    /// Bytes of the messages waiting for one peer (default 64 MiB): a message that would take a
    /// queue past it makes `send` fail with `LIMIT` (an empty queue takes any message up to
    /// `max_message_size`).
    pub queue_bytes: usize,
    /// Bytes of the messages waiting for all peers together (default 1 GiB): a message that
    /// would take them past it makes `send` fail with `LIMIT` (when nothing waits, any message
    /// up to `max_message_size` is taken). Without it the queues could hold `queue_bytes` times
    /// the peers with waiting messages.
    pub queue_bytes_total: usize,
    /// How long opening the particle stream on a connection may take, in ms (default 10000):
    /// protocol negotiation and the receiver's size limit. An open that fails or times out costs
    /// the first waiting message; the next one opens again.
    pub open_timeout_ms: u64,
    /// How long a connection without open streams stays up, in ms (default 600000).
    pub idle_connection_timeout_ms: u64,
    /// How often each connection is pinged, in ms (default 15000).
    pub ping_interval_ms: u64,
    /// `"server"` (default) or `"client"`: whether this node answers Kademlia queries.
    pub mode: Mode,
    /// How long one Kademlia query may run, in ms (default 20000); `bootstrap` waits at most this.
    pub query_timeout_ms: u64,
    /// Established connections, in and out together (default 256).
    pub max_connections: u32,
    /// Established connections to one peer (default 4).
    pub max_connections_per_peer: u32,
    /// Connections still in their handshake, in and out each (default 64).
    pub max_pending_connections: u32,
    /// Concurrent yamux streams per connection (default 64).
    pub max_streams_per_connection: usize,
    /// Particle streams a peer may open on one connection (default 2; a peer uses one, and opens
    /// another when it breaks). More are reset.
    pub max_particle_streams: usize,
    /// The plugin's tokio worker threads per node (default 1, at most 8).
    pub worker_threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_message_size: 16 << 20,
            queue_len: 256,
            queue_bytes: 64 << 20,
            queue_bytes_total: 1 << 30,
            open_timeout_ms: 10_000,
            idle_connection_timeout_ms: 600_000,
            ping_interval_ms: 15_000,
            mode: Mode::Server,
            query_timeout_ms: 20_000,
            max_connections: 256,
            max_connections_per_peer: 4,
            max_pending_connections: 64,
            max_streams_per_connection: 64,
            max_particle_streams: 2,
            worker_threads: 1,
        }
    }
}

/// A TOML error on one line: `line N (`the line`): what`.
fn toml_error(text: &str, e: &toml::de::Error) -> Error {
    let what = e.message().lines().next().unwrap_or("invalid");
    match e.span() {
        Some(span) => {
            let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            Error::config(format!("libp2p plugin config line {line_no} (`{line}`): {what}"))
        }
        None => Error::config(format!("libp2p plugin config: {what}")),
    }
}

impl Config {
    /// Parses the configuration text: TOML, or JSON when it starts with `{` (empty means defaults).
    ///
    /// # Errors
    /// Malformed text, unknown keys or out-of-range values, as `INVALID_CONFIG`, one line naming
    /// the key.
    pub fn parse(text: &str) -> Result<Self> {
        let config: Self = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| {
                let what = e.to_string();
                Error::config(format!("libp2p plugin config (json): {}", what.lines().next().unwrap_or("invalid")))
            })?
        } else {
            toml::from_str(text).map_err(|e| toml_error(text, &e))?
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let bad = |key: &str, what: &str| Err(Error::config(format!("libp2p plugin config: {key} {what}")));
        if self.max_message_size == 0 || self.max_message_size > MAX_MESSAGE_SIZE_LIMIT {
            return bad("max_message_size", "must be between 1 and 1073741824 (1 GiB)");
        }
        for (key, value) in [
            ("queue_len", self.queue_len),
            ("queue_bytes", self.queue_bytes),
            ("queue_bytes_total", self.queue_bytes_total),
            ("max_streams_per_connection", self.max_streams_per_connection),
            ("max_particle_streams", self.max_particle_streams),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1");
            }
        }
        for (key, value) in [
            ("open_timeout_ms", self.open_timeout_ms),
            ("ping_interval_ms", self.ping_interval_ms),
            ("query_timeout_ms", self.query_timeout_ms),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1");
            }
        }
        for (key, value) in [
            ("max_connections", self.max_connections),
            ("max_connections_per_peer", self.max_connections_per_peer),
            ("max_pending_connections", self.max_pending_connections),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1");
            }
        }
        if self.worker_threads == 0 || self.worker_threads > 8 {
            return bad("worker_threads", "must be between 1 and 8");
        }
        Ok(())
    }

    pub(crate) fn open_timeout(&self) -> Duration {
        Duration::from_millis(self.open_timeout_ms)
    }
    pub(crate) fn idle_connection_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_connection_timeout_ms)
    }
    pub(crate) fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }
    pub(crate) fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_abi::ErrorCode;

    #[test]
    fn defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.max_message_size, 16 << 20);
        assert_eq!(c.mode, Mode::Server);
        assert_eq!(Config::parse("  \n").unwrap().queue_len, 256);
    }

    #[test]
    fn toml_and_json() {
        let c = Config::parse("max_message_size = 1024\nmode = \"client\"").unwrap();
        assert_eq!((c.max_message_size, c.mode), (1024, Mode::Client));
        let c = Config::parse(r#"{"queue_len": 3, "ping_interval_ms": 50}"#).unwrap();
        assert_eq!((c.queue_len, c.ping_interval_ms), (3, 50));
        let c = Config::parse("queue_bytes = 4096").unwrap();
        assert_eq!((c.queue_bytes, Config::default().queue_bytes), (4096, 64 << 20));
        let c = Config::parse("queue_bytes_total = 8192").unwrap();
        assert_eq!((c.queue_bytes_total, Config::default().queue_bytes_total), (8192, 1 << 30));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        for (text, key) in [
            ("max_msg_size = 5", "max_msg_size"),
            (r#"{"bogus": 1}"#, "bogus"),
            ("mode = \"relay\"", "relay"),
            ("queue_len = 0", "queue_len"),
            ("queue_bytes = 0", "queue_bytes"),
            ("queue_bytes_total = 0", "queue_bytes_total"),
            ("max_message_size = 0", "max_message_size"),
            ("worker_threads = 99", "worker_threads"),
            ("open_timeout_ms = -1", "open_timeout_ms"),
            ("max_particle_streams = 0", "max_particle_streams"),
            ("request_timeout_ms = 5", "request_timeout_ms"), // gone with the acknowledged protocol
        ] {
            let e = Config::parse(text).unwrap_err();
            assert_eq!(e.code(), ErrorCode::INVALID_CONFIG, "{text}");
            assert!(e.message().contains(key), "{text}: {e}");
            assert!(!e.message().contains('\n'), "{text}: {e}");
        }
    }
}
