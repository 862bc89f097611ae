//! The particle protocol on one connection: at most one outbound stream, written from the peer's
//! [`Outbox`] when this connection owns it, and a few inbound streams read frame by frame.
//!
//! All I/O happens in [`Handler::poll`], on the connection's own task: frames read reach the
//! behaviour through the connection's bounded event channel, in order and before the
//! connection's close, and a stalled node stops reading (the peer's writer then waits on yamux
//! flow control, and its `send` says `LIMIT` once its queue is full).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use libp2p::core::upgrade::ReadyUpgrade;
use libp2p::futures::{AsyncRead, AsyncWrite};
use libp2p::swarm::handler::{ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound};
use libp2p::swarm::{
    ConnectionHandler, ConnectionHandlerEvent, ConnectionId, Stream, StreamProtocol, StreamUpgradeError,
    SubstreamProtocol,
};

use super::codec::{self, Decoder, Varint};
use super::outbox::Outbox;
use super::{Limits, PROTOCOL};

/// Frames are gathered into one buffer up to this size before a write: small messages then share
/// yamux frames (16 KiB each) instead of costing one each.
const BATCH_BYTES: usize = 64 << 10;
/// A message larger than this is written from its own buffer instead of being copied.
const COPY_MAX: usize = 16 << 10;
/// Each inbound stream reads through a buffer this large.
const READ_BUF: usize = 16 << 10;
/// Frames handed to the behaviour in one event: at most this many, or this many bytes (one frame
/// larger than that goes alone).
const EVENT_FRAMES: usize = 256;
const EVENT_BYTES: usize = 256 << 10;

/// What the handler tells the behaviour.
#[derive(Debug)]
pub enum HandlerEvent {
    /// Frames that arrived, in order.
    Messages(Vec<Vec<u8>>),
}

/// What the behaviour tells the handler.
#[derive(Debug)]
pub enum Command {
    /// This connection now owns the peer's outbox: look at it.
    Own,
}

/// The outbound stream's life.
enum Out {
    /// No stream: one is opened when a message waits.
    Idle,
    /// Asked the connection for a stream at this time.
    Opening(Instant),
    /// Negotiated; reading the receiver's limit (until the deadline).
    Limit { stream: Stream, varint: Varint, deadline: Pin<Box<tokio::time::Sleep>> },
    /// Writing frames.
    Open(Writer),
    /// The peer does not speak `/weft/particle/1.0.0` on this connection: its messages are dropped.
    Unsupported,
}

/// An open outbound stream and what is being written to it.
struct Writer {
    stream: Stream,
    /// The receiver's `max_message_size`: larger messages are dropped here, never sent.
    limit: usize,
    /// Frames (or a large message's prefix) not yet written, from `pos`.
    buf: Vec<u8>,
    pos: usize,
    /// A large message written from its own buffer after `buf`, from the offset.
    big: Option<(Vec<u8>, usize)>,
    /// Everything written was flushed.
    flushed: bool,
    /// A message was taken from the outbox for this stream.
    used: bool,
}

impl Writer {
    fn busy(&self) -> bool {
        self.pos < self.buf.len() || self.big.is_some() || !self.flushed
    }

    /// Writes what the outbox holds until it is empty and flushed (`Pending`, the outbox keeping
    /// the waker) or yamux has no room (`Pending` until it does). `Ready(Err)`: the stream broke;
    /// what was taken from the outbox and not written is lost.
    fn poll(&mut self, cx: &mut Context<'_>, outbox: &Outbox, me: ConnectionId) -> Poll<io::Result<()>> {
        // The receiver never writes after its limit: end of stream or bytes mean it is gone.
        let mut probe = [0u8; 1];
        match Pin::new(&mut self.stream).poll_read(cx, &mut probe) {
            Poll::Pending => {}
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
            Poll::Ready(Ok(_)) => {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, "the receiver wrote frames back")));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
        }
        loop {
            while self.pos < self.buf.len() {
                let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &self.buf[self.pos..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pos += n;
                self.flushed = false;
            }
            if let Some((message, pos)) = &mut self.big {
                while *pos < message.len() {
                    let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &message[*pos..]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    *pos += n;
                }
                self.big = None;
            }
            self.buf.clear();
            self.pos = 0;
            let (buf, big, limit) = (&mut self.buf, &mut self.big, self.limit);
            let taken = outbox.take(me, cx, |message| {
                if message.len() > limit {
                    return true; // the receiver would refuse it (and close the stream)
                }
                if message.len() > COPY_MAX {
                    codec::encode_varint(message.len() as u32, buf);
                    *big = Some((message, 0));
                    return false;
                }
                codec::encode_frame(&message, buf);
                buf.len() < BATCH_BYTES
            });
            if taken > 0 {
                self.used = true;
                continue;
            }
            // Everything queued is written: flush once.
            if !self.flushed {
                ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
                self.flushed = true;
            }
            return Poll::Pending;
        }
    }
}

/// An inbound stream: the limit to write first, then frames to read.
struct Reader {
    stream: Stream,
    /// The varint of our `max_message_size`, from `header_pos` on still to write, then flush.
    header: Vec<u8>,
    header_pos: usize,
    header_sent: bool,
    decoder: Decoder,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

/// Why a reader stopped.
enum ReadOutcome {
    /// The event batch is full: hand it over, then poll again.
    Full,
    /// The stream ended (cleanly or not) or broke the protocol: drop it.
    Done,
}

impl Reader {
    fn new(stream: Stream, max: usize) -> Self {
        let mut header = Vec::with_capacity(codec::MAX_VARINT_LEN);
        codec::encode_varint(u32::try_from(max).unwrap_or(u32::MAX), &mut header);
        Self {
            stream,
            header,
            header_pos: 0,
            header_sent: false,
            decoder: Decoder::new(max),
            buf: vec![0; READ_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn busy(&self) -> bool {
        self.start < self.end || self.decoder.mid_frame()
    }

    /// Reads frames into `out` until the stream has nothing more (`Pending`) or the batch is full.
    fn poll(&mut self, cx: &mut Context<'_>, out: &mut Vec<Vec<u8>>, bytes: &mut usize) -> Poll<ReadOutcome> {
        match self.poll_inner(cx, out, bytes) {
            Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
            Poll::Ready(Err(_)) => Poll::Ready(ReadOutcome::Done),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_inner(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Vec<u8>>,
        bytes: &mut usize,
    ) -> Poll<io::Result<ReadOutcome>> {
        if !self.header_sent {
            while self.header_pos < self.header.len() {
                let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &self.header[self.header_pos..]))?;
                if n == 0 {
                    return Poll::Ready(Ok(ReadOutcome::Done));
                }
                self.header_pos += n;
            }
            ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
            self.header_sent = true;
        }
        loop {
            if out.len() >= EVENT_FRAMES || *bytes >= EVENT_BYTES {
                return Poll::Ready(Ok(ReadOutcome::Full));
            }
            if self.start == self.end {
                let n = ready!(Pin::new(&mut self.stream).poll_read(cx, &mut self.buf))?;
                if n == 0 {
                    return Poll::Ready(Ok(ReadOutcome::Done));
                }
                (self.start, self.end) = (0, n);
            }
            let (used, frame) = self
                .decoder
                .decode(&self.buf[self.start..self.end])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            self.start += used;
            if let Some(frame) = frame {
                *bytes += frame.len();
                out.push(frame);
            }
        }
    }
}

/// The particle protocol's handler for one connection.
pub struct Handler {
    connection: ConnectionId,
    outbox: Arc<Outbox>,
    limits: Limits,
    out: Out,
    readers: Vec<Reader>,
    /// Frames read and not yet handed to the behaviour, and their bytes.
    ready: Vec<Vec<u8>>,
    ready_bytes: usize,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("particles::Handler")
            .field("connection", &self.connection)
            .field("readers", &self.readers.len())
            .finish_non_exhaustive()
    }
}

impl Handler {
    pub fn new(connection: ConnectionId, outbox: Arc<Outbox>, limits: Limits) -> Self {
        Self { connection, outbox, limits, out: Out::Idle, readers: Vec::new(), ready: Vec::new(), ready_bytes: 0 }
    }

    fn take_ready(&mut self) -> Option<HandlerEvent> {
        if self.ready.is_empty() {
            return None;
        }
        self.ready_bytes = 0;
        Some(HandlerEvent::Messages(std::mem::take(&mut self.ready)))
    }

    /// Reads every inbound stream until each waits or the batch is full.
    fn poll_readers(&mut self, cx: &mut Context<'_>) {
        let mut i = 0;
        while i < self.readers.len() {
            match self.readers[i].poll(cx, &mut self.ready, &mut self.ready_bytes) {
                Poll::Pending => i += 1,
                Poll::Ready(ReadOutcome::Full) => return,
                Poll::Ready(ReadOutcome::Done) => {
                    self.readers.swap_remove(i);
                }
            }
        }
    }

    /// An open failed or timed out: it costs the first waiting message (so that an unusable
    /// connection cannot retry forever), and the next message opens again.
    fn open_failed(&mut self) {
        self.outbox.drop_first(self.connection);
        self.out = Out::Idle;
    }

    /// Drives the outbound stream. `Some`: a stream must be requested.
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Option<SubstreamProtocol<ReadyUpgrade<StreamProtocol>, ()>> {
        loop {
            match &mut self.out {
                Out::Idle => {
                    if !self.outbox.waiting_for(self.connection, cx) {
                        return None;
                    }
                    self.out = Out::Opening(Instant::now());
                    let protocol =
                        SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL), ()).with_timeout(self.limits.open_timeout);
                    return Some(protocol);
                }
                Out::Opening(_) => return None,
                Out::Limit { stream, varint, deadline } => {
                    if deadline.as_mut().poll(cx).is_ready() {
                        self.open_failed();
                        continue;
                    }
                    let mut byte = [0u8; 1];
                    match Pin::new(&mut *stream).poll_read(cx, &mut byte) {
                        Poll::Pending => return None,
                        Poll::Ready(Ok(1)) => match varint.push(byte[0]) {
                            Ok(None) => {}
                            Ok(Some(limit)) => {
                                let Out::Limit { stream, .. } = std::mem::replace(&mut self.out, Out::Idle) else {
                                    unreachable!("in the Limit state")
                                };
                                self.out = Out::Open(Writer {
                                    stream,
                                    limit: limit as usize,
                                    buf: Vec::new(),
                                    pos: 0,
                                    big: None,
                                    flushed: true,
                                    used: false,
                                });
                            }
                            Err(_) => self.open_failed(),
                        },
                        // Closed or refused before its limit came (a receiver at its stream limit).
                        Poll::Ready(_) => self.open_failed(),
                    }
                }
                Out::Open(writer) => match writer.poll(cx, &self.outbox, self.connection) {
                    Poll::Pending => return None,
                    // Broken: what was being written is lost; the next message opens a new stream.
                    Poll::Ready(_) if writer.used => self.out = Out::Idle,
                    // Broken before it carried anything: as a failed open (no endless reopening).
                    Poll::Ready(_) => self.open_failed(),
                },
                Out::Unsupported => {
                    while self.outbox.take(self.connection, cx, |_| true) > 0 {}
                    return None;
                }
            }
        }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Command;
    type ToBehaviour = HandlerEvent;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, ()> {
        SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL), ())
    }

    fn connection_keep_alive(&self) -> bool {
        let writing = match &self.out {
            Out::Opening(_) | Out::Limit { .. } => true,
            Out::Open(writer) => writer.busy(),
            Out::Idle | Out::Unsupported => false,
        };
        writing
            || !self.ready.is_empty()
            || self.readers.iter().any(Reader::busy)
            || self.outbox.has_messages_for(self.connection)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        self.poll_readers(cx);
        if let Some(event) = self.take_ready() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
        }
        if let Some(protocol) = self.poll_out(cx) {
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest { protocol });
        }
        Poll::Pending
    }

    fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        Poll::Ready(self.take_ready())
    }

    fn on_behaviour_event(&mut self, command: Command) {
        match command {
            // Nothing to do but be polled, which follows.
            Command::Own => {}
        }
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<'_, Self::InboundProtocol, Self::OutboundProtocol>) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol: mut stream, .. }) => {
                // Particle streams are long-lived: they do not keep an idle connection open (the
                // handler does while it has something to do).
                stream.ignore_for_keep_alive();
                if self.readers.len() >= self.limits.max_streams {
                    // Refused: dropping the stream resets it. The frames read so far stay valid.
                    return;
                }
                self.readers.push(Reader::new(stream, self.limits.max_message_size));
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound { protocol: mut stream, .. }) => {
                stream.ignore_for_keep_alive();
                if let Out::Opening(asked) = self.out {
                    let deadline = tokio::time::Instant::from_std(asked + self.limits.open_timeout);
                    self.out = Out::Limit {
                        stream,
                        varint: Varint::default(),
                        deadline: Box::pin(tokio::time::sleep_until(deadline)),
                    };
                }
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => match error {
                StreamUpgradeError::NegotiationFailed => {
                    self.out = Out::Unsupported;
                }
                StreamUpgradeError::Timeout | StreamUpgradeError::Io(_) => self.open_failed(),
                StreamUpgradeError::Apply(never) => match never {},
            },
            _ => {}
        }
    }
}
