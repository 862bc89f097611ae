//! The stable error that crosses the plugin boundary, and the panic guard.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::StableAbi;
use abi_stable::std_types::{RResult, RString};

/// A numeric error class. Codes are stable: new ones are only ever added.
///
/// Unknown codes (from a newer plugin) are kept as they are and shown as `code N`.
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// Anything without a more precise code.
    pub const OTHER: Self = Self(1);
    /// The configuration text given to a constructor is malformed or inconsistent.
    pub const INVALID_CONFIG: Self = Self(2);
    /// The plugin panicked; the host caught it at the boundary.
    pub const PANIC: Self = Self(3);
    /// The plugin does not implement this kind or method.
    pub const UNSUPPORTED: Self = Self(4);
    /// The thing asked for does not exist.
    pub const NOT_FOUND: Self = Self(5);
    /// An I/O error (disk, socket).
    pub const IO: Self = Self(6);
    /// Stored or received bytes are corrupt.
    pub const CORRUPT: Self = Self(7);
    /// A configured limit was hit (size, count, queue).
    pub const LIMIT: Self = Self(8);
    /// The operation did not finish in time.
    pub const TIMEOUT: Self = Self(9);
    /// The caller is not allowed to do this.
    pub const DENIED: Self = Self(10);
    /// The argument is malformed.
    pub const INVALID_ARGUMENT: Self = Self(11);
    /// The plugin was shut down or the peer is unreachable.
    pub const CLOSED: Self = Self(12);

    /// A short lowercase name for the code.
    pub fn name(self) -> &'static str {
        match self {
            Self::OTHER => "error",
            Self::INVALID_CONFIG => "invalid config",
            Self::PANIC => "panic",
            Self::UNSUPPORTED => "unsupported",
            Self::NOT_FOUND => "not found",
            Self::IO => "i/o error",
            Self::CORRUPT => "corrupt data",
            Self::LIMIT => "limit exceeded",
            Self::TIMEOUT => "timeout",
            Self::DENIED => "denied",
            Self::INVALID_ARGUMENT => "invalid argument",
            Self::CLOSED => "closed",
            _ => "unknown code",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// The error every fallible plugin call returns: a stable code and a message.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: RString,
}

impl Error {
    /// An error with `code` and a lowercase, one-line message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: RString::from(message.into()) }
    }

    /// [`ErrorCode::OTHER`].
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::OTHER, message)
    }

    /// [`ErrorCode::INVALID_CONFIG`].
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::INVALID_CONFIG, message)
    }

    /// [`ErrorCode::IO`] from a [`std::io::Error`], with what was being done.
    pub fn io(context: impl fmt::Display, err: &std::io::Error) -> Self {
        Self::new(ErrorCode::IO, format!("{context}: {err}"))
    }

    /// [`ErrorCode::UNSUPPORTED`].
    pub fn unsupported(what: impl fmt::Display) -> Self {
        Self::new(ErrorCode::UNSUPPORTED, format!("{what} is not supported by this plugin"))
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message, without the code.
    pub fn message(&self) -> &str {
        self.message.as_str()
    }

    /// The same error with `context: ` put in front of the message.
    #[must_use]
    pub fn context(self, context: impl fmt::Display) -> Self {
        Self::new(self.code, format!("{context}: {}", self.message))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message.as_str())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error").field("code", &self.code).field("message", &self.message.as_str()).finish()
    }
}

impl std::error::Error for Error {}

/// The result type of plugin-facing traits.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs `f`, turning a panic into an [`ErrorCode::PANIC`] error.
///
/// Every call that crosses the boundary goes through this on the plugin side, so a panicking plugin
/// returns an error instead of unwinding into the host (which would abort the process). `what` names
/// the call for the message, e.g. `"storage.get"`.
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> RResult<T, Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.into(),
        Err(payload) => RResult::RErr(panic_error(what, payload.as_ref())),
    }
}

/// Like [`guard`], naming the call only if it panicked (for hot paths whose name is built).
pub(crate) fn guard_named<T>(what: impl FnOnce() -> String, f: impl FnOnce() -> Result<T>) -> RResult<T, Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.into(),
        Err(payload) => RResult::RErr(panic_error(&what(), payload.as_ref())),
    }
}

/// Like [`guard`] for calls that cannot fail: a panic yields `fallback`.
pub(crate) fn guard_infallible<T>(f: impl FnOnce() -> T, fallback: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| fallback())
}

pub(crate) fn panic_error(what: &str, payload: &(dyn Any + Send)) -> Error {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    Error::new(ErrorCode::PANIC, format!("plugin panicked in {what}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_passes_values_and_errors_through() {
        assert_eq!(guard("t", || Ok(7)).into_result(), Ok(7));
        let e = guard::<()>("t", || Err(Error::other("nope"))).into_result().unwrap_err();
        assert_eq!(e.code(), ErrorCode::OTHER);
        assert_eq!(e.message(), "nope");
    }

    #[test]
    fn guard_turns_panics_into_errors() {
        let e = guard::<()>("storage.get", || panic!("boom {}", 1)).into_result().unwrap_err();
        assert_eq!(e.code(), ErrorCode::PANIC);
        assert_eq!(e.message(), "plugin panicked in storage.get: boom 1");
        let e = guard::<()>("x", || std::panic::panic_any(5u8)).into_result().unwrap_err();
        assert!(e.message().contains("non-string"));
    }

    #[test]
    fn context_prefixes_message() {
        let e = Error::other("disk full").context("writing blob abc");
        assert_eq!(e.to_string(), "writing blob abc: disk full");
        assert_eq!(ErrorCode(999).to_string(), "unknown code (999)");
    }
}
