//! The core-Wasm side of the module ABI (docs/module-abi.md, "Calling a function"): the exports a
//! module needs, the core type of every interface function and import, and the functions weft
//! offers every module under the import module `weft`.

use crate::validate::{ExternKind, ValidationError, WasmExport};

/// The core type of every interface function and every module-to-module import:
/// `(args_ptr, args_len) -> (ptr << 32) | len`.
pub const CALL_SIGNATURE: &str = "(i32, i32) -> i64";

/// The import module of the functions weft offers every module.
pub const HOST_MODULE: &str = "weft";

/// `weft.call_parameters`: the current call's parameters, in a buffer from the caller's `allocate`.
pub const CALL_PARAMETERS: &str = "call_parameters";

/// `weft.set_error`: a message to report if the current call then traps.
pub const SET_ERROR: &str = "set_error";

/// The export that hands out buffers.
pub const ALLOCATE: &str = "allocate";

/// The export that takes buffers back.
pub const RELEASE: &str = "release";

/// The memory export.
pub const MEMORY: &str = "memory";

/// Optional export called once after instantiation (a WASI reactor's constructor).
pub const INITIALIZE: &str = "_initialize";

const HOST_FUNCTIONS: &[(&str, &str)] = &[(CALL_PARAMETERS, "() -> i64"), (SET_ERROR, "(i32, i32)")];

/// The core type of host function `weft.<name>`, if weft provides it.
pub fn host_signature(name: &str) -> Option<&'static str> {
    HOST_FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, sig)| *sig)
}

/// The host functions as text, for error messages: `call_parameters () -> i64, set_error (i32, i32)`.
pub(crate) fn host_functions() -> String {
    HOST_FUNCTIONS.iter().map(|(n, s)| format!("{n} {s}")).collect::<Vec<_>>().join(", ")
}

/// A module that declares functions or imports must export `memory`, `allocate` and `release`.
pub(crate) fn check_required_exports(exports: &[WasmExport]) -> Result<(), ValidationError> {
    let required = [
        (MEMORY, ExternKind::Memory, None),
        (ALLOCATE, ExternKind::Function, Some("(i32) -> i32")),
        (RELEASE, ExternKind::Function, Some("(i32, i32)")),
    ];
    for (name, kind, signature) in required {
        let what = match exports.iter().find(|e| e.name == name) {
            None => match signature {
                Some(sig) => format!("the module exports no function `{name}` {sig}"),
                None => format!("the module exports no `{name}`"),
            },
            Some(e) if e.kind != kind => format!("export `{name}` is a {}, not a {kind}", e.kind),
            Some(e) => match signature {
                Some(sig) if e.signature != sig => {
                    format!("export `{name}` has core type {}, but the ABI needs {sig}", e.signature)
                }
                _ => continue,
            },
        };
        return Err(ValidationError::Abi { what });
    }
    Ok(())
}
