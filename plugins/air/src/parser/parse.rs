//! The parser: tokens to an [`Ast`], iteratively (an explicit stack of open instructions), so a
//! deeply nested script is refused with [`ParseErrorKind::TooDeep`] instead of overflowing.

use super::ast::*;
use super::error::{ParseError, ParseErrorKind};
use super::lexer::{Tok, Token, tokenize};

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
pub fn parse(script: &str) -> Result<Ast, ParseError> {
    parse_with_limits(script, ParseLimits::default())
}

/// Parses and validates a script.
///
/// # Errors
/// Lexer, grammar and static-check errors (SPEC §1.4), size and depth limits.
pub fn parse_with_limits(script: &str, limits: ParseLimits) -> Result<Ast, ParseError> {
    if script.len() > limits.max_size {
        return Err(ParseError::new(
            ParseErrorKind::TooBig { size: script.len(), limit: limits.max_size },
            Span::new(0, 0),
            script,
        ));
    }
    let toks = tokenize(script)?;
    let mut p = Parser { script, toks, pos: 0, nodes: Vec::new() };
    let root = p.parse_root(limits.max_depth)?;
    let ast = Ast { nodes: p.nodes, root };
    super::validate::validate(&ast, script)?;
    Ok(ast)
}

enum Frame {
    Bin { kind: u8, start: usize, left: Option<NodeId> },
    Match { start: usize, negate: bool, left: Value, right: Value },
    Fold { start: usize, iterable: Iterable, iterator: String, body: Option<NodeId> },
    New { start: usize, name: String },
}

struct Parser<'a> {
    script: &'a str,
    toks: Vec<Token<'a>>,
    pos: usize,
    nodes: Vec<Node>,
}

type PResult<T> = Result<T, ParseError>;

impl<'a> Parser<'a> {
    fn err(&self, kind: ParseErrorKind, span: Span) -> ParseError {
        ParseError::new(kind, span, self.script)
    }

    fn end_span(&self) -> Span {
        Span::new(self.script.len(), self.script.len())
    }

    fn peek(&self) -> Option<&Token<'a>> {
        self.toks.get(self.pos)
    }

    fn next(&mut self, expected: &'static str) -> PResult<Token<'a>> {
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(*t)
            }
            None => Err(self.err(ParseErrorKind::UnexpectedEnd { expected }, self.end_span())),
        }
    }

    fn expect(&mut self, tok: Tok<'_>, expected: &'static str) -> PResult<Span> {
        let t = self.next(expected)?;
        if t.tok == tok {
            Ok(t.span)
        } else {
            Err(self.err(ParseErrorKind::Unexpected { expected, found: t.tok.describe() }, t.span))
        }
    }

    fn word(&mut self, expected: &'static str) -> PResult<(&'a str, Span)> {
        let t = self.next(expected)?;
        match t.tok {
            Tok::Word(w) => Ok((w, t.span)),
            other => Err(self.err(ParseErrorKind::Unexpected { expected, found: other.describe() }, t.span)),
        }
    }

    fn push(&mut self, instr: Instr, span: Span) -> NodeId {
        self.nodes.push(Node { instr, span });
        NodeId((self.nodes.len() - 1) as u32)
    }

    fn parse_root(&mut self, max_depth: usize) -> PResult<NodeId> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            let mut done = self.open_instruction(&mut stack)?;
            if stack.len() > max_depth {
                let span = self.toks[self.pos.saturating_sub(1)].span;
                return Err(self.err(ParseErrorKind::TooDeep(max_depth), span));
            }
            while let Some(node) = done.take() {
                let Some(frame) = stack.last_mut() else {
                    if let Some(t) = self.peek() {
                        let t = *t;
                        return Err(self.err(
                            ParseErrorKind::Unexpected { expected: "the end of the script", found: t.tok.describe() },
                            t.span,
                        ));
                    }
                    return Ok(node);
                };
                match frame {
                    Frame::Bin { left: left @ None, .. } => *left = Some(node),
                    Frame::Fold { body: body @ None, .. } => {
                        *body = Some(node);
                        if matches!(self.peek().map(|t| &t.tok), Some(Tok::RParen)) {
                            done = Some(self.close(&mut stack, None)?);
                        }
                    }
                    _ => done = Some(self.close(&mut stack, Some(node))?),
                }
            }
        }
    }

    /// Closes the top frame with its last child and returns the new node.
    fn close(&mut self, stack: &mut Vec<Frame>, last: Option<NodeId>) -> PResult<NodeId> {
        let end = self.expect(Tok::RParen, "')'")?.end;
        let frame = stack.pop().expect("close is called with an open frame");
        let (instr, start) = match frame {
            Frame::Bin { kind, start, left } => {
                let (l, r) = (left.expect("left child set"), last.expect("right child given"));
                let instr = match kind {
                    0 => Instr::Seq(l, r),
                    1 => Instr::Par(l, r),
                    _ => Instr::Xor(l, r),
                };
                (instr, start)
            }
            Frame::Match { start, negate, left, right } => {
                (Instr::Match { left, right, body: last.expect("body given"), negate }, start)
            }
            Frame::New { start, name } => (Instr::New { name, body: last.expect("body given") }, start),
            Frame::Fold { start, iterable, iterator, body } => {
                (Instr::Fold(Box::new(Fold { iterable, iterator, body: body.expect("body set"), last })), start)
            }
        };
        Ok(self.push(instr, Span::new(start, end)))
    }

    /// Reads `(keyword …`: pushes a frame for a composite instruction, or parses a whole leaf.
    fn open_instruction(&mut self, stack: &mut Vec<Frame>) -> PResult<Option<NodeId>> {
        let start = self.expect(Tok::LParen, "an instruction '('")?.start;
        let (kw, kw_span) = self.word("an instruction keyword")?;
        let frame = match kw {
            "seq" => Frame::Bin { kind: 0, start, left: None },
            "par" => Frame::Bin { kind: 1, start, left: None },
            "xor" => Frame::Bin { kind: 2, start, left: None },
            "match" | "mismatch" => {
                let left = self.value()?;
                let right = self.value()?;
                for v in [&left, &right] {
                    self.check_not_stream(v, "a stream in match")?;
                }
                Frame::Match { start, negate: kw == "mismatch", left, right }
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
                Frame::Fold { start, iterable, iterator, body: None }
            }
            "new" => {
                let (name, span) = self.word("a variable")?;
                let v = word_value(name).map_err(|k| self.err(k, span))?;
                match v {
                    Value::Scalar { lambda: None, .. }
                    | Value::Stream(_)
                    | Value::StreamMap(_)
                    | Value::Canon { lambda: None, .. }
                    | Value::CanonMap { lambda: None, .. } => {}
                    _ => {
                        return Err(self.err(
                            ParseErrorKind::NotAllowed { what: "this new variable", found: name.to_string() },
                            span,
                        ));
                    }
                }
                Frame::New { start, name: name.to_string() }
            }
            _ => {
                let instr = self.leaf(kw, kw_span)?;
                let end = self.expect(Tok::RParen, "')'")?.end;
                return Ok(Some(self.push(instr, Span::new(start, end))));
            }
        };
        stack.push(frame);
        Ok(None)
    }

    fn leaf(&mut self, kw: &str, kw_span: Span) -> PResult<Instr> {
        Ok(match kw {
            "null" => Instr::Null,
            "never" => Instr::Never,
            "next" => Instr::Next(self.scalar_name("a fold iterator")?),
            "call" => {
                let (peer, span) = self.value_spanned()?;
                self.check_triplet_part(&peer, span, true)?;
                self.expect(Tok::LParen, "'(' of the service and function")?;
                let (service, span) = self.value_spanned()?;
                self.check_triplet_part(&service, span, false)?;
                let (function, span) = self.value_spanned()?;
                self.check_triplet_part(&function, span, false)?;
                self.expect(Tok::RParen, "')' after the function name")?;
                self.expect(Tok::LBracket, "'[' of the arguments")?;
                let mut args = Vec::new();
                while !matches!(self.peek().map(|t| &t.tok), Some(Tok::RBracket)) {
                    let (v, span) = self.value_spanned()?;
                    if matches!(v, Value::Stream(_) | Value::StreamMap(_)) {
                        return Err(self.err(
                            ParseErrorKind::NotAllowed { what: "a stream as a call argument", found: v.to_string() },
                            span,
                        ));
                    }
                    args.push(v);
                }
                self.expect(Tok::RBracket, "']'")?;
                let output = if let Some(Token { tok: Tok::Word(_), .. }) = self.peek() {
                    let (w, span) = self.word("a call output")?;
                    match word_value(w).map_err(|k| self.err(k, span))? {
                        Value::Scalar { name, lambda: None } => CallOutput::Scalar(name),
                        Value::Stream(name) => CallOutput::Stream(name),
                        _ => {
                            return Err(self.err(
                                ParseErrorKind::NotAllowed { what: "this call output", found: w.to_string() },
                                span,
                            ));
                        }
                    }
                } else {
                    CallOutput::None
                };
                Instr::Call(Box::new(Call { peer, service, function, args, output }))
            }
            "canon" => {
                let (peer, span) = self.value_spanned()?;
                self.check_triplet_part(&peer, span, true)?;
                let (source, span) = self.word("a stream or stream map")?;
                let src = word_value(source).map_err(|k| self.err(k, span))?;
                let (dest_word, dspan) = self.word("a canon destination")?;
                let dest = word_value(dest_word).map_err(|k| self.err(k, dspan))?;
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
                Instr::Canon(Box::new(Canon { peer, source: source.to_string(), dest }))
            }
            "ap" => {
                if matches!(self.peek().map(|t| &t.tok), Some(Tok::LParen)) {
                    self.pos += 1;
                    let (key, kspan) = self.value_spanned()?;
                    match &key {
                        Value::Literal(_)
                        | Value::Number(Number::Int(_))
                        | Value::Scalar { .. }
                        | Value::Canon { lambda: Some(_), .. } => {}
                        other => {
                            return Err(self.err(
                                ParseErrorKind::NotAllowed { what: "this map key", found: other.to_string() },
                                kspan,
                            ));
                        }
                    }
                    let (value, vspan) = self.value_spanned()?;
                    self.check_ap_arg(&value, vspan)?;
                    self.expect(Tok::RParen, "')' after the key and value")?;
                    let (map, mspan) = self.word("a stream map")?;
                    match word_value(map).map_err(|k| self.err(k, mspan))? {
                        Value::StreamMap(map) => Instr::ApMap(Box::new(ApMap { key, value, map })),
                        _ => {
                            return Err(self.err(
                                ParseErrorKind::NotAllowed { what: "this ap destination", found: map.to_string() },
                                mspan,
                            ));
                        }
                    }
                } else {
                    let (arg, span) = self.value_spanned()?;
                    self.check_ap_arg(&arg, span)?;
                    let (dest, dspan) = self.word("an ap destination")?;
                    let dest = match word_value(dest).map_err(|k| self.err(k, dspan))? {
                        Value::Scalar { name, lambda: None } => ApDest::Scalar(name),
                        Value::Stream(name) => ApDest::Stream(name),
                        _ => {
                            return Err(self.err(
                                ParseErrorKind::NotAllowed { what: "this ap destination", found: dest.to_string() },
                                dspan,
                            ));
                        }
                    };
                    Instr::Ap(Box::new(Ap { arg, dest }))
                }
            }
            "fail" => {
                let (v, span) = self.value_spanned()?;
                match v {
                    Value::Number(Number::Int(code)) => {
                        let t = self.next("a fail message")?;
                        let Tok::Str(message) = t.tok else {
                            return Err(self.err(
                                ParseErrorKind::Unexpected { expected: "a fail message", found: t.tok.describe() },
                                t.span,
                            ));
                        };
                        if code == 0 {
                            return Err(self.err(ParseErrorKind::FailCodeZero, span));
                        }
                        Instr::Fail(Box::new(Fail::Literal { code, message: message.to_string() }))
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

    fn check_not_stream(&self, v: &Value, what: &'static str) -> PResult<()> {
        if matches!(v, Value::Stream(_) | Value::StreamMap(_)) {
            let span = self.toks[self.pos.saturating_sub(1)].span;
            return Err(self.err(ParseErrorKind::NotAllowed { what, found: v.to_string() }, span));
        }
        Ok(())
    }

    fn check_ap_arg(&self, v: &Value, span: Span) -> PResult<()> {
        if matches!(v, Value::Stream(_) | Value::StreamMap(_) | Value::CanonMap { lambda: None, .. }) {
            return Err(self.err(ParseErrorKind::NotAllowed { what: "this ap argument", found: v.to_string() }, span));
        }
        Ok(())
    }

    fn check_triplet_part(&self, v: &Value, span: Span, is_peer: bool) -> PResult<()> {
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

    fn scalar_name(&mut self, expected: &'static str) -> PResult<String> {
        let (w, span) = self.word(expected)?;
        match word_value(w).map_err(|k| self.err(k, span))? {
            Value::Scalar { name, lambda: None } => Ok(name),
            _ => Err(self.err(ParseErrorKind::Unexpected { expected, found: format!("'{w}'") }, span)),
        }
    }

    fn value(&mut self) -> PResult<Value> {
        Ok(self.value_spanned()?.0)
    }

    fn value_spanned(&mut self) -> PResult<(Value, Span)> {
        let t = self.next("a value")?;
        match t.tok {
            Tok::Str(s) => Ok((Value::Literal(s.to_string()), t.span)),
            Tok::LBracket => {
                let end = self.expect(Tok::RBracket, "']' (the only array literal is [])")?;
                Ok((Value::EmptyArray, Span::new(t.span.start, end.end)))
            }
            Tok::Word(w) => match word_value(w) {
                Ok(v) => Ok((v, t.span)),
                Err(k) => Err(self.err(k, t.span)),
            },
            other => Err(self.err(ParseErrorKind::Unexpected { expected: "a value", found: other.describe() }, t.span)),
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Classifies a bare word as a value.
pub(crate) fn word_value(w: &str) -> Result<Value, ParseErrorKind> {
    match w {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "%init_peer_id%" => return Ok(Value::InitPeerId),
        "%timestamp%" => return Ok(Value::Timestamp),
        "%ttl%" => return Ok(Value::Ttl),
        _ => {}
    }
    if let Some(rest) = w.strip_prefix("%last_error%") {
        return Ok(Value::LastError(opt_lambda(w, rest)?));
    }
    if let Some(rest) = w.strip_prefix(":error:") {
        return Ok(Value::Error(opt_lambda(w, rest)?));
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
    let full = format!("{prefix}{name}");
    if tail == ".length" {
        return match prefix {
            "" => Ok(Value::ScalarLength(full)),
            "#" | "#$" => Ok(Value::CanonLength(full)),
            "#%" => Ok(Value::CanonMapLength(full)),
            _ => Err(ParseErrorKind::InvalidLambda(w.to_string())),
        };
    }
    let lambda = opt_lambda(w, tail)?;
    match prefix {
        "" => Ok(Value::Scalar { name: full, lambda }),
        "#" | "#$" => Ok(Value::Canon { name: full, lambda }),
        "#%" => Ok(Value::CanonMap { name: full, lambda }),
        _ if lambda.is_some() => Err(ParseErrorKind::InvalidLambda(w.to_string())),
        "$" => Ok(Value::Stream(full)),
        _ => Ok(Value::StreamMap(full)),
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

fn opt_lambda(word: &str, tail: &str) -> Result<Option<Lambda>, ParseErrorKind> {
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
                accessors.push(Accessor::Scalar(content.to_string()));
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
            accessors.push(Accessor::Field(field.to_string()));
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

    #[test]
    fn values() {
        assert_eq!(word_value("1e3").unwrap(), Value::Scalar { name: "1e3".into(), lambda: None });
        assert_eq!(word_value("-x-").unwrap(), Value::Scalar { name: "-x-".into(), lambda: None });
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
        assert_eq!(word_value("#cc.length").unwrap(), Value::CanonLength("#cc".into()));
        assert_eq!(word_value("#$c").unwrap(), Value::Canon { name: "#$c".into(), lambda: None });
        assert_eq!(word_value(":error:.$.error_code").unwrap().to_string(), ":error:.$.error_code");
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
