//! Memory addresses (`/memory/N`, optionally `/p2p/<peer id>`) and peer ids.

use weft_abi::{Error, ErrorCode, Result};

/// A parsed memory address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Addr {
    /// The slot; 0 asks `listen` for a free one.
    pub(crate) slot: u64,
    /// The peer named by a `/p2p/` suffix.
    pub(crate) peer: Option<String>,
}

/// The text of slot `slot`.
pub(crate) fn format(slot: u64) -> String {
    format!("/memory/{slot}")
}

fn invalid(who: &str, text: &str, why: &str) -> Error {
    Error::new(
        ErrorCode::INVALID_ARGUMENT,
        format!(
            "memory {who}: cannot use address {text:?}: {why}; use /memory/N, optionally followed by /p2p/<peer id>"
        ),
    )
}

/// Parses `/memory/N` or `/memory/N/p2p/<peer id>`. `who` names the caller in errors.
///
/// # Errors
/// `INVALID_ARGUMENT` for anything else.
pub(crate) fn parse(who: &str, text: &str) -> Result<Addr> {
    let mut parts = text.split('/');
    if parts.next() != Some("") {
        return Err(invalid(who, text, "a multiaddress starts with /"));
    }
    match parts.next() {
        Some("memory") => {}
        Some(other) if !other.is_empty() => {
            return Err(invalid(who, text, &format!("the memory plugin does not speak /{other}")));
        }
        _ => return Err(invalid(who, text, "no protocol")),
    }
    let slot = parts
        .next()
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| invalid(who, text, "/memory needs a number"))?;
    let peer = match (parts.next(), parts.next()) {
        (None, _) => None,
        (Some("p2p"), Some(id)) if is_peer_id(id) => Some(id.to_owned()),
        (Some("p2p"), _) => return Err(invalid(who, text, "/p2p needs a peer id")),
        (Some(other), _) => return Err(invalid(who, text, &format!("unexpected /{other}"))),
    };
    if parts.next().is_some() {
        return Err(invalid(who, text, "nothing may follow /p2p/<peer id>"));
    }
    Ok(Addr { slot, peer })
}

/// The multihash bytes of a peer id (`None` if the text is not one): base58btc of a multihash
/// whose second byte is the digest length.
pub(crate) fn peer_bytes(id: &str) -> Option<Vec<u8>> {
    let bytes = weft_abi::peer_id::base58_decode(id)?;
    (bytes.len() >= 2 && bytes.len() <= 66 && usize::from(bytes[1]) == bytes.len() - 2).then_some(bytes)
}

/// Whether `id` is a peer id.
pub(crate) fn is_peer_id(id: &str) -> bool {
    peer_bytes(id).is_some()
}

/// Checks a peer id argument.
///
/// # Errors
/// `INVALID_ARGUMENT` naming it.
pub(crate) fn check_peer_id(who: &str, id: &str) -> Result<()> {
    if is_peer_id(id) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::INVALID_ARGUMENT,
            format!("memory {who}: {id:?} is not a peer id (base58btc multihash)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "12D3KooWANqfCDrV79MZdMnMqTvDdqSAPSxdgFY1L6DCq2DVGB4D";

    #[test]
    fn parses_memory_addresses() {
        assert_eq!(parse("t", "/memory/0").unwrap(), Addr { slot: 0, peer: None });
        assert_eq!(parse("t", "/memory/42").unwrap(), Addr { slot: 42, peer: None });
        assert_eq!(parse("t", &format!("/memory/7/p2p/{ID}")).unwrap(), Addr { slot: 7, peer: Some(ID.into()) });
        assert_eq!(format(42), "/memory/42");
    }

    #[test]
    fn refuses_everything_else() {
        for text in [
            "",
            "garbage",
            "/",
            "/memory",
            "/memory/",
            "/memory/x",
            "/memory/-1",
            "/memory/+1",
            "/memory/99999999999999999999999",
            "/memory/1/",
            "/memory/1/p2p",
            "/memory/1/p2p/notapeer!",
            "/memory/1/tcp/2",
            &format!("/memory/1/p2p/{ID}/x"),
            "/ip4/127.0.0.1/tcp/0",
        ] {
            let e = parse("transport", text).unwrap_err();
            assert_eq!(e.code(), ErrorCode::INVALID_ARGUMENT, "{text:?}");
            assert!(e.message().contains("/memory/N"), "{e}");
        }
    }

    #[test]
    fn peer_ids() {
        assert!(is_peer_id(ID));
        assert_eq!(peer_bytes(ID).unwrap().len(), 38);
        for bad in ["", "1", "not a peer", "12D3KooW", "StV1DL6CwTryKyV"] {
            assert!(!is_peer_id(bad), "{bad}");
        }
        assert!(check_peer_id("dht", "x").unwrap_err().message().contains("not a peer id"));
    }
}
