//! A peer's identity: an Ed25519 key, kept in the node's data directory.
//!
//! The secret is a 32-byte seed; the peer id is its libp2p form ([`weft_abi::peer_id`]), which
//! is what transports, the DHT and AIR scripts see. A node keeps its seed in
//! `<data dir>/identity.key` (32 raw bytes, mode 0600) so it keeps its id across restarts;
//! applications use a fresh one per run ([`Identity::generate`]).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};

/// Why an identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key file could not be read or written.
    #[error("identity key {path}: {source}; check the data directory's permissions")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file does not hold a key.
    #[error(
        "identity key {path}: holds {len} bytes, not a 32-byte ed25519 seed; restore it from a backup or delete it to get a new peer id"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The operating system gave no randomness.
    #[error("cannot make a key: no randomness from the operating system: {0}")]
    Random(String),
}

/// An Ed25519 identity.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
    peer_id: String,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("peer_id", &self.peer_id).finish_non_exhaustive()
    }
}

/// Fills `buf` with random bytes from the operating system.
///
/// # Errors
/// The operating system refused.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|e| Error::Random(e.to_string()))
}

impl Identity {
    /// The identity of a 32-byte seed.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&secret);
        let peer_id = weft_abi::peer_id::peer_id_from_public_key(key.verifying_key().as_bytes());
        Self { key, peer_id }
    }

    /// A fresh random identity.
    ///
    /// # Errors
    /// No randomness.
    pub fn generate() -> Result<Self, Error> {
        let mut secret = [0u8; 32];
        random_bytes(&mut secret)?;
        Ok(Self::from_secret(secret))
    }

    /// Reads the key at `path`, or makes one and writes it there (mode 0600) when there is none.
    ///
    /// # Errors
    /// The file cannot be read or written, or holds something else than a key.
    pub fn load_or_create(path: &Path) -> Result<Self, Error> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        match std::fs::read(path) {
            Ok(bytes) => {
                let secret: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::Malformed { path: path.to_path_buf(), len: bytes.len() })?;
                Ok(Self::from_secret(secret))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let identity = Self::generate()?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let tmp = path.with_extension("key.tmp");
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(&tmp).map_err(io)?;
                file.write_all(&identity.secret()).map_err(io)?;
                file.sync_all().map_err(io)?;
                std::fs::rename(&tmp, path).map_err(io)?;
                Ok(identity)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The peer id (`12D3KooW…`).
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// The 32-byte secret seed (what plugins are given as `identity`).
    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        let a = Identity::load_or_create(&path).unwrap();
        let b = Identity::load_or_create(&path).unwrap();
        assert_eq!(a.peer_id(), b.peer_id());
        assert!(a.peer_id().starts_with("12D3KooW"), "{}", a.peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_malformed_key_file_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        std::fs::write(&path, b"short").unwrap();
        let e = Identity::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("holds 5 bytes, not a 32-byte ed25519 seed"), "{e}");
    }
}
