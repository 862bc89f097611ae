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

/// Recovers the Ed25519 public key from a peer id; `None` if the text is not such a peer id.
pub fn public_key_from_peer_id(peer_id: &str) -> Option<VerifyingKey> {
    let bytes = base58_decode(peer_id)?;
    if bytes.len() != 38 || bytes[..6] != PREFIX {
        return None;
    }
    let key: [u8; 32] = bytes[6..].try_into().ok()?;
    VerifyingKey::from_bytes(&key).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
