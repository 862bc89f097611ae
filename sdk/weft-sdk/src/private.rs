//! What the macros' expansions call. Not a public API: it changes with the macros.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::abi;
use crate::wire::{self, Deserializer};

pub use crate::abi::fail;

/// The arguments of an exported function, decoded one parameter at a time.
pub struct Args<'de> {
    de: Deserializer<'de>,
}

/// Why the arguments did not decode: the parameter (or the trailing bytes) and the error.
pub struct ArgsError {
    parameter: Option<&'static str>,
    error: wire::Error,
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parameter {
            Some(name) => write!(f, "parameter {:?}: {}", name, self.error),
            None => write!(f, "{} after the arguments", self.error),
        }
    }
}

impl<'de> Args<'de> {
    /// Decodes the next parameter, `name`.
    pub fn next<T: DeserializeOwned>(&mut self, name: &'static str) -> Result<T, ArgsError> {
        T::deserialize(&mut self.de).map_err(|error| ArgsError { parameter: Some(name), error })
    }
}

/// Takes the argument buffer of an exported function, decodes it with `decode` (which calls
/// [`Args::next`] per parameter), checks that nothing remains and frees the buffer. Any error
/// fails the call with `function: parameter "p": ...`.
///
/// Also installs the panic hook on the first call.
///
/// # Safety
///
/// `(ptr, len)` must be the argument buffer weft passed to the export.
pub unsafe fn decode_args<T, F>(function: &str, ptr: i32, len: i32, decode: F) -> T
where
    F: FnOnce(&mut Args<'_>) -> Result<T, ArgsError>,
{
    abi::init();
    let buffer = abi::take(ptr, len);
    let mut args = Args { de: Deserializer::new(&buffer) };
    let decoded = decode(&mut args)
        .and_then(|value| args.de.end().map(|()| value).map_err(|error| ArgsError { parameter: None, error }));
    drop(buffer);
    match decoded {
        Ok(value) => value,
        Err(e) => fail(&format!("{}: {}", function, e)),
    }
}

/// Encodes the single result of an exported function and hands it to weft.
pub fn result<T: ?Sized + Serialize>(function: &str, value: &T) -> i64 {
    match wire::to_vec(value) {
        Ok(bytes) => abi::give(bytes),
        Err(e) => fail(&format!("{}: result 0: {}", function, e)),
    }
}

/// The results of an exported function without results.
pub fn no_results() -> i64 {
    0
}

/// Fails the call with the `Display` text of an exported function's `Err`.
pub fn error<E: fmt::Display>(error: E) -> ! {
    fail(&error.to_string())
}

/// The arguments of an import call, encoded one parameter at a time.
pub struct ImportArgs {
    bytes: Vec<u8>,
}

impl ImportArgs {
    pub fn new() -> Self {
        ImportArgs { bytes: Vec::new() }
    }

    /// Encodes the next parameter.
    pub fn push<T: ?Sized + Serialize>(&mut self, target: &str, name: &str, value: &T) {
        if let Err(e) = wire::write_into(&mut self.bytes, value) {
            fail(&format!("{}: parameter {:?}: {}", target, name, e))
        }
    }

    /// The `(ptr, len)` to pass to the core import; `(0, 0)` when empty. The buffer stays ours.
    #[cfg(target_arch = "wasm32")]
    pub fn raw(&self) -> (i32, i32) {
        abi::borrow(&self.bytes)
    }

    /// Off wasm32 there is no import to pass them to.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn raw(&self) -> (i32, i32) {
        (0, 0)
    }
}

impl Default for ImportArgs {
    fn default() -> Self {
        Self::new()
    }
}

/// Takes the result buffer an import returned (from our `allocate`) and decodes it as `T`
/// (`()` for no results).
///
/// # Safety
///
/// `packed` must be what the core import returned.
pub unsafe fn import_results<T: DeserializeOwned>(target: &str, packed: i64) -> T {
    let (ptr, len) = abi::unpack(packed);
    let buffer = abi::take(ptr, len);
    match wire::from_bytes::<T>(&buffer) {
        Ok(value) => value,
        Err(e) => fail(&format!("{}: result 0: {}", target, e)),
    }
}

/// Stands in for an import off wasm32, where there is no weft to call.
pub fn no_host(target: &str) -> ! {
    panic!("{}: imports can only be called from a module running in weft (target_arch = \"wasm32\")", target)
}

/// Host-side test support: call an export wrapper as weft would.
#[cfg(not(target_arch = "wasm32"))]
pub mod host {
    use crate::abi;

    /// Calls `export` as weft does: copies `args` into a buffer from `allocate`, calls it, copies
    /// the results out and `release`s them.
    pub fn call(export: fn(i32, i32) -> i64, args: &[u8]) -> Vec<u8> {
        let len = args.len() as i32;
        let ptr = if args.is_empty() { 0 } else { abi::allocate(len) };
        if len > 0 {
            abi::memory::fill(ptr, args);
        }
        let (rptr, rlen) = abi::unpack(export(ptr, len));
        if rlen <= 0 {
            return Vec::new();
        }
        let results = abi::memory::copy(rptr, rlen as usize);
        // SAFETY: host buffers are handles; a bad one panics.
        unsafe { abi::release(rptr, rlen) };
        results
    }

    /// The message the last failing call on this thread passed to `set_error`.
    pub fn take_error() -> Option<String> {
        abi::host::take_error()
    }
}
