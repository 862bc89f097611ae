//! Peer ids: the libp2p form of an Ed25519 public key, and the identity every plugin is given.
//!
//! A node's identity is a 32-byte Ed25519 secret seed; it is what transport and dht constructors
//! receive as `identity`, and a transport's `local_peer_id` must be [`peer_id_from_secret`] of it
//! (the libp2p plugin gets the same text from libp2p's own `PeerId`).
//!
//! A peer id is the base58btc text of the identity multihash of the protobuf-encoded public key:
//! `base58(00 24 08 01 12 20 ‖ public_key)`, which always starts with `12D3KooW`. The public key
//! can therefore be recovered from the id alone, which is how signatures of results produced by
//! other peers are verified.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use ed25519_dalek::{SigningKey, VerifyingKey};

const B58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/// Encodes bytes as base58btc (Bitcoin alphabet).
pub fn base58_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    // base-58 digits, least significant first
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &byte in &bytes[zeros..] {
        let mut carry = byte as u32;
        for d in digits.iter_mut() {
            carry += (*d as u32) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(digits.iter().rev().map(|d| B58[*d as usize] as char));
    out
}

/// Decodes base58btc text; `None` on a character outside the alphabet. Inputs longer than 128
/// characters are refused (peer ids are 52 characters).
pub fn base58_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() > 128 {
        return None;
    }
    let zeros = text.bytes().take_while(|b| *b == b'1').count();
    let mut bytes: Vec<u8> = Vec::new(); // least significant first
    for c in text.bytes().skip(zeros) {
        let mut carry = B58.iter().position(|x| *x == c)? as u32;
        for b in bytes.iter_mut() {
            carry += (*b as u32) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    Some(out)
}

/// The peer id of an Ed25519 public key.
pub fn peer_id_from_public_key(public_key: &[u8; 32]) -> String {
    let mut bytes = PREFIX.to_vec();
    bytes.extend_from_slice(public_key);
    base58_encode(&bytes)
}

/// The peer id of the key whose 32-byte secret seed is given.
pub fn peer_id_from_secret(secret: &[u8; 32]) -> String {
    let key = SigningKey::from_bytes(secret);
    peer_id_from_public_key(key.verifying_key().as_bytes())
}

/// Peer ids whose keys were recovered lately: decompressing a point costs about as much as a
/// signature check, and a node meets the same peers again and again. Bounded: emptied when full.
const KEY_CACHE: usize = 4096;

fn key_cache() -> &'static Mutex<HashMap<String, VerifyingKey>> {
    static CACHE: OnceLock<Mutex<HashMap<String, VerifyingKey>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// Recovers the Ed25519 public key from a peer id; `None` if the text is not such a peer id.
pub fn public_key_from_peer_id(peer_id: &str) -> Option<VerifyingKey> {
    if let Some(key) = key_cache().lock().unwrap_or_else(PoisonError::into_inner).get(peer_id) {
        return Some(*key);
    }
    let bytes = base58_decode(peer_id)?;
    if bytes.len() != 38 || bytes[..6] != PREFIX {
        return None;
    }
    let raw: [u8; 32] = bytes[6..].try_into().ok()?;
    let key = VerifyingKey::from_bytes(&raw).ok()?;
    let mut cache = key_cache().lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= KEY_CACHE {
        cache.clear();
    }
    cache.insert(peer_id.to_owned(), key);
    Some(key)
}

/// The signing key of a 32-byte seed. Making one derives the public key (a scalar
/// multiplication, as costly as signing); the last few are kept, per thread.
pub fn signing_key(secret: &[u8; 32]) -> SigningKey {
    thread_local! {
        static LAST: std::cell::RefCell<Vec<SigningKey>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some(key) = last.iter().find(|k| k.as_bytes() == secret) {
            return key.clone();
        }
        let key = SigningKey::from_bytes(secret);
        if last.len() >= 4 {
            last.remove(0);
        }
        last.push(key.clone());
        key
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_keys_are_the_keys() {
        for seed in 0..10u8 {
            let secret = [seed; 32];
            let fresh = SigningKey::from_bytes(&secret);
            assert_eq!(signing_key(&secret).to_bytes(), fresh.to_bytes());
            assert_eq!(signing_key(&secret).verifying_key(), fresh.verifying_key());
            let id = peer_id_from_secret(&secret);
            assert_eq!(public_key_from_peer_id(&id), Some(fresh.verifying_key()));
            assert_eq!(public_key_from_peer_id(&id), Some(fresh.verifying_key()), "from the cache");
        }
        assert!(public_key_from_peer_id("12D3KooWnotapeerid").is_none());
    }

    #[test]
    fn base58_roundtrip() {
        for input in [&b""[..], b"\0", b"\0\0abc", b"hello world", &[255u8; 40]] {
            assert_eq!(base58_decode(&base58_encode(input)).unwrap(), input);
        }
        assert_eq!(base58_encode(b"hello world"), "StV1DL6CwTryKyV");
        assert!(base58_decode("0OIl").is_none());
    }

    #[test]
    fn nox_test_vector_peer_id() {
        // secret 7h48PQ/f1rS9TxacmgODxbD42Il9B3KC117jvOPppPE= (base64) from SPEC.md §3
        let secret: [u8; 32] = [
            0xee, 0x1e, 0x3c, 0x3d, 0x0f, 0xdf, 0xd6, 0xb4, 0xbd, 0x4f, 0x16, 0x9c, 0x9a, 0x03, 0x83, 0xc5, 0xb0, 0xf8,
            0xd8, 0x89, 0x7d, 0x07, 0x72, 0x82, 0xd7, 0x5e, 0xe3, 0xbc, 0xe3, 0xe9, 0xa4, 0xf1,
        ];
        let id = peer_id_from_secret(&secret);
        assert_eq!(id, "12D3KooWANqfCDrV79MZdMnMqTvDdqSAPSxdgFY1L6DCq2DVGB4D");
        let key = public_key_from_peer_id(&id).unwrap();
        assert_eq!(peer_id_from_public_key(key.as_bytes()), id);
        assert!(public_key_from_peer_id("alice").is_none());
    }
}
