//! `Interface::decode` on arbitrary bytes: never panics, never recurses without bound, and what it
//! accepts re-encodes to the same interface.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_compiler::Interface;

fuzz_target!(|data: &[u8]| {
    if let Ok(interface) = Interface::decode(data) {
        let again = Interface::decode(&interface.encode()).expect("re-encoded interface decodes");
        assert_eq!(again, interface);
        let _ = interface.to_string();
    }
});
