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

/// Numbers names: equal texts get equal ids, dense from 0 in order of first appearance.
///
/// An open-addressing table (linear probing, at most half full) keyed by [`FastHasher`]: about
/// a third of the work of a `HashMap` entry on the short names of scripts.
#[derive(Debug)]
pub struct Interner<'a> {
    slots: Vec<Slot<'a>>,
    len: u32,
    state: FastState,
}

#[derive(Debug, Clone, Copy)]
struct Slot<'a> {
    text: &'a str,
    /// `u32::MAX` for an empty slot.
    id: u32,
    hash: u32,
}

const EMPTY: Slot<'static> = Slot { text: "", id: u32::MAX, hash: 0 };

impl<'a> Interner<'a> {
    /// An interner with room for about `names` names before it grows.
    pub fn with_capacity(names: usize) -> Self {
        let n = (names.max(8) * 2).next_power_of_two();
        Interner { slots: vec![EMPTY; n], len: 0, state: FastState::default() }
    }

    /// Names numbered so far.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// The id of `text`, numbering it if it is new.
    #[inline(always)]
    pub fn id(&mut self, text: &'a str) -> u32 {
        let mut h = self.state.build_hasher();
        h.write(text.as_bytes());
        let hash = h.finish();
        let mask = self.slots.len() - 1;
        let mut i = (hash >> 32) as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot.id == u32::MAX {
                break;
            }
            if slot.hash == hash as u32 && slot.text == text {
                return slot.id;
            }
            i = (i + 1) & mask;
        }
        let id = self.len;
        self.slots[i] = Slot { text, id, hash: hash as u32 };
        self.len += 1;
        if self.len as usize * 2 > self.slots.len() {
            self.grow();
        }
        id
    }

    #[cold]
    fn grow(&mut self) {
        let doubled = vec![EMPTY; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        let mask = self.slots.len() - 1;
        for slot in old.into_iter().filter(|s| s.id != u32::MAX) {
            let mut h = self.state.build_hasher();
            h.write(slot.text.as_bytes());
            let mut i = (h.finish() >> 32) as usize & mask;
            while self.slots[i].id != u32::MAX {
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
    fn interner_numbers_names_densely() {
        let names: Vec<String> = (0..5000).map(|i| format!("v{}", i % 1234)).collect();
        let mut interner = Interner::with_capacity(4);
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
