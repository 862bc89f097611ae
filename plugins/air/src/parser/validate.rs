//! Static checks of SPEC §1.4, made while parsing.
//!
//! The parser reads instructions in textual order, which is the order of a pre-order walk of the
//! tree, so the checks run as instructions are opened (composites) or completed (leaves), while
//! their tokens are still in cache. The first violation is recorded and parsing goes on: a
//! grammar error anywhere in the script takes precedence, as if the tree were checked after
//! parsing. The span of a violation found when a composite instruction opens is completed when it
//! closes.

use super::ast::*;
use super::error::{ParseError, ParseErrorKind};

/// An open fold.
#[derive(Debug)]
pub(super) struct FoldInfo<'a> {
    /// Depth of its parser frame.
    pub depth: usize,
    /// Iterator name.
    pub iterator: Name<'a>,
    /// Over a stream or stream map (no instruction may follow `next`).
    pub over_stream: bool,
    /// `next`s seen.
    pub nexts: usize,
}

/// The checker state of one parse.
#[derive(Debug)]
pub(super) struct Validator<'a> {
    script: &'a str,
    /// Indexed by name id.
    defined: Vec<bool>,
    /// Open folds, innermost last.
    pub folds: Vec<FoldInfo<'a>>,
    /// The first violation, and the depth of the frame whose closing completes its span.
    error: Option<(Box<ParseError>, Option<usize>)>,
}

fn is_defined(defined: &[bool], name: Name<'_>) -> bool {
    defined.get(name.id as usize).copied().unwrap_or(false)
}

/// `Some(name)`, out of the hot path: the checks read only the id of a defined name (copying
/// the whole name there read it back with wider loads than it was just written with).
#[cold]
#[inline(never)]
fn undefined_name<'a>(name: &Name<'a>) -> Option<Name<'a>> {
    Some(*name)
}

/// The first variable `v` reads that is not defined yet.
#[inline(always)]
fn undefined_in<'a>(v: &Value<'a>, defined: &[bool]) -> Option<Name<'a>> {
    match v {
        Value::Literal(_) | Value::Number(_) | Value::Bool(_) | Value::EmptyArray => return None,
        Value::Scalar { name, lambda: None } | Value::Stream(name) | Value::StreamMap(name) => {
            return if is_defined(defined, *name) { None } else { undefined_name(name) };
        }
        _ => {}
    }
    v.variable().into_iter().chain(v.lambda_variables()).find(|n| !is_defined(defined, *n))
}

/// The first variable `values` read that is not defined yet.
#[inline(always)]
fn undefined<'a>(values: &[&Value<'a>], defined: &[bool]) -> Option<Name<'a>> {
    for v in values {
        if let Some(name) = undefined_in(v, defined) {
            return Some(name);
        }
    }
    None
}

impl<'a> Validator<'a> {
    /// A checker for `script`.
    pub fn new(script: &'a str) -> Self {
        Validator { script, defined: Vec::new(), folds: Vec::new(), error: None }
    }

    /// Whether a violation was found (later checks are skipped).
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Records a violation at `span`; with `pending_depth`, the span ends when that frame closes.
    #[cold]
    pub fn record(&mut self, kind: ParseErrorKind, span: Span, pending_depth: Option<usize>) {
        if self.error.is_none() {
            self.error = Some((Box::new(ParseError::new(kind, span, self.script)), pending_depth));
        }
    }

    #[inline(always)]
    fn check(&mut self, values: &[&Value<'a>], span: Span, pending_depth: Option<usize>) {
        if let Some(name) = undefined(values, &self.defined) {
            self.record(ParseErrorKind::UndefinedVariable(name.to_string()), span, pending_depth);
        }
    }

    /// Marks `name` defined (its id is numbered).
    #[inline(always)]
    pub fn define(&mut self, name: Name<'a>) {
        let i = name.id as usize;
        if self.defined.len() <= i {
            self.defined.resize((i + 1).next_power_of_two(), false);
        }
        self.defined[i] = true;
    }

    /// A call was parsed.
    #[inline(always)]
    pub fn call(&mut self, c: &Call<'a>, args: &[Value<'a>], span: Span) {
        if self.failed() {
            return;
        }
        self.call_uses(c, args, span);
        if let CallOutput::Scalar(n) | CallOutput::Stream(n) = c.output {
            self.define(n);
        }
    }

    /// The variables a call reads (its output is defined apart, see [`Validator::define`]).
    #[inline(always)]
    pub fn call_uses(&mut self, c: &Call<'a>, args: &[Value<'a>], span: Span) {
        if self.failed() {
            return;
        }
        let mut undefined = undefined(&[&c.peer, &c.service, &c.function], &self.defined);
        for a in args {
            if undefined.is_some() {
                break;
            }
            undefined = undefined_in(a, &self.defined);
        }
        if let Some(name) = undefined {
            self.record(ParseErrorKind::UndefinedVariable(name.to_string()), span, None);
        }
    }

    /// An ap to a scalar or stream was parsed.
    #[inline(always)]
    pub fn ap(&mut self, a: &Ap<'a>, span: Span) {
        if self.failed() {
            return;
        }
        self.ap_uses(a, span);
        match a.dest {
            ApDest::Scalar(n) | ApDest::Stream(n) => self.define(n),
        }
    }

    /// The variable an ap reads (its destination is defined apart, see [`Validator::define`]).
    #[inline(always)]
    pub fn ap_uses(&mut self, a: &Ap<'a>, span: Span) {
        if !self.failed() {
            self.check(&[&a.arg], span, None);
        }
    }

    /// A leaf instruction other than call and ap was parsed (`next` is checked by the parser,
    /// which knows the frames).
    pub fn leaf(&mut self, instr: &Instr<'a>, span: Span) {
        if self.failed() {
            return;
        }
        match instr {
            Instr::Canon(c) => {
                self.check(&[&c.peer], span, None);
                match c.dest {
                    CanonDest::Stream(n) | CanonDest::Map(n) | CanonDest::Scalar(n) => self.define(n),
                }
            }
            Instr::ApMap(a) => {
                self.check(&[&a.key, &a.value], span, None);
                self.define(a.map);
            }
            Instr::Fail(f) => {
                if let Fail::Value(v) = &**f {
                    self.check(&[v], span, None);
                }
            }
            _ => {}
        }
    }

    /// A `match`/`mismatch` opens (frame at `depth`).
    pub fn open_match(&mut self, left: &Value<'a>, right: &Value<'a>, start: usize, depth: usize) {
        if !self.failed() {
            self.check(&[left, right], Span::new(start, start), Some(depth));
        }
    }

    /// A fold opens (frame at `depth`).
    pub fn open_fold(&mut self, iterable: &Iterable<'a>, iterator: Name<'a>, start: usize, depth: usize) {
        let span = Span::new(start, start);
        if !self.failed() {
            match iterable {
                Iterable::Value(v) => self.check(&[v], span, Some(depth)),
                Iterable::Stream(n) | Iterable::StreamMap(n) => {
                    if !is_defined(&self.defined, *n) {
                        self.record(ParseErrorKind::UndefinedVariable(n.to_string()), span, Some(depth));
                    }
                }
            }
        }
        if !self.failed() && self.folds.iter().any(|fi| fi.iterator.id == iterator.id) {
            self.record(ParseErrorKind::IteratorReused(iterator.to_string()), span, Some(depth));
        }
        self.define(iterator);
        let over_stream = !matches!(iterable, Iterable::Value(_));
        self.folds.push(FoldInfo { depth, iterator, over_stream, nexts: 0 });
    }

    /// A `new` opens (frame at `depth`).
    pub fn open_new(&mut self, name: Name<'a>, start: usize, depth: usize) {
        if !self.failed() && self.folds.iter().any(|fi| fi.iterator.id == name.id) {
            self.record(ParseErrorKind::NewOnIterator(name.to_string()), Span::new(start, start), Some(depth));
        }
        self.define(name);
    }

    /// The frame at `depth` closed at byte `end`.
    pub fn close(&mut self, depth: usize, end: usize) {
        if let Some((e, pending)) = &mut self.error
            && *pending == Some(depth)
        {
            e.span.end = end as u32;
            *pending = None;
        }
        if self.folds.last().is_some_and(|f| f.depth == depth) {
            self.folds.pop();
        }
    }

    /// The first violation, if any.
    pub fn finish(self) -> Option<ParseError> {
        self.error.map(|(e, _)| *e)
    }
}

#[cfg(test)]
mod tests {
    use crate::parser::{ParseErrorKind, parse};

    fn kind(s: &str) -> ParseErrorKind {
        parse(s).unwrap_err().kind
    }

    #[test]
    fn static_checks() {
        assert_eq!(kind("(call \"p\" (\"s\" \"f\") [x] y)"), ParseErrorKind::UndefinedVariable("x".into()));
        assert_eq!(kind("(fail 0 \"msg\")"), ParseErrorKind::FailCodeZero);
        assert_eq!(
            kind("(seq (ap 1 $s) (fold $s i (seq (next i) (null))))"),
            ParseErrorKind::InstructionAfterNext("i".into())
        );
        assert_eq!(
            kind("(seq (ap [] x) (fold x i (seq (next i) (next i))))"),
            ParseErrorKind::MultipleNext("i".into())
        );
        assert_eq!(kind("(seq (ap [] x) (fold x i (new i (next i))))"), ParseErrorKind::NewOnIterator("i".into()));
        assert_eq!(kind("(seq (ap [] x) (fold x i (fold x i (next i))))"), ParseErrorKind::IteratorReused("i".into()));
        assert_eq!(kind("(next i)"), ParseErrorKind::NextOutsideFold("i".into()));
        assert!(matches!(
            kind("(seq (call \"p\" (\"s\" \"f\") [] $s) (call \"p\" (\"s\" \"f\") [$s] y))"),
            ParseErrorKind::NotAllowed { .. }
        ));
        // positional, not flow-based
        parse("(par (call \"p\" (\"s\" \"f\") [] x) (call \"p\" (\"s\" \"f\") [x] y))").unwrap();
        // canon's source need not be defined; the scalar fold allows code after next
        parse("(seq (canon \"p\" $s #c) (fold #c i (seq (next i) (null))))").unwrap();
    }

    #[test]
    fn spans_and_precedence() {
        // the span of a violation found at a fold's opening covers the whole fold
        let e = parse("(seq (ap 1 $s) (fold $s i (seq (next i) (null))))").unwrap_err();
        assert_eq!((e.span.start, e.span.end), (26, 47));
        let e = parse("(seq (null) (fold $t i (next i)))").unwrap_err();
        assert_eq!((e.span.start, e.span.end), (12, 32));
        // a grammar error later in the script wins over an earlier violation
        let e = parse("(seq (call \"p\" (\"s\" \"f\") [x] y) (nul))").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::UnknownInstruction("nul".into()));
        // the first violation in textual order wins
        let e = parse("(seq (ap x y) (ap z w))").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::UndefinedVariable("x".into()));
    }
}
