use weft_compiler::{Compiler, Error, ValidationError};

#[test]
fn fingerprint_is_stable_for_one_configuration() {
    let a = Compiler::new().unwrap();
    let b = Compiler::new().unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.fingerprint(), weft_storage::Hash::of(b""));
}

#[test]
fn precompile_validates_first() {
    let compiler = Compiler::new().unwrap();
    let err = compiler.precompile(b"not wasm").unwrap_err();
    assert!(matches!(err, Error::Invalid { source: ValidationError::NotWasm { .. }, .. }), "{err}");
    // A valid Wasm module without an interface section is not compiled either.
    let wasm = wat::parse_str("(module)").unwrap();
    assert!(matches!(
        compiler.precompile(&wasm),
        Err(Error::Invalid { source: ValidationError::MissingInterface, .. })
    ));
}

#[test]
fn precompiled_artifacts_run() {
    let compiler = Compiler::new().unwrap();
    let artifact = compiler.precompile(&crate::sum_module()).unwrap();
    assert!(!artifact.is_empty());
    // Round trip through the cache's loader is covered in `cache`; here the engine compiles from Wasm.
    let module = wasmtime::Module::new(compiler.engine(), crate::sum_module()).unwrap();
    assert_eq!(crate::call_sum(compiler.engine(), &module, 10), 55);
}

#[test]
fn engine_rejects_what_validation_rejects() {
    // The engine's feature set is validation's: shared memory fails in wasmtime too.
    let compiler = Compiler::new().unwrap();
    let wasm = wat::parse_str("(module (memory 1 1 shared))").unwrap();
    assert!(wasmtime::Module::new(compiler.engine(), &wasm).is_err());
    let wasm = wat::parse_str("(module (func (param i32) (result i32) local.get 0 return_call 0))").unwrap();
    assert!(wasmtime::Module::new(compiler.engine(), &wasm).is_ok(), "tail calls are enabled in both");
}
