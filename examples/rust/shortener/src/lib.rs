//! `shortener`: the facade of the URL shortener (examples/blueprints/shortener.toml). It uses the
//! pure `shortcode` module to check URLs and make codes, and the `linkstore` effector module, which
//! keeps links in the service's SQLite database.
//!
//! ```console
//! $ weft service create examples/blueprints/shortener.toml --alias short
//! $ weft service call short shorten '["https://example.com/a/long/path"]'
//! "Xb4kQ2m"
//! $ weft service call short resolve '["Xb4kQ2m"]'
//! "https://example.com/a/long/path"
//! ```

use weft_sdk::{export, import, record};

/// As linkstore's `Link`.
#[record]
pub struct Link {
    pub code: String,
    pub url: String,
    pub hits: u64,
    pub created_ms: u64,
}

#[import(module = "shortcode")]
extern "C" {
    fn validate(url: String) -> Option<String>;
    fn normalize(url: String) -> String;
    fn code(url: String, attempt: u32) -> String;
}

#[import(module = "linkstore")]
extern "C" {
    fn store(code: String, url: String) -> String;
    fn lookup(code: String) -> Option<String>;
    fn details(code: String) -> Option<Link>;
    fn recent(limit: u32) -> Vec<Link>;
}

/// The short code of `url`: the same URL always gets the same code.
#[export]
pub fn shorten(url: String) -> Result<String, String> {
    if let Some(why) = validate(url.clone()) {
        return Err(why);
    }
    let url = normalize(url);
    for attempt in 0..8 {
        let c = code(url.clone(), attempt);
        if store(c.clone(), url.clone()) == url {
            return Ok(c);
        }
    }
    Err(format!("no free code for {} after 8 attempts", url))
}

/// The URL behind `code` (and one more hit for it), or none.
#[export]
pub fn resolve(code: String) -> Option<String> {
    lookup(code)
}

/// The link behind `code`, with its hits.
#[export]
pub fn stats(code: String) -> Option<Link> {
    details(code)
}

/// The `limit` newest links.
#[export]
pub fn latest(limit: u32) -> Vec<Link> {
    recent(limit)
}
