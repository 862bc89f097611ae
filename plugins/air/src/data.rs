//! weft's interpreter data: the execution trace that travels with a particle.
//!
//! Encoding: one format byte ([`FORMAT_VERSION`]) followed by the postcard encoding of [`Data`].
//! The trace is flat (no nesting): a `par` state records how many states each branch holds,
//! a stream `fold` records per iterated value where its sub-traces are, so traces produced on
//! different peers merge (see `trace`). Results a peer produced (service results, canon
//! snapshots) carry that peer's Ed25519 signature over their content and the particle id.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use serde::{Deserialize, Serialize};

use crate::peer_id::public_key_from_peer_id;
use crate::value::Tetraplet;

/// Version byte that starts every encoded [`Data`].
pub const FORMAT_VERSION: u8 = 1;

/// The interpreter data of one particle on one peer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Data {
    /// Version of the interpreter that wrote it (informational).
    pub interpreter_version: String,
    /// The execution trace.
    pub trace: Vec<State>,
    /// The last call id this peer allocated (only the peer's own `prev_data` value is used).
    pub lcid: u32,
}

/// One entry of the trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum State {
    /// `par`: number of states of the left and right branch that follow.
    Par {
        /// States of the left branch.
        left: u32,
        /// States of the right branch.
        right: u32,
    },
    /// A call.
    Call(CallState),
    /// A fold over a stream or stream map.
    Fold(FoldState),
    /// An `ap` to a stream or map, with the generation of the value.
    Ap {
        /// Generation.
        generation: u32,
    },
    /// A canon.
    Canon(CanonState),
}

/// State of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CallState {
    /// The service answered.
    Executed {
        /// The signed result.
        result: Box<ServiceResult>,
        /// How it was bound.
        output: OutputKind,
    },
    /// The service failed (ret_code ≠ 0 or a result that is not JSON).
    Failed(Box<ServiceResult>),
    /// Sent to the peer (no result yet); `call_id` when it is a local call waiting for its result.
    SentBy {
        /// The peer that sent it.
        peer: String,
        /// Call id of a local call request.
        call_id: Option<u32>,
    },
}

/// How a call result was bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputKind {
    /// To a scalar.
    Scalar,
    /// To a stream, in this generation.
    Stream {
        /// Generation.
        generation: u32,
    },
    /// Not bound.
    Unused,
}

/// A service result (or failure) signed by the peer that executed the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceResult {
    /// The result as JSON text; for a failure `{"message":…,"ret_code":…}`.
    pub value: String,
    /// `{executing peer, service, function, ""}`.
    pub tetraplet: Tetraplet,
    /// blake3 of the JSON text of the resolved arguments.
    pub argument_hash: [u8; 32],
    /// Ed25519 signature by `tetraplet.peer_pk` (64 bytes).
    pub signature: Vec<u8>,
}

/// State of a canon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CanonState {
    /// The snapshot made on the canon's peer.
    Executed(Box<CanonResult>),
    /// Sent to the canon's peer.
    SentBy(String),
}

/// A canon snapshot signed by the peer that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanonResult {
    /// `{canon peer, "", "", ""}`.
    pub tetraplet: Tetraplet,
    /// The stream's values at snapshot time.
    pub values: Vec<CanonElement>,
    /// Ed25519 signature by `tetraplet.peer_pk`.
    pub signature: Vec<u8>,
}

/// One value of a canon snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanonElement {
    /// JSON text.
    pub value: String,
    /// Where the value came from.
    pub tetraplet: Tetraplet,
}

/// State of a stream fold: where each iteration's states are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FoldState {
    /// Number of states after the fold state that belong to it.
    pub len: u32,
    /// One entry per iterated value.
    pub lore: Vec<FoldLore>,
}

/// Sub-traces of one fold iteration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FoldLore {
    /// Trace position of the state that produced the iterated value.
    pub value_pos: u32,
    /// States written before `next`: offset from the first state after the fold state, length.
    pub before: (u32, u32),
    /// States written after `next` returned.
    pub after: (u32, u32),
}

/// Why data bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The bytes are not a postcard-encoded [`Data`].
    #[error("data can't be deserialized: {0}")]
    Malformed(String),
    /// Unknown format byte.
    #[error("data format version {found} is not supported (expected {FORMAT_VERSION})")]
    Version {
        /// The byte found.
        found: u8,
    },
}

impl Data {
    /// Decodes data bytes; empty bytes are empty data.
    ///
    /// # Errors
    /// [`DataError`] on a wrong version byte or malformed content.
    pub fn decode(bytes: &[u8]) -> Result<Data, DataError> {
        let Some((&version, body)) = bytes.split_first() else {
            return Ok(Data::default());
        };
        if version != FORMAT_VERSION {
            return Err(DataError::Version { found: version });
        }
        let (data, rest) = postcard::take_from_bytes::<Data>(body).map_err(|e| DataError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(DataError::Malformed(format!("{} trailing bytes", rest.len())));
        }
        Ok(data)
    }

    /// Encodes to bytes (format byte + postcard).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        // Serializing plain owned structs into a Vec cannot fail.
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    *h.finalize().as_bytes()
}

fn tetraplet_bytes(t: &Tetraplet) -> Vec<u8> {
    postcard::to_stdvec(t).unwrap_or_default()
}

impl ServiceResult {
    /// The bytes that are signed: domain, particle id, kind, value, tetraplet, argument hash.
    pub fn signed_digest(&self, particle_id: &str, failed: bool) -> [u8; 32] {
        let kind: &[u8] = if failed { b"failed" } else { b"executed" };
        digest(&[
            b"weft-air/service-result/1",
            particle_id.as_bytes(),
            kind,
            self.value.as_bytes(),
            &tetraplet_bytes(&self.tetraplet),
            &self.argument_hash,
        ])
    }
}

impl CanonResult {
    /// The bytes that are signed: domain, particle id, tetraplet, values.
    pub fn signed_digest(&self, particle_id: &str) -> [u8; 32] {
        let mut parts: Vec<Vec<u8>> = vec![
            b"weft-air/canon-result/1".to_vec(),
            particle_id.as_bytes().to_vec(),
            tetraplet_bytes(&self.tetraplet),
        ];
        for v in &self.values {
            parts.push(v.value.as_bytes().to_vec());
            parts.push(tetraplet_bytes(&v.tetraplet));
        }
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        digest(&refs)
    }
}

/// Signs a digest.
pub fn sign(key: &SigningKey, digest: &[u8; 32]) -> Vec<u8> {
    key.sign(digest).to_bytes().to_vec()
}

/// Checks a signature by `peer_id` over `digest`.
///
/// # Errors
/// A message naming the peer when the id is not a key or the signature does not match.
pub fn verify(peer_id: &str, digest: &[u8; 32], signature: &[u8]) -> Result<(), String> {
    let key = public_key_from_peer_id(peer_id)
        .ok_or_else(|| format!("peer id '{peer_id}' is not an Ed25519 peer id, its results can't be verified"))?;
    let sig = Signature::from_slice(signature).map_err(|_| format!("malformed signature of peer '{peer_id}'"))?;
    key.verify(digest, &sig).map_err(|_| format!("signature of peer '{peer_id}' does not match its result"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_garbage() {
        let data = Data {
            interpreter_version: "x".into(),
            trace: vec![
                State::Par { left: 1, right: 0 },
                State::Call(CallState::SentBy { peer: "p".into(), call_id: Some(3) }),
                State::Fold(FoldState { len: 0, lore: vec![] }),
                State::Ap { generation: 2 },
            ],
            lcid: 3,
        };
        let bytes = data.encode();
        assert_eq!(Data::decode(&bytes).unwrap(), data);
        assert_eq!(Data::decode(&[]).unwrap(), Data::default());
        assert!(matches!(Data::decode(&[9, 1, 2]), Err(DataError::Version { found: 9 })));
        for cut in 1..bytes.len() {
            assert!(Data::decode(&bytes[..cut]).is_err());
        }
        // a huge declared length must not allocate or panic
        assert!(Data::decode(&[FORMAT_VERSION, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
