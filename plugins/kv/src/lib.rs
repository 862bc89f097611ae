//! The `kv` effector plugin: a small persistent key-value store per service.
//!
//! Capability `kv` (grant it with `capabilities = ["kv"]`):
//!
//! ```text
//! get(key: string) -> optional<string>
//! set(key: string, value: string) -> optional<string>      // none, or why it was refused
//! remove(key: string) -> bool                              // whether the key was there
//! keys(prefix: string, after: optional<string>, limit: u32) -> array<string>
//! ```
//!
//! The data lives in the node's store, over its storage plugin (sled by default): the host hands
//! each call the calling service's [`State`](weft_abi::effector::State), scoped to this capability
//! and that service, so one service can never read another's keys, whatever this plugin does.
//! Plugins may not depend on each other, so the host, which owns the storage plugin, provides the
//! store through the effector ABI. Keys survive restarts and are deleted with the service.
//!
//! Configuration (`[plugins.config.kv]` of the node, TOML, every key optional):
//!
//! ```toml
//! max_key_bytes = 512           # longest key
//! max_value_bytes = 65536       # largest value (the host allows up to 1 MiB)
//! max_bytes = 16777216          # keys and values one service may keep in total
//! max_keys_listed = 1000        # most keys one `keys` call returns
//! ```
//!
//! Modules take no configuration of it (`[modules.capability_config.kv]` is refused).

use std::path::Path;

use serde::Deserialize;
use weft_abi::effector::{Call, Capability, Effector};
use weft_abi::interface::{Function, Type};
use weft_abi::{Error, Kind, Manifest, Provider, Result};

/// The capability's name.
pub const CAPABILITY: &str = "kv";

/// The plugin's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
    /// Most bytes (keys and values) one service keeps.
    pub max_bytes: u64,
    /// Most keys one `keys` call returns.
    pub max_keys_listed: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { max_key_bytes: 512, max_value_bytes: 64 << 10, max_bytes: 16 << 20, max_keys_listed: 1000 }
    }
}

impl Config {
    /// Parses the configuration text (empty means defaults).
    ///
    /// # Errors
    /// Malformed TOML, unknown keys or out-of-range values, as `INVALID_CONFIG`.
    pub fn parse(text: &str) -> Result<Self> {
        let c: Self = toml::from_str(text)
            .map_err(|e| Error::config(format!("kv plugin config: {}", e.message().lines().next().unwrap_or(""))))?;
        if c.max_key_bytes == 0 || c.max_key_bytes > 1024 {
            return Err(Error::config("kv plugin config: max_key_bytes must be 1..=1024 (the host's limit)"));
        }
        if c.max_value_bytes > 1 << 20 {
            return Err(Error::config("kv plugin config: max_value_bytes must be at most 1048576 (the host's limit)"));
        }
        if c.max_keys_listed == 0 || c.max_keys_listed > 1000 {
            return Err(Error::config("kv plugin config: max_keys_listed must be 1..=1000"));
        }
        Ok(c)
    }
}

/// The effector.
#[derive(Debug)]
pub struct Kv {
    config: Config,
}

impl Kv {
    /// A `kv` effector with `config`.
    pub fn new(config: Config) -> Self {
        Kv { config }
    }

    fn set(&self, call: &Call<'_>, key: &str, value: &str) -> Result<Option<String>> {
        let c = &self.config;
        if key.len() > c.max_key_bytes {
            return Ok(Some(format!(
                "kv.set: the key is {} bytes; at most {} are allowed",
                key.len(),
                c.max_key_bytes
            )));
        }
        if value.len() > c.max_value_bytes {
            return Ok(Some(format!(
                "kv.set: the value is {} bytes; at most {} are allowed",
                value.len(),
                c.max_value_bytes
            )));
        }
        let state = call.state();
        let old = state.get(key.as_bytes())?.map_or(0, |v| key.len() + v.len());
        let after = state.usage()?.bytes.saturating_sub(old as u64) + (key.len() + value.len()) as u64;
        if after > c.max_bytes {
            return Ok(Some(format!(
                "kv.set: the service would keep {after} bytes; at most {} are allowed (remove keys first)",
                c.max_bytes
            )));
        }
        match state.put(key.as_bytes(), value.as_bytes()) {
            Ok(()) => Ok(None),
            Err(e) if e.code() == weft_abi::ErrorCode::LIMIT => Ok(Some(format!("kv.set: {}", e.message()))),
            Err(e) => Err(e),
        }
    }
}

fn decode<'de, T: Deserialize<'de>>(call: &Call<'de>) -> Result<T> {
    postcard::from_bytes(call.args()).map_err(|e| call.bad_args(e))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| Error::other(format!("kv: cannot encode the results: {e}")))
}

impl Effector for Kv {
    fn capabilities(&self) -> Result<Vec<Capability>> {
        let s = || Type::String;
        Ok(vec![
            Capability::new(CAPABILITY)
                .function(Function::new("get").param("key", s()).result(Type::optional(s())))
                .function(Function::new("set").param("key", s()).param("value", s()).result(Type::optional(s())))
                .function(Function::new("remove").param("key", s()).result(Type::Bool))
                .function(
                    Function::new("keys")
                        .param("prefix", s())
                        .param("after", Type::optional(s()))
                        .param("limit", Type::U32)
                        .result(Type::array(s())),
                ),
        ])
    }

    fn call(&self, call: &Call<'_>) -> Result<Vec<u8>> {
        if call.capability() != CAPABILITY {
            return Err(call.unknown_function());
        }
        let state = call.state();
        match call.function() {
            "get" => {
                let (key,): (String,) = decode(call)?;
                if key.len() > self.config.max_key_bytes {
                    return encode(&None::<String>);
                }
                let value = state.get(key.as_bytes())?.map(|v| String::from_utf8_lossy(&v).into_owned());
                encode(&value)
            }
            "set" => {
                let (key, value): (String, String) = decode(call)?;
                encode(&self.set(call, &key, &value)?)
            }
            "remove" => {
                let (key,): (String,) = decode(call)?;
                if key.len() > self.config.max_key_bytes {
                    return encode(&false);
                }
                let present = state.get(key.as_bytes())?.is_some();
                if present {
                    state.delete(key.as_bytes())?;
                }
                encode(&present)
            }
            "keys" => {
                let (prefix, after, limit): (String, Option<String>, u32) = decode(call)?;
                let limit = limit.min(self.config.max_keys_listed) as usize;
                let entries = state.scan(prefix.as_bytes(), after.as_deref().map(str::as_bytes), limit)?;
                let keys: Vec<String> =
                    entries.into_iter().map(|(k, _)| String::from_utf8_lossy(&k).into_owned()).collect();
                encode(&keys)
            }
            _ => Err(call.unknown_function()),
        }
    }
}

/// The plugin provider.
#[derive(Debug)]
pub struct KvPlugin;

impl Provider for KvPlugin {
    fn manifest() -> Manifest {
        Manifest {
            name: "kv".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "a small persistent key-value store per service, in the node's store".into(),
            kinds: vec![Kind::EFFECTOR],
        }
    }

    fn effector(config: &str, _dir: &Path) -> Result<Box<dyn Effector>> {
        Ok(Box::new(Kv::new(Config::parse(config)?)))
    }
}

weft_abi::export_plugin!(KvPlugin);
