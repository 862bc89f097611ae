//! The `transport` kind: carries particles (opaque byte messages) between peers.
//!
//! Nothing async crosses the boundary. A transport owns its threads (and its runtime, if it needs
//! one); it reports what happens through the [`Sink`] the host gives its constructor, and the host
//! bridges those events into its own executor.

use abi_stable::StableAbi;
use abi_stable::sabi_trait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RBox, RResult, RStr, RString, RVec};

use crate::error::{Error, Result, guard, guard_infallible};

/// What kind of thing happened. A number so that newer transports can add kinds; hosts ignore
/// kinds they do not know.
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct EventKind(pub u32);

impl EventKind {
    /// A message arrived from `peer`; `payload` holds it.
    pub const MESSAGE: Self = Self(1);
    /// A connection to `peer` was established (at `address`, when known).
    pub const CONNECTED: Self = Self(2);
    /// The last connection to `peer` closed.
    pub const DISCONNECTED: Self = Self(3);
    /// The transport listens on `address`.
    pub const LISTENING: Self = Self(4);
    /// Dialling `address` (or `peer`) failed; `payload` holds the reason as UTF-8.
    pub const DIAL_FAILED: Self = Self(5);
    /// A ping round trip to `peer` completed; `payload` is the round-trip time in nanoseconds as
    /// u64 little-endian. Transports that can measure it emit it; the host uses it for the `peer`
    /// builtins and benches.
    pub const PING: Self = Self(6);
}

/// One thing that happened in a transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The remote peer's id, when there is one.
    pub peer: String,
    /// A multiaddress, when there is one.
    pub address: String,
    /// The message bytes for [`EventKind::MESSAGE`], a reason for failures.
    pub payload: Vec<u8>,
}

#[repr(C)]
#[derive(StableAbi)]
pub(crate) struct RawEvent {
    kind: EventKind,
    peer: RString,
    address: RString,
    payload: RVec<u8>,
}

/// A transport, as a plugin author implements it.
///
/// # What the host relies on
/// `weft_abi::compliance::transport` (feature `compliance`) checks every point below; each
/// transport plugin runs it from its `tests/compliance.rs`, linked and loaded.
///
/// - **Identity.** [`local_peer_id`](Self::local_peer_id) is
///   [`peer_id_from_secret`](crate::peer_id::peer_id_from_secret) of the 32-byte identity the
///   constructor was given.
/// - **Addresses** are multiaddress text. Listen addresses (and so `LISTENING` events) carry no
///   `/p2p/` suffix; a dial address may end in `/p2p/<peer id>`, and then only that peer is accepted.
///   A malformed or unsupported address is an [`ErrorCode::INVALID_ARGUMENT`] error, returned at
///   once by `listen` and `dial`.
/// - **Events** reach the [`Sink`] from the transport's own threads, never from inside a call the
///   host is making, in order per peer: a peer's `CONNECTED` comes before its messages, its messages
///   in the order they were sent, `DISCONNECTED` after them. A sink answering `false` (the host's
///   queue is full) loses that one event; the transport carries on.
/// - **Sending** never waits for the network: a message goes into a bounded per-peer queue, and a
///   full queue is an [`ErrorCode::LIMIT`] error (the host retries later or drops the particle).
///   Messages above the configured maximum size are a `LIMIT` error at the sender, and a receiver
///   never accepts more than its own maximum. Every message `send` accepted for a connected peer
///   arrives unless the connection closes.
/// - **Dropping** a transport shuts it down.
///
/// [`ErrorCode::INVALID_ARGUMENT`]: crate::ErrorCode::INVALID_ARGUMENT
/// [`ErrorCode::LIMIT`]: crate::ErrorCode::LIMIT
pub trait Transport: Send + Sync + 'static {
    /// This peer's id: [`peer_id_from_secret`](crate::peer_id::peer_id_from_secret) of the identity.
    fn local_peer_id(&self) -> String;
    /// Starts listening on a multiaddress (`/ip4/127.0.0.1/tcp/0`, `/memory/7`, ...). A port or slot
    /// of `0` picks a free one. The real address is reported as a [`EventKind::LISTENING`] event and
    /// appears in [`listen_addrs`](Self::listen_addrs).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`: the address is malformed or unsupported; `CLOSED`: after
    /// [`shutdown`](Self::shutdown); another code when the address is in use.
    fn listen(&self, address: &str) -> Result<()>;
    /// The addresses it listens on now, resolved (no `/0` port or slot), without `/p2p/`.
    fn listen_addrs(&self) -> Vec<String>;
    /// Starts connecting to a multiaddress, which may end in `/p2p/<peer id>`; returns at once.
    ///
    /// Success is a [`EventKind::CONNECTED`] event on both sides naming the other peer (the
    /// dialer's carries the address dialled); failure is a [`EventKind::DIAL_FAILED`] event with
    /// the reason as UTF-8 in `payload`, `address`, and `peer` when known (always when the address
    /// named it). Dialling a peer already connected reports `CONNECTED` again to the dialer.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`: the address is malformed or unsupported; `CLOSED`: after
    /// [`shutdown`](Self::shutdown).
    fn dial(&self, address: &str) -> Result<()>;
    /// Queues `message` for `peer`. Returns once queued, not once delivered; never blocks on the
    /// network. The receiver gets a [`EventKind::MESSAGE`] event with `peer` = this transport's id
    /// and exactly these bytes.
    ///
    /// # Errors
    /// `NOT_FOUND`: no connection to `peer` and no known address for it (the host then asks the
    /// DHT and dials); `LIMIT`: the message is larger than the maximum size, or the peer's queue
    /// is full; `INVALID_ARGUMENT`: `peer` is not a peer id; `CLOSED`: after
    /// [`shutdown`](Self::shutdown).
    fn send(&self, peer: &str, message: Vec<u8>) -> Result<()>;
    /// The peers with an open connection (empty after [`shutdown`](Self::shutdown)).
    fn connected_peers(&self) -> Vec<String>;
    /// Closes every connection (each remote sees [`EventKind::DISCONNECTED`]), stops listening and
    /// stops the transport's threads. Idempotent; afterwards `send`, `dial` and `listen` return
    /// `CLOSED`.
    fn shutdown(&self);
}

/// Where a transport sends its events. Given to the transport's constructor by the host.
pub trait EventSink: Send + Sync + 'static {
    /// Delivers one event. Returns `false` when the host's queue is full and the event was dropped.
    fn event(&self, event: Event) -> bool;
}

#[sabi_trait]
pub(crate) trait SinkFfi: Send + Sync {
    #[sabi(last_prefix_field)]
    fn event(&self, event: RawEvent) -> bool;
}

pub(crate) type SinkBox = SinkFfi_TO<'static, RBox<()>>;

struct HostSink(Box<dyn EventSink>);

impl SinkFfi for HostSink {
    fn event(&self, e: RawEvent) -> bool {
        let event =
            Event { kind: e.kind, peer: e.peer.into(), address: e.address.into(), payload: e.payload.into_vec() };
        // A panic in host code must not unwind into the plugin's thread.
        guard_infallible(|| self.0.event(event), || false)
    }
}

/// The sink as a transport holds it: call [`Sink::emit`] from any thread.
pub struct Sink(SinkBox);

impl Sink {
    /// Host side: wraps the host's sink for a transport constructor.
    pub fn new(sink: impl EventSink) -> Self {
        Self(SinkFfi_TO::from_value(HostSink(Box::new(sink)), TD_Opaque))
    }

    pub(crate) fn from_raw(raw: SinkBox) -> Self {
        Self(raw)
    }

    pub(crate) fn into_raw(self) -> SinkBox {
        self.0
    }

    /// Hands one event to the host. `false`: the host's queue was full and the event was dropped.
    pub fn emit(&self, event: Event) -> bool {
        self.0.event(RawEvent {
            kind: event.kind,
            peer: event.peer.into(),
            address: event.address.into(),
            payload: event.payload.into(),
        })
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("transport::Sink")
    }
}

#[sabi_trait]
pub(crate) trait TransportFfi: Send + Sync {
    fn local_peer_id(&self) -> RResult<RString, Error>;
    fn listen(&self, address: RStr<'_>) -> RResult<(), Error>;
    fn listen_addrs(&self) -> RResult<RVec<RString>, Error>;
    fn dial(&self, address: RStr<'_>) -> RResult<(), Error>;
    fn send(&self, peer: RStr<'_>, message: RVec<u8>) -> RResult<(), Error>;
    fn connected_peers(&self) -> RResult<RVec<RString>, Error>;
    #[sabi(last_prefix_field)]
    fn shutdown(&self) -> RResult<(), Error>;
}

pub(crate) type TransportBox = TransportFfi_TO<'static, RBox<()>>;

struct Exported(Box<dyn Transport>);

fn strings(v: Vec<String>) -> RVec<RString> {
    v.into_iter().map(RString::from).collect()
}

impl TransportFfi for Exported {
    fn local_peer_id(&self) -> RResult<RString, Error> {
        guard("transport.local_peer_id", || Ok(self.0.local_peer_id().into()))
    }
    fn listen(&self, address: RStr<'_>) -> RResult<(), Error> {
        guard("transport.listen", || self.0.listen(address.as_str()))
    }
    fn listen_addrs(&self) -> RResult<RVec<RString>, Error> {
        guard("transport.listen_addrs", || Ok(strings(self.0.listen_addrs())))
    }
    fn dial(&self, address: RStr<'_>) -> RResult<(), Error> {
        guard("transport.dial", || self.0.dial(address.as_str()))
    }
    fn send(&self, peer: RStr<'_>, message: RVec<u8>) -> RResult<(), Error> {
        guard("transport.send", || self.0.send(peer.as_str(), message.into_vec()))
    }
    fn connected_peers(&self) -> RResult<RVec<RString>, Error> {
        guard("transport.connected_peers", || Ok(strings(self.0.connected_peers())))
    }
    fn shutdown(&self) -> RResult<(), Error> {
        guard("transport.shutdown", || {
            self.0.shutdown();
            Ok(())
        })
    }
}

pub(crate) fn export(t: Box<dyn Transport>) -> TransportBox {
    TransportFfi_TO::from_value(Exported(t), TD_Opaque)
}

/// Host side: a transport provided by a loaded plugin.
///
/// Its inherent methods return errors because a plugin may panic in any of them. It also
/// implements [`Transport`] (so a loaded transport can go where a linked one does): there a panic
/// in an infallible method reads as the empty value (an empty id, no addresses, no peers).
pub struct Loaded {
    inner: TransportBox,
    plugin: String,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("transport::Loaded").field("plugin", &self.plugin).finish_non_exhaustive()
    }
}

fn owned(v: RVec<RString>) -> Vec<String> {
    v.into_iter().map(String::from).collect()
}

impl Loaded {
    pub(crate) fn new(inner: TransportBox, plugin: String) -> Self {
        Self { inner, plugin }
    }
    /// The name of the plugin that provides this transport.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }
    /// See [`Transport::local_peer_id`].
    ///
    /// # Errors
    /// The plugin panicked.
    pub fn local_peer_id(&self) -> Result<String> {
        self.inner.local_peer_id().into_result().map(String::from)
    }
    /// See [`Transport::listen`].
    ///
    /// # Errors
    /// As the plugin reports.
    pub fn listen(&self, address: &str) -> Result<()> {
        self.inner.listen(address.into()).into_result()
    }
    /// See [`Transport::listen_addrs`].
    ///
    /// # Errors
    /// The plugin panicked.
    pub fn listen_addrs(&self) -> Result<Vec<String>> {
        self.inner.listen_addrs().into_result().map(owned)
    }
    /// See [`Transport::dial`].
    ///
    /// # Errors
    /// As the plugin reports.
    pub fn dial(&self, address: &str) -> Result<()> {
        self.inner.dial(address.into()).into_result()
    }
    /// See [`Transport::send`].
    ///
    /// # Errors
    /// As the plugin reports.
    pub fn send(&self, peer: &str, message: Vec<u8>) -> Result<()> {
        self.inner.send(peer.into(), message.into()).into_result()
    }
    /// See [`Transport::connected_peers`].
    ///
    /// # Errors
    /// The plugin panicked.
    pub fn connected_peers(&self) -> Result<Vec<String>> {
        self.inner.connected_peers().into_result().map(owned)
    }
    /// See [`Transport::shutdown`].
    ///
    /// # Errors
    /// The plugin panicked.
    pub fn shutdown(&self) -> Result<()> {
        self.inner.shutdown().into_result()
    }
}

impl Transport for Loaded {
    fn local_peer_id(&self) -> String {
        Loaded::local_peer_id(self).unwrap_or_default()
    }
    fn listen(&self, address: &str) -> Result<()> {
        Loaded::listen(self, address)
    }
    fn listen_addrs(&self) -> Vec<String> {
        Loaded::listen_addrs(self).unwrap_or_default()
    }
    fn dial(&self, address: &str) -> Result<()> {
        Loaded::dial(self, address)
    }
    fn send(&self, peer: &str, message: Vec<u8>) -> Result<()> {
        Loaded::send(self, peer, message)
    }
    fn connected_peers(&self) -> Vec<String> {
        Loaded::connected_peers(self).unwrap_or_default()
    }
    fn shutdown(&self) {
        // A panic here has nothing left to report to: the transport is being given up.
        let _ = Loaded::shutdown(self);
    }
}
