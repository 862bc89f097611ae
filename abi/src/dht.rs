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
///
/// # What the host relies on
/// `weft_abi::compliance::dht` (feature `compliance`) checks every point below, on nodes made of
/// a transport and the DHT that shares its network stack (same identity).
///
/// - A node learns of peers only through [`add_address`](Self::add_address), the peers it talks
///   to and their answers; after `bootstrap`, a node that knows one peer of a connected network
///   finds any other peer of it within a few seconds.
/// - The addresses [`find_peer`](Self::find_peer) returns can be given to the node's transport
///   `dial` as they are.
/// - Distance is Kademlia's XOR distance over sha256, with libp2p's `KBucketKey` semantics: between
///   `sha256(key)` and `sha256(multihash bytes of the peer id)`, where a peer id's multihash bytes
///   are [`base58_decode`](crate::peer_id::base58_decode) of its text.
/// - Every call returns within its timeout (plus a small margin); `bootstrap` within a time the
///   plugin documents.
pub trait Dht: Send + Sync + 'static {
    /// Records that `peer` can be reached at `address` (a bootstrap or a known peer). The address
    /// may end in `/p2p/<peer>`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`: malformed peer id or address, or an address whose `/p2p/` names
    /// another peer.
    fn add_address(&self, peer: &str, address: &str) -> Result<()>;
    /// Joins the network through the known peers: looks up this node's own id through them, so
    /// that they and the peers close to this node learn of it. May return before that lookup has
    /// finished.
    ///
    /// # Errors
    /// No known peer (add one with `add_address` first), or none answered.
    fn bootstrap(&self) -> Result<()>;
    /// The addresses of `peer`, looked up in the network if not known locally.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`: `peer` is not a peer id; `NOT_FOUND` or `TIMEOUT`: not found within
    /// `timeout`.
    fn find_peer(&self, peer: &str, timeout: Duration) -> Result<Vec<String>>;
    /// Up to `count` peer ids closest to `key` (see the distance above), closest first, never this
    /// node's own id.
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
