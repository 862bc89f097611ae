//! `greeting`: the smallest weft module, `greet(name: string) -> string`.

use weft_sdk::export;

/// Greets `name`.
#[export]
pub fn greet(name: String) -> String {
    format!("Hello, {}!", name)
}
