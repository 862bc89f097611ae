//! `parser::parse` on arbitrary text: every input is accepted or rejected with an error, never a
//! panic, and the error renders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_plugin_air::parser::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(script) = std::str::from_utf8(data)
        && let Err(e) = parse(script)
    {
        let _ = e.to_string();
    }
});
