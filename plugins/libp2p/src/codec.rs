//! The particle protocol `/weft/particle/1.0.0`: one message per stream, acknowledged.
//!
//! Request: an unsigned-varint length (LEB128, at most 5 bytes, as libp2p's length-prefixed
//! framing), then that many bytes. Response: an empty message (the single byte `0x00`), written
//! once the receiver has handed the message to its host. The receiver refuses a length above its
//! `max_message_size` before reading the body, and grows its buffer only as bytes arrive, never past
//! the announced length.

use std::io;

use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;

/// The protocol name particles travel on.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/weft/particle/1.0.0");

/// The first allocation for a message body; it doubles from there, capped at the length.
const FIRST_CHUNK: usize = 64 << 10;

/// The acknowledgement of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack;

/// The particle codec, limited to `max` bytes per message.
#[derive(Debug, Clone)]
pub struct Codec {
    max: usize,
}

impl Codec {
    pub fn new(max: usize) -> Self {
        Self { max }
    }
}

/// Encodes `n` as an unsigned varint.
pub fn encode_varint(mut n: u32, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads an unsigned varint of at most 5 bytes (a u32).
async fn read_varint<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u32> {
    let mut value: u64 = 0;
    for i in 0..5 {
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await?;
        value |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return u32::try_from(value)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "message length overflows 32 bits"));
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "message length prefix longer than 5 bytes"))
}

/// Reads one length-prefixed message of at most `max` bytes.
pub async fn read_message<T: AsyncRead + Unpin>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let len = read_varint(io).await? as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes is larger than max_message_size {max}"),
        ));
    }
    let mut buf: Vec<u8> = Vec::new();
    while buf.len() < len {
        if buf.len() == buf.capacity() {
            let target = (buf.capacity() * 2).clamp(FIRST_CHUNK.min(len), len);
            buf.reserve_exact(target - buf.len());
        }
        let start = buf.len();
        // read at most FIRST_CHUNK at a time: zeroing the window stays linear in the message size
        let end = buf.capacity().min(len).min(start + FIRST_CHUNK);
        buf.resize(end, 0);
        match io.read(&mut buf[start..end]).await {
            Ok(0) => {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a message"));
            }
            Ok(n) => buf.truncate(start + n),
            Err(e) => return Err(e),
        }
    }
    Ok(buf)
}

/// Writes one length-prefixed message.
pub async fn write_message<T: AsyncWrite + Unpin>(io: &mut T, message: &[u8]) -> io::Result<()> {
    let len = u32::try_from(message.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message longer than 4 GiB"))?;
    let mut prefix = Vec::with_capacity(5);
    encode_varint(len, &mut prefix);
    io.write_all(&prefix).await?;
    io.write_all(message).await?;
    io.flush().await
}

impl request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Ack;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io, self.max).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Ack>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io, 0).await.map(|_| Ack)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, message: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if message.len() > self.max {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "message larger than max_message_size"));
        }
        write_message(io, &message).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, _: Ack) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::futures::executor::block_on;
    use libp2p::futures::io::Cursor;

    fn framed(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        block_on(write_message(&mut Cursor::new(&mut out), message)).unwrap();
        out
    }

    #[test]
    fn varint_roundtrip() {
        for n in [0u32, 1, 127, 128, 300, 16 << 20, u32::MAX] {
            let mut out = Vec::new();
            encode_varint(n, &mut out);
            assert!(out.len() <= 5);
            assert_eq!(block_on(read_varint(&mut Cursor::new(out))).unwrap(), n);
        }
        // six continuation bytes are refused
        let e = block_on(read_varint(&mut Cursor::new(vec![0x80u8; 6]))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn messages_roundtrip_and_limits_hold() {
        for len in [0usize, 1, 1000, FIRST_CHUNK + 1, 300_000] {
            let message: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let bytes = framed(&message);
            let got = block_on(read_message(&mut Cursor::new(bytes), len)).unwrap();
            assert_eq!(got, message);
            assert!(got.capacity() <= len.max(1), "capacity {} for {len}", got.capacity());
        }
        let e = block_on(read_message(&mut Cursor::new(framed(&[7u8; 11])), 10)).unwrap_err();
        assert!(e.to_string().contains("larger than max_message_size 10"), "{e}");
        // a huge announced length with no body costs nothing but the refusal
        let mut prefix = Vec::new();
        encode_varint(u32::MAX, &mut prefix);
        assert!(block_on(read_message(&mut Cursor::new(prefix), 16 << 20)).is_err());
        // a truncated body is an error, not a short message
        let mut bytes = framed(&[1u8; 100]);
        bytes.truncate(50);
        assert_eq!(
            block_on(read_message(&mut Cursor::new(bytes), 100)).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
