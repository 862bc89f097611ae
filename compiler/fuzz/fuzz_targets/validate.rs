//! `validate` on arbitrary bytes: every input is accepted or rejected with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_compiler::{Limits, describe, validate};

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = validate(data, &Limits::default()) {
        let _ = describe(&info, "fuzz");
    }
});
