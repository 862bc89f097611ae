//! An example weft effector plugin: named counters, one set per service.
//!
//! It is the plugin that [docs/effector-plugins.md](../../../docs/effector-plugins.md) builds step by
//! step. Capability `counter`:
//!
//! ```text
//! record count { error: optional<string>, value: s64 }
//! add(name: string, delta: s64) -> count     // the new value, or why not
//! get(name: string) -> s64                   // 0 for a counter never added to
//! ```
//!
//! A module's blueprint may cap its counters (`[modules.capability_config.counter] max = 1000`):
//! an `add` that would go past it is refused in `error`, and the counter stays as it was. The
//! counters live in the node's store (the host gives every call the calling service's state), so
//! they survive restarts, no service sees another's, and they go away with the service.

use std::path::Path;

use serde::{Deserialize, Serialize};
use weft_abi::effector::{Call, Capability, Effector, Grant};
use weft_abi::interface::{Function, Record, Type};
use weft_abi::{Error, Kind, Manifest, Provider, Result};

/// What `add` returns: by convention, failures a module can handle travel in an `error` field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// Why the counter was not changed, if it was not.
    pub error: Option<String>,
    /// The counter's value after the call.
    pub value: i64,
}

/// A module's configuration of `counter`, from its blueprint (JSON). Unknown keys are refused:
/// a typo must not silently drop a limit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleConfig {
    /// The largest value a counter of this module may reach.
    pub max: Option<i64>,
}

impl ModuleConfig {
    fn parse(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::config(format!("counter module config {text:?}: {e}")))
    }
}

/// The effector. It keeps nothing itself: the counters are in each call's state.
#[derive(Debug)]
pub struct Counter;

fn read(call: &Call<'_>, name: &str) -> Result<i64> {
    let stored = call.state().get(name.as_bytes())?;
    Ok(stored.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok()).map_or(0, i64::from_le_bytes))
}

impl Effector for Counter {
    /// What modules may import: `counter.add` and `counter.get`, in the module ABI's types.
    fn capabilities(&self) -> Result<Vec<Capability>> {
        Ok(vec![
            Capability::new("counter")
                .record(Record::new("count").field("error", Type::optional(Type::String)).field("value", Type::S64))
                .function(
                    Function::new("add")
                        .param("name", Type::String)
                        .param("delta", Type::S64)
                        .result(Type::record("count")),
                )
                .function(Function::new("get").param("name", Type::String).result(Type::S64)),
        ])
    }

    /// Checked when a service granting `counter` is created: a bad configuration fails the
    /// creation, naming the module.
    fn grant(&self, grant: &Grant<'_>) -> Result<()> {
        ModuleConfig::parse(grant.config()).map(drop)
    }

    fn call(&self, call: &Call<'_>) -> Result<Vec<u8>> {
        match call.function() {
            "add" => {
                // The arguments are the tuple of the parameters, postcard-encoded.
                let (name, delta): (String, i64) = postcard::from_bytes(call.args()).map_err(|e| call.bad_args(e))?;
                let max = ModuleConfig::parse(call.config())?.max;
                let value = read(call, &name)?;
                let count = match value.checked_add(delta) {
                    Some(next) if max.is_none_or(|m| next <= m) => {
                        call.state().put(name.as_bytes(), &next.to_le_bytes())?;
                        Count { error: None, value: next }
                    }
                    Some(_) => Count {
                        error: Some(format!("counter {name:?} would pass its max of {}", max.unwrap_or(i64::MAX))),
                        value,
                    },
                    None => Count { error: Some(format!("counter {name:?} would overflow")), value },
                };
                postcard::to_stdvec(&count).map_err(|e| Error::other(e.to_string()))
            }
            "get" => {
                let (name,): (String,) = postcard::from_bytes(call.args()).map_err(|e| call.bad_args(e))?;
                postcard::to_stdvec(&read(call, &name)?).map_err(|e| Error::other(e.to_string()))
            }
            _ => Err(call.unknown_function()),
        }
    }
}

/// The plugin: its manifest and its constructor.
#[derive(Debug)]
pub struct CounterPlugin;

impl Provider for CounterPlugin {
    fn manifest() -> Manifest {
        Manifest {
            name: "counter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "named counters per service (the effector-plugins.md example)".into(),
            kinds: vec![Kind::EFFECTOR],
        }
    }

    /// `config` is the node's `[plugins.config.counter]` table as TOML text; this plugin has no
    /// settings, so anything but nothing is an error.
    fn effector(config: &str, _dir: &Path) -> Result<Box<dyn Effector>> {
        if !config.trim().is_empty() {
            return Err(Error::config("the counter plugin takes no configuration; remove [plugins.config.counter]"));
        }
        Ok(Box::new(Counter))
    }
}

weft_abi::export_plugin!(CounterPlugin);
