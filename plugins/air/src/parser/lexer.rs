//! Tokens of AIR text: brackets, string literals and bare words.

use super::ast::Span;
use super::error::{ParseError, ParseErrorKind};

/// Token kinds; text borrows the script.
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
        }
    }
}

/// A token and its span.
#[derive(Debug, Clone, Copy)]
pub struct Token<'a> {
    /// Kind and text.
    pub tok: Tok<'a>,
    /// Where.
    pub span: Span,
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

    /// The next token, `None` at the end.
    ///
    /// # Errors
    /// An unclosed string literal.
    #[inline(always)]
    pub fn next_token(&mut self) -> Result<Option<Token<'a>>, Box<ParseError>> {
        let script = self.script;
        let bytes = script.as_bytes();
        let mut i = self.pos;
        while i < bytes.len() {
            let c = bytes[i];
            match CLASS[c as usize] {
                SPACE => i += 1,
                COMMENT => {
                    i += bytes[i..].iter().position(|b| *b == b'\n').unwrap_or(bytes.len() - i);
                }
                BRACKET => {
                    let tok = match c {
                        b'(' => Tok::LParen,
                        b')' => Tok::RParen,
                        b'[' => Tok::LBracket,
                        _ => Tok::RBracket,
                    };
                    self.pos = i + 1;
                    return Ok(Some(Token { tok, span: Span::new(i, i + 1) }));
                }
                QUOTE => {
                    let start = i;
                    let Some(len) = bytes[i + 1..].iter().position(|b| *b == b'"') else {
                        self.pos = bytes.len();
                        return Err(Box::new(ParseError::new(
                            ParseErrorKind::UnclosedString,
                            Span::new(start, bytes.len()),
                            script,
                        )));
                    };
                    let end = i + 1 + len;
                    self.pos = end + 1;
                    return Ok(Some(Token { tok: Tok::Str(&script[i + 1..end]), span: Span::new(start, end + 1) }));
                }
                _ => {
                    let start = i;
                    let mut depth = 0usize;
                    while i < bytes.len() {
                        let b = bytes[i];
                        match WORD[b as usize] {
                            IN_WORD => {}
                            WORD_END => break,
                            OPEN => depth += 1,
                            _ => {
                                if depth == 0 {
                                    break;
                                }
                                depth -= 1;
                            }
                        }
                        i += 1;
                    }
                    self.pos = i;
                    // `start..i` is on char boundaries: we only stopped at ASCII bytes or the end.
                    return Ok(Some(Token { tok: Tok::Word(&script[start..i]), span: Span::new(start, i) }));
                }
            }
        }
        self.pos = i;
        Ok(None)
    }
}

const OTHER: u8 = 0;
const SPACE: u8 = 1;
const COMMENT: u8 = 2;
const BRACKET: u8 = 3;
const QUOTE: u8 = 4;

/// What a byte starts, between tokens.
static CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    t[b' ' as usize] = SPACE;
    t[b'\t' as usize] = SPACE;
    t[b'\n' as usize] = SPACE;
    t[b'\r' as usize] = SPACE;
    t[0x0b] = SPACE;
    t[0x0c] = SPACE;
    t[b';' as usize] = COMMENT;
    t[b'(' as usize] = BRACKET;
    t[b')' as usize] = BRACKET;
    t[b'[' as usize] = BRACKET;
    t[b']' as usize] = BRACKET;
    t[b'"' as usize] = QUOTE;
    t
};

const IN_WORD: u8 = 0;
const WORD_END: u8 = 1;
const OPEN: u8 = 2;
const CLOSE: u8 = 3;

/// What a byte does inside a word (ASCII whitespace ends it; 0x0b does not, as
/// `u8::is_ascii_whitespace`).
static WORD: [u8; 256] = {
    let mut t = [IN_WORD; 256];
    t[b' ' as usize] = WORD_END;
    t[b'\t' as usize] = WORD_END;
    t[b'\n' as usize] = WORD_END;
    t[b'\r' as usize] = WORD_END;
    t[0x0c] = WORD_END;
    t[b'(' as usize] = OPEN;
    t[b'[' as usize] = OPEN;
    t[b')' as usize] = CLOSE;
    t[b']' as usize] = CLOSE;
    t
};

/// Splits the script into tokens.
///
/// # Errors
/// An unclosed string literal.
pub fn tokenize(script: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let mut lexer = Lexer::new(script);
    let mut out = Vec::new();
    while let Some(t) = lexer.next_token().map_err(|e| *e)? {
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok<'_>> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
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
    }

    #[test]
    fn unclosed_string() {
        let e = tokenize("(call \"abc").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::UnclosedString);
        assert_eq!((e.line, e.column), (1, 7));
    }
}
