//! Write [weft](https://example.invalid/weft) modules in Rust.
//!
//! A weft module is a WebAssembly module with a typed interface: the functions it exports, the
//! records they use and the functions it imports from other modules of its service. This crate
//! turns ordinary Rust functions and structs into such a module:
//!
//! - [`#[export]`](export) on a function exports it under its name, with its parameters and
//!   result decoded and encoded for you;
//! - [`#[record]`](record) on a struct makes it a record type (serde derives included);
//! - [`#[import(module = "...")]`](import) on an `extern "C"` block turns the declared functions
//!   into safe, typed calls to another module of the service;
//! - [`call_parameters`] tells a function who is calling, from which particle;
//! - the crate exports `allocate` and `release`, installs a panic hook that reports panic messages
//!   to weft, and emits the `weft-interface` custom section entry of each item, so that weft
//!   accepts the module as is.
//!
//! ```
//! use weft_sdk::{export, import, record};
//!
//! #[record]
//! pub struct Stats {
//!     pub words: u32,
//!     pub longest: Option<String>,
//!     pub lengths: Vec<u8>,
//! }
//!
//! /// `greet(name: string) -> string`
//! #[export]
//! pub fn greet(name: String) -> String {
//!     format!("Hello, {}!", name)
//! }
//!
//! /// An `Err` fails the call with its text; the interface declares `-> u32`.
//! #[export]
//! pub fn halve(x: u32) -> Result<u32, String> {
//!     if x % 2 == 0 { Ok(x / 2) } else { Err(format!("{} is odd", x)) }
//! }
//!
//! #[import(module = "textstats")]
//! extern "C" {
//!     /// `textstats.stats(words: array<string>) -> stats`
//!     pub fn stats(words: Vec<String>) -> Stats;
//! }
//!
//! #[export]
//! pub fn count(text: String) -> u32 {
//!     let words = text.split_whitespace().map(String::from).collect();
//!     stats(words).words // a call to the textstats module
//! }
//!
//! # fn main() {
//! assert_eq!(greet("Ann".to_string()), "Hello, Ann!"); // still an ordinary Rust function
//! assert_eq!(halve(4), Ok(2));
//! # }
//! ```
//!
//! Build the crate as a `cdylib` for `wasm32-wasip1` (or `wasm32-wasi` with older compilers);
//! the `.wasm` file is the module. See the crate's README for the type mapping and the details.
//!
//! # Types
//!
//! The macros map Rust types to interface types *by their syntax*, as written:
//!
//! | Rust | interface |
//! |---|---|
//! | `bool` | `bool` |
//! | `i8`, `i16`, `i32`, `i64` | `s8`, `s16`, `s32`, `s64` |
//! | `u8`, `u16`, `u32`, `u64` | `u8`, `u16`, `u32`, `u64` |
//! | `f32`, `f64` | `f32`, `f64` |
//! | `String` | `string` |
//! | `Vec<u8>` | `bytes` |
//! | `Vec<T>` | `array<T>` |
//! | `Option<T>` | `optional<T>` |
//! | any other name, e.g. `Stats` or `crate::Stats` | the record named by its last identifier (`Stats`) |
//!
//! Type aliases are not followed (`type Name = String;` then `name: Name` declares a record
//! `Name`), so write the types out. References, tuples, arrays, slices, generic records and other
//! syntax are refused at compile time. The values travel in the weft wire format ([`wire`]).

#![warn(missing_docs)]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod abi;
mod call_parameters;
pub mod wire;

#[cfg(not(target_arch = "wasm32"))]
pub use call_parameters::set_host_call_parameters;
pub use call_parameters::{call_parameters, CallParameters, Tetraplet};
pub use weft_sdk_macros::{export, import, record};

/// The serde version this crate uses, for `#[record]`'s derives: modules need not depend on serde.
pub use serde;
