//! `/weft/particle/1.0.0` spoken by hand: a bare libp2p peer opens particle streams on a node and
//! writes whatever a test wants, as a broken or hostile peer would.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::mpsc;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::ReadyUpgrade;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::futures::channel::mpsc as chan;
use libp2p::futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound, FullyNegotiatedOutbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm, NetworkBehaviour,
    NotifyHandler, Stream, SubstreamProtocol, SwarmEvent, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{PeerId, StreamProtocol, noise, tcp, yamux};
use weft_abi::transport::{EventKind, Transport as _};

use super::{Peer, TCP, WAIT};

const PARTICLE: StreamProtocol = StreamProtocol::new("/weft/particle/1.0.0");

/// A particle stream the raw peer opened, or one the node opened to it.
#[derive(Debug)]
enum Opened {
    Out(Stream),
    In(Stream),
}

/// Opens particle streams when asked, accepts the node's, and hands both out.
#[derive(Default)]
struct Handler {
    opens: usize,
    streams: VecDeque<Opened>,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = ();
    type ToBehaviour = Opened;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<ReadyUpgrade<StreamProtocol>, ()> {
        SubstreamProtocol::new(ReadyUpgrade::new(PARTICLE), ())
    }

    fn connection_keep_alive(&self) -> bool {
        true
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Opened>> {
        if let Some(stream) = self.streams.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(stream));
        }
        if self.opens > 0 {
            self.opens -= 1;
            let protocol = SubstreamProtocol::new(ReadyUpgrade::new(PARTICLE), ());
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest { protocol });
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, (): ()) {
        self.opens += 1;
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<'_, Self::InboundProtocol, Self::OutboundProtocol>) {
        match event {
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound { protocol, .. }) => {
                self.streams.push_back(Opened::Out(protocol));
            }
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol, .. }) => {
                self.streams.push_back(Opened::In(protocol));
            }
            _ => {}
        }
    }
}

#[derive(Default)]
struct Behaviour {
    pending: VecDeque<ToSwarm<Opened, ()>>,
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Opened;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::default())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::default())
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, stream: THandlerOutEvent<Self>) {
        self.pending.push_back(ToSwarm::GenerateEvent(stream));
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Opened, THandlerInEvent<Self>>> {
        self.pending.pop_front().map_or(Poll::Pending, Poll::Ready)
    }
}

enum Command {
    Dial(Multiaddr),
    Open(PeerId),
}

/// A bare libp2p peer (tcp, noise, yamux) on its own runtime.
struct RawPeer {
    runtime: tokio::runtime::Runtime,
    commands: chan::UnboundedSender<Command>,
    streams: mpsc::Receiver<Stream>,
    inbound: mpsc::Receiver<Stream>,
    connected: mpsc::Receiver<PeerId>,
    id: String,
}

impl RawPeer {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let mut swarm = runtime.block_on(async {
            libp2p::SwarmBuilder::with_new_identity()
                .with_tokio()
                .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
                .unwrap()
                .with_behaviour(|_| Behaviour::default())
                .unwrap()
                .build()
        });
        let id = swarm.local_peer_id().to_base58();
        let (commands, mut rx) = chan::unbounded();
        let (streams_tx, streams) = mpsc::channel();
        let (inbound_tx, inbound) = mpsc::channel();
        let (connected_tx, connected) = mpsc::channel();
        runtime.spawn(std::future::poll_fn(move |cx| {
            loop {
                match rx.poll_next_unpin(cx) {
                    Poll::Ready(Some(Command::Dial(addr))) => swarm.dial(addr).unwrap(),
                    Poll::Ready(Some(Command::Open(peer))) => swarm
                        .behaviour_mut()
                        .pending
                        .push_back(ToSwarm::NotifyHandler { peer_id: peer, handler: NotifyHandler::Any, event: () }),
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
                match swarm.poll_next_unpin(cx) {
                    Poll::Ready(Some(SwarmEvent::Behaviour(Opened::Out(stream)))) => {
                        let _ = streams_tx.send(stream);
                    }
                    Poll::Ready(Some(SwarmEvent::Behaviour(Opened::In(stream)))) => {
                        let _ = inbound_tx.send(stream);
                    }
                    Poll::Ready(Some(SwarmEvent::ConnectionEstablished { peer_id, .. })) => {
                        let _ = connected_tx.send(peer_id);
                    }
                    Poll::Ready(Some(_)) => {}
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }));
        Self { runtime, commands, streams, inbound, connected, id }
    }

    fn connect(&self, node: &Peer) {
        let addr: Multiaddr = format!("{}/p2p/{}", node.addr, node.id).parse().unwrap();
        self.commands.unbounded_send(Command::Dial(addr)).unwrap();
        let peer = self.connected.recv_timeout(WAIT).expect("the raw peer connects");
        assert_eq!(peer.to_base58(), node.id);
        node.events.wait("CONNECTED from the raw peer", |e| e.kind == EventKind::CONNECTED && e.peer == self.id);
    }

    fn open(&self, node: &Peer) -> Stream {
        self.commands.unbounded_send(Command::Open(node.id.parse().unwrap())).unwrap();
        self.streams.recv_timeout(WAIT).expect("a particle stream opens")
    }

    /// Runs stream I/O on the peer's runtime, for at most [`WAIT`].
    fn io<T>(&self, f: impl Future<Output = T>) -> T {
        self.runtime.block_on(async { tokio::time::timeout(WAIT, f).await.expect("stream I/O within WAIT") })
    }

    /// The receiver's first bytes on a new stream: its limit as a varint; `None` if the stream
    /// closed first.
    fn read_limit(&self, stream: &mut Stream) -> Option<u64> {
        self.io(async {
            let mut value = 0u64;
            for i in 0..5 {
                let mut byte = [0u8; 1];
                if stream.read_exact(&mut byte).await.is_err() {
                    return None;
                }
                value |= u64::from(byte[0] & 0x7f) << (7 * i);
                if byte[0] & 0x80 == 0 {
                    return Some(value);
                }
            }
            panic!("the limit's varint is longer than 5 bytes");
        })
    }

    /// One frame the node wrote; `None` if the stream ended first.
    fn read_frame(&self, stream: &mut Stream) -> Option<Vec<u8>> {
        let len = self.read_limit(stream)?; // the same varint
        self.io(async {
            let mut body = vec![0; usize::try_from(len).unwrap()];
            stream.read_exact(&mut body).await.ok().map(|()| body)
        })
    }

    fn write(&self, stream: &mut Stream, bytes: &[u8]) {
        self.io(async {
            stream.write_all(bytes).await.unwrap();
            stream.flush().await.unwrap();
        });
    }

    /// Whether the node closed or reset the stream (a read ends or fails).
    fn closed_by_node(&self, stream: &mut Stream) -> bool {
        self.io(async {
            let mut buf = [0u8; 16];
            matches!(stream.read(&mut buf).await, Ok(0) | Err(_))
        })
    }
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    weft_abi::varint::put(&mut out, message.len() as u64);
    out.extend_from_slice(message);
    out
}

#[test]
fn frames_written_back_to_back_arrive_as_messages_in_order() {
    let node = Peer::new("max_message_size = 1000", TCP);
    let raw = RawPeer::new();
    raw.connect(&node);
    let mut stream = raw.open(&node);
    assert_eq!(raw.read_limit(&mut stream), Some(1000), "the receiver announces its max_message_size first");
    let messages: Vec<Vec<u8>> = vec![b"one".to_vec(), Vec::new(), vec![7; 1000], b"four".to_vec()];
    // All in one write, then the last one split across two writes.
    let bytes: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
    raw.write(&mut stream, &bytes);
    let last = frame(b"split across writes");
    raw.write(&mut stream, &last[..5]);
    raw.write(&mut stream, &last[5..]);
    for m in messages.iter().chain([&b"split across writes".to_vec()]) {
        let got = node.events.wait("a MESSAGE from the raw peer", |e| e.kind == EventKind::MESSAGE && e.peer == raw.id);
        assert_eq!(&got.payload, m);
    }
    // A frame cut off by the end of its stream is not delivered.
    raw.write(&mut stream, &frame(b"never whole")[..6]);
    raw.io(stream.close()).unwrap();
    let mut next = raw.open(&node);
    assert_eq!(raw.read_limit(&mut next), Some(1000));
    raw.write(&mut next, &frame(b"after"));
    let got = node.events.wait("the message after the cut-off one", |e| e.kind == EventKind::MESSAGE);
    assert_eq!(got.payload, b"after");
}

#[test]
fn a_frame_above_the_limit_resets_only_its_stream() {
    let node = Peer::new("max_message_size = 1000", TCP);
    let raw = RawPeer::new();
    raw.connect(&node);
    let (mut bad, mut good) = (raw.open(&node), raw.open(&node));
    assert_eq!(raw.read_limit(&mut bad), Some(1000));
    assert_eq!(raw.read_limit(&mut good), Some(1000));
    // Only the prefix: the node refuses before any of the body arrives.
    raw.write(&mut bad, &frame(&[0; 1001])[..2]);
    assert!(raw.closed_by_node(&mut bad), "the stream with the oversized frame is reset");
    raw.write(&mut good, &frame(b"still here"));
    let got = node.events.wait("a message on the other stream", |e| e.kind == EventKind::MESSAGE);
    assert_eq!(got.payload, b"still here");
    assert!(!node.events.has(|e| e.kind == EventKind::MESSAGE), "nothing of the oversized frame arrived");
    assert!(node.t.connected_peers().contains(&raw.id), "the connection survives");
    // Sending to a peer that speaks no particles is accepted (and dropped by the writer).
    node.t.send(&raw.id, b"x".to_vec()).unwrap();
    assert!(node.t.connected_peers().contains(&raw.id));
}

#[test]
fn max_particle_streams_is_enforced_per_connection() {
    let node = Peer::new("max_particle_streams = 2", TCP);
    let raw = RawPeer::new();
    raw.connect(&node);
    let mut first = raw.open(&node);
    let mut second = raw.open(&node);
    assert!(raw.read_limit(&mut first).is_some() && raw.read_limit(&mut second).is_some());
    let mut third = raw.open(&node);
    assert_eq!(raw.read_limit(&mut third), None, "a third stream is reset before the node writes its limit");
    // A stream that ends frees its place.
    raw.io(first.close()).unwrap();
    assert!(raw.closed_by_node(&mut first));
    let mut again = raw.open(&node);
    let limit = (0..50).find_map(|_| {
        let got = raw.read_limit(&mut again);
        if got.is_none() {
            // The node may not have seen the first stream end yet: try a new one.
            std::thread::sleep(std::time::Duration::from_millis(20));
            again = raw.open(&node);
        }
        got
    });
    assert_eq!(limit, Some(16 << 20), "a new stream is accepted once one ended");
    raw.write(&mut again, &frame(b"on the new stream"));
    let got = node.events.wait("a message on the new stream", |e| e.kind == EventKind::MESSAGE);
    assert_eq!(got.payload, b"on the new stream");
}

#[test]
fn the_sender_honours_the_announced_limit_and_reopens_a_broken_stream() {
    let node = Peer::new("", TCP);
    let raw = RawPeer::new();
    raw.connect(&node);
    node.t.send(&raw.id, b"first".to_vec()).unwrap();
    let mut stream = raw.inbound.recv_timeout(WAIT).expect("the node opens a particle stream");
    raw.write(&mut stream, &[10]); // this receiver takes at most 10 bytes
    assert_eq!(raw.read_frame(&mut stream).as_deref(), Some(&b"first"[..]));
    // Above the announced limit: dropped by the sender, never written; the next one follows.
    node.t.send(&raw.id, vec![0; 11]).unwrap();
    node.t.send(&raw.id, b"second".to_vec()).unwrap();
    assert_eq!(raw.read_frame(&mut stream).as_deref(), Some(&b"second"[..]));
    // The receiver resets the stream; messages sent after that go on a new one, in order (those
    // written before the sender saw the reset are lost: at most once).
    drop(stream);
    let mut next = None;
    for i in 0..200u32 {
        node.t.send(&raw.id, i.to_le_bytes().to_vec()).unwrap();
        if let Ok(s) = raw.inbound.recv_timeout(std::time::Duration::from_millis(20)) {
            next = Some(s);
            break;
        }
    }
    let mut next = next.expect("a new stream after the reset");
    raw.write(&mut next, &[10]);
    let first = raw.read_frame(&mut next).expect("a frame on the new stream");
    let mut last = u32::from_le_bytes(first.try_into().unwrap());
    node.t.send(&raw.id, b"last".to_vec()).unwrap();
    loop {
        let got = raw.read_frame(&mut next).expect("frames up to the last one");
        if got == b"last" {
            break;
        }
        let i = u32::from_le_bytes(got.try_into().unwrap());
        assert_eq!(i, last + 1, "frames on the new stream keep their order");
        last = i;
    }
}
