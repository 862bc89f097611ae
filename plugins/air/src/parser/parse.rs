//! The parser: tokens to an [`Ast`], iteratively (an explicit stack of open instructions), so a
//! deeply nested script is refused with [`ParseErrorKind::TooDeep`] instead of overflowing.
//!
//! It reads one token ahead ([`Parser::tok`]); the lexer classifies words while it scans them, so
//! most variable names are numbered without another look at their bytes.

use super::ast::*;
use super::error::{ParseError, ParseErrorKind};
use super::lexer::{BYTE, COMMENT, Kind, Lexer, NOT_NAME, SPACE, Token, WORD_END, tokenize};
use super::validate::Validator;
use crate::hash::Interner;
use crate::scratch::push;

/// Parser limits.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Maximum nesting of instructions.
    pub max_depth: usize,
    /// Maximum script size in bytes.
    pub max_size: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits { max_depth: 1000, max_size: 16 * 1024 * 1024 }
    }
}

/// Parses and validates a script with default limits.
///
/// # Errors
/// Lexer, grammar and static-check errors (SPEC §1.4), with line and column.
pub fn parse(script: &str) -> Result<Ast<'_>, ParseError> {
    parse_with_limits(script, ParseLimits::default())
}

/// Parses and validates a script.
///
/// # Errors
/// Lexer, grammar and static-check errors (SPEC §1.4), size and depth limits.
pub fn parse_with_limits(script: &str, limits: ParseLimits) -> Result<Ast<'_>, ParseError> {
    parse_impl(script, limits, true, &mut ParseBuffers::default())
}

/// The storage of a parse: the tree's arenas and the name table (kept from run to run for the
/// scripts a run parses for itself, see `scratch`).
#[derive(Default)]
pub(crate) struct ParseBuffers<'a> {
    /// Whether the arenas' elements own no heap memory (see [`Ast::heap_free`]).
    pub heap_free: bool,
    pub nodes: Vec<Node<'a>>,
    pub calls: Vec<Call<'a>>,
    pub aps: Vec<Ap<'a>>,
    pub args: Vec<Value<'a>>,
    pub slots: Vec<u64>,
    pub names: Vec<&'a str>,
}

impl<'a> ParseBuffers<'a> {
    /// The storage of a tree that is no longer used (with the name table's, if any).
    pub fn from_ast(ast: Ast<'a>, table: ParseBuffers<'a>) -> Self {
        let heap_free = ast.heap_free;
        ParseBuffers { heap_free, nodes: ast.nodes, calls: ast.calls, aps: ast.aps, args: ast.args, ..table }
    }

    /// Emptied, for a script of another lifetime; a buffer above `max_bytes` is dropped.
    pub fn kept<'b>(mut self, max_bytes: usize) -> ParseBuffers<'b> {
        use crate::scratch::{forget_elements, keep};
        if self.heap_free {
            // nothing to drop: the elements are forgotten instead of visited one by one
            forget_elements(&mut self.nodes);
            forget_elements(&mut self.calls);
            forget_elements(&mut self.aps);
            forget_elements(&mut self.args);
        }
        ParseBuffers {
            heap_free: false,
            nodes: keep(self.nodes, max_bytes),
            calls: keep(self.calls, max_bytes),
            aps: keep(self.aps, max_bytes),
            args: keep(self.args, max_bytes),
            slots: keep(self.slots, max_bytes),
            names: keep(self.names, max_bytes),
        }
    }
}

/// [`parse_with_limits`] into the storage of `buffers`; the name table's storage is handed
/// back in `buffers` (the tree's is in the tree).
pub(crate) fn parse_into<'a>(
    script: &'a str,
    limits: ParseLimits,
    buffers: &mut ParseBuffers<'a>,
) -> Result<Ast<'a>, ParseError> {
    parse_impl(script, limits, true, buffers)
}

/// The parser, with or without its byte-level fast paths (tests compare both).
fn parse_impl<'a>(
    script: &'a str,
    limits: ParseLimits,
    fast: bool,
    buffers: &mut ParseBuffers<'a>,
) -> Result<Ast<'a>, ParseError> {
    if script.len() > limits.max_size {
        return Err(ParseError::new(
            ParseErrorKind::TooBig { size: script.len(), limit: limits.max_size },
            Span::new(0, 0),
            script,
        ));
    }
    // every instruction starts with a `(` (a call has two): the arenas are sized once
    // the arenas are sized once, from counts of `(` (every instruction has one), `(c` (calls, and
    // canons) and `(a` (aps): no arena grows while parsing, and none is much too big
    let Opens { parens, calls, aps } = count_opens(script.as_bytes());
    fn sized<T>(mut v: Vec<T>, n: usize) -> Vec<T> {
        v.clear();
        v.reserve(n);
        v
    }
    let b = std::mem::take(buffers);
    let mut p = Parser {
        script,
        lexer: Lexer::new(script),
        pos: skip(script.as_bytes(), 0),
        peeked: None,
        last: Span::new(0, 0),
        nodes: sized(b.nodes, parens),
        calls: sized(b.calls, calls),
        aps: sized(b.aps, aps),
        args: sized(b.args, calls),
        v: Validator::new(script),
        names: Interner::with_buffers(b.slots, b.names, parens / 2, parens + 1),
        pending: None,
        fast,
        heap_free: true,
    };
    let root = p.parse_root(limits.max_depth);
    p.take_pending();
    let names = p.names.len();
    (buffers.slots, buffers.names) = std::mem::take(&mut p.names).into_buffers();
    let root = match root {
        Ok(root) => root,
        Err(e) => {
            // an unclosed string anywhere in the script is reported first, as if the whole
            // script had been tokenized before parsing
            tokenize(script)?;
            return Err(*e);
        }
    };
    if let Some(e) = p.v.finish() {
        return Err(e);
    }
    let heap_free = p.heap_free;
    Ok(Ast { nodes: p.nodes, root, names, calls: p.calls, aps: p.aps, args: p.args, heap_free })
}

/// An open composite instruction (small: the frames of `seq`, `par` and `xor` are most of them).
enum Frame<'a> {
    Bin { kind: u8, start: usize, left: Option<NodeId> },
    Match(Box<MatchFrame<'a>>),
    Fold(Box<FoldFrame<'a>>),
    New { name: Name<'a> },
}

struct MatchFrame<'a> {
    negate: bool,
    left: Value<'a>,
    right: Value<'a>,
}

struct FoldFrame<'a> {
    iterable: Iterable<'a>,
    iterator: Name<'a>,
    body: Option<NodeId>,
}

struct Parser<'a> {
    /// Whether the byte-level fast paths are on (always, except in tests that compare them
    /// with the token path).
    fast: bool,
    script: &'a str,
    lexer: Lexer<'a>,
    /// Where the next token starts: what was taken and the whitespace and comments after it
    /// end here.
    pos: usize,
    /// The next token, once the token path looked at it (the fast paths read bytes at `pos`).
    peeked: Option<Token>,
    /// Span of the last token taken.
    last: Span,
    nodes: Vec<Node<'a>>,
    calls: Vec<Call<'a>>,
    aps: Vec<Ap<'a>>,
    args: Vec<Value<'a>>,
    /// The static checks, made as instructions are read.
    v: Validator<'a>,
    /// Name numbers.
    names: Interner<'a>,
    /// The destination of the last fast-path `call` or `ap`, numbered when the next name is
    /// read or the parse ends (see [`Parser::defer`]).
    pending: Option<Pending<'a>>,
    /// Whether only the byte-level fast paths read instructions so far: they make no boxed
    /// instruction or lambda, so the tree owns no heap memory (the token path may).
    heap_free: bool,
}

/// A destination name read by a fast path whose number is taken later ([`Parser::defer`]).
struct Pending<'a> {
    text: &'a str,
    hash: u32,
    /// Where its id goes.
    target: Target,
}

/// The instruction whose destination a [`Pending`] name is.
enum Target {
    /// The output of `calls[i]`.
    CallOutput(u32),
    /// The destination of `aps[i]`.
    ApDest(u32),
}

/// Errors are boxed on the hot path: results stay small.
type PResult<T> = Result<T, Box<ParseError>>;

impl<'a> Parser<'a> {
    #[cold]
    #[inline(never)]
    fn err(&self, kind: ParseErrorKind, span: Span) -> Box<ParseError> {
        Box::new(ParseError::new(kind, span, self.script))
    }

    #[cold]
    #[inline(never)]
    fn unexpected(&self, expected: &'static str, t: Token) -> Box<ParseError> {
        match t.kind {
            Kind::End => self.err(ParseErrorKind::UnexpectedEnd { expected }, t.span()),
            _ => self.err(ParseErrorKind::Unexpected { expected, found: t.tok(self.script).describe() }, t.span()),
        }
    }

    /// The text of a token.
    #[inline(always)]
    fn text(&self, t: Token) -> &'a str {
        t.text(self.script)
    }

    #[inline(always)]
    fn intern(&mut self, name: &mut Name<'a>) {
        self.take_pending();
        name.id = self.names.id(name.text);
    }

    /// Numbers the destination name of the fast-path `call` or `ap` just pushed when the next
    /// name is read (or the parse ends) rather than now: a new name's slot in the interner's
    /// table is a cache miss, which the parse of the next instruction hides once its address is
    /// prefetched (`hash` comes from [`Interner::hash_and_prefetch`]). Ids stay in order of
    /// first appearance (the pending name is numbered before any later one), and the validator
    /// defines the name when it is numbered: before any later check, each of which reads its
    /// names first.
    #[inline(always)]
    fn defer(&mut self, text: &'a str, hash: u32, target: Target) {
        self.take_pending();
        self.pending = Some(Pending { text, hash, target });
    }

    /// Numbers the pending destination name, if any (see [`Parser::defer`]).
    #[inline(always)]
    fn take_pending(&mut self) {
        let Some(Pending { text, hash, target }) = self.pending.take() else { return };
        let id = self.names.id_hashed(text, hash);
        let name = match target {
            Target::CallOutput(i) => match &mut self.calls[i as usize].output {
                CallOutput::Scalar(n) | CallOutput::Stream(n) => n,
                CallOutput::None => unreachable!("a pending call output is set"),
            },
            Target::ApDest(i) => match &mut self.aps[i as usize].dest {
                ApDest::Scalar(n) | ApDest::Stream(n) => n,
            },
        };
        name.id = id;
        self.v.define(*name);
    }

    /// Classifies a word as a value and numbers its names.
    #[inline(always)]
    fn word_value(&mut self, t: Token) -> PResult<Value<'a>> {
        let w = self.text(t);
        let b = w.as_bytes();
        if t.plain && !is_bool(b) {
            let mut name = Name::new(w);
            self.intern(&mut name);
            return Ok(match b[0] {
                b'$' => Value::Stream(name),
                b'%' => Value::StreamMap(name),
                _ => Value::Scalar { name, lambda: None },
            });
        }
        // a plain integer (what `number` makes of it: at most 18 digits always fit in an i64)
        if b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
            let n = b.iter().fold(0i64, |n, d| n * 10 + (d - b'0') as i64);
            return Ok(Value::Number(Number::Int(n)));
        }
        self.word_value_general(w, t.span())
    }

    #[inline(never)]
    fn word_value_general(&mut self, w: &'a str, span: Span) -> PResult<Value<'a>> {
        let mut v = word_value(w).map_err(|k| self.err(k, span))?;
        match &mut v {
            Value::LastError(lambda) | Value::Error(lambda) => self.intern_lambda(lambda),
            Value::Scalar { name, lambda } | Value::Canon { name, lambda } | Value::CanonMap { name, lambda } => {
                self.intern(name);
                self.intern_lambda(lambda);
            }
            Value::ScalarLength(name)
            | Value::CanonLength(name)
            | Value::CanonMapLength(name)
            | Value::Stream(name)
            | Value::StreamMap(name) => self.intern(name),
            _ => {}
        }
        Ok(v)
    }

    fn intern_lambda(&mut self, lambda: &mut Option<Box<Lambda<'a>>>) {
        for a in lambda.iter_mut().flat_map(|l| l.accessors.iter_mut()) {
            if let Accessor::Scalar(name) = a {
                self.intern(name);
            }
        }
    }

    /// The next token, without taking it.
    #[inline(always)]
    fn tok(&mut self) -> Token {
        if let Some(t) = self.peeked {
            return t;
        }
        self.lexer.seek(self.pos);
        let t = self.lexer.next_token();
        self.peeked = Some(t);
        t
    }

    /// Takes the next token.
    #[inline(always)]
    fn bump(&mut self) -> Token {
        let t = self.tok();
        self.peeked = None;
        self.pos = skip(self.script.as_bytes(), t.end as usize);
        self.last = t.span();
        t
    }

    /// Takes what a fast path read: the bytes up to `end`; `last` is the last token's span.
    #[inline(always)]
    fn taken(&mut self, end: usize, last: Span) {
        self.peeked = None;
        self.pos = skip(self.script.as_bytes(), end);
        self.last = last;
    }

    /// The first byte of the next token (`None` at the end), without lexing it.
    #[inline(always)]
    fn next_byte(&self) -> Option<u8> {
        self.script.as_bytes().get(self.pos).copied()
    }

    /// Takes the next token; the end of the script is an error.
    #[inline(always)]
    fn next(&mut self, expected: &'static str) -> PResult<Token> {
        let t = self.tok();
        if t.kind == Kind::End {
            return Err(self.unexpected(expected, t));
        }
        Ok(self.bump())
    }

    #[inline(always)]
    fn expect(&mut self, kind: Kind, expected: &'static str) -> PResult<Span> {
        let t = self.tok();
        if t.kind == kind {
            return Ok(self.bump().span());
        }
        Err(self.unexpected(expected, t))
    }

    #[inline(always)]
    fn word(&mut self, expected: &'static str) -> PResult<Token> {
        let t = self.next(expected)?;
        match t.kind {
            Kind::Word => Ok(t),
            _ => Err(self.unexpected(expected, t)),
        }
    }

    #[inline(always)]
    fn push(&mut self, instr: Instr<'a>) -> NodeId {
        push(&mut self.nodes, Node { instr });
        NodeId((self.nodes.len() - 1) as u32)
    }

    fn parse_root(&mut self, max_depth: usize) -> PResult<NodeId> {
        let mut stack: Vec<Frame<'a>> = Vec::new();
        loop {
            let mut done = self.open_instruction(&mut stack)?;
            if stack.len() > max_depth {
                return Err(self.err(ParseErrorKind::TooDeep(max_depth), self.last));
            }
            while let Some(node) = done.take() {
                let Some(frame) = stack.last_mut() else {
                    let t = self.tok();
                    if t.kind != Kind::End {
                        return Err(self.unexpected("the end of the script", t));
                    }
                    return Ok(node);
                };
                match frame {
                    Frame::Bin { left: left @ None, .. } => *left = Some(node),
                    Frame::Fold(f) if f.body.is_none() => {
                        f.body = Some(node);
                        if self.next_byte() == Some(b')') {
                            done = Some(self.close(&mut stack, None)?);
                        }
                    }
                    _ => done = Some(self.close(&mut stack, Some(node))?),
                }
            }
        }
    }

    /// Closes the top frame with its last child and returns the new node.
    #[inline(always)]
    fn close(&mut self, stack: &mut Vec<Frame<'a>>, last: Option<NodeId>) -> PResult<NodeId> {
        let p = self.pos;
        let end = if self.script.as_bytes().get(p) == Some(&b')') {
            self.taken(p + 1, Span::new(p, p + 1));
            p + 1
        } else {
            self.expect(Kind::RParen, "')'")?.end as usize
        };
        let frame = stack.pop().expect("close is called with an open frame");
        self.v.close(stack.len(), end);
        let instr = match frame {
            Frame::Bin { kind, left, .. } => {
                let (l, r) = (left.expect("left child set"), last.expect("right child given"));
                match kind {
                    0 => Instr::Seq(l, r),
                    1 => Instr::Par(l, r),
                    _ => Instr::Xor(l, r),
                }
            }
            Frame::Match(m) => {
                let MatchFrame { negate, left, right } = *m;
                Instr::Match(Box::new(Match { left, right, body: last.expect("body given"), negate }))
            }
            Frame::New { name } => Instr::New(Box::new(New { name, body: last.expect("body given") })),
            Frame::Fold(f) => {
                let FoldFrame { iterable, iterator, body } = *f;
                Instr::Fold(Box::new(Fold { iterable, iterator, body: body.expect("body set"), last }))
            }
        };
        Ok(self.push(instr))
    }

    /// Reads `(keyword …`: pushes a frame for a composite instruction, or parses a whole leaf.
    #[inline(always)]
    fn open_instruction(&mut self, stack: &mut Vec<Frame<'a>>) -> PResult<Option<NodeId>> {
        if self.fast
            && self.next_byte() == Some(b'(')
            && let Some(done) = self.open_fast(stack)
        {
            return Ok(done);
        }
        self.heap_free = false;
        let start = self.expect(Kind::LParen, "an instruction '('")?.start as usize;
        let kw_token = self.word("an instruction keyword")?;
        let kw = self.text(kw_token);
        let frame = match kw {
            "seq" => Frame::Bin { kind: 0, start, left: None },
            "par" => Frame::Bin { kind: 1, start, left: None },
            "xor" => Frame::Bin { kind: 2, start, left: None },
            "call" => return self.call(start).map(Some),
            "ap" => return self.ap(start).map(Some),
            "match" | "mismatch" => {
                let left = self.value()?;
                let right = self.value()?;
                for v in [&left, &right] {
                    self.check_not_stream(v, "a stream in match")?;
                }
                self.v.open_match(&left, &right, start, stack.len());
                Frame::Match(Box::new(MatchFrame { negate: kw == "mismatch", left, right }))
            }
            "fold" => {
                let (iterable, span) = self.value_spanned()?;
                let iterable = match iterable {
                    Value::Stream(n) => Iterable::Stream(n),
                    Value::StreamMap(n) => Iterable::StreamMap(n),
                    v @ (Value::Scalar { .. } | Value::Canon { .. } | Value::CanonMap { .. } | Value::EmptyArray) => {
                        Iterable::Value(v)
                    }
                    other => {
                        return Err(self.err(
                            ParseErrorKind::NotAllowed { what: "this fold iterable", found: other.to_string() },
                            span,
                        ));
                    }
                };
                let iterator = self.scalar_name("a fold iterator")?;
                self.v.open_fold(&iterable, iterator, start, stack.len());
                Frame::Fold(Box::new(FoldFrame { iterable, iterator, body: None }))
            }
            "new" => {
                let t = self.word("a variable")?;
                let name = match self.word_value(t)? {
                    Value::Scalar { name, lambda: None }
                    | Value::Stream(name)
                    | Value::StreamMap(name)
                    | Value::Canon { name, lambda: None }
                    | Value::CanonMap { name, lambda: None } => name,
                    _ => {
                        return Err(self.err(
                            ParseErrorKind::NotAllowed { what: "this new variable", found: self.text(t).to_string() },
                            t.span(),
                        ));
                    }
                };
                self.v.open_new(name, start, stack.len());
                Frame::New { name }
            }
            _ => {
                let instr = self.leaf(kw, kw_token.span())?;
                let span = self.end_leaf(start)?;
                match instr {
                    Instr::Next(ref it) => self.check_next(**it, span, stack),
                    ref leaf => self.v.leaf(leaf, span),
                }
                return Ok(Some(self.push(instr)));
            }
        };
        stack.push(frame);
        Ok(None)
    }

    /// The fast path of [`Parser::open_instruction`], on the bytes after the lookahead `(`: a
    /// keyword right after it opens a `seq`, `par` or `xor` frame, and the common forms of `call`,
    /// `ap`, `null` and `never` are read without tokens. `None`: not one of those (nothing was
    /// consumed); the token path reads the instruction and reports any error.
    #[inline(always)]
    fn open_fast(&mut self, stack: &mut Vec<Frame<'a>>) -> Option<Option<NodeId>> {
        let b = self.script.as_bytes();
        let start = self.pos;
        let kw_start = start + 1;
        // the usual keywords followed by a space, from one 4-byte load
        let word = |s: &[u8; 4]| u32::from_le_bytes(*s);
        let quick = b.get(kw_start..kw_start + 4).map(|w| word(w.try_into().expect("4 bytes")));
        let (kind, kw_end) = match quick {
            Some(w) if w == word(b"seq ") => (0, kw_start + 3),
            Some(w) if w & 0x00ff_ffff == word(b"ap \0") => return self.ap_fast(start, kw_start + 2).map(Some),
            Some(w) if w == word(b"call") && b.get(kw_start + 4) == Some(&b' ') => {
                return self.call_fast(start, kw_start + 4).map(Some);
            }
            Some(w) if w == word(b"par ") => (1, kw_start + 3),
            Some(w) if w == word(b"xor ") => (2, kw_start + 3),
            _ => {
                let mut kw_end = kw_start;
                while b.get(kw_end).is_some_and(u8::is_ascii_lowercase) {
                    kw_end += 1;
                }
                // the keyword must be a whole word (`(seq(null)…` is one word: the token path
                // refuses it)
                if !word_ends(b, kw_end) {
                    return None;
                }
                let kind = match &b[kw_start..kw_end] {
                    b"seq" => 0,
                    b"par" => 1,
                    b"xor" => 2,
                    b"call" => return self.call_fast(start, kw_end).map(Some),
                    b"ap" => return self.ap_fast(start, kw_end).map(Some),
                    b"null" | b"never" => {
                        let p = skip(b, kw_end);
                        if b.get(p) != Some(&b')') {
                            return None;
                        }
                        let instr = if kw_end - kw_start == 4 { Instr::Null } else { Instr::Never };
                        return Some(Some(self.end_fast(instr, p)));
                    }
                    _ => return None,
                };
                (kind, kw_end)
            }
        };
        self.taken(kw_end, Span::new(kw_start, kw_end));
        push(stack, Frame::Bin { kind, start, left: None });
        Some(None)
    }

    /// A leaf read by a fast path, up to its `)` at `close`.
    #[inline(always)]
    fn end_fast(&mut self, instr: Instr<'a>, close: usize) -> NodeId {
        self.taken(close + 1, Span::new(close, close + 1));
        self.push(instr)
    }

    /// `(call PEER (SERVICE FUNCTION) [ARGS…] OUTPUT?)` whose parts are string literals, plain
    /// names, `%init_peer_id%`, integers and `[]` (see [`Parser::open_fast`]).
    ///
    /// The call is written part by part into the arena's next slot. (Built whole and pushed, the
    /// 160-byte call went through a `memcpy` whose wide loads read fields just stored in
    /// narrower parts: a store-forwarding stall on every call, 8% of a 10,000-call parse.)
    #[inline(always)]
    fn call_fast(&mut self, start: usize, kw_end: usize) -> Option<NodeId> {
        let b = self.script.as_bytes();
        self.calls.reserve(1);
        // SAFETY (here and at every use of `slot` below): `slot` is the first spare slot of
        // `calls` (reserved above). Nothing pushes to `calls` or moves it before `set_len`, so
        // the pointer stays valid (numbering a pending name, `take_pending`, writes into an
        // earlier call through a reference to `calls[..len]`, which does not cover the spare
        // slot), and until then the slot is not part of the vector: a return
        // before it leaves a partly written slot that nothing reads, holding only fast-path
        // values, which own no heap memory (nothing leaks). Each field is written before it is
        // read.
        let slot: *mut Call<'a> = unsafe { self.calls.as_mut_ptr().add(self.calls.len()) };
        let p = self.value_fast_into(skip(b, kw_end), unsafe { &raw mut (*slot).peer })?;
        if !matches!(unsafe { &(*slot).peer }, Value::Literal(_) | Value::Scalar { .. } | Value::InitPeerId) {
            return None;
        }
        let p = skip(b, p);
        if b.get(p) != Some(&b'(') {
            return None;
        }
        let p = self.value_fast_into(skip(b, p + 1), unsafe { &raw mut (*slot).service })?;
        let p = self.value_fast_into(skip(b, p), unsafe { &raw mut (*slot).function })?;
        if !matches!(
            unsafe { (&(*slot).service, &(*slot).function) },
            (Value::Literal(_) | Value::Scalar { .. }, Value::Literal(_) | Value::Scalar { .. })
        ) {
            return None;
        }
        let p = skip(b, p);
        if b.get(p) != Some(&b')') {
            return None;
        }
        let mut p = skip(b, p + 1);
        if b.get(p) != Some(&b'[') {
            return None;
        }
        let first = self.args.len();
        p = skip(b, p + 1);
        while b.get(p) != Some(&b']') {
            match self.value_fast(p) {
                Some((v, end)) if !matches!(v, Value::Stream(_) | Value::StreamMap(_)) => {
                    push(&mut self.args, v);
                    p = skip(b, end);
                }
                _ => {
                    self.args.truncate(first);
                    return None;
                }
            }
        }
        p = skip(b, p + 1);
        let mut output = CallOutput::None;
        let mut hash = 0;
        if !matches!(b.get(p), Some(b')') | None) {
            let Some((name, stream, end, h)) = self.dest_fast(p) else {
                self.args.truncate(first);
                return None;
            };
            output = if stream { CallOutput::Stream(name) } else { CallOutput::Scalar(name) };
            hash = h;
            p = skip(b, end);
        }
        if b.get(p) != Some(&b')') {
            self.args.truncate(first);
            return None;
        }
        let args = ArgRange { start: first as u32, len: (self.args.len() - first) as u32 };
        unsafe {
            (&raw mut (*slot).args).write(args);
            (&raw mut (*slot).output).write(output);
            self.calls.set_len(self.calls.len() + 1);
        }
        let i = (self.calls.len() - 1) as u32;
        let call = self.calls.last().expect("just pushed");
        // the uses are checked now, the output is defined when it is numbered
        self.v.call_uses(call, &self.args[first..], Span::new(start, p + 1));
        if let CallOutput::Scalar(n) | CallOutput::Stream(n) = call.output {
            self.defer(n.text, hash, Target::CallOutput(i));
        }
        Some(self.end_fast(Instr::Call(i), p))
    }

    /// `(ap ARG DEST)` whose argument is a literal, a plain name or `[]` and whose destination is
    /// a plain scalar or stream name (see [`Parser::open_fast`]).
    #[inline(always)]
    fn ap_fast(&mut self, start: usize, kw_end: usize) -> Option<NodeId> {
        let b = self.script.as_bytes();
        let (arg, p) = self.value_fast(skip(b, kw_end))?;
        if matches!(arg, Value::Stream(_) | Value::StreamMap(_)) {
            return None;
        }
        let (name, stream, end, hash) = self.dest_fast(skip(b, p))?;
        let dest = if stream { ApDest::Stream(name) } else { ApDest::Scalar(name) };
        let p = skip(b, end);
        if b.get(p) != Some(&b')') {
            return None;
        }
        // built where it goes and checked there (built first, it went through the stack and was
        // copied with wider loads than it was written with: a store-forwarding stall); the
        // destination is defined when it is numbered
        push(&mut self.aps, Ap { arg, dest });
        let i = (self.aps.len() - 1) as u32;
        let ap = self.aps.last().expect("just pushed");
        self.v.ap_uses(ap, Span::new(start, p + 1));
        self.defer(name.text, hash, Target::ApDest(i));
        Some(self.end_fast(Instr::Ap(i), p))
    }

    /// A value at `p` read as bytes: a string literal, `[]`, an integer of at most 18 digits,
    /// `%init_peer_id%`, or a plain scalar / `$stream` name (numbered). Returns it and the
    /// position after it; `None` for anything else.
    #[inline(always)]
    fn value_fast(&mut self, p: usize) -> Option<(Value<'a>, usize)> {
        let script = self.script;
        let b = script.as_bytes();
        match *b.get(p)? {
            b'"' => {
                let len = b[p + 1..].iter().position(|c| *c == b'"')?;
                Some((Value::Literal(ascii_bounded(script, p + 1, p + 1 + len)), p + len + 2))
            }
            b'[' => {
                let q = skip(b, p + 1);
                (b.get(q) == Some(&b']')).then_some((Value::EmptyArray, q + 1))
            }
            b'0'..=b'9' => {
                let mut e = p;
                let mut n = 0i64;
                while let Some(d @ b'0'..=b'9') = b.get(e) {
                    n = n.wrapping_mul(10).wrapping_add((d - b'0') as i64);
                    e += 1;
                }
                (e - p <= 18 && word_ends(b, e)).then_some((Value::Number(Number::Int(n)), e))
            }
            b'%' => {
                let e = p + "%init_peer_id%".len();
                (b.get(p..e) == Some(b"%init_peer_id%") && word_ends(b, e)).then_some((Value::InitPeerId, e))
            }
            _ => {
                let (name, stream, e) = self.name_fast(p)?;
                Some((if stream { Value::Stream(name) } else { Value::Scalar { name, lambda: None } }, e))
            }
        }
    }

    /// [`Parser::value_fast`], the value written to `out` (valid for writes) instead of
    /// returned: it is stored once, where it stays. Returns the position after it.
    #[inline(always)]
    fn value_fast_into(&mut self, p: usize, out: *mut Value<'a>) -> Option<usize> {
        let (v, e) = self.value_fast(p)?;
        // SAFETY: the caller passes a pointer valid for writes; a value there before (none in
        // `call_fast`, whose slot is spare capacity) is overwritten without being dropped, and
        // fast-path values own no heap memory.
        unsafe { out.write(v) };
        Some(e)
    }

    /// A plain scalar or `$stream` name at `p` (numbered), whether it is a stream, and the
    /// position after it; `None` for anything else (also for what [`Parser::value_fast`] reads
    /// as another kind of value).
    #[inline(always)]
    fn name_fast(&mut self, p: usize) -> Option<(Name<'a>, bool, usize)> {
        let (w, stream, e) = plain_name_at(self.script, p)?;
        let mut name = Name::new(w);
        self.intern(&mut name);
        Some((name, stream, e))
    }

    /// [`Parser::name_fast`] for a destination (a call's output, an `ap`'s destination): the name
    /// is not numbered yet (id `u32::MAX` until [`Parser::defer`]'s numbering) and the hash of
    /// its text is returned, its table slot prefetched.
    #[inline(always)]
    fn dest_fast(&mut self, p: usize) -> Option<(Name<'a>, bool, usize, u32)> {
        let (w, stream, e) = plain_name_at(self.script, p)?;
        let hash = self.names.hash_and_prefetch(w);
        Some((Name { text: w, id: u32::MAX }, stream, e, hash))
    }

    /// The `)` of a leaf that started at `start`: its span.
    #[inline(always)]
    fn end_leaf(&mut self, start: usize) -> PResult<Span> {
        let end = self.expect(Kind::RParen, "')'")?.end as usize;
        Ok(Span::new(start, end))
    }

    /// `(call PEER (SERVICE FUNCTION) [ARGS…] OUTPUT?)` after the keyword.
    #[inline(always)]
    fn call(&mut self, start: usize) -> PResult<NodeId> {
        let (peer, span) = self.value_spanned()?;
        self.check_triplet_part(&peer, span, true)?;
        self.expect(Kind::LParen, "'(' of the service and function")?;
        let (service, span) = self.value_spanned()?;
        self.check_triplet_part(&service, span, false)?;
        let (function, span) = self.value_spanned()?;
        self.check_triplet_part(&function, span, false)?;
        self.expect(Kind::RParen, "')' after the function name")?;
        self.expect(Kind::LBracket, "'[' of the arguments")?;
        let first = self.args.len();
        while self.tok().kind != Kind::RBracket {
            let (v, span) = self.value_spanned()?;
            if matches!(v, Value::Stream(_) | Value::StreamMap(_)) {
                return Err(self.err(
                    ParseErrorKind::NotAllowed { what: "a stream as a call argument", found: v.to_string() },
                    span,
                ));
            }
            self.args.push(v);
        }
        self.bump();
        let output = if self.tok().kind == Kind::Word {
            let t = self.bump();
            match self.word_value(t)? {
                Value::Scalar { name, lambda: None } => CallOutput::Scalar(name),
                Value::Stream(name) => CallOutput::Stream(name),
                _ => {
                    return Err(self.err(
                        ParseErrorKind::NotAllowed { what: "this call output", found: self.text(t).to_string() },
                        t.span(),
                    ));
                }
            }
        } else {
            CallOutput::None
        };
        let args = ArgRange { start: first as u32, len: (self.args.len() - first) as u32 };
        let call = Call { peer, service, function, args, output };
        let span = self.end_leaf(start)?;
        self.v.call(&call, &self.args[first..], span);
        self.calls.push(call);
        Ok(self.push(Instr::Call((self.calls.len() - 1) as u32)))
    }

    /// `(ap ARG DEST)` or `(ap (KEY VALUE) %map)` after the keyword.
    #[inline(always)]
    fn ap(&mut self, start: usize) -> PResult<NodeId> {
        if self.tok().kind == Kind::LParen {
            let instr = self.ap_map()?;
            let span = self.end_leaf(start)?;
            self.v.leaf(&instr, span);
            return Ok(self.push(instr));
        }
        let (arg, span) = self.value_spanned()?;
        self.check_ap_arg(&arg, span)?;
        let t = self.word("an ap destination")?;
        let dest = match self.word_value(t)? {
            Value::Scalar { name, lambda: None } => ApDest::Scalar(name),
            Value::Stream(name) => ApDest::Stream(name),
            _ => {
                return Err(self.err(
                    ParseErrorKind::NotAllowed { what: "this ap destination", found: self.text(t).to_string() },
                    t.span(),
                ));
            }
        };
        let ap = Ap { arg, dest };
        let span = self.end_leaf(start)?;
        self.v.ap(&ap, span);
        self.aps.push(ap);
        Ok(self.push(Instr::Ap((self.aps.len() - 1) as u32)))
    }

    fn ap_map(&mut self) -> PResult<Instr<'a>> {
        self.bump();
        let (key, kspan) = self.value_spanned()?;
        match &key {
            Value::Literal(_)
            | Value::Number(Number::Int(_))
            | Value::Scalar { .. }
            | Value::Canon { lambda: Some(_), .. } => {}
            other => {
                return Err(
                    self.err(ParseErrorKind::NotAllowed { what: "this map key", found: other.to_string() }, kspan)
                );
            }
        }
        let (value, vspan) = self.value_spanned()?;
        self.check_ap_arg(&value, vspan)?;
        self.expect(Kind::RParen, "')' after the key and value")?;
        let t = self.word("a stream map")?;
        match self.word_value(t)? {
            Value::StreamMap(map) => Ok(Instr::ApMap(Box::new(ApMap { key, value, map }))),
            _ => {
                let found = self.text(t).to_string();
                Err(self.err(ParseErrorKind::NotAllowed { what: "this ap destination", found }, t.span()))
            }
        }
    }

    /// The static checks of `next`: inside a fold over its iterator, once, and (stream folds)
    /// never on the left of a `seq` or `par` between the fold and the `next`.
    fn check_next(&mut self, it: Name<'a>, span: Span, stack: &[Frame<'a>]) {
        if self.v.failed() {
            return;
        }
        let Some(fi) = self.v.folds.iter_mut().rev().find(|f| f.iterator.id == it.id) else {
            self.v.record(ParseErrorKind::NextOutsideFold(it.to_string()), span, None);
            return;
        };
        fi.nexts += 1;
        if fi.nexts > 1 {
            self.v.record(ParseErrorKind::MultipleNext(it.to_string()), span, None);
            return;
        }
        if fi.over_stream {
            let fold_depth = fi.depth;
            for (depth, frame) in stack.iter().enumerate().skip(fold_depth + 1).rev() {
                if let Frame::Bin { kind: 0 | 1, start, left: None } = frame {
                    let kind = ParseErrorKind::InstructionAfterNext(it.to_string());
                    self.v.record(kind, Span::new(*start, *start), Some(depth));
                    return;
                }
            }
        }
    }

    /// The leaves other than call and ap.
    fn leaf(&mut self, kw: &str, kw_span: Span) -> PResult<Instr<'a>> {
        Ok(match kw {
            "null" => Instr::Null,
            "never" => Instr::Never,
            "next" => Instr::Next(Box::new(self.scalar_name("a fold iterator")?)),
            "canon" => {
                let (peer, span) = self.value_spanned()?;
                self.check_triplet_part(&peer, span, true)?;
                let t = self.word("a stream or stream map")?;
                let src = self.word_value(t)?;
                let (source, span) = (self.text(t), t.span());
                let dt = self.word("a canon destination")?;
                let dest = self.word_value(dt)?;
                let (dest_word, dspan) = (self.text(dt), dt.span());
                let dest = match (&src, dest) {
                    (Value::Stream(_), Value::Canon { name, lambda: None }) => CanonDest::Stream(name),
                    (Value::StreamMap(_), Value::CanonMap { name, lambda: None }) => CanonDest::Map(name),
                    (Value::StreamMap(_), Value::Scalar { name, lambda: None }) => CanonDest::Scalar(name),
                    (Value::Stream(_) | Value::StreamMap(_), _) => {
                        return Err(self.err(
                            ParseErrorKind::NotAllowed { what: "this canon destination", found: dest_word.to_string() },
                            dspan,
                        ));
                    }
                    _ => {
                        return Err(self.err(
                            ParseErrorKind::NotAllowed { what: "this canon source", found: source.to_string() },
                            span,
                        ));
                    }
                };
                let (Value::Stream(source) | Value::StreamMap(source)) = src else {
                    unreachable!("checked above: the source is a stream or a stream map")
                };
                Instr::Canon(Box::new(Canon { peer, source, dest }))
            }
            "fail" => {
                let (v, span) = self.value_spanned()?;
                match v {
                    Value::Number(Number::Int(code)) => {
                        let t = self.next("a fail message")?;
                        if t.kind != Kind::Str {
                            return Err(self.unexpected("a fail message", t));
                        }
                        let message = self.text(t);
                        if code == 0 {
                            return Err(self.err(ParseErrorKind::FailCodeZero, span));
                        }
                        Instr::Fail(Box::new(Fail::Literal { code, message }))
                    }
                    v @ (Value::Scalar { .. }
                    | Value::Canon { lambda: Some(_), .. }
                    | Value::LastError(None)
                    | Value::Error(None)) => Instr::Fail(Box::new(Fail::Value(v))),
                    other => {
                        return Err(self.err(
                            ParseErrorKind::NotAllowed { what: "this fail argument", found: other.to_string() },
                            span,
                        ));
                    }
                }
            }
            other => return Err(self.err(ParseErrorKind::UnknownInstruction(other.to_string()), kw_span)),
        })
    }

    fn check_not_stream(&self, v: &Value<'_>, what: &'static str) -> PResult<()> {
        if matches!(v, Value::Stream(_) | Value::StreamMap(_)) {
            return Err(self.err(ParseErrorKind::NotAllowed { what, found: v.to_string() }, self.last));
        }
        Ok(())
    }

    #[inline(always)]
    fn check_ap_arg(&self, v: &Value<'_>, span: Span) -> PResult<()> {
        if matches!(v, Value::Stream(_) | Value::StreamMap(_) | Value::CanonMap { lambda: None, .. }) {
            return Err(self.err(ParseErrorKind::NotAllowed { what: "this ap argument", found: v.to_string() }, span));
        }
        Ok(())
    }

    #[inline(always)]
    fn check_triplet_part(&self, v: &Value<'_>, span: Span, is_peer: bool) -> PResult<()> {
        let ok = match v {
            Value::Literal(_) | Value::Scalar { .. } => true,
            Value::Canon { lambda: Some(_), .. } | Value::CanonMap { lambda: Some(_), .. } => true,
            Value::InitPeerId => is_peer,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(self.err(ParseErrorKind::NotAllowed { what: "this triplet part", found: v.to_string() }, span))
        }
    }

    fn scalar_name(&mut self, expected: &'static str) -> PResult<Name<'a>> {
        let t = self.word(expected)?;
        match self.word_value(t)? {
            Value::Scalar { name, lambda: None } => Ok(name),
            _ => {
                let found = format!("'{}'", self.text(t));
                Err(self.err(ParseErrorKind::Unexpected { expected, found }, t.span()))
            }
        }
    }

    fn value(&mut self) -> PResult<Value<'a>> {
        Ok(self.value_spanned()?.0)
    }

    #[inline(always)]
    fn value_spanned(&mut self) -> PResult<(Value<'a>, Span)> {
        let t = self.next("a value")?;
        match t.kind {
            Kind::Str => Ok((Value::Literal(self.text(t)), t.span())),
            Kind::Word => Ok((self.word_value(t)?, t.span())),
            Kind::LBracket => {
                let end = self.expect(Kind::RBracket, "']' (the only array literal is [])")?;
                Ok((Value::EmptyArray, Span { start: t.start, end: end.end }))
            }
            _ => Err(self.unexpected("a value", t)),
        }
    }
}

/// How many `(`, `(c` and `(a` a script has (see [`count_opens`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Opens {
    parens: usize,
    calls: usize,
    aps: usize,
}

/// Counts `(`, `(c` and `(a` in one pass: 32 byte lanes with 8-bit counters, added up every 255
/// blocks (the loop vectorizes; the three separate counts it replaces cost 6% of a parse).
fn count_opens(b: &[u8]) -> Opens {
    const LANES: usize = 32;
    let mut total = Opens { parens: 0, calls: 0, aps: 0 };
    if b.is_empty() {
        return total;
    }
    // pairs start at `b[..n - 1]`; the last byte can only be a `(`
    let (first, second) = (&b[..b.len() - 1], &b[1..]);
    let blocks = first.len() / LANES;
    let mut block = 0;
    while block < blocks {
        let run = (blocks - block).min(255);
        let (mut p, mut c, mut a) = ([0u8; LANES], [0u8; LANES], [0u8; LANES]);
        for k in block..block + run {
            let x: &[u8; LANES] = first[k * LANES..(k + 1) * LANES].try_into().expect("a whole block");
            let y: &[u8; LANES] = second[k * LANES..(k + 1) * LANES].try_into().expect("a whole block");
            for l in 0..LANES {
                let open = (x[l] == b'(') as u8;
                p[l] += open;
                c[l] += open & (y[l] == b'c') as u8;
                a[l] += open & (y[l] == b'a') as u8;
            }
        }
        let sum = |v: [u8; LANES]| v.iter().map(|n| *n as usize).sum::<usize>();
        total.parens += sum(p);
        total.calls += sum(c);
        total.aps += sum(a);
        block += run;
    }
    for i in blocks * LANES..first.len() {
        let open = first[i] == b'(';
        total.parens += open as usize;
        total.calls += (open && second[i] == b'c') as usize;
        total.aps += (open && second[i] == b'a') as usize;
    }
    total.parens += (b[b.len() - 1] == b'(') as usize;
    total
}

/// `&script[start..end]` for two positions the fast paths found next to ASCII bytes they matched
/// (a quote, a name byte, the end of the script), without the out-of-line char-boundary check
/// of `str` indexing, which was 3-4% of a parse.
#[inline(always)]
fn ascii_bounded(script: &str, start: usize, end: usize) -> &str {
    debug_assert!(start <= end && script.is_char_boundary(start) && script.is_char_boundary(end));
    // SAFETY: `start <= end <= script.len()` and both are char boundaries: each of them is the
    // end of the script, or the position of an ASCII byte, or directly follows one (in UTF-8 a
    // continuation byte only follows a non-ASCII byte), as every caller checked on the bytes.
    unsafe { script.get_unchecked(start..end) }
}

/// `true` or `false` (without a call to `memcmp`: this is on the path of every name).
#[inline(always)]
fn is_bool(b: &[u8]) -> bool {
    match b.len() {
        4 => b[0] == b't' && b[1..] == *b"rue",
        5 => b[0] == b'f' && b[1..] == *b"alse",
        _ => false,
    }
}

/// Whether a word of plain bytes ends at `e`, as the lexer ends words: at ASCII whitespace (not
/// 0x0b), a `)` or `]`, or the end of the script.
#[inline(always)]
fn word_ends(b: &[u8], e: usize) -> bool {
    match b.get(e) {
        None => true,
        Some(c) => BYTE[*c as usize] & WORD_END != 0 || matches!(c, b')' | b']'),
    }
}

/// A plain scalar or `$stream` name at `p` (with its `$`), whether it is a stream, and the
/// position after it; `None` for anything else (a number, `true`/`false`, a name running into a
/// lambda or another token).
#[inline(always)]
fn plain_name_at(script: &str, p: usize) -> Option<(&str, bool, usize)> {
    let b = script.as_bytes();
    let body = p + (*b.get(p)? == b'$') as usize;
    let e = name_end(b, body);
    if e == body || matches!(b[body], b'0'..=b'9' | b'-') || !word_ends(b, e) {
        return None;
    }
    let w = ascii_bounded(script, p, e);
    (!is_bool(w.as_bytes())).then_some((w, body > p, e))
}

/// The end of the run of plain-name bytes (ASCII letters, digits, `_`, `-`: the bytes without
/// [`NOT_NAME`]) that starts at `p`. On x86-64, 16 bytes at a time (SSE2 is part of the
/// architecture): the reference's own benchmark script has names of up to 100 letters, whose
/// byte-by-byte scan was a quarter of its parse.
#[inline(always)]
fn name_end(b: &[u8], mut p: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    while p + 16 <= b.len() {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is enabled on every x86-64 target; the 16 bytes at `p` are inside `b`
        // (checked above) and the load has no alignment requirement.
        let not_name = unsafe {
            let v = _mm_loadu_si128(b.as_ptr().add(p).cast());
            // a letter: (byte | 0x20) - 'a' < 26, as a signed compare after moving 'a' to -128;
            // a digit: byte - '0' < 10, the same way
            let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
            let letter = _mm_cmplt_epi8(_mm_add_epi8(lower, _mm_set1_epi8(31)), _mm_set1_epi8(-128 + 26));
            let digit = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(80)), _mm_set1_epi8(-128 + 10));
            let other = _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'_' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'-' as i8)),
            );
            let name = _mm_or_si128(_mm_or_si128(letter, digit), other);
            !(_mm_movemask_epi8(name) as u32) & 0xffff
        };
        if not_name != 0 {
            return p + not_name.trailing_zeros() as usize;
        }
        p += 16;
    }
    while b.get(p).is_some_and(|c| BYTE[*c as usize] & NOT_NAME == 0) {
        p += 1;
    }
    p
}

/// The position of the next token at or after `p`, as the lexer skips whitespace and comments.
#[inline(always)]
fn skip(b: &[u8], mut p: usize) -> usize {
    // the usual cases first: no space, or one space before the next token
    match b.get(p) {
        Some(b' ') if b.get(p + 1).is_some_and(|c| BYTE[*c as usize] & (SPACE | COMMENT) == 0) => return p + 1,
        Some(c) if BYTE[*c as usize] & (SPACE | COMMENT) == 0 => return p,
        _ => {}
    }
    while let Some(&c) = b.get(p) {
        let class = BYTE[c as usize];
        if class & SPACE != 0 {
            p += 1;
        } else if class & COMMENT != 0 {
            p += b[p..].iter().position(|c| *c == b'\n').unwrap_or(b.len() - p);
        } else {
            break;
        }
    }
    p
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Classifies a bare word as a value.
pub(crate) fn word_value(w: &str) -> Result<Value<'_>, ParseErrorKind> {
    match w {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "%init_peer_id%" => return Ok(Value::InitPeerId),
        "%timestamp%" => return Ok(Value::Timestamp),
        "%ttl%" => return Ok(Value::Ttl),
        _ => {}
    }
    if let Some(rest) = w.strip_prefix("%last_error%") {
        return Ok(Value::LastError(opt_lambda(w, rest)?.map(Box::new)));
    }
    if let Some(rest) = w.strip_prefix(":error:") {
        return Ok(Value::Error(opt_lambda(w, rest)?.map(Box::new)));
    }
    if let Some(n) = number(w)? {
        return Ok(Value::Number(n));
    }
    let (prefix, rest) = if let Some(r) = w.strip_prefix("#%") {
        ("#%", r)
    } else if let Some(r) = w.strip_prefix("#$") {
        ("#$", r)
    } else if let Some(r) = w.strip_prefix('#') {
        ("#", r)
    } else if let Some(r) = w.strip_prefix('$') {
        ("$", r)
    } else if let Some(r) = w.strip_prefix('%') {
        ("%", r)
    } else {
        ("", w)
    };
    let name_len = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
    let name = &rest[..name_len];
    let tail = &rest[name_len..];
    if !prefix.is_empty()
        && let Some(dot) = w.find('.')
        && dot <= 2
    {
        return Err(ParseErrorKind::EmptyCanonName(w.to_string()));
    }
    if name.is_empty() || (!tail.is_empty() && !tail.starts_with('.')) {
        return Err(ParseErrorKind::InvalidToken(w.to_string()));
    }
    let full = &w[..prefix.len() + name.len()];
    if tail == ".length" {
        return match prefix {
            "" => Ok(Value::ScalarLength(Name::new(full))),
            "#" | "#$" => Ok(Value::CanonLength(Name::new(full))),
            "#%" => Ok(Value::CanonMapLength(Name::new(full))),
            _ => Err(ParseErrorKind::InvalidLambda(w.to_string())),
        };
    }
    let lambda = opt_lambda(w, tail)?.map(Box::new);
    let name = Name::new(full);
    match prefix {
        "" => Ok(Value::Scalar { name, lambda }),
        "#" | "#$" => Ok(Value::Canon { name, lambda }),
        "#%" => Ok(Value::CanonMap { name, lambda }),
        _ if lambda.is_some() => Err(ParseErrorKind::InvalidLambda(w.to_string())),
        "$" => Ok(Value::Stream(name)),
        _ => Ok(Value::StreamMap(name)),
    }
}

fn number(w: &str) -> Result<Option<Number>, ParseErrorKind> {
    let body = w.strip_prefix(['+', '-']).unwrap_or(w);
    if body.starts_with('.') && body[1..].starts_with(|c: char| c.is_ascii_digit()) {
        return Err(ParseErrorKind::LeadingDot(w.to_string()));
    }
    if !body.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok(None);
    }
    let mut dots = 0;
    for c in body.chars() {
        match c {
            '0'..='9' => {}
            '.' => dots += 1,
            _ => return Ok(None),
        }
    }
    match dots {
        0 => w.parse::<i64>().map(|i| Some(Number::Int(i))).map_err(|_| ParseErrorKind::IntOverflow(w.to_string())),
        1 => {
            if w.len() > 11 {
                return Err(ParseErrorKind::FloatTooBig(w.to_string()));
            }
            w.parse::<f64>().map(|f| Some(Number::Float(f))).map_err(|_| ParseErrorKind::InvalidToken(w.to_string()))
        }
        _ => Ok(None),
    }
}

fn opt_lambda<'a>(word: &str, tail: &'a str) -> Result<Option<Lambda<'a>>, ParseErrorKind> {
    if tail.is_empty() {
        return Ok(None);
    }
    let bad = || ParseErrorKind::InvalidLambda(word.to_string());
    let allowed = |c: char| c.is_alphanumeric() || "_-$@[]():?.*,\"'!".contains(c);
    if !tail.chars().all(allowed) {
        return Err(bad());
    }
    let mut s = tail.strip_prefix(".$").ok_or_else(bad)?;
    let mut accessors = Vec::new();
    while !s.is_empty() {
        let after_dot = s.strip_prefix('.');
        let t = after_dot.unwrap_or(s);
        if let Some(inner) = t.strip_prefix('[') {
            let close = inner.find(']').ok_or_else(bad)?;
            let content = &inner[..close];
            if content.is_empty() {
                return Err(bad());
            }
            if content.chars().all(|c| c.is_ascii_digit()) {
                accessors.push(Accessor::Index(content.parse::<u32>().map_err(|_| bad())?));
            } else if content.chars().all(is_name_char) {
                accessors.push(Accessor::Scalar(Name::new(content)));
            } else {
                return Err(bad());
            }
            s = &inner[close + 1..];
        } else if after_dot.is_some() {
            let end = t.find(['.', '[', '!']).unwrap_or(t.len());
            let field = &t[..end];
            if field.is_empty() {
                return Err(bad());
            }
            accessors.push(Accessor::Field(field));
            s = &t[end..];
        } else {
            return Err(bad());
        }
        if let Some(r) = s.strip_prefix('!') {
            s = r;
        }
    }
    if accessors.is_empty() {
        return Err(bad());
    }
    Ok(Some(Lambda { accessors }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::lexer::Lexer;

    /// Bytes of plain names: ASCII letters, digits, `_` and `-`.
    static NAME_BYTE: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = (b as u8).is_ascii_alphanumeric() || b == b'_' as usize || b == b'-' as usize;
            b += 1;
        }
        t
    };

    /// The lexer's plain-name rule ([`Token::plain`](crate::parser::lexer::Token) and not a
    /// boolean), written out: a scalar, `$stream` or `%map` name made of ASCII name bytes, not a
    /// number, keyword or special variable.
    fn plain_name(w: &str) -> Option<Name<'_>> {
        let bytes = w.as_bytes();
        let body = match bytes.first()? {
            b'$' | b'%' => &bytes[1..],
            _ => bytes,
        };
        let first = *body.first()?;
        // digits and signs may start numbers; `true`/`false` are booleans
        if first.is_ascii_digit() || first == b'-' || first == b'+' || !body.iter().all(|b| NAME_BYTE[*b as usize]) {
            return None;
        }
        if body.len() == bytes.len() && (w == "true" || w == "false") {
            return None;
        }
        Some(Name::new(w))
    }

    #[test]
    fn name_end_stops_at_the_first_byte_that_is_no_name_byte() {
        // every byte value at every position of a 40-byte run of name bytes, at every start:
        // the 16-byte scan, its tail and the byte loop must agree with the table
        let scalar = |b: &[u8], mut p: usize| {
            while b.get(p).is_some_and(|c| BYTE[*c as usize] & NOT_NAME == 0) {
                p += 1;
            }
            p
        };
        let names = b"aZ09_-mQx7";
        let base: Vec<u8> = (0..40).map(|i| names[i % names.len()]).collect();
        for byte in 0..=255u8 {
            for at in 0..base.len() {
                let mut b = base.clone();
                b[at] = byte;
                for start in [0, 1, 7, 15, 16, 17, 24, 39] {
                    assert_eq!(name_end(&b, start), scalar(&b, start), "byte {byte:#04x} at {at}, start {start}");
                }
            }
        }
        assert_eq!(name_end(&base, 0), 40);
        assert_eq!(name_end(b"", 0), 0);
    }

    #[test]
    fn counts() {
        let opens = |s: &str| {
            let o = count_opens(s.as_bytes());
            (o.parens, o.calls, o.aps)
        };
        assert_eq!(opens(""), (0, 0, 0));
        assert_eq!(opens("("), (1, 0, 0));
        assert_eq!(opens("(a"), (1, 0, 1));
        assert_eq!(opens("(a (b) (c))"), (3, 1, 1));
        // every length around the block size and the 255-block flush, against a plain count
        let unit = "(ap x y) (call a (b c) [])((c(a";
        for n in [1, 2, 3, 31, 32, 33, 64, 65, 255 * 32 + 1, 255 * 32 * 3 + 17] {
            let s: String = unit.chars().cycle().take(n).collect();
            let b = s.as_bytes();
            let pairs = |y: u8| b.windows(2).filter(|w| w[0] == b'(' && w[1] == y).count();
            assert_eq!(opens(&s), (b.iter().filter(|c| **c == b'(').count(), pairs(b'c'), pairs(b'a')), "{n}");
        }
    }

    #[test]
    fn values() {
        assert_eq!(word_value("1e3").unwrap(), Value::Scalar { name: Name::new("1e3"), lambda: None });
        assert_eq!(word_value("-x-").unwrap(), Value::Scalar { name: Name::new("-x-"), lambda: None });
        assert_eq!(word_value("-7").unwrap(), Value::Number(Number::Int(-7)));
        assert_eq!(word_value("1.5").unwrap(), Value::Number(Number::Float(1.5)));
        assert!(matches!(word_value(".5"), Err(ParseErrorKind::LeadingDot(_))));
        assert!(matches!(word_value("1.000000000001"), Err(ParseErrorKind::FloatTooBig(_))));
        assert!(matches!(word_value("99999999999999999999"), Err(ParseErrorKind::IntOverflow(_))));
        assert!(matches!(word_value("#c.$.[0]"), Err(ParseErrorKind::EmptyCanonName(_))));
        assert!(matches!(word_value("x.$"), Err(ParseErrorKind::InvalidLambda(_))));
        assert!(matches!(word_value("$st.$.a"), Err(ParseErrorKind::InvalidLambda(_))));
        let v = word_value("x.$.a[0]!.[i]").unwrap();
        assert_eq!(v.to_string(), "x.$.a.[0].[i]");
        assert_eq!(word_value("#cc.length").unwrap(), Value::CanonLength(Name::new("#cc")));
        assert_eq!(word_value("#$c").unwrap(), Value::Canon { name: Name::new("#$c"), lambda: None });
        assert_eq!(word_value(":error:.$.error_code").unwrap().to_string(), ":error:.$.error_code");
    }

    #[test]
    fn plain_names_agree_with_the_general_path() {
        for w in ["x", "x1", "_a-b", "$s", "%m", "true", "false", "-x-", "-7", "1e3", "$", "%", "a.b", "x.$.a", "$1"] {
            let token = Lexer::new(w).next_token();
            assert_eq!(token.plain && w != "true" && w != "false", plain_name(w).is_some(), "{w}");
            if let Some(n) = plain_name(w) {
                let general = word_value(w).unwrap();
                let fast = match w.as_bytes()[0] {
                    b'$' => Value::Stream(n),
                    b'%' => Value::StreamMap(n),
                    _ => Value::Scalar { name: n, lambda: None },
                };
                assert_eq!(fast, general, "{w}");
            }
        }
        assert!(plain_name("true").is_none() && plain_name("-x-").is_none() && plain_name("$").is_none());
    }

    /// The tree as text: every instruction's head, indented by depth, and the name count.
    fn dump(ast: &Ast<'_>) -> String {
        let mut out = String::new();
        let mut stack = vec![(ast.root, 0usize)];
        while let Some((id, depth)) = stack.pop() {
            out.push_str(&format!("{}{}\n", " ".repeat(depth), ast.head(id)));
            for c in ast.node(id).instr.children().iter().rev().flatten() {
                stack.push((*c, depth + 1));
            }
        }
        // and the calls, aps and arguments as they are, with the names' ids (the fast paths
        // number destinations later than the token path: the ids must come out the same)
        out + &format!("names {}\n{:?}\n{:?}\n{:?}", ast.names, ast.calls, ast.aps, ast.args)
    }

    /// The fast paths and the token path agree: same tree, or the same error.
    fn same_with_and_without_fast_paths(script: &str) {
        let with = parse_impl(script, ParseLimits::default(), true, &mut Default::default()).map(|a| dump(&a));
        let without = parse_impl(script, ParseLimits::default(), false, &mut Default::default()).map(|a| dump(&a));
        assert_eq!(with, without, "{script:?}");
        // renumbered in execution order: the same tree, each first child right after its parent
        if let Ok(ast) = parse_impl(script, ParseLimits::default(), true, &mut Default::default()) {
            // a tree said to own no heap memory has no boxed instruction or lambda
            assert!(!ast.heap_free || !owns_heap(&ast), "{script:?}");
            let before = dump(&ast);
            let ordered = ast.into_execution_order();
            assert_eq!(dump(&ordered), before, "{script:?}");
            assert_eq!(ordered.root, NodeId(0));
            for (i, node) in ordered.nodes.iter().enumerate() {
                if let [Some(first), _] = node.instr.children() {
                    assert_eq!(first.0 as usize, i + 1, "{script:?}");
                }
            }
        }
    }

    /// Whether anything in the tree owns heap memory.
    fn owns_heap(ast: &Ast<'_>) -> bool {
        let boxed = |v: &Value<'_>| {
            matches!(
                v,
                Value::LastError(Some(_))
                    | Value::Error(Some(_))
                    | Value::Scalar { lambda: Some(_), .. }
                    | Value::Canon { lambda: Some(_), .. }
                    | Value::CanonMap { lambda: Some(_), .. }
            )
        };
        ast.nodes.iter().any(|n| {
            matches!(
                n.instr,
                Instr::Canon(_)
                    | Instr::ApMap(_)
                    | Instr::Match(_)
                    | Instr::Fail(_)
                    | Instr::Fold(_)
                    | Instr::Next(_)
                    | Instr::New(_)
            )
        }) || ast.calls.iter().any(|c| [&c.peer, &c.service, &c.function].into_iter().any(boxed))
            || ast.args.iter().any(boxed)
            || ast.aps.iter().any(|a| boxed(&a.arg))
    }

    #[test]
    fn heap_free_trees() {
        // the benches' shapes are read by the fast paths only; a lambda or a fold is not
        for (script, free) in [
            ("(seq (ap \"v\" x0) (ap x0 x1))", true),
            ("(seq (ap 1 x) (seq (call \"p\" (\"s\" \"f\") [1 x] y) (null)))", true),
            ("(seq (ap 1 x) (ap x.$.a y))", false),
            ("(fold [] i (next i))", false),
        ] {
            let ast = parse(script).unwrap();
            assert_eq!((ast.heap_free, owns_heap(&ast)), (free, !free), "{script}");
        }
    }

    #[test]
    fn fast_paths_agree_with_the_token_path_on_the_scenarios() {
        for (path, text) in crate::scenario_files() {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let air = v["air"].as_str().unwrap_or_else(|| panic!("{}: no air", path.display()));
            let air = air.replace("@A", "\"a\"").replace("@B", "b").replace("@C", "\"c\"");
            for script in [air.clone(), format!("(seq (ap \"p\" b) {air})")] {
                same_with_and_without_fast_paths(&script);
                // and every cut of it (errors included)
                for cut in (0..script.len()).step_by(7).filter(|c| script.is_char_boundary(*c)) {
                    same_with_and_without_fast_paths(&script[..cut]);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, .. Default::default() })]

        #[test]
        fn fast_paths_agree_with_the_token_path(script in script()) {
            same_with_and_without_fast_paths(&script);
        }
    }

    /// Scripts of the instructions and values the fast paths read, with their near misses.
    fn script() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let space = prop::sample::select(vec![" ", "  ", "\n", "\t", " ; note\n", "\x0b", ""]);
        let value = prop::sample::select(vec![
            "\"s\"",
            "\"\"",
            "x",
            "y1",
            "_z-",
            "$s",
            "%m",
            "#c",
            "[]",
            "[ ]",
            "42",
            "007",
            "-1",
            "1.5",
            "true",
            "false",
            "%init_peer_id%",
            "%init_peer_id%x",
            "%ttl%",
            "x.$.a",
            "x.$.[0]!",
            "1e3",
            "$",
            "x(",
            "x]",
            "é",
        ]);
        let leaf = (
            prop::sample::select(vec!["call", "ap", "null", "never", "calls", "nul", "next", "fail"]),
            prop::collection::vec((value.clone(), space.clone()), 0..6),
            space.clone(),
        )
            .prop_map(|(kw, parts, end)| match kw {
                "call" if !parts.is_empty() => {
                    let mut s = format!("(call {} (", parts[0].0);
                    for (v, sp) in parts.iter().skip(1).take(2) {
                        s.push_str(&format!("{v}{sp}"));
                    }
                    s.push_str(") [");
                    for (v, sp) in parts.iter().skip(3) {
                        s.push_str(&format!("{v}{sp}"));
                    }
                    format!("{s}] {}{end})", parts.last().map_or("", |p| p.0))
                }
                kw => {
                    let body: String = parts.iter().map(|(v, sp)| format!(" {v}{sp}")).collect();
                    format!("({kw}{body}{end})")
                }
            });
        leaf.prop_recursive(6, 64, 2, move |inner| {
            (
                prop::sample::select(vec!["seq", "par", "xor", "seq(", "new x", "fold x i"]),
                inner.clone(),
                inner,
                space.clone(),
            )
                .prop_map(|(kw, a, b, sp)| format!("({kw} {a}{sp}{b})"))
        })
    }

    #[test]
    fn nested_script_is_refused_not_overflowed() {
        let depth = 10_000;
        let script = "(seq ".repeat(depth) + "(null)" + &" (null))".repeat(depth);
        let err = parse(&script).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::TooDeep(1000));
        let ok = "(seq ".repeat(500) + "(null)" + &" (null))".repeat(500);
        parse(&ok).unwrap();
    }

    #[test]
    fn error_positions() {
        let e = parse("(seq\n  (null)\n  (nul))").unwrap_err();
        assert_eq!((e.line, e.column), (3, 4));
        assert_eq!(e.kind, ParseErrorKind::UnknownInstruction("nul".into()));
        let e = parse("(seq (null) (null)) (null)").unwrap_err();
        assert_eq!((e.line, e.column), (1, 21));
        let e = parse("(seq (null)").unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::UnexpectedEnd { .. }));
        assert!(e.to_string().starts_with("air can't be parsed: 1:12: "));
    }
}
