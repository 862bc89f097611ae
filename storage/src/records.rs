//! Typed records: what the store keeps about modules, artifacts, blueprints, services.
//!
//! Each record is stored as one format-version byte followed by its postcard encoding. A record
//! of an unknown version, or one that does not decode, is an [`Error::Record`](crate::Error).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Error, Hash, Result};

/// The format version written by this build.
pub(crate) const FORMAT: u8 = 1;

/// A stored module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRecord {
    /// The module id: blake3 of its Wasm bytes, which are stored as a blob under it.
    pub hash: Hash,
    /// A name for people (the file stem it was added from).
    pub name: String,
    /// Size of the Wasm bytes.
    pub size: u64,
    /// When it was added, ms since the Unix epoch.
    pub added_ms: u64,
}

/// Where a compiled artifact is filed: the module and the engine that compiled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ArtifactKey {
    /// The module id.
    pub module: Hash,
    /// The engine fingerprint (wasmtime's compatibility hash + weft's compiler version).
    pub engine: Hash,
}

/// A compiled artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// blake3 of the artifact bytes, stored as a blob under it.
    pub blob: Hash,
    /// Size of the artifact bytes.
    pub size: u64,
    /// When it was compiled, ms since the Unix epoch.
    pub compiled_ms: u64,
    /// How long compiling took, µs.
    pub compile_time_us: u64,
}

/// A blueprint: the pinned recipe of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueprintRecord {
    /// blake3 of the canonical encoding.
    pub id: Hash,
    /// Its name.
    pub name: String,
    /// The modules, in order (the last is the facade).
    pub modules: Vec<Hash>,
    /// The canonical encoding (modules and their configs).
    pub encoding: Vec<u8>,
    /// Pinned blueprints and their modules' artifacts survive `weft cache gc`.
    pub pinned: bool,
    /// When it was added, ms since the Unix epoch.
    pub added_ms: u64,
}

/// A service on this peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The service id.
    pub id: String,
    /// The blueprint it was created from.
    pub blueprint: Hash,
    /// The peer that created it (only it, or the node owner, may remove it).
    pub owner: String,
    /// Its aliases.
    pub aliases: Vec<String>,
    /// When it was created, ms since the Unix epoch.
    pub created_ms: u64,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT];
    // Serialising plain structs of strings, numbers and vectors into a Vec cannot fail.
    out.extend(postcard::to_stdvec(value).unwrap_or_default());
    out
}

pub(crate) fn decode<T: DeserializeOwned>(kind: &'static str, key: &dyn std::fmt::Display, bytes: &[u8]) -> Result<T> {
    let err = |reason: String| Error::Record { kind, key: key.to_string(), reason };
    match bytes.split_first() {
        None => Err(err("it is empty".into())),
        Some((&FORMAT, rest)) => match postcard::take_from_bytes::<T>(rest) {
            Ok((value, [])) => Ok(value),
            Ok((_, trailing)) => Err(err(format!("{} trailing bytes", trailing.len()))),
            Err(e) => Err(err(format!("{e}"))),
        },
        Some((v, _)) => {
            Err(err(format!("format version {v} is not one this weft reads (it reads {FORMAT}); upgrade weft")))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn hash() -> impl Strategy<Value = Hash> {
        any::<[u8; 32]>().prop_map(Hash)
    }

    proptest! {
        #[test]
        fn blueprint_records_round_trip(id in hash(), name in ".*", modules in prop::collection::vec(hash(), 0..8),
                                        encoding in prop::collection::vec(any::<u8>(), 0..64), pinned in any::<bool>(),
                                        added_ms in any::<u64>()) {
            let r = BlueprintRecord { id, name, modules, encoding, pinned, added_ms };
            prop_assert_eq!(decode::<BlueprintRecord>("blueprint", &id, &encode(&r)).unwrap(), r);
        }

        #[test]
        fn service_and_module_records_round_trip(id in ".*", owner in ".*", aliases in prop::collection::vec(".*", 0..4),
                                                 h in hash(), n in any::<u64>()) {
            let s = ServiceRecord { id: id.clone(), blueprint: h, owner, aliases, created_ms: n };
            prop_assert_eq!(decode::<ServiceRecord>("service", &id, &encode(&s)).unwrap(), s);
            let m = ModuleRecord { hash: h, name: id, size: n, added_ms: n / 2 };
            prop_assert_eq!(decode::<ModuleRecord>("module", &h, &encode(&m)).unwrap(), m);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode::<ServiceRecord>("service", &"x", &bytes);
        }
    }

    #[test]
    fn unknown_versions_and_trailing_bytes_are_errors() {
        let m = ModuleRecord { hash: Hash::of(b"m"), name: "m".into(), size: 1, added_ms: 2 };
        let mut bytes = encode(&m);
        bytes[0] = 9;
        let e = decode::<ModuleRecord>("module", &m.hash, &bytes).unwrap_err().to_string();
        assert!(e.contains("format version 9"), "{e}");
        let mut bytes = encode(&m);
        bytes.push(0);
        assert!(decode::<ModuleRecord>("module", &m.hash, &bytes).is_err());
        assert!(decode::<ModuleRecord>("module", &m.hash, &[]).is_err());
    }
}
