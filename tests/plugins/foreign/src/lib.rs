//! A valid shared library that is not a weft plugin: the host must refuse it with a clear line.

/// Some C function, so the library is not empty.
#[unsafe(no_mangle)]
pub extern "C" fn foreign_answer() -> u32 {
    42
}
