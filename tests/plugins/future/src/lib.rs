//! A weft plugin for the host's tests: it claims ABI major version 999, which no host speaks, so
//! the host must refuse it with a clear line.

use weft_abi::{Kind, Manifest, Provider};

/// The provider.
#[derive(Debug)]
pub struct Future;

impl Provider for Future {
    fn manifest() -> Manifest {
        Manifest {
            name: "future".into(),
            version: "9.0.0".into(),
            description: "test plugin from the future".into(),
            kinds: vec![Kind::STORAGE],
        }
    }
}

weft_abi::export_plugin!(Future, abi = [999, 0]);
