//! weft's interpreter data: the execution trace that travels with a particle.
//!
//! Encoding ([`FORMAT_VERSION`] 3): one format byte, then a hand-written compact binary form
//! (LEB128 integers, length-prefixed UTF-8 strings, see [`Data::encode`]). Strings that repeat
//! (peer ids, service and function names) are stored once in a string table and tetraplets once
//! in a tetraplet table; states refer to them by index. The values of all results are in one text
//! section (one UTF-8 check); decoding borrows them from the input bytes (no copy) and shares one
//! [`Arc`] per tetraplet. A service result records the
//! arguments it was produced for as an [`ArgumentHash`]: their JSON text itself when it is at most
//! 32 bytes (most calls: `[]`, a number, a short string), else its blake3 hash.
//!
//! The trace is flat (no nesting): a `par` state records how many states each branch holds,
//! a stream `fold` records per iterated value where its sub-traces are, so traces produced on
//! different peers merge (see `trace`).
//!
//! Signatures: results a peer produced (service results, canon snapshots) are not signed one by
//! one. Each result has a [`ServiceResult::digest`] / [`CanonResult::digest`] (blake3 over its
//! content, with the [`tetraplet_digest`] of its tetraplet, computed once per shared tetraplet),
//! and the data carries [`Attestation`]s: a peer's Ed25519 signature over the particle
//! id, its peer id and the list of digests of the results it produced. A peer signs once per run,
//! at the end, over every result of its own in the new trace. A receiver verifies each attestation
//! it does not already hold (one Ed25519 verification per peer and run, not per result) and checks
//! that every result that arrived is covered by a valid attestation of the peer named in the
//! result's tetraplet.

use std::borrow::Cow;
use std::sync::Arc;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use serde::Serialize;

use crate::hash::FastMap;
use crate::peer_id::public_key_from_peer_id;
use crate::value::Tetraplet;

/// Version byte that starts every encoded [`Data`] (3: string/tetraplet tables, attestations,
/// short argument texts inline).
pub const FORMAT_VERSION: u8 = 3;

/// The interpreter data of one particle on one peer. Result values borrow the bytes it was
/// decoded from (`'a`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Data<'a> {
    /// Version of the interpreter that wrote it (informational).
    pub interpreter_version: String,
    /// The execution trace.
    pub trace: Vec<State<'a>>,
    /// The last call id this peer allocated (only the peer's own `prev_data` value is used).
    pub lcid: u32,
    /// Signatures over the results in the trace, one per producing peer and run.
    pub attestations: Vec<Attestation<'a>>,
}

/// One entry of the trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum State<'a> {
    /// `par`: number of states of the left and right branch that follow.
    Par {
        /// States of the left branch.
        left: u32,
        /// States of the right branch.
        right: u32,
    },
    /// A call.
    Call(CallState<'a>),
    /// A fold over a stream or stream map.
    Fold(FoldState),
    /// An `ap` to a stream or map, with the generation of the value.
    Ap {
        /// Generation.
        generation: u32,
    },
    /// A canon.
    Canon(CanonState<'a>),
}

/// State of a call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CallState<'a> {
    /// The service answered.
    Executed {
        /// The result.
        result: ServiceResult<'a>,
        /// How it was bound.
        output: OutputKind,
    },
    /// The service failed (ret_code ≠ 0 or a result that is not JSON).
    Failed(ServiceResult<'a>),
    /// Sent to the peer (no result yet); `call_id` when it is a local call waiting for its result.
    SentBy {
        /// The peer that sent it.
        peer: Arc<str>,
        /// Call id of a local call request.
        call_id: Option<u32>,
    },
}

/// How a call result was bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OutputKind {
    /// To a scalar.
    Scalar,
    /// To a stream, in this generation.
    Stream {
        /// Generation.
        generation: u32,
    },
    /// Not bound.
    Unused,
}

/// A service result (or failure), produced by the peer named in its tetraplet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceResult<'a> {
    /// The result as JSON text; for a failure `{"message":…,"ret_code":…}`.
    pub value: Cow<'a, str>,
    /// `{executing peer, service, function, ""}`.
    pub tetraplet: Arc<Tetraplet>,
    /// The JSON text of the resolved arguments, or its blake3 hash.
    pub argument_hash: ArgumentHash,
}

/// The arguments of a call, as a service result records them: the JSON text of the argument
/// list (`[a,b,…]`) when it is at most [`ArgumentHash::INLINE`] bytes, else the blake3 hash of
/// that text. A replay compares it with the same form of the arguments it resolved: exactly for
/// short texts (no hashing), by hash for long ones.
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ArgumentHash {
    /// The inline text's length, or [`ArgumentHash::HASHED`].
    len: u8,
    /// The inline text (zero-padded), or the hash.
    bytes: [u8; 32],
}

impl ArgumentHash {
    /// Longest argument text kept inline.
    pub const INLINE: usize = 32;
    /// `len` of a hashed form.
    const HASHED: u8 = 0xff;

    /// The form of the argument list whose JSON text is `text`.
    #[inline]
    pub fn of(text: &[u8]) -> Self {
        let n = text.len();
        if n <= Self::INLINE {
            // two overlapping copies of a fixed size instead of a call to `memcpy`
            let mut bytes = [0u8; 32];
            match n {
                16.. => {
                    bytes[..16].copy_from_slice(&text[..16]);
                    bytes[n - 16..n].copy_from_slice(&text[n - 16..]);
                }
                8.. => {
                    bytes[..8].copy_from_slice(&text[..8]);
                    bytes[n - 8..n].copy_from_slice(&text[n - 8..]);
                }
                4.. => {
                    bytes[..4].copy_from_slice(&text[..4]);
                    bytes[n - 4..n].copy_from_slice(&text[n - 4..]);
                }
                _ => bytes[..n].iter_mut().zip(text).for_each(|(b, t)| *b = *t),
            }
            return ArgumentHash { len: n as u8, bytes };
        }
        ArgumentHash { len: Self::HASHED, bytes: *blake3::hash(text).as_bytes() }
    }

    /// The inline form of the text an [`InlineText`] holds.
    #[inline(always)]
    pub(crate) fn of_inline(t: &InlineText) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(&t.lo.to_le_bytes());
        bytes[16..].copy_from_slice(&t.hi.to_le_bytes());
        ArgumentHash { len: t.len as u8, bytes }
    }

    /// The encoded form: the length byte, then the text or the hash.
    #[inline]
    fn as_bytes(&self) -> (u8, &[u8]) {
        match self.len {
            Self::HASHED => (self.len, &self.bytes),
            n => (n, &self.bytes[..n as usize]),
        }
    }
}

/// A text of up to [`ArgumentHash::INLINE`] bytes built in two registers (byte `i` of the text is
/// byte `i` of `lo` then `hi`, little-endian; the bytes past it zero). A text written byte by
/// byte into memory and read back whole for its inline form stalls on the store buffer (the
/// reads are wider than the writes): building an argument form that way was a tenth of a run
/// that parses a script of 10,000 calls.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct InlineText {
    lo: u128,
    hi: u128,
    len: usize,
}

impl InlineText {
    /// Bytes so far.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends the `n` (1 to 16) bytes of the little-endian `word` (its higher bytes zero); the
    /// text must stay within [`ArgumentHash::INLINE`] bytes.
    #[inline(always)]
    pub fn push_word(&mut self, word: u128, n: usize) {
        debug_assert!((1..=16).contains(&n) && self.len + n <= ArgumentHash::INLINE);
        debug_assert!(n == 16 || word >> (8 * n) == 0);
        let at = self.len;
        if at < 16 {
            self.lo |= word << (8 * at);
            // the bytes that do not fit the low half (`at` > 0 whenever some do not)
            if at + n > 16 {
                self.hi |= word >> (8 * (16 - at));
            }
        } else {
            self.hi |= word << (8 * (at - 16));
        }
        self.len = at + n;
    }

    /// Appends one byte.
    #[inline(always)]
    pub fn push_byte(&mut self, b: u8) {
        self.push_word(b as u128, 1);
    }

    /// Appends `s` (the text must stay within [`ArgumentHash::INLINE`] bytes).
    #[inline(always)]
    pub fn push_bytes(&mut self, s: &[u8]) {
        if s.is_empty() {
            return;
        }
        let (first, rest) = s.split_at(s.len().min(16));
        self.push_word(load_le(first), first.len());
        if !rest.is_empty() {
            self.push_word(load_le(rest), rest.len());
        }
    }
}

/// The at most 16 bytes of `s` as a little-endian number, from at most three loads (of bytes
/// written long before: the script, a table).
#[inline(always)]
pub(crate) fn load_le(s: &[u8]) -> u128 {
    let n = s.len();
    debug_assert!(n <= 16);
    let u64_at = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes")) as u128;
    let u32_at = |at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes")) as u128;
    // two overlapping loads: the bytes they share are the same in both
    match n {
        8.. => u64_at(0) | u64_at(n - 8) << (8 * (n - 8)),
        4.. => u32_at(0) | u32_at(n - 4) << (8 * (n - 4)),
        1.. => s[0] as u128 | (s[n / 2] as u128) << (8 * (n / 2)) | (s[n - 1] as u128) << (8 * (n - 1)),
        0 => 0,
    }
}

impl std::fmt::Debug for ArgumentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_bytes() {
            (Self::HASHED, hash) => write!(f, "blake3:{}", hash.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            (_, text) => write!(f, "{:?}", String::from_utf8_lossy(text)),
        }
    }
}

/// State of a canon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CanonState<'a> {
    /// The snapshot made on the canon's peer.
    Executed(Box<CanonResult<'a>>),
    /// Sent to the canon's peer.
    SentBy(Arc<str>),
}

/// A canon snapshot, produced by the peer named in its tetraplet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanonResult<'a> {
    /// `{canon peer, "", "", ""}`.
    pub tetraplet: Arc<Tetraplet>,
    /// The stream's values at snapshot time.
    pub values: Vec<CanonElement<'a>>,
}

/// One value of a canon snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanonElement<'a> {
    /// JSON text.
    pub value: Cow<'a, str>,
    /// Where the value came from.
    pub tetraplet: Arc<Tetraplet>,
}

/// State of a stream fold: where each iteration's states are.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct FoldState {
    /// Number of states after the fold state that belong to it.
    pub len: u32,
    /// One entry per iterated value.
    pub lore: Vec<FoldLore>,
}

/// Sub-traces of one fold iteration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FoldLore {
    /// Trace position of the state that produced the iterated value.
    pub value_pos: u32,
    /// States written before `next`: offset from the first state after the fold state, length.
    pub before: (u32, u32),
    /// States written after `next` returned.
    pub after: (u32, u32),
}

/// A peer's signature over the digests of results it produced (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attestation<'a> {
    /// The signing peer (its id is its Ed25519 public key).
    pub peer: Arc<str>,
    /// Digests of the results it covers, in trace order (decoding borrows them from the bytes).
    pub digests: Cow<'a, [[u8; 32]]>,
    /// Ed25519 signature (64 bytes) over [`Attestation::message`].
    pub signature: Vec<u8>,
}

/// Why data bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The bytes are not an encoded [`Data`].
    #[error("data can't be deserialized: {0}")]
    Malformed(String),
    /// Unknown format byte.
    #[error("data format version {found} is not supported (expected {FORMAT_VERSION})")]
    Version {
        /// The byte found.
        found: u8,
    },
}

#[cold]
fn out_of_range(what: &str, i: u64) -> DataError {
    malformed(format!("{what} index {i} out of range"))
}

fn malformed(what: impl Into<String>) -> DataError {
    DataError::Malformed(what.into())
}

/// Reads the encoded form; every length is checked against the bytes left before allocating.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// The text section (result values, read in order by [`Reader::text`]).
    texts: &'a str,
    text_pos: usize,
    /// One past the largest string index and tetraplet index the states read so far refer to
    /// directly (see [`Layout`]).
    strings_used: u32,
    tetraplets_used: u32,
}

impl<'a> Reader<'a> {
    #[cold]
    fn eof(&self) -> DataError {
        malformed(format!("unexpected end of data at byte {}", self.pos + 1))
    }

    #[inline(always)]
    fn u8(&mut self) -> Result<u8, DataError> {
        let Some(&b) = self.bytes.get(self.pos) else { return Err(self.eof()) };
        self.pos += 1;
        Ok(b)
    }

    #[inline(always)]
    fn u64(&mut self) -> Result<u64, DataError> {
        // most integers are small: one byte
        if let Some(&b) = self.bytes.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(b as u64);
        }
        self.u64_long()
    }

    #[inline(never)]
    fn u64_long(&mut self) -> Result<u64, DataError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    break;
                }
                return Ok(v);
            }
        }
        Err(malformed(format!("integer too large at byte {}", self.pos)))
    }

    #[inline(always)]
    fn u32(&mut self) -> Result<u32, DataError> {
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| malformed(format!("integer {v} too large at byte {}", self.pos)))
    }

    /// A count of items that take at least `min_size` bytes each.
    fn count(&mut self, min_size: usize) -> Result<usize, DataError> {
        let n = self.u64()?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min_size.max(1) as u64) > left {
            return Err(malformed(format!("{n} items declared at byte {}, only {left} bytes left", self.pos)));
        }
        Ok(n as usize)
    }

    #[inline(always)]
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DataError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or_else(|| self.eof())?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DataError> {
        let b = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn str(&mut self) -> Result<&'a str, DataError> {
        let n = self.count(1)?;
        let at = self.pos;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| malformed(format!("invalid UTF-8 in the string at byte {at}")))
    }

    /// The next value of the text section: its length here, its bytes there.
    #[inline]
    fn text(&mut self) -> Result<&'a str, DataError> {
        let n = self.u64()?;
        let at = self.text_pos;
        let text = usize::try_from(n).ok().and_then(|n| self.texts.get(at..at.checked_add(n)?));
        let text = text.ok_or_else(|| {
            malformed(format!("a value of {n} bytes at text byte {at} does not fit the text section"))
        })?;
        self.text_pos += text.len();
        Ok(text)
    }

    #[inline(always)]
    fn index<T: Clone>(&mut self, table: &[T], what: &str) -> Result<T, DataError> {
        self.entry(table, what).map(|(t, _)| t)
    }

    /// The entry of `table` at the next index, and the index (in range: below the table's
    /// length, which the bytes bound far below `u32::MAX`).
    #[inline(always)]
    fn entry<T: Clone>(&mut self, table: &[T], what: &str) -> Result<(T, u32), DataError> {
        let i = self.u64()?;
        match table.get(i as usize) {
            Some(t) => Ok((t.clone(), i as u32)),
            None => Err(out_of_range(what, i)),
        }
    }

    /// A string a state refers to.
    #[inline(always)]
    fn string(&mut self, table: &[Arc<str>]) -> Result<Arc<str>, DataError> {
        let (s, i) = self.entry(table, "string")?;
        self.strings_used = self.strings_used.max(i + 1);
        Ok(s)
    }

    /// A tetraplet a state refers to.
    #[inline(always)]
    fn tetraplet(&mut self, table: &[Arc<Tetraplet>]) -> Result<Arc<Tetraplet>, DataError> {
        let (t, i) = self.entry(table, "tetraplet")?;
        self.tetraplets_used = self.tetraplets_used.max(i + 1);
        Ok(t)
    }
}

/// Writes the encoded form; strings and tetraplets are collected into tables first.
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, b: u8) {
        self.out.push(b);
    }

    fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }
}

/// Where the states of decoded bytes are ([`Data::decode_with_layout`]), so that encoding a
/// trace that starts with the same states copies their bytes instead of writing them again
/// ([`Data::encode_reusing`]): a replay's result trace is mostly its previous trace.
#[derive(Debug, Default)]
pub(crate) struct Layout<'a> {
    bytes: &'a [u8],
    /// The string table as decoded.
    strings: Vec<&'a str>,
    /// The tetraplet table as decoded (string indices).
    tetraplets: Vec<[u32; 4]>,
    /// Where the text section's bytes and the first state start in `bytes`.
    text_start: usize,
    states_start: usize,
    /// Per state: where its bytes end (from `states_start`) and where its values end in the
    /// text section.
    ends: Vec<(u32, u32)>,
    /// `(state, strings, tetraplets)` wherever it grows: from that state on, the states read so
    /// far refer directly to strings below `strings` and tetraplets below `tetraplets` only.
    used: Vec<(u32, u32, u32)>,
}

impl<'a> Layout<'a> {
    fn clear(&mut self) {
        self.bytes = &[];
        self.strings.clear();
        self.tetraplets.clear();
        self.ends.clear();
        self.used.clear();
    }

    /// Emptied for another run (and another lifetime), or dropped when a table's capacity is
    /// above `max_bytes`.
    pub(crate) fn kept<'b>(self, max_bytes: usize) -> Layout<'b> {
        use crate::scratch::keep;
        Layout {
            bytes: &[],
            strings: keep(self.strings, max_bytes),
            tetraplets: keep(self.tetraplets, max_bytes),
            text_start: 0,
            states_start: 0,
            ends: keep(self.ends, max_bytes),
            used: keep(self.used, max_bytes),
        }
    }

    /// How many strings and tetraplets the first `k` states refer to directly (one past the
    /// largest index).
    fn used_by(&self, k: usize) -> (u32, u32) {
        let i = self.used.partition_point(|&(state, _, _)| (state as usize) < k);
        i.checked_sub(1).map_or((0, 0), |i| (self.used[i].1, self.used[i].2))
    }
}

/// What [`Data::encode_reusing`] reuses: the previous trace, decoded from the bytes `layout`
/// describes; the trace being encoded is its first `shared` states followed by the data's own.
#[derive(Clone, Copy)]
struct Reuse<'r, 'a> {
    prev: &'r [State<'a>],
    shared: usize,
    layout: &'r Layout<'a>,
}

/// Whether two states encode to the same bytes given the same tables (equal content; the
/// shortcuts are for a state copied from the other).
#[inline]
fn same_state(a: &State<'_>, b: &State<'_>) -> bool {
    fn same_result(x: &ServiceResult<'_>, y: &ServiceResult<'_>) -> bool {
        x.argument_hash == y.argument_hash
            && (Arc::ptr_eq(&x.tetraplet, &y.tetraplet) || x.tetraplet == y.tetraplet)
            && (std::ptr::eq(x.value.as_ptr(), y.value.as_ptr()) && x.value.len() == y.value.len()
                || x.value == y.value)
    }
    match (a, b) {
        (
            State::Call(CallState::Executed { result: x, output: ox }),
            State::Call(CallState::Executed { result: y, output: oy }),
        ) => ox == oy && same_result(x, y),
        (State::Par { left: a, right: b }, State::Par { left: c, right: d }) => a == c && b == d,
        _ => a == b,
    }
}

/// Tables built while encoding: strings and tetraplets by content, tetraplets also by address
/// (results of one peer usually share one `Arc`).
struct Tables<'d> {
    strings: Vec<&'d str>,
    string_ids: FastMap<&'d str, u32>,
    tetraplets: Vec<[u32; 4]>,
    tetraplet_ids: FastMap<[u32; 4], u32>,
    by_address: FastMap<*const Tetraplet, u32>,
    last: (*const Tetraplet, u32),
}

impl<'d> Tables<'d> {
    fn new() -> Self {
        Tables {
            strings: Vec::new(),
            string_ids: FastMap::default(),
            tetraplets: Vec::new(),
            tetraplet_ids: FastMap::default(),
            by_address: FastMap::default(),
            last: (std::ptr::null(), 0),
        }
    }

    fn string(&mut self, s: &'d str) -> u32 {
        let next = self.strings.len() as u32;
        *self.string_ids.entry(s).or_insert_with(|| {
            self.strings.push(s);
            next
        })
    }

    fn tetraplet(&mut self, t: &'d Arc<Tetraplet>) -> u32 {
        let address = Arc::as_ptr(t);
        // the results of one service usually share one tetraplet and follow each other
        if self.last.0 == address {
            return self.last.1;
        }
        if let Some(id) = self.by_address.get(&address) {
            self.last = (address, *id);
            return *id;
        }
        let key =
            [self.string(&t.peer_pk), self.string(&t.service_id), self.string(&t.function_name), self.string(&t.lens)];
        let next = self.tetraplets.len() as u32;
        let id = *self.tetraplet_ids.entry(key).or_insert_with(|| {
            self.tetraplets.push(key);
            next
        });
        self.by_address.insert(address, id);
        id
    }
}

mod tag {
    pub const PAR: u8 = 0;
    pub const EXECUTED: u8 = 1;
    pub const FAILED: u8 = 2;
    pub const SENT: u8 = 3;
    pub const FOLD: u8 = 4;
    pub const AP: u8 = 5;
    pub const CANON: u8 = 6;
    pub const CANON_SENT: u8 = 7;
}

impl<'a> Data<'a> {
    /// Decodes data bytes; empty bytes are empty data. Result values borrow `bytes`.
    ///
    /// # Errors
    /// [`DataError`] on a wrong version byte or malformed content.
    pub fn decode(bytes: &'a [u8]) -> Result<Data<'a>, DataError> {
        Self::decode_into(bytes, Vec::new())
    }

    /// [`Data::decode`] with the trace in the storage of `trace` (emptied first).
    ///
    /// # Errors
    /// As [`Data::decode`].
    pub fn decode_into(bytes: &'a [u8], trace: Vec<State<'a>>) -> Result<Data<'a>, DataError> {
        Self::decode_impl(bytes, trace, None)
    }

    /// [`Data::decode_into`], also recording in `layout` where each state's bytes are (for
    /// [`Data::encode_reusing`]).
    pub(crate) fn decode_with_layout(
        bytes: &'a [u8],
        trace: Vec<State<'a>>,
        layout: &mut Layout<'a>,
    ) -> Result<Data<'a>, DataError> {
        Self::decode_impl(bytes, trace, Some(layout))
    }

    fn decode_impl(
        bytes: &'a [u8],
        mut trace: Vec<State<'a>>,
        mut layout: Option<&mut Layout<'a>>,
    ) -> Result<Data<'a>, DataError> {
        trace.clear();
        if let Some(l) = layout.as_deref_mut() {
            l.clear();
        }
        let Some((&version, _)) = bytes.split_first() else {
            return Ok(Data { trace, ..Data::default() });
        };
        if version != FORMAT_VERSION {
            return Err(DataError::Version { found: version });
        }
        let mut r = Reader { bytes, pos: 1, texts: "", text_pos: 0, strings_used: 0, tetraplets_used: 0 };
        let interpreter_version = r.str()?.to_string();
        let lcid = r.u32()?;
        let n = r.count(1)?;
        let mut strings: Vec<Arc<str>> = Vec::with_capacity(n);
        for _ in 0..n {
            let s = r.str()?;
            strings.push(Arc::from(s));
            if let Some(l) = layout.as_deref_mut() {
                l.strings.push(s);
            }
        }
        let n = r.count(4)?;
        let mut tetraplets: Vec<Arc<Tetraplet>> = Vec::with_capacity(n);
        for _ in 0..n {
            let [(peer_pk, p), (service_id, s), (function_name, f), (lens, l)] = [
                r.entry(&strings, "string")?,
                r.entry(&strings, "string")?,
                r.entry(&strings, "string")?,
                r.entry(&strings, "string")?,
            ];
            tetraplets.push(Arc::new(Tetraplet { peer_pk, service_id, function_name, lens }));
            if let Some(layout) = layout.as_deref_mut() {
                layout.tetraplets.push([p, s, f, l]);
            }
        }
        // all result values in one UTF-8 check
        r.texts = r.str()?;
        let text_start = r.pos - r.texts.len();
        let n = r.count(1)?;
        let states_start = r.pos;
        trace.reserve(n);
        if let Some(l) = layout.as_deref_mut() {
            l.ends.reserve(n);
        }
        let mut used = (0, 0);
        for i in 0..n {
            if trace.len() == trace.capacity() {
                trace.reserve(1);
            }
            let len = trace.len();
            if Self::decode_executed(&mut r, &tetraplets, &mut trace.spare_capacity_mut()[0]).is_some() {
                // SAFETY: `decode_executed` wrote the first slot past the length.
                unsafe { trace.set_len(len + 1) };
            } else {
                crate::scratch::push(&mut trace, Self::decode_state(&mut r, &strings, &tetraplets)?);
            }
            if let Some(l) = layout.as_deref_mut() {
                l.ends.push(((r.pos - states_start) as u32, r.text_pos as u32));
                if (r.strings_used, r.tetraplets_used) != used {
                    used = (r.strings_used, r.tetraplets_used);
                    l.used.push((i as u32, used.0, used.1));
                }
            }
        }
        if let Some(l) = layout {
            l.bytes = bytes;
            l.text_start = text_start;
            l.states_start = states_start;
        }
        if r.text_pos != r.texts.len() {
            return Err(malformed(format!("{} bytes of the text section are no value", r.texts.len() - r.text_pos)));
        }
        let n = r.count(66)?;
        let mut attestations = Vec::with_capacity(n);
        for _ in 0..n {
            let peer = r.index(&strings, "string")?;
            let signature = r.bytes(64)?.to_vec();
            let count = r.count(32)?;
            // `count` fits the bytes left (checked): borrowed as they are
            let (digests, _) = r.bytes(count * 32)?.as_chunks::<32>();
            attestations.push(Attestation { peer, digests: Cow::Borrowed(digests), signature });
        }
        if r.pos != bytes.len() {
            return Err(malformed(format!("{} trailing bytes", bytes.len() - r.pos)));
        }
        Ok(Data { interpreter_version, trace, lcid, attestations })
    }

    #[inline(always)]
    fn decode_result(r: &mut Reader<'a>, tetraplets: &[Arc<Tetraplet>]) -> Result<ServiceResult<'a>, DataError> {
        let tetraplet = r.tetraplet(tetraplets)?;
        let argument_hash = match r.u8()? {
            ArgumentHash::HASHED => ArgumentHash { len: ArgumentHash::HASHED, bytes: r.array::<32>()? },
            n if n as usize <= ArgumentHash::INLINE => {
                let mut bytes = [0u8; 32];
                bytes[..n as usize].copy_from_slice(r.bytes(n as usize)?);
                ArgumentHash { len: n, bytes }
            }
            n => return Err(malformed(format!("argument text of {n} bytes at byte {}", r.pos))),
        };
        let value = Cow::Borrowed(r.text()?);
        Ok(ServiceResult { value, tetraplet, argument_hash })
    }

    /// The common state, a call result bound to a scalar or unused whose numbers take one byte
    /// each and whose arguments are inline, decoded with one bounds check; nothing is read for
    /// anything else, which [`Data::decode_state`] reads (and refuses) as usual.
    ///
    /// Written into `slot` (made where it is stored: returned, it went through the stack and was
    /// copied with wider loads than it was written with, a store-forwarding stall that was a
    /// quarter of a decode's time); `None` when nothing was written.
    #[inline(always)]
    fn decode_executed(
        r: &mut Reader<'a>,
        tetraplets: &[Arc<Tetraplet>],
        slot: &mut std::mem::MaybeUninit<State<'a>>,
    ) -> Option<()> {
        // tag, tetraplet, argument length, up to 32 argument bytes, value length, output kind
        let b: &[u8; 40] = r.bytes.get(r.pos..r.pos + 40)?.try_into().ok()?;
        let n = b[2] as usize;
        if b[0] != tag::EXECUTED || b[1] >= 0x80 || n > ArgumentHash::INLINE {
            return None;
        }
        let (len, kind) = (b[3 + n], b[4 + n]);
        let output = match (len < 0x80, kind) {
            (true, 0) => OutputKind::Scalar,
            (true, 2) => OutputKind::Unused,
            _ => return None,
        };
        let tetraplet = tetraplets.get(b[1] as usize)?;
        let value = r.texts.get(r.text_pos..r.text_pos + len as usize)?;
        // the 32 bytes after the length, the ones past the text zeroed
        // (from a table: a variable 128-bit shift is a dozen instructions and branches)
        static MASKS: [u128; 17] = {
            let mut m = [u128::MAX; 17];
            let mut k = 0;
            while k < 16 {
                m[k] = (1u128 << (8 * k)) - 1;
                k += 1;
            }
            m
        };
        let lo = u128::from_le_bytes(b[3..19].try_into().ok()?) & MASKS[n.min(16)];
        let hi = u128::from_le_bytes(b[19..35].try_into().ok()?) & MASKS[n.saturating_sub(16).min(16)];
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(&lo.to_le_bytes());
        bytes[16..].copy_from_slice(&hi.to_le_bytes());
        r.tetraplets_used = r.tetraplets_used.max(b[1] as u32 + 1);
        r.pos += 5 + n;
        r.text_pos += len as usize;
        let argument_hash = ArgumentHash { len: n as u8, bytes };
        let result = ServiceResult { value: Cow::Borrowed(value), tetraplet: tetraplet.clone(), argument_hash };
        slot.write(State::Call(CallState::Executed { result, output }));
        Some(())
    }

    #[inline(always)]
    fn decode_state(
        r: &mut Reader<'a>,
        strings: &[Arc<str>],
        tetraplets: &[Arc<Tetraplet>],
    ) -> Result<State<'a>, DataError> {
        let at = r.pos;
        Ok(match r.u8()? {
            tag::PAR => State::Par { left: r.u32()?, right: r.u32()? },
            tag::EXECUTED => {
                let result = Self::decode_result(r, tetraplets)?;
                let output = match r.u8()? {
                    0 => OutputKind::Scalar,
                    1 => OutputKind::Stream { generation: r.u32()? },
                    2 => OutputKind::Unused,
                    k => return Err(malformed(format!("unknown output kind {k} at byte {}", r.pos))),
                };
                State::Call(CallState::Executed { result, output })
            }
            tag::FAILED => State::Call(CallState::Failed(Self::decode_result(r, tetraplets)?)),
            tag::SENT => {
                let peer = r.string(strings)?;
                let call_id = match r.u8()? {
                    0 => None,
                    1 => Some(r.u32()?),
                    k => return Err(malformed(format!("unknown call id flag {k} at byte {}", r.pos))),
                };
                State::Call(CallState::SentBy { peer, call_id })
            }
            tag::FOLD => {
                let len = r.u32()?;
                let n = r.count(5)?;
                let mut lore = Vec::with_capacity(n);
                for _ in 0..n {
                    lore.push(FoldLore {
                        value_pos: r.u32()?,
                        before: (r.u32()?, r.u32()?),
                        after: (r.u32()?, r.u32()?),
                    });
                }
                State::Fold(FoldState { len, lore })
            }
            tag::AP => State::Ap { generation: r.u32()? },
            tag::CANON => {
                let tetraplet = r.tetraplet(tetraplets)?;
                let n = r.count(2)?;
                let mut values = Vec::with_capacity(n);
                for _ in 0..n {
                    let value = Cow::Borrowed(r.text()?);
                    values.push(CanonElement { value, tetraplet: r.tetraplet(tetraplets)? });
                }
                State::Canon(CanonState::Executed(Box::new(CanonResult { tetraplet, values })))
            }
            tag::CANON_SENT => State::Canon(CanonState::SentBy(r.string(strings)?)),
            t => return Err(malformed(format!("unknown state tag {t} at byte {}", at + 1))),
        })
    }

    /// Encodes to bytes: format byte, interpreter version, lcid, string table, tetraplet table
    /// (four string indices each), text section (the values of all results, concatenated in
    /// trace order: one UTF-8 check when decoding), states (a value is its length; its bytes are
    /// the next ones of the text section), attestations (peer, signature, digests).
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(None).0
    }

    /// [`Data::encode`] of data whose trace may start with states of `prev` (decoded from the
    /// bytes `layout` describes): the longest common prefix of the two traces is copied from
    /// those bytes, when they encode it exactly as this encoder would (the tables the prefix
    /// refers to are the same entries in the same order; always true for bytes this encoder
    /// wrote). The bytes are those of [`Data::encode`] but for integers the previous bytes wrote
    /// in a longer form than needed (the decoded data is the same).
    pub(crate) fn encode_reusing(&self, prev: &[State<'_>], shared: usize, layout: &Layout<'_>) -> Vec<u8> {
        self.encode_with(Some(Reuse { prev, shared, layout })).0
    }

    /// The encoding, and how many states' bytes were copied.
    fn encode_with(&self, reuse: Option<Reuse<'_, '_>>) -> (Vec<u8>, usize) {
        // the trace: the shared start of the previous trace, then `self.trace`
        let shared = reuse.map_or(&[][..], |r| &r.prev[..r.shared.min(r.prev.len())]);
        let len = shared.len() + self.trace.len();
        let all = || shared.iter().chain(&self.trace);
        // the common prefix with the previous trace
        let mut prefix = match reuse {
            Some(r) if r.layout.ends.len() == r.prev.len() => {
                let more = self.trace.iter().zip(&r.prev[shared.len()..]).take_while(|(a, b)| same_state(a, b));
                shared.len() + more.count()
            }
            _ => 0,
        };
        let mut t = Tables::new();
        let mut at_prefix = (0, 0);
        // first pass: the tables
        for (i, s) in all().enumerate() {
            if i == prefix {
                at_prefix = (t.strings.len(), t.tetraplets.len());
            }
            match s {
                State::Call(CallState::Executed { result, .. } | CallState::Failed(result)) => {
                    t.tetraplet(&result.tetraplet);
                }
                State::Call(CallState::SentBy { peer, .. }) | State::Canon(CanonState::SentBy(peer)) => {
                    t.string(peer);
                }
                State::Canon(CanonState::Executed(c)) => {
                    t.tetraplet(&c.tetraplet);
                    for v in &c.values {
                        t.tetraplet(&v.tetraplet);
                    }
                }
                State::Par { .. } | State::Fold(_) | State::Ap { .. } => {}
            }
        }
        if prefix == len {
            at_prefix = (t.strings.len(), t.tetraplets.len());
        }
        // the copied states refer to table entries by their previous indices: those must be
        // the entries this encoding gives the same indices
        let copied = match reuse {
            Some(Reuse { layout, .. }) if prefix > 0 => {
                let (strings, tetraplets) = at_prefix;
                let (used_strings, used_tetraplets) = layout.used_by(prefix);
                let same = used_strings as usize <= strings
                    && used_tetraplets as usize <= tetraplets
                    && layout.strings.get(..strings) == Some(&t.strings[..strings])
                    && layout.tetraplets.get(..tetraplets) == Some(&t.tetraplets[..tetraplets]);
                same.then(|| {
                    let (state_end, text_end) = layout.ends[prefix - 1];
                    let text = &layout.bytes[layout.text_start..layout.text_start + text_end as usize];
                    let states = &layout.bytes[layout.states_start..layout.states_start + state_end as usize];
                    (text, states)
                })
            }
            _ => None,
        };
        if copied.is_none() {
            prefix = 0;
        }
        for a in &self.attestations {
            t.string(&a.peer);
        }
        let rest = || all().skip(prefix);
        let (copied_text, copied_states) = copied.unwrap_or_default();
        let text_len: usize = copied_text.len() + rest().map(State::text_len).sum::<usize>();
        let attested: usize = self.attestations.iter().map(|a| 80 + a.digests.len() * 32).sum();
        // varints are at most 10 bytes: the buffer never grows (growing it copies all of it)
        let tables = 20
            + self.interpreter_version.len()
            + t.strings.iter().map(|s| s.len() + 10).sum::<usize>()
            + t.tetraplets.iter().map(|key| key.len() * 10).sum::<usize>();
        let capacity = 64 + tables + text_len + attested + copied_states.len() + (len - prefix) * 48;
        let mut w = Writer { out: Vec::with_capacity(capacity) };
        w.u8(FORMAT_VERSION);
        w.str(&self.interpreter_version);
        w.u64(self.lcid as u64);
        w.u64(t.strings.len() as u64);
        for s in &t.strings {
            w.str(s);
        }
        w.u64(t.tetraplets.len() as u64);
        for key in &t.tetraplets {
            for i in key {
                w.u64(*i as u64);
            }
        }
        // the text section: every result value, in trace order
        w.u64(text_len as u64);
        w.out.extend_from_slice(copied_text);
        for s in rest() {
            match s {
                State::Call(CallState::Executed { result, .. } | CallState::Failed(result)) => {
                    w.out.extend_from_slice(result.value.as_bytes());
                }
                State::Canon(CanonState::Executed(c)) => {
                    for v in &c.values {
                        w.out.extend_from_slice(v.value.as_bytes());
                    }
                }
                _ => {}
            }
        }
        w.u64(len as u64);
        w.out.extend_from_slice(copied_states);
        for s in rest() {
            match s {
                State::Par { left, right } => {
                    w.u8(tag::PAR);
                    w.u64(*left as u64);
                    w.u64(*right as u64);
                }
                State::Call(CallState::Executed { result, output }) => {
                    w.u8(tag::EXECUTED);
                    w.result(&t, result);
                    match output {
                        OutputKind::Scalar => w.u8(0),
                        OutputKind::Stream { generation } => {
                            w.u8(1);
                            w.u64(*generation as u64);
                        }
                        OutputKind::Unused => w.u8(2),
                    }
                }
                State::Call(CallState::Failed(result)) => {
                    w.u8(tag::FAILED);
                    w.result(&t, result);
                }
                State::Call(CallState::SentBy { peer, call_id }) => {
                    w.u8(tag::SENT);
                    w.u64(t.string_id(peer) as u64);
                    match call_id {
                        None => w.u8(0),
                        Some(id) => {
                            w.u8(1);
                            w.u64(*id as u64);
                        }
                    }
                }
                State::Fold(f) => {
                    w.u8(tag::FOLD);
                    w.u64(f.len as u64);
                    w.u64(f.lore.len() as u64);
                    for l in &f.lore {
                        for v in [l.value_pos, l.before.0, l.before.1, l.after.0, l.after.1] {
                            w.u64(v as u64);
                        }
                    }
                }
                State::Ap { generation } => {
                    w.u8(tag::AP);
                    w.u64(*generation as u64);
                }
                State::Canon(CanonState::Executed(c)) => {
                    w.u8(tag::CANON);
                    w.u64(t.tetraplet_id(&c.tetraplet) as u64);
                    w.u64(c.values.len() as u64);
                    for v in &c.values {
                        w.u64(v.value.len() as u64);
                        w.u64(t.tetraplet_id(&v.tetraplet) as u64);
                    }
                }
                State::Canon(CanonState::SentBy(peer)) => {
                    w.u8(tag::CANON_SENT);
                    w.u64(t.string_id(peer) as u64);
                }
            }
        }
        w.u64(self.attestations.len() as u64);
        for a in &self.attestations {
            w.u64(t.string_id(&a.peer) as u64);
            // a signature is 64 bytes by construction; pad or cut anything else (it won't verify)
            let mut sig = [0u8; 64];
            let n = a.signature.len().min(64);
            sig[..n].copy_from_slice(&a.signature[..n]);
            w.out.extend_from_slice(&sig);
            w.u64(a.digests.len() as u64);
            w.out.extend_from_slice(a.digests.as_flattened());
        }
        (w.out, prefix)
    }
}

impl State<'_> {
    /// Bytes of result values in this state (its part of the text section).
    fn text_len(&self) -> usize {
        match self {
            State::Call(CallState::Executed { result, .. } | CallState::Failed(result)) => result.value.len(),
            State::Canon(CanonState::Executed(c)) => c.values.iter().map(|v| v.value.len()).sum(),
            _ => 0,
        }
    }

    /// The result this state holds, if any (what attestations cover).
    pub fn result(&self) -> Option<Produced<'_, '_>> {
        match self {
            State::Call(CallState::Executed { result, .. }) => Some(Produced::Executed(result)),
            State::Call(CallState::Failed(result)) => Some(Produced::Failed(result)),
            State::Canon(CanonState::Executed(c)) => Some(Produced::Canon(c)),
            _ => None,
        }
    }
}

/// A result in a trace: what a peer produced and signs.
#[derive(Debug, Clone, Copy)]
pub enum Produced<'r, 'a> {
    /// A service result.
    Executed(&'r ServiceResult<'a>),
    /// A service failure.
    Failed(&'r ServiceResult<'a>),
    /// A canon snapshot.
    Canon(&'r CanonResult<'a>),
}

impl Produced<'_, '_> {
    /// The producing peer (the one whose attestation must cover it).
    pub fn peer(&self) -> &str {
        match self {
            Produced::Executed(r) | Produced::Failed(r) => &r.tetraplet.peer_pk,
            Produced::Canon(c) => &c.tetraplet.peer_pk,
        }
    }

    /// The tetraplet of the result (shared `Arc`).
    pub fn tetraplet(&self) -> &Arc<Tetraplet> {
        match self {
            Produced::Executed(r) | Produced::Failed(r) => &r.tetraplet,
            Produced::Canon(c) => &c.tetraplet,
        }
    }

    /// The digest attestations cover.
    pub fn digest(&self) -> [u8; 32] {
        self.digest_with(&mut TetrapletDigests::default())
    }

    /// [`Produced::digest`], with the digests of tetraplets shared by several results computed
    /// once.
    pub(crate) fn digest_with(&self, memo: &mut TetrapletDigests) -> [u8; 32] {
        match self {
            Produced::Executed(r) => r.digest_with(false, &memo.of(&r.tetraplet)),
            Produced::Failed(r) => r.digest_with(true, &memo.of(&r.tetraplet)),
            Produced::Canon(c) => c.digest_with(memo),
        }
    }
}

/// Digests of tetraplets by address, for the results of one trace (the results of one service
/// share one tetraplet `Arc`). Only for the lifetime of the trace: an address is an identity
/// only while the tetraplet is alive.
#[derive(Default)]
pub(crate) struct TetrapletDigests {
    last: Option<(*const Tetraplet, [u8; 32])>,
    seen: FastMap<*const Tetraplet, [u8; 32]>,
}

impl TetrapletDigests {
    /// The digest of `t`.
    pub(crate) fn of(&mut self, t: &Arc<Tetraplet>) -> [u8; 32] {
        let address = Arc::as_ptr(t);
        if let Some((a, d)) = self.last
            && a == address
        {
            return d;
        }
        let d = *self.seen.entry(address).or_insert_with(|| tetraplet_digest(t));
        self.last = Some((address, d));
        d
    }
}

/// blake3 over domain and the four parts of a tetraplet (what result digests include).
pub fn tetraplet_digest(t: &Tetraplet) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    hash_part(&mut h, b"weft-air/tetraplet/3");
    for part in [&t.peer_pk, &t.service_id, &t.function_name, &t.lens] {
        hash_part(&mut h, part.as_bytes());
    }
    *h.finalize().as_bytes()
}

impl Writer {
    fn result(&mut self, t: &Tables<'_>, r: &ServiceResult<'_>) {
        self.u64(t.tetraplet_id(&r.tetraplet) as u64);
        let (len, bytes) = r.argument_hash.as_bytes();
        self.u8(len);
        self.out.extend_from_slice(bytes);
        self.u64(r.value.len() as u64);
    }
}

impl Tables<'_> {
    fn string_id(&self, s: &str) -> u32 {
        self.string_ids.get(s).copied().unwrap_or(0)
    }

    fn tetraplet_id(&self, t: &Arc<Tetraplet>) -> u32 {
        let address = Arc::as_ptr(t);
        if self.last.0 == address {
            return self.last.1;
        }
        self.by_address.get(&address).copied().unwrap_or(0)
    }
}

fn hash_part(h: &mut blake3::Hasher, part: &[u8]) {
    h.update(&(part.len() as u64).to_le_bytes());
    h.update(part);
}

impl ServiceResult<'_> {
    /// blake3 over domain and kind, the [`tetraplet_digest`], the argument hash and the value:
    /// what an [`Attestation`] of the producing peer lists.
    pub fn digest(&self, failed: bool) -> [u8; 32] {
        self.digest_with(failed, &tetraplet_digest(&self.tetraplet))
    }

    fn digest_with(&self, failed: bool, tetraplet: &[u8; 32]) -> [u8; 32] {
        // the fixed-size part (at most 100 bytes) in one buffer, with a short value after it:
        // one call of `blake3::hash` instead of a hasher fed piece by piece
        const SHORT: usize = 156;
        let mut head = [0u8; 100 + SHORT];
        let mut n = 0;
        let mut put = |bytes: &[u8]| {
            head[n..n + bytes.len()].copy_from_slice(bytes);
            n += bytes.len();
        };
        let domain: &[u8] = if failed { b"weft-air/failed/3" } else { b"weft-air/executed/3" };
        put(&(domain.len() as u64).to_le_bytes());
        put(domain);
        put(tetraplet);
        let (len, bytes) = self.argument_hash.as_bytes();
        put(&[len]);
        put(bytes);
        let value = self.value.as_bytes();
        put(&(value.len() as u64).to_le_bytes());
        if value.len() <= SHORT {
            put(value);
            return *blake3::hash(&head[..n]).as_bytes();
        }
        let mut h = blake3::Hasher::new();
        h.update(&head[..n]);
        h.update(value);
        *h.finalize().as_bytes()
    }
}

impl CanonResult<'_> {
    /// blake3 over domain, the canon's [`tetraplet_digest`] and every value with the digest of
    /// its tetraplet.
    pub fn digest(&self) -> [u8; 32] {
        self.digest_with(&mut TetrapletDigests::default())
    }

    fn digest_with(&self, memo: &mut TetrapletDigests) -> [u8; 32] {
        // The bytes go to the hasher in large pieces: a canon of many short values would
        // otherwise be two small updates per value, each block compressed on its own, where
        // whole 1 KiB chunks of one large update are compressed several at a time (SIMD).
        const FLUSH: usize = 16 * 1024;
        const DIRECT: usize = 1024;
        let mut h = blake3::Hasher::new();
        let mut buf = Vec::with_capacity((64 + self.values.len() * 64).min(FLUSH + DIRECT + 48));
        let domain = b"weft-air/canon/3";
        buf.extend_from_slice(&(domain.len() as u64).to_le_bytes());
        buf.extend_from_slice(domain);
        buf.extend_from_slice(&memo.of(&self.tetraplet));
        buf.extend_from_slice(&(self.values.len() as u64).to_le_bytes());
        for v in &self.values {
            let value = v.value.as_bytes();
            buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
            if value.len() > DIRECT {
                h.update(&buf);
                buf.clear();
                h.update(value);
            } else {
                buf.extend_from_slice(value);
            }
            buf.extend_from_slice(&memo.of(&v.tetraplet));
            if buf.len() >= FLUSH {
                h.update(&buf);
                buf.clear();
            }
        }
        h.update(&buf);
        *h.finalize().as_bytes()
    }
}

impl Attestation<'_> {
    /// What is signed: blake3 over domain, particle id, peer id and the digests.
    pub fn message(particle_id: &str, peer: &str, digests: &[[u8; 32]]) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        hash_part(&mut h, b"weft-air/attestation/3");
        hash_part(&mut h, particle_id.as_bytes());
        hash_part(&mut h, peer.as_bytes());
        h.update(&(digests.len() as u64).to_le_bytes());
        // in one piece: whole 1 KiB chunks are hashed several at a time (SIMD), 32 bytes at a
        // time they would go through the hasher one block after another
        h.update(digests.as_flattened());
        *h.finalize().as_bytes()
    }

    /// `peer`'s attestation of `digests` for this particle, signed with `key` (the key of `peer`).
    pub fn sign(key: &SigningKey, particle_id: &str, peer: &str, digests: Vec<[u8; 32]>) -> Attestation<'static> {
        let message = Self::message(particle_id, peer, &digests);
        Attestation { peer: Arc::from(peer), digests: Cow::Owned(digests), signature: sign(key, &message) }
    }

    /// Checks the signature against the key in the peer id.
    ///
    /// # Errors
    /// A message naming the peer when its id is not a key or the signature does not match.
    pub fn verify(&self, particle_id: &str) -> Result<(), String> {
        let message = Self::message(particle_id, &self.peer, &self.digests);
        verify(&self.peer, &message, &self.signature)
    }
}

/// Signs a digest.
pub fn sign(key: &SigningKey, digest: &[u8; 32]) -> Vec<u8> {
    key.sign(digest).to_bytes().to_vec()
}

/// Checks a signature by `peer_id` over `digest`.
///
/// # Errors
/// A message naming the peer when the id is not a key or the signature does not match.
pub fn verify(peer_id: &str, digest: &[u8; 32], signature: &[u8]) -> Result<(), String> {
    let key = public_key_from_peer_id(peer_id)
        .ok_or_else(|| format!("peer id '{peer_id}' is not an Ed25519 peer id, its results can't be verified"))?;
    let sig = Signature::from_slice(signature).map_err(|_| format!("malformed signature of peer '{peer_id}'"))?;
    key.verify(digest, &sig).map_err(|_| format!("signature of peer '{peer_id}' does not match its results"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(v: &str) -> ServiceResult<'static> {
        ServiceResult {
            value: Cow::Owned(v.to_string()),
            tetraplet: Arc::new(Tetraplet::new("p", "s", "f")),
            argument_hash: ArgumentHash::of(b"[3]"),
        }
    }

    #[test]
    fn roundtrip_and_garbage() {
        let shared = Arc::new(Tetraplet::new("q", "s", "g"));
        let data = Data {
            interpreter_version: "x".into(),
            trace: vec![
                State::Par { left: 1, right: 0 },
                State::Call(CallState::SentBy { peer: "p".into(), call_id: Some(3) }),
                State::Fold(FoldState { len: 0, lore: vec![FoldLore { value_pos: 1, before: (0, 2), after: (2, 0) }] }),
                State::Ap { generation: 2 },
                State::Call(CallState::Executed {
                    result: result("\"a\""),
                    output: OutputKind::Stream { generation: 1 },
                }),
                State::Call(CallState::Failed(result("{}"))),
                State::Call(CallState::Executed {
                    result: ServiceResult { argument_hash: ArgumentHash::of(&[b'7'; 33]), ..result("[1]") },
                    output: OutputKind::Unused,
                }),
                State::Canon(CanonState::Executed(Box::new(CanonResult {
                    tetraplet: Arc::new(Tetraplet::literal("p")),
                    values: vec![
                        CanonElement { value: "1".into(), tetraplet: shared.clone() },
                        CanonElement { value: "2".into(), tetraplet: shared },
                    ],
                }))),
                State::Canon(CanonState::SentBy("q".into())),
            ],
            lcid: 3,
            attestations: vec![Attestation {
                peer: "p".into(),
                digests: vec![[1; 32], [2; 32]].into(),
                signature: vec![9; 64],
            }],
        };
        let bytes = data.encode();
        assert_eq!(Data::decode(&bytes).unwrap(), data);
        assert_eq!(Data::decode(&[]).unwrap(), Data::default());
        assert!(matches!(Data::decode(&[9, 1, 2]), Err(DataError::Version { found: 9 })));
        for cut in 1..bytes.len() {
            assert!(Data::decode(&bytes[..cut]).is_err());
        }
        // a huge declared length must not allocate or panic
        assert!(Data::decode(&[FORMAT_VERSION, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    /// The result and canon digests and the attestation message hash their bytes in one piece
    /// or in large pieces: the digests are those of the definitions, written piece by piece
    /// (values short and long, around the sizes where the ways differ, many and none).
    #[test]
    fn digests_in_large_pieces_are_those_of_the_definitions() {
        fn canon_by_definition(c: &CanonResult<'_>) -> [u8; 32] {
            let mut h = blake3::Hasher::new();
            hash_part(&mut h, b"weft-air/canon/3");
            h.update(&tetraplet_digest(&c.tetraplet));
            h.update(&(c.values.len() as u64).to_le_bytes());
            for v in &c.values {
                hash_part(&mut h, v.value.as_bytes());
                h.update(&tetraplet_digest(&v.tetraplet));
            }
            *h.finalize().as_bytes()
        }
        let shared = Arc::new(Tetraplet::new("q", "s", "g"));
        let other = Arc::new(Tetraplet::new("r", "s", "h"));
        for (count, len) in [(0, 0), (1, 1), (3, 1023), (3, 1024), (3, 1025), (500, 20), (40, 700), (2, 40_000)] {
            let values = (0..count)
                .map(|i| CanonElement {
                    value: "x".repeat(len + i % 3).into(),
                    tetraplet: if i % 7 == 0 { other.clone() } else { shared.clone() },
                })
                .collect();
            let c = CanonResult { tetraplet: Arc::new(Tetraplet::literal("p")), values };
            assert_eq!(c.digest(), canon_by_definition(&c), "{count} values of {len} bytes");
        }
        for len in [0, 1, 155, 156, 157, 1000] {
            for failed in [false, true] {
                let r = ServiceResult { value: "v".repeat(len).into(), ..result("0") };
                let domain: &[u8] = if failed { b"weft-air/failed/3" } else { b"weft-air/executed/3" };
                let mut h = blake3::Hasher::new();
                hash_part(&mut h, domain);
                h.update(&tetraplet_digest(&r.tetraplet));
                let (n, bytes) = r.argument_hash.as_bytes();
                h.update(&[n]);
                h.update(bytes);
                hash_part(&mut h, r.value.as_bytes());
                assert_eq!(r.digest(failed), *h.finalize().as_bytes(), "a value of {len} bytes");
            }
        }
        for n in [0, 1, 31, 32, 33, 1000] {
            let digests: Vec<[u8; 32]> = (0..n).map(|i| [(i % 251) as u8; 32]).collect();
            let mut h = blake3::Hasher::new();
            hash_part(&mut h, b"weft-air/attestation/3");
            hash_part(&mut h, b"particle");
            hash_part(&mut h, b"peer");
            h.update(&(n as u64).to_le_bytes());
            for d in &digests {
                h.update(d);
            }
            assert_eq!(Attestation::message("particle", "peer", &digests), *h.finalize().as_bytes(), "{n} digests");
        }
    }

    /// A trace of every kind of state, sharing some tetraplets.
    fn sample_trace() -> Vec<State<'static>> {
        let shared = Arc::new(Tetraplet::new("q", "s", "g"));
        vec![
            State::Par { left: 1, right: 0 },
            State::Call(CallState::SentBy { peer: "p".into(), call_id: Some(3) }),
            State::Call(CallState::Executed { result: result("\"a\""), output: OutputKind::Scalar }),
            State::Fold(FoldState { len: 0, lore: vec![FoldLore { value_pos: 1, before: (0, 2), after: (2, 0) }] }),
            State::Ap { generation: 2 },
            State::Call(CallState::Executed {
                result: ServiceResult { tetraplet: shared.clone(), ..result("[1,2]") },
                output: OutputKind::Stream { generation: 1 },
            }),
            State::Call(CallState::Failed(result("{}"))),
            State::Canon(CanonState::Executed(Box::new(CanonResult {
                tetraplet: Arc::new(Tetraplet::literal("p")),
                values: vec![CanonElement { value: "1".into(), tetraplet: shared }],
            }))),
            State::Canon(CanonState::SentBy("r".into())),
            State::Call(CallState::Executed { result: result("\"b\""), output: OutputKind::Unused }),
        ]
    }

    /// Encodes `data` reusing the decoded `prev_bytes`: the bytes must be exactly `encode`'s;
    /// returns how many states were copied.
    fn reused(prev_bytes: &[u8], data: &Data<'_>) -> usize {
        let mut layout = Layout::default();
        let prev = Data::decode_with_layout(prev_bytes, Vec::new(), &mut layout).unwrap();
        let (bytes, copied) = data.encode_with(Some(Reuse { prev: &prev.trace, shared: 0, layout: &layout }));
        assert!(bytes == data.encode(), "different bytes after copying {copied} states");
        // the same trace given as a shared start of the previous trace and the rest
        let common = data.trace.iter().zip(&prev.trace).take_while(|(a, b)| a == b).count();
        for shared in [common / 2, common] {
            let own = Data { trace: data.trace[shared..].to_vec(), ..data.clone() };
            let (again, n) = own.encode_with(Some(Reuse { prev: &prev.trace, shared, layout: &layout }));
            assert!(again == bytes && n == copied, "{shared} states shared");
        }
        copied
    }

    #[test]
    fn encoding_reuses_previous_bytes_exactly() {
        let base = Data { interpreter_version: "x".into(), trace: sample_trace(), lcid: 3, attestations: vec![] };
        let bytes = base.encode();
        // variants of the trace a run could produce from it
        let mut variants: Vec<Vec<State<'static>>> = vec![base.trace.clone(), vec![]];
        for cut in 0..base.trace.len() {
            variants.push(base.trace[..cut].to_vec());
            let mut changed = base.trace.clone();
            changed[cut] = State::Call(CallState::Executed { result: result("\"new\""), output: OutputKind::Scalar });
            variants.push(changed);
            let mut other_peer = base.trace.clone();
            other_peer[cut] = State::Call(CallState::SentBy { peer: "new peer".into(), call_id: None });
            variants.push(other_peer);
            let mut inserted = base.trace.clone();
            inserted.insert(cut, State::Ap { generation: 9 });
            variants.push(inserted);
        }
        let mut longer = base.trace.clone();
        longer.extend(sample_trace());
        longer.push(State::Call(CallState::Executed {
            result: ServiceResult { tetraplet: Arc::new(Tetraplet::new("z", "s", "f")), ..result("0") },
            output: OutputKind::Scalar,
        }));
        variants.push(longer);
        for (i, trace) in variants.into_iter().enumerate() {
            let attestations =
                vec![Attestation { peer: "att".into(), digests: vec![[1; 32]].into(), signature: vec![9; 64] }];
            // this encoder's bytes: the whole common prefix is copied
            let common = trace.iter().zip(&base.trace).take_while(|(a, b)| a == b).count();
            let data = Data { interpreter_version: "y".into(), trace, lcid: 4, attestations };
            assert_eq!(reused(&bytes, &data), common, "variant {i}");
        }
    }

    #[test]
    fn encoding_reuses_no_bytes_whose_tables_differ() {
        // hand-written previous data whose tables are not the ones this encoder writes: the
        // states refer to entries by indices that mean other entries in the new tables
        let trace = |peer: &str| {
            vec![
                State::Call(CallState::Executed {
                    result: ServiceResult { tetraplet: Arc::new(Tetraplet::new(peer, "s", "f")), ..result("\"a\"") },
                    output: OutputKind::Scalar,
                }),
                State::Call(CallState::SentBy { peer: peer.into(), call_id: None }),
            ]
        };
        let write = |strings: &[&str], tetraplets: &[[u8; 4]], sent_by: u8| {
            let mut w = Writer { out: vec![FORMAT_VERSION] };
            w.str("x");
            w.u64(0);
            w.u64(strings.len() as u64);
            strings.iter().for_each(|s| w.str(s));
            w.u64(tetraplets.len() as u64);
            tetraplets.iter().flatten().for_each(|i| w.u8(*i));
            w.str("\"a\"");
            w.u64(2);
            w.out.extend([tag::EXECUTED, 0, 3, b'[', b'3', b']', 3, 0, tag::SENT, sent_by, 0, 0]);
            w.out
        };
        let cases = [
            // canonical: reused
            write(&["p", "s", "f", ""], &[[0, 1, 2, 3]], 0),
            // an unused string first
            write(&["unused", "p", "s", "f", ""], &[[1, 2, 3, 4]], 1),
            // the same strings in another order
            write(&["s", "p", "f", ""], &[[1, 0, 2, 3]], 1),
            // a duplicate string referred to by the later state
            write(&["p", "s", "f", "", "p"], &[[0, 1, 2, 3]], 4),
            // a duplicate tetraplet after the one the states use (harmless: reused)
            write(&["p", "s", "f", ""], &[[0, 1, 2, 3], [0, 1, 2, 3]], 0),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let prev = Data::decode(bytes).unwrap();
            assert_eq!(prev.trace, trace("p"), "case {i}");
            for next in [trace("p"), [trace("p"), trace("q")].concat(), trace("q")] {
                let common = next.iter().zip(&prev.trace).take_while(|(a, b)| a == b).count();
                let data = Data { trace: next, ..prev.clone() };
                assert_eq!(reused(bytes, &data), if matches!(i, 0 | 4) { common } else { 0 }, "case {i}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, ..Default::default() })]
        /// Whatever previous bytes decode (here: the sample with bytes changed), the encoding
        /// that copies from them decodes to the same data as the plain encoding, for the
        /// decoded trace itself, a cut of it and one with a state changed.
        #[test]
        fn reused_bytes_decode_the_same(
            changes in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..4),
            cut in 0usize..16,
        ) {
            let base = Data { interpreter_version: "x".into(), trace: sample_trace(), lcid: 3, attestations: vec![] };
            let mut bytes = base.encode();
            for (at, b) in changes {
                let n = bytes.len();
                bytes[at % n] = b;
            }
            let mut layout = Layout::default();
            if let Ok(prev) = Data::decode_with_layout(&bytes, Vec::new(), &mut layout) {
                let mut changed = prev.trace.clone();
                if let Some(s) = changed.get_mut(cut) {
                    *s = State::Ap { generation: 1 };
                }
                let cut_trace = prev.trace[..cut.min(prev.trace.len())].to_vec();
                for trace in [prev.trace.clone(), cut_trace, changed] {
                    let data = Data { trace, ..prev.clone() };
                    let reused = data.encode_reusing(&prev.trace, 0, &layout);
                    let plain = data.encode();
                    proptest::prop_assert_eq!(Data::decode(&reused).unwrap(), Data::decode(&plain).unwrap());
                }
            }
        }
    }

    #[test]
    fn inline_texts_of_every_split() {
        let source: Vec<u8> = (0..40u8).map(|b| b.wrapping_mul(29).wrapping_add(3)).collect();
        for n in 0..=16 {
            let s = &source[5..5 + n];
            let mut want = [0u8; 16];
            want[..n].copy_from_slice(s);
            assert_eq!(load_le(s), u128::from_le_bytes(want), "{n} bytes");
        }
        // every way to build a text of up to 32 bytes from two or three parts
        for first in 0..=32 {
            for second in 0..=32 - first {
                let third = (32 - first - second).min(3);
                let mut t = InlineText::default();
                let mut want = Vec::new();
                for (at, n) in [(0, first), (first, second), (first + second, third)] {
                    let part = &source[at..at + n];
                    t.push_bytes(part);
                    want.extend_from_slice(part);
                }
                assert_eq!(t.len(), want.len());
                assert_eq!(ArgumentHash::of_inline(&t), ArgumentHash::of(&want), "{first} + {second} + {third}");
            }
        }
    }

    #[test]
    fn argument_form_of_every_length() {
        for n in 0..=40usize {
            let text: Vec<u8> = (0..n).map(|i| b'a' + i as u8).collect();
            let h = ArgumentHash::of(&text);
            if n <= ArgumentHash::INLINE {
                let mut bytes = [0u8; 32];
                bytes[..n].copy_from_slice(&text);
                assert_eq!((h.len, h.bytes), (n as u8, bytes), "{n}");
            } else {
                assert_eq!((h.len, h.bytes), (ArgumentHash::HASHED, *blake3::hash(&text).as_bytes()), "{n}");
            }
        }
    }

    #[test]
    fn every_argument_and_value_length_roundtrips() {
        // the short path of the decoder masks the argument bytes in two halves and reads
        // one-byte lengths: every inline length, both sides of 16 and of 128
        let mut trace = Vec::new();
        for n in 0..=ArgumentHash::INLINE + 1 {
            for (len, output) in [(0, OutputKind::Scalar), (127, OutputKind::Unused), (128, OutputKind::Scalar)] {
                let argument_hash = ArgumentHash::of(&vec![b'a' + n as u8 % 26; n]);
                let value = Cow::Owned("7".repeat(len));
                trace.push(State::Call(CallState::Executed {
                    result: ServiceResult { value, argument_hash, ..result("") },
                    output,
                }));
            }
        }
        let data = Data { interpreter_version: "x".into(), trace, lcid: 0, attestations: vec![] };
        let bytes = data.encode();
        assert_eq!(Data::decode(&bytes).unwrap(), data);
        // and the same states at the very end of the bytes (the short path needs 40 of them)
        for cut in 1..=3 {
            let tail = Data { trace: data.trace[data.trace.len() - cut..].to_vec(), ..data.clone() };
            assert_eq!(Data::decode(&tail.encode()).unwrap(), tail);
        }
    }

    #[test]
    fn attestation_signs_the_digest_list() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let peer = crate::peer_id::peer_id_from_secret(&[5; 32]);
        let a = Attestation::sign(&key, "particle", &peer, vec![result("1").digest(false)]);
        a.verify("particle").unwrap();
        assert!(a.verify("other").is_err());
        let mut b = a.clone();
        b.digests.to_mut()[0] = result("2").digest(false);
        assert!(b.verify("particle").is_err());
        assert_ne!(result("1").digest(false), result("1").digest(true));
    }
}
