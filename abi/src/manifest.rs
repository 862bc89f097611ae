//! What a plugin says about itself.

use std::fmt;

use abi_stable::StableAbi;
use abi_stable::std_types::{RString, RVec};

/// A kind of plugin. Kept as a number so that a newer plugin's unknown kinds load and are ignored.
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind(pub u32);

impl Kind {
    /// Carries particles between peers.
    pub const TRANSPORT: Self = Self(1);
    /// Finds peers and keys (Kademlia).
    pub const DHT: Self = Self(2);
    /// Runs AIR scripts.
    pub const AIR: Self = Self(3);
    /// A key-value backend for the node's store.
    pub const STORAGE: Self = Self(4);
    /// Host capabilities that modules can be granted.
    pub const EFFECTOR: Self = Self(5);

    /// Every kind this version of the ABI knows, in order.
    pub const ALL: [Self; 5] = [Self::TRANSPORT, Self::DHT, Self::AIR, Self::STORAGE, Self::EFFECTOR];

    /// The kind's name as used in configs and output (`"storage"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::TRANSPORT => "transport",
            Self::DHT => "dht",
            Self::AIR => "air",
            Self::STORAGE => "storage",
            Self::EFFECTOR => "effector",
            _ => "unknown",
        }
    }

    /// Parses a kind's name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether this ABI version knows the kind.
    pub fn is_known(self) -> bool {
        Self::ALL.contains(&self)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() { f.write_str(self.name()) } else { write!(f, "kind#{}", self.0) }
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A plugin's self-description, as it crosses the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct RawManifest {
    pub(crate) name: RString,
    pub(crate) version: RString,
    pub(crate) description: RString,
    pub(crate) kinds: RVec<Kind>,
}

/// A plugin's self-description: name, version, what it provides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Short unique name, e.g. `"sled"`. Configs select plugins by this name.
    pub name: String,
    /// The plugin's own version (semver text).
    pub version: String,
    /// One line saying what it is.
    pub description: String,
    /// The kinds it provides.
    pub kinds: Vec<Kind>,
}

impl Manifest {
    /// Whether the plugin provides `kind`.
    pub fn provides(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }
}

impl From<&Manifest> for RawManifest {
    fn from(m: &Manifest) -> Self {
        Self {
            name: m.name.as_str().into(),
            version: m.version.as_str().into(),
            description: m.description.as_str().into(),
            kinds: m.kinds.iter().copied().collect(),
        }
    }
}

impl From<RawManifest> for Manifest {
    fn from(m: RawManifest) -> Self {
        Self {
            name: m.name.into(),
            version: m.version.into(),
            description: m.description.into(),
            kinds: m.kinds.into_vec(),
        }
    }
}
