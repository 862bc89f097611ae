//! The `dht` kind: finds peers (Kademlia or anything with the same shape).
//!
//! Calls block the calling thread for at most the given timeout; the host calls them from a
//! blocking-capable thread, never from its particle loop. A library that provides both `transport`
//! and `dht` (libp2p) shares one network stack between them, keyed by the identity it is given.

use std::time::Duration;

use abi_stable::sabi_trait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RBox, RResult, RSlice, RStr, RString, RVec};

use crate::error::{Error, Result, guard};

/// A DHT, as a plugin author implements it.
pub trait Dht: Send + Sync + 'static {
    /// Records that `peer` can be reached at `address` (a bootstrap or a known peer).
    ///
    /// # Errors
    /// Malformed peer id or address.
    fn add_address(&self, peer: &str, address: &str) -> Result<()>;
    /// Joins the network through the known peers.
    ///
    /// # Errors
    /// No known peer, or none answered.
    fn bootstrap(&self) -> Result<()>;
    /// The addresses of `peer`, looked up in the network if not known locally.
    ///
    /// # Errors
    /// Not found within `timeout`.
    fn find_peer(&self, peer: &str, timeout: Duration) -> Result<Vec<String>>;
    /// Up to `count` peers closest to `key`.
    ///
    /// # Errors
    /// The lookup failed or timed out.
    fn neighborhood(&self, key: &[u8], count: usize, timeout: Duration) -> Result<Vec<String>>;
}

#[sabi_trait]
pub(crate) trait DhtFfi: Send + Sync {
    fn add_address(&self, peer: RStr<'_>, address: RStr<'_>) -> RResult<(), Error>;
    fn bootstrap(&self) -> RResult<(), Error>;
    fn find_peer(&self, peer: RStr<'_>, timeout_ms: u64) -> RResult<RVec<RString>, Error>;
    #[sabi(last_prefix_field)]
    fn neighborhood(&self, key: RSlice<'_, u8>, count: u32, timeout_ms: u64) -> RResult<RVec<RString>, Error>;
}

pub(crate) type DhtBox = DhtFfi_TO<'static, RBox<()>>;

struct Exported(Box<dyn Dht>);

fn strings(v: Vec<String>) -> RVec<RString> {
    v.into_iter().map(RString::from).collect()
}

impl DhtFfi for Exported {
    fn add_address(&self, peer: RStr<'_>, address: RStr<'_>) -> RResult<(), Error> {
        guard("dht.add_address", || self.0.add_address(peer.as_str(), address.as_str()))
    }
    fn bootstrap(&self) -> RResult<(), Error> {
        guard("dht.bootstrap", || self.0.bootstrap())
    }
    fn find_peer(&self, peer: RStr<'_>, timeout_ms: u64) -> RResult<RVec<RString>, Error> {
        guard("dht.find_peer", || Ok(strings(self.0.find_peer(peer.as_str(), Duration::from_millis(timeout_ms))?)))
    }
    fn neighborhood(&self, key: RSlice<'_, u8>, count: u32, timeout_ms: u64) -> RResult<RVec<RString>, Error> {
        guard("dht.neighborhood", || {
            Ok(strings(self.0.neighborhood(key.as_slice(), count as usize, Duration::from_millis(timeout_ms))?))
        })
    }
}

pub(crate) fn export(d: Box<dyn Dht>) -> DhtBox {
    DhtFfi_TO::from_value(Exported(d), TD_Opaque)
}

/// Host side: a DHT provided by a loaded plugin. Implements [`Dht`].
pub struct Loaded {
    inner: DhtBox,
    plugin: String,
}

impl Loaded {
    pub(crate) fn new(inner: DhtBox, plugin: String) -> Self {
        Self { inner, plugin }
    }
    /// The name of the plugin that provides this DHT.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("dht::Loaded").field("plugin", &self.plugin).finish_non_exhaustive()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn owned(v: RVec<RString>) -> Vec<String> {
    v.into_iter().map(String::from).collect()
}

impl Dht for Loaded {
    fn add_address(&self, peer: &str, address: &str) -> Result<()> {
        self.inner.add_address(peer.into(), address.into()).into_result()
    }
    fn bootstrap(&self) -> Result<()> {
        self.inner.bootstrap().into_result()
    }
    fn find_peer(&self, peer: &str, timeout: Duration) -> Result<Vec<String>> {
        self.inner.find_peer(peer.into(), millis(timeout)).into_result().map(owned)
    }
    fn neighborhood(&self, key: &[u8], count: usize, timeout: Duration) -> Result<Vec<String>> {
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        self.inner.neighborhood(key.into(), count, millis(timeout)).into_result().map(owned)
    }
}
