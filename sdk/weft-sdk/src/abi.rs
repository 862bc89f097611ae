//! The module side of the calling convention (`docs/module-abi.md`, "Calling a function"):
//! the `allocate`/`release` exports, buffers that change hands, the `weft` host imports, and how
//! a call fails.
//!
//! On `wasm32` buffers are ranges of linear memory. On other targets (so that `cargo test` works
//! on the host) a buffer's "address" is a handle into a per-thread table, the host imports are
//! stubs, and a failing call panics instead of trapping.

/// Packs a buffer as a function result: `(ptr << 32) | len`, both unsigned 32-bit.
pub(crate) fn pack(ptr: i32, len: i32) -> i64 {
    (((ptr as u32 as u64) << 32) | len as u32 as u64) as i64
}

/// Splits a packed `(ptr << 32) | len`.
pub(crate) fn unpack(packed: i64) -> (i32, i32) {
    let packed = packed as u64;
    ((packed >> 32) as u32 as i32, packed as u32 as i32)
}

/// Gives a buffer of `bytes` away (to weft, as a function's results): returns it packed, or 0
/// when empty. Its receiver frees it with `release`.
pub(crate) fn give(bytes: Vec<u8>) -> i64 {
    if bytes.is_empty() {
        return 0;
    }
    let len = bytes.len() as i32;
    pack(memory::leak(bytes), len)
}

/// Takes ownership of a buffer weft handed over (arguments, results of an import, call
/// parameters). `len <= 0` is the empty buffer, whatever `ptr` is.
///
/// # Safety
///
/// Unless `len <= 0`, `ptr` must be the address `allocate(len)` returned, not taken before.
pub(crate) unsafe fn take(ptr: i32, len: i32) -> Vec<u8> {
    if len <= 0 {
        return Vec::new();
    }
    memory::take(ptr, len as u32 as usize)
}

/// Reports `message` to weft as the reason of the failure and fails the current call.
///
/// On `wasm32` this calls `weft.set_error` and executes `unreachable`; elsewhere it unwinds with
/// the message as payload, without running the panic hook (the stub of `set_error` keeps the
/// message for tests).
pub fn fail(message: &str) -> ! {
    host::set_error(message);
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::unreachable()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::panic::resume_unwind(Box::new(message.to_owned()))
    }
}

/// Installs, once, the panic hook that forwards panic messages to `weft.set_error` (so that a
/// panicking module fails the call with its message), keeping the previous hook after it.
pub(crate) fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = if let Some(s) = payload.downcast_ref::<&str>() {
                s
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.as_str()
            } else {
                "Box<dyn Any>"
            };
            let text = match info.location() {
                Some(l) => format!("panicked at {}:{}:{}: {}", l.file(), l.line(), l.column(), message),
                None => format!("panicked: {}", message),
            };
            host::set_error(&text);
            previous(info);
        }));
    });
}

/// `allocate(size) -> ptr`: `size` fresh bytes that weft may write (the SDK's export).
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn allocate(size: i32) -> i32 {
    memory::alloc(size as u32 as usize)
}

/// `release(ptr, size)`: frees a buffer from `allocate` or a function's results (the SDK's export).
///
/// # Safety
///
/// `ptr` must come from `allocate(size)` or be a result buffer of `size` bytes, not freed before.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn release(ptr: i32, size: i32) {
    if size > 0 {
        drop(take(ptr, size));
    }
}

#[cfg(target_arch = "wasm32")]
mod memory {
    use std::mem::ManuallyDrop;

    pub fn alloc(size: usize) -> i32 {
        // `with_capacity` allocates exactly `size` bytes (layout size × 1, align 1): `take`
        // rebuilds the same layout. Nothing is initialized; weft writes the bytes.
        let mut buffer = ManuallyDrop::new(Vec::<u8>::with_capacity(size));
        buffer.as_mut_ptr() as usize as i32
    }

    pub unsafe fn take(ptr: i32, len: usize) -> Vec<u8> {
        Vec::from_raw_parts(ptr as u32 as usize as *mut u8, len, len)
    }

    pub fn leak(bytes: Vec<u8>) -> i32 {
        // A boxed slice has capacity == len, the layout `take` rebuilds.
        Box::into_raw(bytes.into_boxed_slice()) as *mut u8 as usize as i32
    }

    pub fn borrow(bytes: &[u8]) -> (i32, i32) {
        if bytes.is_empty() {
            (0, 0)
        } else {
            (bytes.as_ptr() as usize as i32, bytes.len() as i32)
        }
    }
}

/// Host emulation: handles into a per-thread table instead of addresses.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod memory {
    use std::cell::RefCell;

    thread_local! {
        static BUFFERS: RefCell<Vec<Option<Vec<u8>>>> = const { RefCell::new(Vec::new()) };
    }

    fn store(bytes: Vec<u8>) -> i32 {
        BUFFERS.with(|b| {
            let mut b = b.borrow_mut();
            b.push(Some(bytes));
            b.len() as i32
        })
    }

    pub fn alloc(size: usize) -> i32 {
        store(vec![0; size])
    }

    pub fn leak(bytes: Vec<u8>) -> i32 {
        store(bytes)
    }

    /// # Safety
    ///
    /// Safe on the host; the signature matches the wasm32 one.
    pub unsafe fn take(ptr: i32, len: usize) -> Vec<u8> {
        let bytes = BUFFERS.with(|b| b.borrow_mut().get_mut((ptr as usize).wrapping_sub(1)).and_then(Option::take));
        match bytes {
            Some(bytes) if bytes.len() == len => bytes,
            Some(bytes) => panic!("buffer {} has {} bytes, not {}", ptr, bytes.len(), len),
            None => panic!("no buffer {}", ptr),
        }
    }

    /// Writes `bytes` into the buffer `ptr` (from `allocate`), as weft writes arguments.
    pub fn fill(ptr: i32, bytes: &[u8]) {
        BUFFERS.with(|b| match b.borrow_mut().get_mut((ptr as usize).wrapping_sub(1)) {
            Some(Some(buffer)) if buffer.len() == bytes.len() => buffer.copy_from_slice(bytes),
            _ => panic!("no buffer {} of {} bytes", ptr, bytes.len()),
        })
    }

    /// Copies the buffer `ptr` out, as weft copies results.
    pub fn copy(ptr: i32, len: usize) -> Vec<u8> {
        BUFFERS.with(|b| match b.borrow().get((ptr as usize).wrapping_sub(1)) {
            Some(Some(buffer)) if buffer.len() == len => buffer.clone(),
            _ => panic!("no buffer {} of {} bytes", ptr, len),
        })
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) use memory::borrow;

/// The `weft` imports every module may use.
#[cfg(target_arch = "wasm32")]
pub(crate) mod host {
    mod raw {
        #[link(wasm_import_module = "weft")]
        extern "C" {
            pub fn call_parameters() -> i64;
            pub fn set_error(ptr: i32, len: i32);
        }
    }

    pub fn set_error(message: &str) {
        // SAFETY: weft only reads the message's bytes during the call.
        unsafe { raw::set_error(message.as_ptr() as usize as i32, message.len() as i32) }
    }

    pub fn call_parameters() -> Vec<u8> {
        // SAFETY: weft returns a buffer from our `allocate` that now belongs to us.
        unsafe {
            let (ptr, len) = super::unpack(raw::call_parameters());
            super::take(ptr, len)
        }
    }
}

/// Stubs of the `weft` imports for host builds and tests.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod host {
    use std::cell::RefCell;

    use crate::CallParameters;

    thread_local! {
        static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
        static CALL_PARAMETERS: RefCell<CallParameters> = RefCell::new(CallParameters::default());
    }

    pub fn set_error(message: &str) {
        LAST_ERROR.with(|e| *e.borrow_mut() = Some(message.to_owned()));
    }

    pub fn take_error() -> Option<String> {
        LAST_ERROR.with(|e| e.borrow_mut().take())
    }

    pub fn call_parameters() -> Vec<u8> {
        CALL_PARAMETERS.with(|p| crate::wire::to_vec(&*p.borrow()).expect("call parameters encode"))
    }

    pub fn set_call_parameters(parameters: CallParameters) {
        CALL_PARAMETERS.with(|p| *p.borrow_mut() = parameters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_unpack_are_unsigned() {
        assert_eq!(pack(0, 0), 0);
        assert_eq!(pack(8, 3), (8 << 32) | 3);
        let packed = pack(-16, -1); // 0xffff_fff0, 0xffff_ffff
        assert_eq!(packed as u64, 0xffff_fff0_ffff_ffff);
        assert_eq!(unpack(packed), (-16, -1));
    }

    #[test]
    fn buffers_change_hands() {
        let ptr = allocate(3);
        unsafe { release(ptr, 3) };
        assert_eq!(unsafe { take(0, 0) }, Vec::<u8>::new());
        assert_eq!(give(Vec::new()), 0);
        let (ptr, len) = unpack(give(vec![1, 2, 3]));
        assert_eq!(unsafe { take(ptr, len) }, [1, 2, 3]);
    }
}
