//! Effector capabilities: host functions a blueprint grants to a module, module by module.
//!
//! A capability has a name (the import module a module imports it under) and an [`Interface`]
//! whose functions are what it offers, in the module ABI's types. A module whose config grants
//! the capability may import those functions; its declared import types must equal the
//! capability's. Effector plugins register here through [`crate::effectors`]; tests register their
//! own.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use weft_compiler::interface::Interface;

use super::runtime::CallParams;

/// Who is calling a capability, so it can scope its state per service and module.
#[derive(Debug)]
pub struct CapabilityCall<'a> {
    /// The calling service.
    pub service_id: &'a str,
    /// The calling module (its name in the blueprint).
    pub module: &'a str,
    /// The function of the capability called.
    pub function: &'a str,
    /// The parameters of the call the module is serving.
    pub params: &'a CallParams,
    /// The service's data directory.
    pub data_dir: &'a Path,
    /// The calling module's configuration of this capability from its blueprint: canonical JSON,
    /// `{}` when none.
    pub config: &'a str,
    /// How long the calling module's call may still run.
    pub time_left: Duration,
}

/// A capability granted to a module, as its service is linked.
#[derive(Debug)]
pub struct CapabilityGrant<'a> {
    /// The service being linked.
    pub service_id: &'a str,
    /// The module it is granted to.
    pub module: &'a str,
    /// The module's configuration of the capability (canonical JSON, `{}` when none).
    pub config: &'a str,
    /// The service's data directory.
    pub data_dir: &'a Path,
}

/// Host functions offered to modules under one import module name.
pub trait Capability: Send + Sync {
    /// The name modules import it by and blueprints grant it by.
    fn name(&self) -> &str;

    /// Its functions, with types (records as needed).
    fn interface(&self) -> &Interface;

    /// Checks a module's configuration of the capability when a service granting it is linked.
    /// The default accepts only no configuration (`{}`).
    ///
    /// # Errors
    /// A one-line message; the service is not created (or not instantiated).
    fn grant(&self, grant: &CapabilityGrant<'_>) -> Result<(), String> {
        if grant.config == "{}" {
            Ok(())
        } else {
            Err(format!("capability {} takes no configuration, got {}", self.name(), grant.config))
        }
    }

    /// Runs `call.function` on postcard arguments (already checked against its declared
    /// parameter types) and returns postcard results (checked by weft afterwards).
    ///
    /// # Errors
    /// A one-line message; the calling module's call fails with it.
    fn call(&self, call: &CapabilityCall<'_>, args: &[u8]) -> Result<Vec<u8>, String>;

    /// The service was removed: drop its state. Its data directory is removed by the caller.
    ///
    /// # Errors
    /// A one-line message (logged; the removal goes on).
    fn forget(&self, service_id: &str) -> Result<(), String> {
        let _ = service_id;
        Ok(())
    }
}

/// The capabilities a node offers, by name.
#[derive(Clone, Default)]
pub struct Capabilities {
    by_name: BTreeMap<String, Arc<dyn Capability>>,
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Capabilities {
    /// Adds (or replaces) a capability.
    pub fn add(&mut self, capability: Arc<dyn Capability>) {
        self.by_name.insert(capability.name().to_owned(), capability);
    }

    /// The capability named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Capability>> {
        self.by_name.get(name).cloned()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// All of them, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Capability>> {
        self.by_name.values()
    }

    /// Tells every capability that `service_id` was removed; returns the messages of those that
    /// failed, `capability: message`.
    pub fn forget(&self, service_id: &str) -> Vec<String> {
        self.by_name.values().filter_map(|c| c.forget(service_id).err().map(|e| format!("{}: {e}", c.name()))).collect()
    }

    /// Their names, for messages: `kv, sqlite` or `none`.
    pub fn names(&self) -> String {
        if self.by_name.is_empty() {
            return "none".into();
        }
        self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}
