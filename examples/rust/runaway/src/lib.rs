//! `runaway`: misbehaving functions, so that weft's limits can be shown and tested. After each
//! failure `ok` shows that the service still works.

use weft_sdk::export;

/// Loops forever (until weft's time limit stops it).
#[export]
pub fn spin() {
    let mut spins = 0u64;
    loop {
        // a volatile write is a side effect the optimizer must keep: the loop stays
        spins = spins.wrapping_add(1);
        unsafe { std::ptr::write_volatile(&mut spins, spins) };
    }
}

/// Allocates `mb` MiB, touches every page, and returns the number of MiB allocated (until weft's
/// memory limit stops it).
#[export]
pub fn hog(mb: u32) -> u32 {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..mb {
        let mut chunk = vec![0u8; 1 << 20];
        for page in chunk.chunks_mut(4096) {
            // volatile so that the writes (and the memory) are not optimized away
            unsafe { std::ptr::write_volatile(&mut page[0], 1) };
        }
        chunks.push(chunk);
    }
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    (total >> 20) as u32
}

/// Panics with a message (the call fails with it).
#[export]
pub fn boom() -> String {
    panic!("boom: this function always panics")
}

/// Recurses `n` levels without tail calls (so a large `n` overflows the stack).
#[export]
pub fn recurse(n: u64) -> u64 {
    deep(n)
}

#[inline(never)]
fn deep(n: u64) -> u64 {
    // A frame the optimizer cannot elide: volatile reads of a stack buffer before and after the
    // recursive call, so that the buffer lives across it and the call is not a tail call.
    let frame = [n; 16];
    let n = unsafe { std::ptr::read_volatile(&frame[(n % 16) as usize]) };
    if n == 0 {
        return 0;
    }
    let below = deep(n - 1);
    below.wrapping_add(unsafe { std::ptr::read_volatile(&frame[(n % 7) as usize]) })
}

/// Still here.
#[export]
pub fn ok() -> String {
    "ok".to_string()
}
