//! AIR text to a validated syntax tree.
//!
//! [`parse`] tokenizes, builds the [`Ast`] iteratively and runs the static checks of SPEC §1.4.
//! Errors carry the line and column of the offending text.

mod ast;
mod error;
mod lexer;
mod parse;
mod validate;

pub use ast::*;
pub use error::{ParseError, ParseErrorKind, line_column};
pub(crate) use parse::{ParseBuffers, parse_into};
pub use parse::{ParseLimits, parse, parse_with_limits};
