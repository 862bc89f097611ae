//! Tokens of AIR text: brackets, string literals and bare words.
//!
//! The lexer never fails: an unclosed string literal is a [`Kind::Unclosed`] token (the parser
//! turns any error into the unclosed-string error if the script has one, see `parse`), and the
//! end of the script is [`Kind::End`]. While it scans a word it also finds out whether the word is
//! a plain variable name ([`Token::plain`]), so the parser classifies most words without looking
//! at their bytes again.

use super::ast::Span;

/// A token with its text (for messages and tests; the parser works on [`Token`]s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok<'a> {
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `"…"` (content without quotes, no escapes).
    Str(&'a str),
    /// Anything else up to whitespace or an unbalanced `)`/`]`.
    Word(&'a str),
    /// A string literal without its closing quote (up to the end of the script).
    Unclosed,
    /// The end of the script.
    End,
}

impl Tok<'_> {
    /// Short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Word(w) => format!("'{w}'"),
            Tok::Unclosed => "an unclosed string".into(),
            Tok::End => "the end of the script".into(),
        }
    }
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// A string literal.
    Str,
    /// A bare word.
    Word,
    /// A string literal without its closing quote.
    Unclosed,
    /// The end of the script.
    End,
}

/// A token: its kind and byte range (12 bytes; the text is a slice of the script).
#[derive(Debug, Clone, Copy)]
pub struct Token {
    /// What it is.
    pub kind: Kind,
    /// For a word: it is a scalar, `$stream` or `%map` name made of ASCII letters, digits, `_`
    /// and `-`, not starting with a digit or `-` (it may still be `true` or `false`).
    pub plain: bool,
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Token {
    #[inline(always)]
    fn new(kind: Kind, start: usize, end: usize) -> Self {
        Token { kind, plain: false, start: start as u32, end: end as u32 }
    }

    /// Where it is.
    #[inline(always)]
    pub fn span(&self) -> Span {
        Span::new(self.start as usize, self.end as usize)
    }

    /// The text of a word, or the content of a string literal (without its quotes).
    #[inline(always)]
    pub fn text<'a>(&self, script: &'a str) -> &'a str {
        let (start, end) = (self.start as usize, self.end as usize);
        match self.kind {
            Kind::Str => &script[start + 1..end - 1],
            _ => &script[start..end],
        }
    }

    /// The token with its text.
    pub fn tok<'a>(&self, script: &'a str) -> Tok<'a> {
        match self.kind {
            Kind::LParen => Tok::LParen,
            Kind::RParen => Tok::RParen,
            Kind::LBracket => Tok::LBracket,
            Kind::RBracket => Tok::RBracket,
            Kind::Str => Tok::Str(self.text(script)),
            Kind::Word => Tok::Word(self.text(script)),
            Kind::Unclosed => Tok::Unclosed,
            Kind::End => Tok::End,
        }
    }
}

/// Reads tokens one at a time.
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    script: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of the script.
    pub fn new(script: &'a str) -> Self {
        Lexer { script, pos: 0 }
    }

    /// Moves to byte `pos` (a token boundary the parser found itself).
    #[inline(always)]
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// The next token ([`Kind::End`] at the end).
    #[inline(always)]
    pub fn next_token(&mut self) -> Token {
        let script = self.script;
        let bytes = script.as_bytes();
        let mut i = self.pos;
        loop {
            let Some(&c) = bytes.get(i) else {
                self.pos = i;
                return Token::new(Kind::End, i, i);
            };
            let class = BYTE[c as usize];
            if class & SPACE != 0 {
                i += 1;
                continue;
            }
            if class & (BRACKET | QUOTE | COMMENT) == 0 {
                return self.word(i);
            }
            if class & BRACKET != 0 {
                let kind = match c {
                    b'(' => Kind::LParen,
                    b')' => Kind::RParen,
                    b'[' => Kind::LBracket,
                    _ => Kind::RBracket,
                };
                self.pos = i + 1;
                return Token::new(kind, i, i + 1);
            }
            if class & QUOTE != 0 {
                let start = i;
                let Some(len) = bytes[i + 1..].iter().position(|b| *b == b'"') else {
                    self.pos = bytes.len();
                    return Token::new(Kind::Unclosed, start, bytes.len());
                };
                let end = i + 1 + len;
                self.pos = end + 1;
                return Token::new(Kind::Str, start, end + 1);
            }
            // a comment, up to the end of the line
            i += bytes[i..].iter().position(|b| *b == b'\n').unwrap_or(bytes.len() - i);
        }
    }

    /// A word starting at `start`: up to ASCII whitespace (not 0x0b, as
    /// `u8::is_ascii_whitespace`) or a `)`/`]` that closes nothing opened inside the word.
    #[inline(always)]
    fn word(&mut self, start: usize) -> Token {
        let bytes = self.script.as_bytes();
        // a `$` or `%` prefix may start a plain name: the flags are of the bytes after it (the
        // first byte is never one that stops a word)
        let body = start + matches!(bytes[start], b'$' | b'%') as usize;
        let mut i = body;
        let mut flags = 0u8;
        let mut depth = 0usize;
        while let Some(&b) = bytes.get(i) {
            let class = BYTE[b as usize];
            if class & WORD_STOP == 0 {
                flags |= class;
                i += 1;
                continue;
            }
            if class & WORD_END != 0 {
                break;
            }
            if class & OPEN != 0 {
                depth += 1;
            } else {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            flags |= NOT_NAME;
            i += 1;
        }
        self.pos = i;
        let plain = i > body && flags & NOT_NAME == 0 && !matches!(bytes[body], b'0'..=b'9' | b'-');
        // `start..i` is on char boundaries: we only stopped at ASCII bytes or the end.
        Token { kind: Kind::Word, plain, start: start as u32, end: i as u32 }
    }
}

/// ASCII whitespace between tokens (also 0x0b).
pub(super) const SPACE: u8 = 1;
/// `;` starts a comment between tokens.
pub(super) const COMMENT: u8 = 2;
/// `(`, `)`, `[`, `]`.
pub(super) const BRACKET: u8 = 4;
/// `"`.
pub(super) const QUOTE: u8 = 8;
/// Ends a word: ASCII whitespace except 0x0b.
pub(super) const WORD_END: u8 = 16;
/// `(` or `[` inside a word.
pub(super) const OPEN: u8 = 32;
/// Not a byte of a plain name (ASCII letters, digits, `_`, `-`).
pub(super) const NOT_NAME: u8 = 64;
/// `)` or `]` inside a word.
pub(super) const CLOSE: u8 = 128;
/// Bytes a word's scan must look at.
pub(super) const WORD_STOP: u8 = WORD_END | OPEN | CLOSE;

/// What each byte is, as flags.
pub(super) static BYTE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if !(c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
            t[b] = NOT_NAME;
        }
        b += 1;
    }
    let mut i = 0;
    let spaces = [b' ', b'\t', b'\n', b'\r', 0x0c];
    while i < spaces.len() {
        t[spaces[i] as usize] |= SPACE | WORD_END;
        i += 1;
    }
    t[0x0b] |= SPACE;
    t[b';' as usize] |= COMMENT;
    t[b'(' as usize] |= BRACKET | OPEN;
    t[b'[' as usize] |= BRACKET | OPEN;
    t[b')' as usize] |= BRACKET | CLOSE;
    t[b']' as usize] |= BRACKET | CLOSE;
    t[b'"' as usize] |= QUOTE;
    t
};

/// Splits the script into tokens.
///
/// # Errors
/// An unclosed string literal.
pub fn tokenize(script: &str) -> Result<Vec<Tok<'_>>, super::ParseError> {
    let mut lexer = Lexer::new(script);
    let mut out = Vec::new();
    loop {
        let t = lexer.next_token();
        match t.kind {
            Kind::End => return Ok(out),
            Kind::Unclosed => {
                return Err(super::ParseError::new(super::ParseErrorKind::UnclosedString, t.span(), script));
            }
            _ => out.push(t.tok(script)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::ParseErrorKind;

    fn kinds(s: &str) -> Vec<Tok<'_>> {
        tokenize(s).unwrap()
    }

    #[test]
    fn words_strings_and_brackets() {
        assert_eq!(
            kinds("(call x.$.a[0]! (\"s\" \"f\") [] ; comment\n out)"),
            vec![
                Tok::LParen,
                Tok::Word("call"),
                Tok::Word("x.$.a[0]!"),
                Tok::LParen,
                Tok::Str("s"),
                Tok::Str("f"),
                Tok::RParen,
                Tok::LBracket,
                Tok::RBracket,
                Tok::Word("out"),
                Tok::RParen,
            ]
        );
        assert_eq!(kinds("(seq(null)(null))")[1], Tok::Word("seq(null)(null)"));
        assert_eq!(kinds("\"a\\nb\"")[0], Tok::Str("a\\nb"));
        assert_eq!(kinds("a\x0bb"), vec![Tok::Word("a\x0bb")]);
    }

    #[test]
    fn plain_flag() {
        let plain = |s: &str| {
            let t = Lexer::new(s).next_token();
            assert!(matches!(t.tok(s), Tok::Word(w) if w == s), "{s}");
            t.plain
        };
        for w in ["x", "x1", "_a-b", "$s", "%m", "true", "a-", "Z_9"] {
            assert!(plain(w), "{w}");
        }
        for w in
            ["-x-", "-7", "1e3", "$", "%", "a.b", "x.$.a", "$1", "$$a", "%$a", "a$", "é", "#c", "a[0]", "%x%", "+a"]
        {
            assert!(!plain(w), "{w}");
        }
    }

    #[test]
    fn unclosed_string() {
        let e = tokenize("(call \"abc").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::UnclosedString);
        assert_eq!((e.line, e.column), (1, 7));
    }
}
