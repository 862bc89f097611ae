//! The framing of `/weft/particle/1.0.0`, sans I/O.
//!
//! A stream carries frames back to back, each an unsigned-varint length (LEB128, at most 5 bytes,
//! as libp2p's length-prefixed framing) and then that many bytes. The receiver writes one varint
//! first, its `max_message_size`, the only bytes that ever travel the other way. [`Decoder`] takes
//! bytes as they arrive and yields whole frames: it refuses a length above its maximum before any
//! of the body arrives, and grows a body's buffer only as bytes arrive, never past the announced
//! length.

use std::fmt;

/// The first allocation for a body; it doubles from there, capped at the announced length.
const FIRST_CHUNK: usize = 64 << 10;

/// The most bytes a varint of a u32 takes.
pub const MAX_VARINT_LEN: usize = 5;

/// Appends `n` as an unsigned varint.
pub fn encode_varint(n: u32, out: &mut Vec<u8>) {
    weft_abi::varint::put(out, n as u64);
}

/// What is wrong with the bytes a peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A length prefix longer than 5 bytes, or above `u32::MAX`.
    BadPrefix,
    /// A frame longer than the receiver accepts.
    TooLarge { len: u64, max: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadPrefix => f.write_str("a length prefix longer than 5 bytes or above 4 GiB"),
            FrameError::TooLarge { len, max } => {
                write!(f, "a frame of {len} bytes is larger than max_message_size ({max})")
            }
        }
    }
}

/// An incremental varint reader (a length prefix, or the receiver's limit).
#[derive(Debug, Default, Clone)]
pub struct Varint {
    value: u64,
    bytes: u32,
}

impl Varint {
    /// Takes one byte; `Some(value)` once the varint is complete.
    ///
    /// # Errors
    /// More than 5 bytes, or a value above `u32::MAX`.
    pub fn push(&mut self, byte: u8) -> Result<Option<u32>, FrameError> {
        self.value |= u64::from(byte & 0x7f) << (7 * self.bytes);
        self.bytes += 1;
        if byte & 0x80 == 0 {
            let value = u32::try_from(self.value).map_err(|_| FrameError::BadPrefix)?;
            *self = Varint::default();
            return Ok(Some(value));
        }
        if self.bytes as usize == MAX_VARINT_LEN {
            return Err(FrameError::BadPrefix);
        }
        Ok(None)
    }

    /// Whether some bytes of a varint were read.
    pub fn started(&self) -> bool {
        self.bytes > 0
    }
}

#[derive(Debug)]
enum State {
    Prefix(Varint),
    /// A body of `len` bytes, `buf` holding those that arrived.
    Body {
        buf: Vec<u8>,
        len: usize,
    },
}

/// Turns the bytes of one stream into frames of at most `max` bytes each.
#[derive(Debug)]
pub struct Decoder {
    max: usize,
    state: State,
}

impl Decoder {
    /// A decoder that refuses frames longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max, state: State::Prefix(Varint::default()) }
    }

    /// Whether part of a frame was read (a stream ending now ends inside a frame).
    pub fn mid_frame(&self) -> bool {
        match &self.state {
            State::Prefix(v) => v.started(),
            State::Body { .. } => true,
        }
    }

    /// Consumes bytes from `input` up to the end of the first frame they complete. Returns how many
    /// bytes it used and that frame, if one was completed; the caller passes the rest again.
    ///
    /// # Errors
    /// A malformed prefix or a frame above the maximum: the stream is unusable from here on.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Vec<u8>>), FrameError> {
        let mut used = 0;
        while used < input.len() {
            match &mut self.state {
                State::Prefix(varint) => {
                    let byte = input[used];
                    used += 1;
                    if let Some(len) = varint.push(byte)? {
                        let len = len as usize;
                        if len > self.max {
                            return Err(FrameError::TooLarge { len: len as u64, max: self.max });
                        }
                        if len == 0 {
                            return Ok((used, Some(Vec::new())));
                        }
                        self.state = State::Body { buf: Vec::new(), len };
                    }
                }
                State::Body { buf, len } => {
                    let take = (*len - buf.len()).min(input.len() - used);
                    grow(buf, *len, take);
                    buf.extend_from_slice(&input[used..used + take]);
                    used += take;
                    if buf.len() == *len {
                        return Ok((used, Some(self.finish())));
                    }
                }
            }
        }
        Ok((used, None))
    }

    fn finish(&mut self) -> Vec<u8> {
        match std::mem::replace(&mut self.state, State::Prefix(Varint::default())) {
            State::Body { buf, .. } => buf,
            State::Prefix(_) => Vec::new(),
        }
    }
}

/// Makes room for `take` more bytes in `buf`, doubling from [`FIRST_CHUNK`], never past `len`.
fn grow(buf: &mut Vec<u8>, len: usize, take: usize) {
    let need = buf.len() + take;
    if need <= buf.capacity() {
        return;
    }
    let target = (buf.capacity() * 2).max(FIRST_CHUNK).max(need).min(len);
    buf.reserve_exact(target - buf.len());
}

/// Appends one frame: the length prefix, then the bytes.
///
/// # Panics
/// A message longer than `u32::MAX` bytes (the sender refuses anything above its
/// `max_message_size`, at most 1 GiB, long before).
pub fn encode_frame(message: &[u8], out: &mut Vec<u8>) {
    encode_varint(u32::try_from(message.len()).expect("a message below 4 GiB"), out);
    out.extend_from_slice(message);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn framed(messages: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            encode_frame(m, &mut out);
        }
        out
    }

    /// Feeds `bytes` in pieces of the given sizes (cycled).
    fn decode_all(max: usize, bytes: &[u8], pieces: &[usize]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut d = Decoder::new(max);
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < bytes.len() {
            let piece = pieces[i % pieces.len()].max(1).min(bytes.len() - pos);
            i += 1;
            let mut chunk = &bytes[pos..pos + piece];
            pos += piece;
            while !chunk.is_empty() {
                let (used, frame) = d.decode(chunk)?;
                chunk = &chunk[used..];
                out.extend(frame);
            }
        }
        assert!(!d.mid_frame(), "input ended inside a frame");
        Ok(out)
    }

    #[test]
    fn varints() {
        for n in [0u32, 1, 127, 128, 300, 16 << 20, u32::MAX] {
            let mut bytes = Vec::new();
            encode_varint(n, &mut bytes);
            assert!(bytes.len() <= MAX_VARINT_LEN);
            let mut v = Varint::default();
            let (last, init) = bytes.split_last().unwrap();
            for b in init {
                assert_eq!(v.push(*b), Ok(None));
            }
            assert_eq!(v.push(*last), Ok(Some(n)));
        }
        let mut v = Varint::default();
        let pushed: Vec<_> = (0..5).map(|_| v.push(0x80)).collect();
        assert_eq!(pushed.last(), Some(&Err(FrameError::BadPrefix)), "six continuation bytes");
        // 2^32 in five bytes
        let mut v = Varint::default();
        let r: Vec<_> = [0x80, 0x80, 0x80, 0x80, 0x10].iter().map(|b| v.push(*b)).collect();
        assert_eq!(r.last(), Some(&Err(FrameError::BadPrefix)));
    }

    #[test]
    fn limits_hold_before_the_body() {
        let e = decode_all(10, &framed(&[vec![7; 11]]), &[100]).unwrap_err();
        assert_eq!(e, FrameError::TooLarge { len: 11, max: 10 });
        assert!(e.to_string().contains("larger than max_message_size (10)"), "{e}");
        // A huge announced length is refused from its prefix alone.
        let mut prefix = Vec::new();
        encode_varint(u32::MAX, &mut prefix);
        let mut d = Decoder::new(16 << 20);
        assert!(matches!(d.decode(&prefix), Err(FrameError::TooLarge { .. })));
        // A body's buffer never grows past its length, however it arrives.
        for len in [1usize, 1000, FIRST_CHUNK + 1, 300_000] {
            let message: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let got = decode_all(len, &framed(std::slice::from_ref(&message)), &[7000, 3]).unwrap();
            assert_eq!(got, std::slice::from_ref(&message));
            assert!(got[0].capacity() <= len, "capacity {} for {len}", got[0].capacity());
        }
        // The end of a stream inside a body leaves the decoder mid-frame.
        let mut d = Decoder::new(100);
        let bytes = framed(&[vec![1; 100]]);
        assert_eq!(d.decode(&bytes[..50]).unwrap(), (50, None));
        assert!(d.mid_frame());
    }

    proptest! {
        #[test]
        fn frames_survive_any_split(
            messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3000), 0..20),
            pieces in prop::collection::vec(1usize..5000, 1..8),
        ) {
            let got = decode_all(3000, &framed(&messages), &pieces).unwrap();
            prop_assert_eq!(got, messages);
        }

        #[test]
        fn garbage_never_yields_more_than_the_limit(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
            let mut d = Decoder::new(64);
            let mut rest = bytes.as_slice();
            while !rest.is_empty() {
                match d.decode(rest) {
                    Ok((used, frame)) => {
                        prop_assert!(frame.is_none_or(|f| f.len() <= 64));
                        rest = &rest[used..];
                    }
                    Err(_) => break,
                }
            }
        }
    }
}
