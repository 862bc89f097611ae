//! Content hashes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A blake3 hash: the id of a module, a blob, a blueprint.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The blake3 hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        // Large blobs (AOT artifacts of several MB) hash on all cores.
        if bytes.len() >= 1 << 20 {
            let mut h = blake3::Hasher::new();
            h.update_rayon(bytes);
            return Self(*h.finalize().as_bytes());
        }
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// The first 12 hex characters, for people.
    pub fn short(&self) -> String {
        self.to_string()[..12].to_owned()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short())
    }
}

/// Why text is not a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a hash: expected 64 hex characters")]
pub struct ParseHashError {
    text: String,
}

impl FromStr for Hash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseHashError { text: s.chars().take(80).collect() };
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(err());
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(err)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(err)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(Self(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let h = Hash::of(b"hello");
        assert_eq!(h.to_string().len(), 64);
        assert_eq!(h.to_string().parse::<Hash>().unwrap(), h);
        assert_eq!(h.to_string().to_uppercase().parse::<Hash>().unwrap(), h);
        assert_eq!(h.short().len(), 12);
        assert!("xyz".parse::<Hash>().is_err());
        assert!("g".repeat(64).parse::<Hash>().is_err());
    }

    #[test]
    fn large_inputs_hash_like_small_ones() {
        let big = vec![7u8; 3 << 20];
        assert_eq!(Hash::of(&big).0, *blake3::hash(&big).as_bytes());
    }
}
