//! The large buffers of a run, kept per thread from one run to the next.
//!
//! A run over a long trace needs a few buffers of about the trace's size: the decoded input
//! traces, the result trace, the trace handler's position map, the table of lazy JSON texts and
//! the scalar bindings (10,000 states: ~3 MB), and for a script parsed in the run (not from the
//! script cache) the syntax tree's arenas. Allocated fresh on every run, they are fresh
//! memory every time: glibc hands blocks that large back to the kernel when they are freed, and
//! the next run page-faults them in again (a third of the time of a 10,000-call replay). So each
//! thread keeps the buffers of its last run, emptied, and the next run starts from them.
//!
//! A run that is refused after it took the buffers (data that does not decode, a failed
//! signature check, a script that does not parse, an uncatchable error) hands back what it still
//! holds, so a hostile particle does not make the next run on the thread fault its memory in.
//!
//! Bounds: one set per thread that runs the interpreter, and a buffer whose capacity is above
//! [`MAX_KEPT_BYTES`] is freed instead of kept, so an unusual particle does not pin its memory.
//! The values in the buffers are dropped when a run ends; only the capacity is kept.

use std::cell::RefCell;

use crate::data::{Layout, State};
use crate::exec::{EnvBuffers, TextBuffer};
use crate::parser::ParseBuffers;

/// Largest buffer kept for the next run (bytes of capacity).
pub const MAX_KEPT_BYTES: usize = 16 * 1024 * 1024;

/// The buffers of one run. The states and texts borrow the run's inputs (`'a`); the buffers are
/// handed back empty.
#[derive(Default)]
pub(crate) struct Buffers<'a> {
    /// The decoded `prev_data` trace.
    pub prev: Vec<State<'a>>,
    /// Where the states of `prev_data` are.
    pub layout: Layout<'a>,
    /// The decoded `current_data` trace.
    pub cur: Vec<State<'a>>,
    /// The result trace.
    pub result: Vec<State<'a>>,
    /// The trace handler's positions of merged states.
    pub pos_map: Vec<(u32, u32)>,
    /// The lazy JSON texts.
    pub texts: TextBuffer<'a>,
    /// The scalar environment's tables.
    pub env: EnvBuffers,
    /// The arenas of a script parsed for this run only (not from the script cache).
    pub parse: ParseBuffers<'a>,
}

thread_local! {
    static KEPT: RefCell<Buffers<'static>> = RefCell::new(Buffers::default());
}

/// Gives an empty vector of another lifetime the same allocation. The element types differ in
/// lifetimes only (checked at compile time: same size and alignment), so the allocation has the
/// layout a `Vec<U>` of that capacity expects.
#[inline]
pub(crate) fn relabel<T, U>(v: Vec<T>) -> Vec<U> {
    const { assert!(std::mem::size_of::<T>() == std::mem::size_of::<U>()) };
    const { assert!(std::mem::align_of::<T>() == std::mem::align_of::<U>()) };
    let mut v = std::mem::ManuallyDrop::new(v);
    // the elements are dropped here: only the storage changes hands
    v.clear();
    // SAFETY: `clear` leaves no element; the pointer and capacity come from a `Vec<T>` whose
    // allocation is not used or freed again (`ManuallyDrop`), and `T` and `U` have the same size
    // and alignment (asserted above), so `Layout::array::<U>(capacity)` is the layout it was
    // allocated with. `Vec::from_raw_parts` with length 0 reads no element.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<U>(), 0, v.capacity()) }
}

/// `v.push(x)`, always inlined: an element pushed by the out-of-line `Vec::push` is built on
/// the stack and copied with wider loads than it was written with (a store-forwarding stall;
/// the pushes of a replayed call's text, binding and decoded state were a sixth of a replay).
#[inline(always)]
pub(crate) fn push<T>(v: &mut Vec<T>, x: T) {
    if v.len() == v.capacity() {
        v.reserve(1);
    }
    let len = v.len();
    // SAFETY: `reserve` left room for one more element: the slot at `len` is allocated and
    // unused; it is written before the length covers it.
    unsafe {
        v.as_mut_ptr().add(len).write(x);
        v.set_len(len + 1);
    }
}

/// [`push`] of the element `make` returns, made after the room for it is ensured: made before
/// (as an argument), it is kept on the stack across the possible `reserve` call and copied to
/// its slot with wider loads than it was written with (the stall [`push`] avoids for `Vec::push`).
#[inline(always)]
pub(crate) fn push_with<T>(v: &mut Vec<T>, make: impl FnOnce() -> T) {
    if v.len() == v.capacity() {
        v.reserve(1);
    }
    let len = v.len();
    let x = make();
    // SAFETY: as in `push` (`make` cannot change `v`: it is borrowed mutably here).
    unsafe {
        v.as_mut_ptr().add(len).write(x);
        v.set_len(len + 1);
    }
}

/// `out.extend_from_slice(bytes)`, always inlined, without a call to `memcpy` for up to 16
/// bytes (two overlapping fixed-size copies; the short texts of arguments, names and values
/// are most of what a run appends to its buffers).
#[inline(always)]
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len();
    if n > 16 {
        out.extend_from_slice(bytes);
        return;
    }
    out.reserve(n);
    let len = out.len();
    let src = bytes.as_ptr();
    // SAFETY: `reserve` left room for `n` more bytes: `dst .. dst + n` is allocated and not
    // covered by the length. Every read is within `src .. src + n` and every write within
    // `dst .. dst + n` (each pair of copies covers the range from both ends: `k <= n <= 2k` for
    // copies of `k` bytes); unaligned accesses of plain integers. The length covers the bytes
    // once all are written.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        match n {
            8.. => {
                let (a, b) = (src.cast::<u64>().read_unaligned(), src.add(n - 8).cast::<u64>().read_unaligned());
                dst.cast::<u64>().write_unaligned(a);
                dst.add(n - 8).cast::<u64>().write_unaligned(b);
            }
            4.. => {
                let (a, b) = (src.cast::<u32>().read_unaligned(), src.add(n - 4).cast::<u32>().read_unaligned());
                dst.cast::<u32>().write_unaligned(a);
                dst.add(n - 4).cast::<u32>().write_unaligned(b);
            }
            1.. => {
                let (a, m, b) = (*src, *src.add(n / 2), *src.add(n - 1));
                *dst = a;
                *dst.add(n / 2) = m;
                *dst.add(n - 1) = b;
            }
            0 => {}
        }
        out.set_len(len + n);
    }
}

/// Empties `v` without dropping its elements (they are leaked: for elements known to own
/// nothing, emptying without visiting each of them).
#[inline]
pub(crate) fn forget_elements<T>(v: &mut Vec<T>) {
    // SAFETY: a length of 0 is within the capacity; the elements in the old length are not
    // dropped, which is a leak of whatever they own, never unsound.
    unsafe { v.set_len(0) }
}

/// Empties `v` and keeps it when its capacity is at most `max_bytes`.
#[inline]
pub(crate) fn keep<T, U>(v: Vec<T>, max_bytes: usize) -> Vec<U> {
    if v.capacity().saturating_mul(std::mem::size_of::<T>()) > max_bytes {
        return Vec::new();
    }
    relabel(v)
}

/// The buffers this thread kept from its last run (empty ones on the first run). They are
/// empty, so they serve any lifetime (`Buffers` is covariant: `'static` shortens to `'a`).
pub(crate) fn take<'a>() -> Buffers<'a> {
    // (a run from a thread that is being torn down starts from empty buffers)
    KEPT.try_with(|k| k.try_borrow_mut().map(|mut k| std::mem::take(&mut *k)).unwrap_or_default()).unwrap_or_default()
}

impl Buffers<'_> {
    /// The buffers emptied (their contents dropped here), without the ones above
    /// [`MAX_KEPT_BYTES`], ready to be kept with [`give`].
    pub(crate) fn emptied(self) -> Buffers<'static> {
        Buffers {
            prev: keep(self.prev, MAX_KEPT_BYTES),
            layout: self.layout.kept(MAX_KEPT_BYTES),
            cur: keep(self.cur, MAX_KEPT_BYTES),
            result: keep(self.result, MAX_KEPT_BYTES),
            pos_map: keep(self.pos_map, MAX_KEPT_BYTES),
            texts: self.texts.kept(MAX_KEPT_BYTES),
            env: self.env.kept(MAX_KEPT_BYTES),
            parse: self.parse.kept(MAX_KEPT_BYTES),
        }
    }
}

/// Keeps the buffers of a finished run for this thread's next run.
pub(crate) fn give(b: Buffers<'static>) {
    // a thread being torn down has no storage left: the buffers are simply freed
    let _ = KEPT.try_with(|k| {
        if let Ok(mut k) = k.try_borrow_mut() {
            *k = b;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_bytes_appends_like_extend_from_slice() {
        let source: Vec<u8> = (0..40u8).map(|b| b.wrapping_mul(37).wrapping_add(1)).collect();
        for before in 0..20 {
            for n in 0..=source.len() {
                for start in [0, 3] {
                    let bytes = &source[start.min(source.len() - n)..][..n];
                    // a full buffer too, so that `put_bytes` has to grow it
                    let mut got: Vec<u8> = Vec::with_capacity(before);
                    got.extend(std::iter::repeat_n(0xee, before));
                    let mut want = got.clone();
                    put_bytes(&mut got, bytes);
                    want.extend_from_slice(bytes);
                    assert_eq!(got, want, "{before} bytes before, {n} appended");
                }
            }
        }
    }

    #[test]
    fn relabel_keeps_the_allocation() {
        let mut v: Vec<State<'_>> = Vec::with_capacity(1000);
        v.push(State::Ap { generation: 1 });
        let ptr = v.as_ptr() as usize;
        let w: Vec<State<'static>> = relabel(v);
        assert_eq!((w.len(), w.capacity(), w.as_ptr() as usize), (0, 1000, ptr));
    }

    #[test]
    fn push_is_vec_push() {
        let item = std::sync::Arc::new(0u8);
        let mut v = Vec::new();
        for i in 0..1000 {
            push(&mut v, (i, item.clone()));
        }
        assert_eq!(v.len(), 1000);
        assert!(v.iter().enumerate().all(|(i, (j, _))| i == *j));
        assert_eq!(std::sync::Arc::strong_count(&item), 1001);
        drop(v);
        assert_eq!(std::sync::Arc::strong_count(&item), 1);
    }

    #[test]
    fn refused_runs_hand_their_buffers_back() {
        use crate::{CallResults, Limits, RunParams, run};
        let secret = [5u8; 32];
        let id = crate::peer_id::peer_id_from_secret(&secret);
        let limits = Limits::default();
        let p = RunParams {
            init_peer_id: id.clone(),
            current_peer_id: id,
            timestamp: 1,
            ttl: 1,
            particle_id: "p".into(),
            secret_key: secret.to_vec(),
            limits,
        };
        let none = CallResults::new();
        // 64 stream aps in a balanced seq tree: 64 states in the result trace
        let mut items: Vec<String> = (0..64).map(|i| format!("(ap {i} $s)")).collect();
        while items.len() > 1 {
            items = items.chunks(2).map(|c| format!("(seq {} {})", c[0], c[1])).collect();
        }
        let good = items.pop().expect("one tree");
        let first = run(&good, &[], &[], &p, &none);
        assert_eq!(first.ret_code, 0, "{}", first.error_message);
        let shadowing = format!("(seq {good} (seq (ap 1 x) (ap 2 x)))");
        // current data from another peer whose signature does not match its result
        let q_secret = [6u8; 32];
        let q = RunParams {
            current_peer_id: crate::peer_id::peer_id_from_secret(&q_secret),
            secret_key: q_secret.to_vec(),
            ..p.clone()
        };
        let on_q = format!(r#"(call "{}" ("s" "f") [] x)"#, q.current_peer_id);
        let asked = run(&on_q, &[], &[], &q, &none);
        let answer = CallResults::from([(1, crate::CallResult { ret_code: 0, result: "1".into() })]);
        let signed = run(&on_q, &asked.data, &[], &q, &answer);
        assert_eq!(signed.ret_code, 0, "{}", signed.error_message);
        let mut forged = crate::Data::decode(&signed.data).expect("q's data");
        forged.attestations[0].signature[0] ^= 1;
        let forged = forged.encode();
        let refusals: [(&str, &[u8], &[u8]); 5] = [
            // previous data that does not decode (its own buffer is gone, the others stay)
            (&good, b"not data", &[]),
            // current data that does not decode
            (&good, &first.data, b"not data"),
            // a script that does not parse
            ("(seq (null)", &first.data, &[]),
            // an uncatchable error while executing
            (&shadowing, &[], &[]),
            // a failed signature check
            (&good, &first.data, &forged),
        ];
        for (i, (air, prev, cur)) in refusals.into_iter().enumerate() {
            let again = run(&good, &first.data, &[], &p, &none);
            assert_eq!(again.ret_code, 0, "{}", again.error_message);
            let refused = run(air, prev, cur, &p, &none);
            assert_ne!(refused.ret_code, 0, "refusal {i}");
            if i == 4 {
                assert!(refused.error_message.contains("signature check failed"), "{}", refused.error_message);
            }
            assert_eq!(refused.data, prev, "refusal {i} keeps the previous data");
            let b = take();
            assert!(b.result.capacity() >= 64, "refusal {i}: result {}", b.result.capacity());
            assert!(b.pos_map.capacity() > 0 || i == 3, "refusal {i}: position map");
            if i > 0 {
                assert!(b.prev.capacity() >= 64, "refusal {i}: previous trace {}", b.prev.capacity());
            }
            give(b.emptied());
        }
    }

    #[test]
    fn buffers_are_reused_and_bounded() {
        let mut b = take();
        b.result.reserve(5000);
        b.result.push(State::Ap { generation: 0 });
        let ptr = b.result.as_ptr() as usize;
        b.prev.reserve(MAX_KEPT_BYTES / std::mem::size_of::<State<'_>>() + 1);
        give(b.emptied());
        let b = take();
        assert_eq!((b.result.len(), b.result.as_ptr() as usize), (0, ptr));
        assert!(b.result.capacity() >= 5000);
        assert_eq!(b.prev.capacity(), 0, "a buffer above the bound is freed");
    }
}
