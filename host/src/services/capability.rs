//! Effector capabilities: host functions a blueprint grants to a module, module by module.
//!
//! A capability has a name (the import module a module imports it under) and an [`Interface`]
//! whose functions are what it offers, in the module ABI's types. A module whose config grants
//! the capability may import those functions; its declared import types must equal the
//! capability's. Effector plugins (issue #6) register here; tests register their own.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

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
}

/// Host functions offered to modules under one import module name.
pub trait Capability: Send + Sync {
    /// The name modules import it by and blueprints grant it by.
    fn name(&self) -> &str;

    /// Its functions, with types (records as needed).
    fn interface(&self) -> &Interface;

    /// Runs `call.function` on postcard arguments (already checked against its declared
    /// parameter types) and returns postcard results (checked by weft afterwards).
    ///
    /// # Errors
    /// A one-line message; the calling module's call fails with it.
    fn call(&self, call: &CapabilityCall<'_>, args: &[u8]) -> Result<Vec<u8>, String>;
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

    /// Their names, for messages: `kv, sqlite` or `none`.
    pub fn names(&self) -> String {
        if self.by_name.is_empty() {
            return "none".into();
        }
        self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}
