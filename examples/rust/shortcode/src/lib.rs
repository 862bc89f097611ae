//! `shortcode`: the pure module of the URL shortener (examples/blueprints/shortener.toml). It
//! checks and normalizes URLs and derives short codes from them; no state, no capabilities.

use weft_sdk::export;

/// Longest URL the shortener takes.
const MAX_URL: usize = 2048;

/// Why `url` cannot be shortened, or none.
#[export]
pub fn validate(url: String) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return Some("the URL is empty".to_string());
    }
    if url.len() > MAX_URL {
        return Some(format!("the URL is {} bytes long; at most {} are allowed", url.len(), MAX_URL));
    }
    let lower = url.to_ascii_lowercase();
    let rest = match lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://")) {
        Some(rest) => rest,
        None => return Some(format!("{:?} is not an http:// or https:// URL", url)),
    };
    let host = rest.split(|c| c == '/' || c == '?' || c == '#').next().unwrap_or("");
    if host.is_empty() {
        return Some(format!("{:?} has no host", url));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("{:?} contains spaces; percent-encode them", url));
    }
    None
}

/// `url` with its scheme and host lowercased and surrounding spaces removed (call `validate`
/// first).
#[export]
pub fn normalize(url: String) -> String {
    let url = url.trim();
    let split = url.find("://").map(|i| i + 3).unwrap_or(0);
    let (scheme, rest) = url.split_at(split);
    let end = rest.find(|c| c == '/' || c == '?' || c == '#').unwrap_or(rest.len());
    let (host, tail) = rest.split_at(end);
    let tail = if tail.is_empty() { "/" } else { tail };
    format!("{}{}{}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase(), tail)
}

/// A 7-character code for `url`: base62 of a 64-bit FNV-1a hash of the URL and `attempt` (a
/// caller whose code is taken by another URL tries the next attempt).
#[export]
pub fn code(url: String, attempt: u32) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.bytes().chain(attempt.to_le_bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (0..7)
        .map(|_| {
            let c = ALPHABET[(hash % 62) as usize] as char;
            hash /= 62;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_and_normalizes() {
        assert_eq!(validate("https://Example.com/A?b".to_string()), None);
        assert!(validate("ftp://x".to_string()).unwrap().contains("not an http"));
        assert!(validate("http:///x".to_string()).unwrap().contains("no host"));
        assert_eq!(normalize(" HTTPS://Example.COM/A?b ".to_string()), "https://example.com/A?b");
        assert_eq!(normalize("http://h".to_string()), "http://h/");
        let a = code("http://h/".to_string(), 0);
        assert_eq!(a.len(), 7);
        assert_eq!(a, code("http://h/".to_string(), 0));
        assert_ne!(a, code("http://h/".to_string(), 1));
    }
}
