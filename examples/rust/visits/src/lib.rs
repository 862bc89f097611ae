//! `visits`: counts page visits with the example `counter` effector plugin
//! (examples/effector-counter, docs/effector-plugins.md). Its blueprint grants it `counter`.

use weft_sdk::{export, import, record};

/// As the capability declares it: `record count { error: optional<string>, value: s64 }`.
#[record]
pub struct Count {
    pub error: Option<String>,
    pub value: i64,
}

#[import(module = "counter")]
extern "C" {
    /// Adds `delta` to the counter `name` of this service.
    fn add(name: String, delta: i64) -> Count;
    /// The counter `name` of this service.
    fn get(name: String) -> i64;
}

/// Counts one visit of `page`; returns the visits so far, or fails past the blueprint's max.
#[export]
pub fn visit(page: String) -> Result<i64, String> {
    let count = add(page, 1);
    match count.error {
        Some(e) => Err(e),
        None => Ok(count.value),
    }
}

/// The visits of `page` so far.
#[export]
pub fn visits(page: String) -> i64 {
    get(page)
}
