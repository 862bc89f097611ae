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

/// Splits the script into tokens.
///
/// # Errors
/// An unclosed string literal.
pub fn tokenize(script: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let bytes = script.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => i += 1,
            b';' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b')' | b'[' | b']' => {
                let tok = match c {
                    b'(' => Tok::LParen,
                    b')' => Tok::RParen,
                    b'[' => Tok::LBracket,
                    _ => Tok::RBracket,
                };
                out.push(Token { tok, span: Span::new(i, i + 1) });
                i += 1;
            }
            b'"' => {
                let start = i;
                let Some(len) = bytes[i + 1..].iter().position(|b| *b == b'"') else {
                    return Err(ParseError::new(ParseErrorKind::UnclosedString, Span::new(start, bytes.len()), script));
                };
                let end = i + 1 + len;
                out.push(Token { tok: Tok::Str(&script[i + 1..end]), span: Span::new(start, end + 1) });
                i = end + 1;
            }
            _ => {
                let start = i;
                let mut depth = 0usize;
                while i < bytes.len() {
                    let b = bytes[i];
                    if b.is_ascii_whitespace() {
                        break;
                    }
                    match b {
                        b'(' | b'[' => depth += 1,
                        b')' | b']' => {
                            if depth == 0 {
                                break;
                            }
                            depth -= 1;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                // `start..i` is on char boundaries: we only stopped at ASCII bytes or the end.
                out.push(Token { tok: Tok::Word(&script[start..i]), span: Span::new(start, i) });
            }
        }
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
