//! A fast keyed hasher for the name tables of the parser and the interpreter, and the parser's
//! name [`Interner`].
//!
//! Keys are variable names from the script, so they are attacker-chosen: the hasher is seeded
//! per process from the standard library's random state and mixes every 8-byte word with a
//! folded 128-bit multiply against the seed (the construction of `ahash`'s fallback), so
//! collisions can't be precomputed. It is several times faster than SipHash on short names.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

const MULTIPLE: u64 = 6364136223846793005;

fn seeds() -> [u64; 2] {
    static SEEDS: OnceLock<[u64; 2]> = OnceLock::new();
    *SEEDS.get_or_init(|| {
        let s = std::collections::hash_map::RandomState::new();
        [s.hash_one(0x5eed_u64) | 1, s.hash_one(0xfeed_u64)]
    })
}

#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = (a as u128) * (b as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

/// The hasher (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct FastHasher {
    state: u64,
    key: u64,
}

impl Hasher for FastHasher {
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) {
        let len = bytes.len();
        let read8 = |b: &[u8]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let read4 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
        let (a, b) = if len > 16 {
            let mut rest = &bytes[..len - 16];
            while rest.len() >= 8 {
                self.state = folded_multiply(self.state ^ read8(rest), self.key);
                rest = &rest[8..];
            }
            (read8(&bytes[len - 16..]), read8(&bytes[len - 8..]))
        } else if len >= 8 {
            (read8(bytes), read8(&bytes[len - 8..]))
        } else if len >= 4 {
            (read4(bytes), read4(&bytes[len - 4..]))
        } else if len > 0 {
            ((bytes[0] as u64) | (bytes[len / 2] as u64) << 8 | (bytes[len - 1] as u64) << 16, 0)
        } else {
            (0, 0)
        };
        self.state = folded_multiply(self.state ^ a ^ ((len as u64) << 56), self.key);
        self.state = folded_multiply(self.state ^ b, self.key.rotate_left(17) | 1);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.state = folded_multiply(self.state ^ i, self.key);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        folded_multiply(self.state, MULTIPLE).rotate_left((self.state & 63) as u32)
    }
}

/// Builds [`FastHasher`]s with the process seeds.
#[derive(Debug, Clone, Copy)]
pub struct FastState {
    seeds: [u64; 2],
}

impl Default for FastState {
    fn default() -> Self {
        FastState { seeds: seeds() }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { state: self.seeds[1], key: self.seeds[0] }
    }
}

/// A map with [`FastState`].
pub type FastMap<K, V> = HashMap<K, V, FastState>;

/// A set with [`FastState`].
pub type FastSet<K> = std::collections::HashSet<K, FastState>;

/// Numbers names: equal texts get equal ids, dense from 0 in order of first appearance.
///
/// An open-addressing table (linear probing, at most 5/8 full) of 8-byte slots (32 bits of the
/// [`FastHasher`] hash, the id) keyed by the texts; the texts themselves are in a separate list
/// indexed by id, read only when the hash matches. A script of 10,000 names probes a table of
/// 16,384 slots (128 KiB, it stays in cache), about a third of the work of a `HashMap` entry.
#[derive(Debug, Default)]
pub struct Interner<'a> {
    /// `hash << 32 | id`, or [`EMPTY`].
    slots: Vec<u64>,
    names: Vec<&'a str>,
    state: FastState,
}

const EMPTY: u64 = u64::MAX;

/// `a == b`, comparing names of up to 16 bytes with two overlapping loads of each instead of a
/// call to `memcmp`.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let u64_at = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap_or_default());
    let u32_at = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().unwrap_or_default());
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => u32_at(a, 0) == u32_at(b, 0) && u32_at(a, n - 4) == u32_at(b, n - 4),
        8..=16 => u64_at(a, 0) == u64_at(b, 0) && u64_at(a, n - 8) == u64_at(b, n - 8),
        _ => a == b,
    }
}

impl<'a> Interner<'a> {
    /// An interner with a table for about `expected` names before it grows, and room reserved
    /// for the texts of up to `at_most` of them, in the storage of `slots` and `names` (emptied
    /// first).
    pub fn with_buffers(mut slots: Vec<u64>, mut names: Vec<&'a str>, expected: usize, at_most: usize) -> Self {
        let n = (expected.max(8) * 8 / 5).next_power_of_two();
        slots.clear();
        slots.resize(n, EMPTY);
        names.clear();
        names.reserve(at_most);
        Interner { slots, names, state: FastState::default() }
    }

    /// The storage, for another table.
    pub fn into_buffers(self) -> (Vec<u64>, Vec<&'a str>) {
        (self.slots, self.names)
    }

    /// Names numbered so far.
    pub fn len(&self) -> u32 {
        self.names.len() as u32
    }

    /// 32 bits of a keyed hash. A name of at most 8 bytes (most of them) is two folded
    /// multiplies: its bytes and length determine the 64-bit word `v` exactly, which is mixed
    /// with both process seeds; longer names go through [`FastHasher`]. (One multiply was not
    /// enough: over 300 seeds, 10,000 names like `17_x` filled as few as 2,807 of 4,096 top-bit
    /// buckets, where a random function fills ~3,740; with the second, the worst was 3,691.)
    #[inline(always)]
    fn hash(&self, text: &str) -> u32 {
        let b = text.as_bytes();
        let len = b.len();
        if len <= 8 {
            let read4 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
            let v = if len >= 4 {
                read4(b) | read4(&b[len - 4..]) << 32
            } else if len > 0 {
                (b[0] as u64) | (b[len / 2] as u64) << 8 | (b[len - 1] as u64) << 16
            } else {
                0
            };
            let [k0, k1] = self.state.seeds;
            return (folded_multiply(folded_multiply(v ^ k1, k0 ^ len as u64), MULTIPLE ^ k1) >> 32) as u32;
        }
        let mut h = self.state.build_hasher();
        h.write(b);
        (h.finish() >> 32) as u32
    }

    /// The id of `text`, numbering it if it is new.
    #[inline(always)]
    pub fn id(&mut self, text: &'a str) -> u32 {
        let hash = self.hash(text);
        self.id_hashed(text, hash)
    }

    /// The hash [`Interner::id_hashed`] takes for `text`, and a prefetch of the table slot where
    /// its search starts: a new name's slot is a cache miss (the table is random access), which
    /// a caller that takes the id a little later does not wait for.
    #[inline(always)]
    pub fn hash_and_prefetch(&self, text: &str) -> u32 {
        let hash = self.hash(text);
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let slot = self.slots[hash as usize & (self.slots.len() - 1)..].as_ptr();
            // SAFETY: a prefetch is a hint that never faults; SSE is enabled on every x86-64
            // target; the address is a slot of the table.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(slot.cast()) };
        }
        hash
    }

    /// [`Interner::id`] of `text`, whose hash [`Interner::hash_and_prefetch`] gave.
    #[inline(always)]
    pub fn id_hashed(&mut self, text: &'a str, hash: u32) -> u32 {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == EMPTY {
                break;
            }
            if (slot >> 32) as u32 == hash && same(self.names[slot as u32 as usize].as_bytes(), text.as_bytes()) {
                return slot as u32;
            }
            i = (i + 1) & mask;
        }
        let id = self.names.len() as u32;
        self.slots[i] = (hash as u64) << 32 | id as u64;
        crate::scratch::push(&mut self.names, text);
        if self.names.len() * 8 > self.slots.len() * 5 {
            self.grow();
        }
        id
    }

    #[cold]
    fn grow(&mut self) {
        let doubled = vec![EMPTY; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        let mask = self.slots.len() - 1;
        for slot in old.into_iter().filter(|s| *s != EMPTY) {
            let mut i = (slot >> 32) as usize & mask;
            while self.slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_names_spread() {
        let s = FastState::default();
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            seen.insert(s.hash_one(format!("x{i}").as_str()) >> 52);
        }
        // 10,000 names into 4,096 top-12-bit buckets: a random function fills 4096·(1-e^-2.44)
        // ≈ 3,740 of them
        assert!(seen.len() > 3600, "{}", seen.len());
        assert_ne!(s.hash_one("ab"), s.hash_one("ba"));
        assert_ne!(s.hash_one(""), s.hash_one("\0"));
    }

    #[test]
    fn short_name_comparison() {
        let names = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abce",
            "abcdefgh",
            "abcdefgi",
            "abcdefghi",
            "bbcdefghi",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "abcdefghijklmnopq",
        ];
        for a in names {
            for b in names {
                assert_eq!(same(a.as_bytes(), b.as_bytes()), a == b, "{a} {b}");
            }
        }
    }

    #[test]
    fn interner_hash_spreads_short_and_long_names() {
        // the short path (up to 8 bytes) and the long one, on names that differ in one place,
        // with 24 seeds: a hash that is weak for some seeds shows it (one multiply was, for
        // about one seed in 25 on `17_x`-like names)
        let random = std::collections::hash_map::RandomState::new();
        let names: Vec<Vec<String>> = [("x", ""), ("", "_x"), ("r", ""), ("name_", "_long_suffix")]
            .iter()
            .map(|(prefix, suffix)| (0..10_000).map(|i| format!("{prefix}{i}{suffix}")).collect())
            .collect();
        for k in 0..24u64 {
            let mut interner = Interner::with_buffers(Vec::new(), Vec::new(), 4, 4);
            interner.state = FastState { seeds: [random.hash_one(2 * k) | 1, random.hash_one(2 * k + 1)] };
            for family in &names {
                let mut top = vec![false; 4096];
                let mut low = vec![false; 4096];
                for name in family {
                    let h = interner.hash(name);
                    top[(h >> 20) as usize] = true;
                    low[(h & 4095) as usize] = true;
                }
                // as in `distinct_names_spread`: about 3,740 of 4,096 buckets for a random
                // function (the worst of 1,200 seed and family pairs: ~3,690)
                let (top, low) = (top.iter().filter(|b| **b).count(), low.iter().filter(|b| **b).count());
                assert!(top > 3600 && low > 3600, "seed {k}, {}: {top} {low}", family[17]);
            }
        }
        let interner = Interner::with_buffers(Vec::new(), Vec::new(), 4, 4);
        let h = |s: &str| interner.hash(s);
        for (a, b) in [("ab", "ba"), ("", "\0"), ("a", "a\0"), ("abcd", "abcde"), ("abcdefgh", "abcdefg")] {
            assert_ne!(h(a), h(b), "{a:?} {b:?}");
        }
    }

    #[test]
    fn interner_numbers_names_densely() {
        let names: Vec<String> = (0..5000).map(|i| format!("v{}", i % 1234)).collect();
        let mut interner = Interner::with_buffers(Vec::new(), Vec::new(), 4, 4);
        let mut first_seen = std::collections::HashMap::new();
        for n in &names {
            let next = first_seen.len() as u32;
            let expected = *first_seen.entry(n.as_str()).or_insert(next);
            assert_eq!(interner.id(n), expected, "{n}");
        }
        assert_eq!(interner.len(), 1234);
        assert_eq!(interner.id(""), 1234);
        assert_eq!(interner.id("v0"), 0);
    }
}
