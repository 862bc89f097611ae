//! `Data::decode` (how `run` reads `prev_data` and `current_data`) on arbitrary bytes: never
//! panics, and what it accepts re-encodes to bytes that decode to the same data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_plugin_air::Data;

fuzz_target!(|bytes: &[u8]| {
    match Data::decode(bytes) {
        Ok(data) => {
            let bytes = data.encode();
            let again = Data::decode(&bytes).expect("re-encoded data decodes");
            assert_eq!(again, data);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
