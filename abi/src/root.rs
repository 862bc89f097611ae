//! The root module every plugin library exports, and the [`Provider`] trait behind it.

use std::path::Path;

use abi_stable::StableAbi;
use abi_stable::library::{CheckTypeLayout, LibHeader, RootModule, RootModuleResult};
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RSlice, RStr};

use crate::air::{self, AirBox, Interpreter};
use crate::dht::{self, Dht, DhtBox};
use crate::effector::{self, Effector, EffectorBox};
use crate::error::{Error, Result, guard};
use crate::manifest::{Kind, Manifest, RawManifest};
use crate::storage::{self, Backend, StorageBox};
use crate::transport::{self, Sink, SinkBox, Transport, TransportBox};

/// The ABI's major version. A host loads only plugins of its own major version.
pub const ABI_MAJOR: u32 = 1;
/// The ABI's minor version: bumped when something is appended. Any minor of the same major loads:
/// fields and methods a side does not know are absent (older plugin) or ignored (newer plugin).
pub const ABI_MINOR: u32 = 0;

/// The name of the symbol holding `[major, minor]`, read before anything else in a library.
pub(crate) const ABI_SYMBOL: &[u8] = b"WEFT_PLUGIN_ABI\0";

/// What a plugin library provides. Implement it on a unit struct and export it with
/// [`export_plugin!`](crate::export_plugin).
///
/// Each constructor takes the plugin's configuration as text (TOML or JSON, the plugin's choice;
/// empty means defaults). Only the kinds listed in the manifest are offered to the host; the
/// default methods answer "unsupported".
pub trait Provider: 'static {
    /// Name, version, description and kinds.
    fn manifest() -> Manifest;

    /// A storage backend keeping its files in `dir` (created by the host).
    ///
    /// # Errors
    /// Bad config or the backend cannot open.
    fn storage(config: &str, dir: &Path) -> Result<Box<dyn Backend>> {
        let _ = (config, dir);
        Err(Error::unsupported("the storage kind"))
    }

    /// A transport for the node whose ed25519 secret key is `identity`, reporting to `sink`.
    ///
    /// # Errors
    /// Bad config or the transport cannot start.
    fn transport(config: &str, identity: &[u8], sink: Sink) -> Result<Box<dyn Transport>> {
        let _ = (config, identity, sink);
        Err(Error::unsupported("the transport kind"))
    }

    /// A DHT for the node whose ed25519 secret key is `identity`.
    ///
    /// # Errors
    /// Bad config or the DHT cannot start.
    fn dht(config: &str, identity: &[u8]) -> Result<Box<dyn Dht>> {
        let _ = (config, identity);
        Err(Error::unsupported("the dht kind"))
    }

    /// An AIR interpreter.
    ///
    /// # Errors
    /// Bad config.
    fn air(config: &str) -> Result<Box<dyn Interpreter>> {
        let _ = config;
        Err(Error::unsupported("the air kind"))
    }

    /// An effector keeping per-service state under `dir`.
    ///
    /// # Errors
    /// Bad config or the effector cannot start.
    fn effector(config: &str, dir: &Path) -> Result<Box<dyn Effector>> {
        let _ = (config, dir);
        Err(Error::unsupported("the effector kind"))
    }
}

type StorageCtor = extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<StorageBox, Error>;
type TransportCtor = extern "C" fn(RStr<'_>, RSlice<'_, u8>, SinkBox) -> RResult<TransportBox, Error>;
type DhtCtor = extern "C" fn(RStr<'_>, RSlice<'_, u8>) -> RResult<DhtBox, Error>;
type AirCtor = extern "C" fn(RStr<'_>) -> RResult<AirBox, Error>;
type EffectorCtor = extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<EffectorBox, Error>;

/// The root module. A prefix type: fields are only ever appended, after the last prefix field.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginRef)))]
#[sabi(missing_field(default))]
pub struct PluginModule {
    pub(crate) manifest: extern "C" fn() -> RResult<RawManifest, Error>,
    // Function pointer types are spelled out: the StableAbi derive reads them syntactically.
    pub(crate) storage: Option<extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<StorageBox, Error>>,
    pub(crate) transport: Option<extern "C" fn(RStr<'_>, RSlice<'_, u8>, SinkBox) -> RResult<TransportBox, Error>>,
    pub(crate) dht: Option<extern "C" fn(RStr<'_>, RSlice<'_, u8>) -> RResult<DhtBox, Error>>,
    pub(crate) air: Option<extern "C" fn(RStr<'_>) -> RResult<AirBox, Error>>,
    #[sabi(last_prefix_field)]
    pub(crate) effector: Option<extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<EffectorBox, Error>>,
}

impl std::fmt::Debug for PluginModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginModule").finish_non_exhaustive()
    }
}

impl RootModule for PluginRef {
    abi_stable::declare_root_module_statics! {PluginRef}
    const BASE_NAME: &'static str = "weft_plugin";
    const NAME: &'static str = "weft plugin";
    // Fixed: weft checks its own ABI version (ABI_SYMBOL) before abi_stable looks at this.
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}

extern "C" fn manifest_ctor<P: Provider>() -> RResult<RawManifest, Error> {
    guard("manifest", || Ok(RawManifest::from(&P::manifest())))
}

extern "C" fn storage_ctor<P: Provider>(config: RStr<'_>, dir: RStr<'_>) -> RResult<StorageBox, Error> {
    guard("storage constructor", || P::storage(config.as_str(), Path::new(dir.as_str())).map(storage::export))
}

extern "C" fn transport_ctor<P: Provider>(
    config: RStr<'_>,
    identity: RSlice<'_, u8>,
    sink: SinkBox,
) -> RResult<TransportBox, Error> {
    guard("transport constructor", || {
        P::transport(config.as_str(), identity.as_slice(), Sink::from_raw(sink)).map(transport::export)
    })
}

extern "C" fn dht_ctor<P: Provider>(config: RStr<'_>, identity: RSlice<'_, u8>) -> RResult<DhtBox, Error> {
    guard("dht constructor", || P::dht(config.as_str(), identity.as_slice()).map(dht::export))
}

extern "C" fn air_ctor<P: Provider>(config: RStr<'_>) -> RResult<AirBox, Error> {
    guard("air constructor", || P::air(config.as_str()).map(air::export))
}

extern "C" fn effector_ctor<P: Provider>(config: RStr<'_>, dir: RStr<'_>) -> RResult<EffectorBox, Error> {
    guard("effector constructor", || P::effector(config.as_str(), Path::new(dir.as_str())).map(effector::export))
}

fn root_module<P: Provider>() -> PluginRef {
    // The manifest is asked once here (guarded: a panicking manifest leaves every kind out, and
    // the host reports the panic when it calls `manifest` itself).
    let kinds = std::panic::catch_unwind(|| P::manifest().kinds).unwrap_or_default();
    let has = |k: Kind| kinds.contains(&k);
    let module = PluginModule {
        manifest: manifest_ctor::<P>,
        storage: has(Kind::STORAGE).then_some(storage_ctor::<P> as StorageCtor),
        transport: has(Kind::TRANSPORT).then_some(transport_ctor::<P> as TransportCtor),
        dht: has(Kind::DHT).then_some(dht_ctor::<P> as DhtCtor),
        air: has(Kind::AIR).then_some(air_ctor::<P> as AirCtor),
        effector: has(Kind::EFFECTOR).then_some(effector_ctor::<P> as EffectorCtor),
    };
    module.leak_into_prefix()
}

extern "C" fn root_loader<P: Provider>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(root_module::<P>)
}

/// The header abi_stable looks for in a library. Used by [`export_plugin!`](crate::export_plugin).
#[doc(hidden)]
pub const fn lib_header<P: Provider>() -> LibHeader {
    // SAFETY: `root_loader::<P>` returns a `PrefixRef` made from a `PluginRef`, which is what
    // `from_constructor::<PluginRef>` requires.
    unsafe { LibHeader::from_constructor::<PluginRef>(root_loader::<P>, CheckTypeLayout::Yes) }
}

/// The symbol abi_stable 0.11 reads the header from; `export_plugin!` spells it out (it needs a
/// literal), a test checks it against abi_stable.
#[cfg(test)]
const ROOT_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// Exports a [`Provider`] as this library's weft plugin.
///
/// Put it once in the plugin crate's `lib.rs` (crate-type `["cdylib", "rlib"]`):
///
/// ```ignore
/// struct MyPlugin;
/// impl weft_abi::Provider for MyPlugin { /* ... */ }
/// weft_abi::export_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($provider:ty) => {
        $crate::export_plugin!($provider, abi = [$crate::ABI_MAJOR, $crate::ABI_MINOR]);
    };
    ($provider:ty, abi = $abi:expr) => {
        #[doc(hidden)]
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static __WEFT_ROOT_MODULE: $crate::__private::LibHeader = $crate::__private::lib_header::<$provider>();

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub static WEFT_PLUGIN_ABI: [u32; 2] = $abi;
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_symbol_matches_abi_stable() {
        assert_eq!(super::ROOT_SYMBOL, abi_stable::library::ROOT_MODULE_LOADER_NAME);
    }
}
