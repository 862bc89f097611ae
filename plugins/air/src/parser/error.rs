//! Parse errors: what went wrong, and where (line and column).

use super::ast::Span;

/// What the parser could not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A token other than the expected one.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What would have been accepted.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// The script ended early.
    #[error("expected {expected}, found the end of the script")]
    UnexpectedEnd {
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A string literal without its closing quote.
    #[error("unclosed string literal")]
    UnclosedString,
    /// A float literal longer than 11 characters.
    #[error("float literal '{0}' is too big (at most 11 characters)")]
    FloatTooBig(String),
    /// An integer literal that does not fit in i64.
    #[error("integer literal '{0}' overflows i64")]
    IntOverflow(String),
    /// `.5` and similar.
    #[error("number '{0}' starts with a dot")]
    LeadingDot(String),
    /// A word that is not a valid variable, value or keyword.
    #[error("invalid token '{0}'")]
    InvalidToken(String),
    /// Lexer quirk kept from the reference: `#c.$.x` (one-letter tagged name with a lambda).
    #[error("empty canon name in '{0}'")]
    EmptyCanonName(String),
    /// A malformed lambda (`x.$`, bad characters, bad index).
    #[error("invalid lambda in '{0}'")]
    InvalidLambda(String),
    /// Unknown instruction keyword.
    #[error("unknown instruction '{0}'")]
    UnknownInstruction(String),
    /// A value of the wrong kind in this position (e.g. a stream as a call argument).
    #[error("{what} is not allowed here: '{found}'")]
    NotAllowed {
        /// Description of the position.
        what: &'static str,
        /// The offending text.
        found: String,
    },
    /// Nesting deeper than the limit.
    #[error("instructions nested deeper than {0}")]
    TooDeep(usize),
    /// Script larger than the limit.
    #[error("script is {size} bytes, the limit is {limit}")]
    TooBig {
        /// Script size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// A variable used before (textually) being defined.
    #[error("variable '{0}' wasn't defined")]
    UndefinedVariable(String),
    /// `(fail 0 "…")`
    #[error("error code 0 with fail is unsupported")]
    FailCodeZero,
    /// More than one `next` for a fold.
    #[error("fold with iterator '{0}' has more than one next")]
    MultipleNext(String),
    /// A fold nested in a fold with the same iterator.
    #[error("iterator '{0}' is reused by a nested fold")]
    IteratorReused(String),
    /// `new` on an iterator.
    #[error("new can't be applied to the iterator '{0}'")]
    NewOnIterator(String),
    /// `next` outside a fold over its iterator.
    #[error("next with iterator '{0}' is not inside a fold over it")]
    NextOutsideFold(String),
    /// Instructions after `next` in a stream or map fold.
    #[error("instructions after next '{0}' are not allowed in a fold over a stream or map")]
    InstructionAfterNext(String),
}

/// A parse error with its position: `line:column: message` on one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("air can't be parsed: {line}:{column}: {kind}")]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// Where (byte range).
    pub span: Span,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// 1-based column (in characters) of `span.start`.
    pub column: usize,
}

impl ParseError {
    /// Builds an error, computing line and column from the script text.
    pub fn new(kind: ParseErrorKind, span: Span, script: &str) -> Self {
        let (line, column) = line_column(script, span.start as usize);
        ParseError { kind, span, line, column }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, column)
}
