//! Particles: the signed messages that carry an AIR script and its data from peer to peer.
//!
//! `{id, init_peer_id, timestamp, ttl, script, signature, data}`. The init peer signs, with
//! Ed25519, the blake3 digest of a domain tag and the postcard encoding of `(id, init_peer_id,
//! timestamp, ttl, script)`; `data` is not signed (every hop extends it, and the interpreter
//! signs and checks the results inside it). The public key is recovered from `init_peer_id`,
//! so a particle proves who started it.
//!
//! Wire form: one format byte ([`FORMAT`]) and the postcard encoding of [`Particle`]; one
//! particle per transport message on `/weft/particle/1.0.0`.

use serde::{Deserialize, Serialize};

use crate::identity::{Identity, random_bytes};

/// The format byte that starts every encoded particle.
pub const FORMAT: u8 = 1;

/// The protocol particles travel on.
pub const PROTOCOL: &str = "/weft/particle/1.0.0";

/// Longest particle id accepted (a UUID is 36 characters).
pub const MAX_ID_LEN: usize = 128;

const DOMAIN: &[u8] = b"weft particle signature v1\0";

/// A particle.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Particle {
    /// Unique id, chosen by the init peer (a UUID).
    pub id: String,
    /// The peer that started it and signed it.
    pub init_peer_id: String,
    /// When it was started, ms since the Unix epoch.
    pub timestamp: u64,
    /// How long it lives after `timestamp`, ms.
    pub ttl: u32,
    /// The AIR script.
    pub script: String,
    /// Ed25519 signature of the init peer (64 bytes).
    #[serde(with = "bytes")]
    pub signature: Vec<u8>,
    /// The interpreter data (opaque here).
    #[serde(with = "bytes")]
    pub data: Vec<u8>,
}

/// Byte fields as one length-prefixed run (postcard's `bytes`), not a sequence of numbers: the
/// same wire bytes as a `Vec<u8>` sequence, written and read in one copy.
mod bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    struct Bytes;

    impl<'de> Visitor<'de> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            // bounded by the input: a sequence claims no capacity up front
            let mut out = Vec::new();
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_bytes(Bytes)
    }
}

impl std::fmt::Debug for Particle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Particle")
            .field("id", &self.id)
            .field("init_peer_id", &self.init_peer_id)
            .field("timestamp", &self.timestamp)
            .field("ttl", &self.ttl)
            .field("script_len", &self.script.len())
            .field("data_len", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// Why a particle is refused. Each names the particle when its id is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// More bytes than the node accepts.
    #[error("particle of {len} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a particle at all.
    #[error("malformed particle: {0}")]
    Malformed(String),
    /// A format this weft does not read.
    #[error("particle in format {0}, this weft reads format {FORMAT}")]
    Format(u8),
    /// The init peer id is not an Ed25519 peer id.
    #[error("particle {id}: init peer id {init_peer_id:?} is not an ed25519 peer id")]
    InitPeer {
        /// The particle.
        id: String,
        /// What it said.
        init_peer_id: String,
    },
    /// The signature does not verify.
    #[error("particle {id}: bad signature (not signed by its init peer {init_peer_id})")]
    Signature {
        /// The particle.
        id: String,
        /// Its claimed init peer.
        init_peer_id: String,
    },
    /// Its time ran out.
    #[error("particle {id}: expired {ago_ms} ms ago")]
    Expired {
        /// The particle.
        id: String,
        /// How long ago.
        ago_ms: u64,
    },
    /// It claims to start further in the future than clocks drift.
    #[error("particle {id}: timestamp is {ahead_ms} ms in the future (more than the allowed clock skew)")]
    Future {
        /// The particle.
        id: String,
        /// How far ahead.
        ahead_ms: u64,
    },
    /// It wants to live longer than this node allows.
    #[error("particle {id}: ttl of {ttl} ms is longer than this node's limit of {limit} ms")]
    Ttl {
        /// The particle.
        id: String,
        /// Its ttl.
        ttl: u32,
        /// The limit.
        limit: u64,
    },
    /// Its id is empty or too long.
    #[error("particle id of {len} bytes: ids must be 1 to {MAX_ID_LEN} bytes")]
    Id {
        /// The length.
        len: usize,
    },
}

/// A fresh random particle id (UUID v4 text).
///
/// # Errors
/// No randomness.
pub fn new_id() -> Result<String, crate::identity::Error> {
    let mut b = [0u8; 16];
    random_bytes(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

impl Particle {
    /// A new particle started and signed by `identity`, with empty data.
    ///
    /// # Errors
    /// No randomness for the id.
    pub fn new(identity: &Identity, script: String, timestamp: u64, ttl: u32) -> Result<Self, crate::identity::Error> {
        let mut p = Particle {
            id: new_id()?,
            init_peer_id: identity.peer_id().to_owned(),
            timestamp,
            ttl,
            script,
            signature: Vec::new(),
            data: Vec::new(),
        };
        p.signature = identity.sign(&p.signed_digest()).to_vec();
        Ok(p)
    }

    /// What the init peer signs: blake3 of a domain tag and the signed fields.
    pub fn signed_digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(DOMAIN);
        let fields = (&self.id, &self.init_peer_id, self.timestamp, self.ttl, &self.script);
        h.update(&postcard::to_stdvec(&fields).unwrap_or_default());
        *h.finalize().as_bytes()
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.script.len() + self.data.len() + 256);
        out.push(FORMAT);
        // Writing into a Vec cannot fail.
        postcard::to_io(self, &mut out).expect("postcard writes into a Vec");
        out
    }

    /// Reads the wire form, refusing more than `limit` bytes before looking inside.
    ///
    /// # Errors
    /// [`Error::TooLarge`], [`Error::Format`], [`Error::Malformed`], [`Error::Id`].
    pub fn decode(bytes: &[u8], limit: usize) -> Result<Self, Error> {
        if bytes.len() > limit {
            return Err(Error::TooLarge { len: bytes.len(), limit });
        }
        let Some((&format, body)) = bytes.split_first() else {
            return Err(Error::Malformed("empty message".into()));
        };
        if format != FORMAT {
            return Err(Error::Format(format));
        }
        let (p, rest): (Particle, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| Error::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(Error::Malformed(format!("{} bytes after the particle", rest.len())));
        }
        if p.id.is_empty() || p.id.len() > MAX_ID_LEN {
            return Err(Error::Id { len: p.id.len() });
        }
        Ok(p)
    }

    /// Checks that the init peer signed it.
    ///
    /// # Errors
    /// [`Error::InitPeer`], [`Error::Signature`].
    pub fn verify(&self) -> Result<(), Error> {
        let Some(key) = weft_abi::peer_id::public_key_from_peer_id(&self.init_peer_id) else {
            return Err(Error::InitPeer { id: self.id.clone(), init_peer_id: self.init_peer_id.clone() });
        };
        let bad = || Error::Signature { id: self.id.clone(), init_peer_id: self.init_peer_id.clone() };
        let signature: [u8; 64] = self.signature.as_slice().try_into().map_err(|_| bad())?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature);
        key.verify_strict(&self.signed_digest(), &signature).map_err(|_| bad())
    }

    /// When it expires, ms since the Unix epoch.
    pub fn deadline(&self) -> u64 {
        self.timestamp.saturating_add(u64::from(self.ttl))
    }

    /// Checks its time window at `now`: not expired, not from the future beyond `max_skew_ms`,
    /// ttl within `max_ttl_ms`.
    ///
    /// # Errors
    /// [`Error::Expired`], [`Error::Future`], [`Error::Ttl`].
    pub fn check_time(&self, now: u64, max_ttl_ms: u64, max_skew_ms: u64) -> Result<(), Error> {
        if u64::from(self.ttl) > max_ttl_ms {
            return Err(Error::Ttl { id: self.id.clone(), ttl: self.ttl, limit: max_ttl_ms });
        }
        if self.timestamp > now.saturating_add(max_skew_ms) {
            return Err(Error::Future { id: self.id.clone(), ahead_ms: self.timestamp - now });
        }
        if self.deadline() <= now {
            return Err(Error::Expired { id: self.id.clone(), ago_ms: now - self.deadline() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn particle() -> (Identity, Particle) {
        let id = Identity::from_secret([7; 32]);
        let mut p = Particle::new(&id, "(null)".into(), 1_000_000, 30_000).unwrap();
        p.data = vec![1, 2, 3];
        (id, p)
    }

    #[test]
    fn round_trips_and_verifies() {
        let (_, p) = particle();
        let bytes = p.encode();
        let q = Particle::decode(&bytes, 1 << 20).unwrap();
        assert_eq!(p, q);
        q.verify().unwrap();
        assert_eq!(q.id.len(), 36);
        assert_eq!(&q.id[14..15], "4");
    }

    #[test]
    fn data_is_not_signed_but_everything_else_is() {
        let (_, mut p) = particle();
        p.data = vec![9; 10];
        p.verify().unwrap();
        for tamper in [
            |p: &mut Particle| p.script.push(' '),
            |p: &mut Particle| p.ttl += 1,
            |p: &mut Particle| p.timestamp += 1,
            |p: &mut Particle| p.id.push('x'),
            |p: &mut Particle| p.signature[3] ^= 1,
        ] {
            let mut q = p.clone();
            tamper(&mut q);
            assert!(matches!(q.verify(), Err(Error::Signature { .. })), "{q:?}");
        }
        let mut q = p.clone();
        q.init_peer_id = Identity::from_secret([8; 32]).peer_id().to_owned();
        assert!(matches!(q.verify(), Err(Error::Signature { .. })));
        q.init_peer_id = "alice".into();
        assert!(matches!(q.verify(), Err(Error::InitPeer { .. })));
        q.signature.truncate(3);
        assert!(q.verify().is_err());
    }

    #[test]
    fn hostile_bytes_are_errors() {
        let (_, p) = particle();
        let bytes = p.encode();
        assert!(matches!(Particle::decode(&bytes, 10), Err(Error::TooLarge { .. })));
        assert!(matches!(Particle::decode(&[], 10), Err(Error::Malformed(_))));
        assert!(matches!(Particle::decode(&[2, 0], 10), Err(Error::Format(2))));
        for n in 0..bytes.len() {
            assert!(Particle::decode(&bytes[..n], 1 << 20).is_err(), "prefix {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(Particle::decode(&longer, 1 << 20), Err(Error::Malformed(_))));
        // a length prefix claiming far more than there is
        let e = Particle::decode(&[FORMAT, 0xff, 0xff, 0xff, 0xff, 0x0f], 1 << 20).unwrap_err();
        assert!(matches!(e, Error::Malformed(_)), "{e}");
    }

    #[test]
    fn time_window() {
        let (_, p) = particle();
        p.check_time(1_000_000, 60_000, 1000).unwrap();
        assert!(matches!(p.check_time(1_030_000, 60_000, 1000), Err(Error::Expired { ago_ms: 0, .. })));
        assert!(matches!(p.check_time(998_000, 60_000, 1000), Err(Error::Future { ahead_ms: 2000, .. })));
        assert!(matches!(p.check_time(1_000_000, 10_000, 1000), Err(Error::Ttl { .. })));
    }
}
