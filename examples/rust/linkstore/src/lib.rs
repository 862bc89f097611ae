//! `linkstore`: the effector module of the URL shortener. It keeps the links in the service's
//! SQLite database through the `sqlite` effector plugin, which its blueprint grants it
//! (`capabilities = ["sqlite"]`). SQL errors come back as values, and become this module's `Err`.

use std::sync::atomic::{AtomicBool, Ordering};

use weft_sdk::{export, import, record};

/// `sqlite`'s `value`: NULL when no field is set.
#[record]
#[derive(Clone, Default)]
pub struct Value {
    pub integer: Option<i64>,
    pub real: Option<f64>,
    pub text: Option<String>,
    pub blob: Option<Vec<u8>>,
}

/// `sqlite`'s `execute_result`.
#[record]
pub struct ExecuteResult {
    pub error: Option<String>,
    pub changes: u64,
    pub last_insert_rowid: i64,
}

/// `sqlite`'s `query_result`.
#[record]
pub struct QueryResult {
    pub error: Option<String>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

#[import(module = "sqlite")]
extern "C" {
    fn execute(sql: String, params: Vec<Value>) -> ExecuteResult;
    fn query(sql: String, params: Vec<Value>) -> QueryResult;
    fn batch(sql: String) -> Option<String>;
}

/// A stored link.
#[record]
pub struct Link {
    pub code: String,
    pub url: String,
    pub hits: u64,
    pub created_ms: u64,
}

fn text(s: &str) -> Value {
    Value { text: Some(s.to_string()), ..Value::default() }
}

fn int(n: i64) -> Value {
    Value { integer: Some(n), ..Value::default() }
}

/// Creates the table once per instance (the statement is idempotent).
fn schema() -> Result<(), String> {
    static READY: AtomicBool = AtomicBool::new(false);
    if READY.load(Ordering::Relaxed) {
        return Ok(());
    }
    let sql = "CREATE TABLE IF NOT EXISTS links (
                 code TEXT PRIMARY KEY,
                 url TEXT NOT NULL,
                 hits INTEGER NOT NULL DEFAULT 0,
                 created_ms INTEGER NOT NULL
               )";
    if let Some(e) = batch(sql.to_string()) {
        return Err(e);
    }
    READY.store(true, Ordering::Relaxed);
    Ok(())
}

fn run(sql: &str, params: Vec<Value>) -> Result<ExecuteResult, String> {
    let r = execute(sql.to_string(), params);
    match r.error {
        Some(e) => Err(e),
        None => Ok(r),
    }
}

fn rows(sql: &str, params: Vec<Value>) -> Result<Vec<Vec<Value>>, String> {
    let r = query(sql.to_string(), params);
    match r.error {
        Some(e) => Err(e),
        None => Ok(r.rows),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn link(row: &[Value]) -> Link {
    let s = |i: usize| row.get(i).and_then(|v| v.text.clone()).unwrap_or_default();
    let n = |i: usize| row.get(i).and_then(|v| v.integer).unwrap_or(0).max(0) as u64;
    Link { code: s(0), url: s(1), hits: n(2), created_ms: n(3) }
}

/// Stores `url` under `code` unless the code is taken; returns the URL stored under `code`
/// (`url` itself, or the other URL that has the code). One INSERT and one SELECT.
#[export]
pub fn store(code: String, url: String) -> Result<String, String> {
    schema()?;
    run(
        "INSERT OR IGNORE INTO links (code, url, created_ms) VALUES (?1, ?2, ?3)",
        vec![text(&code), text(&url), int(now_ms())],
    )?;
    let found = rows("SELECT url FROM links WHERE code = ?1", vec![text(&code)])?;
    Ok(found.first().and_then(|r| r.first()).and_then(|v| v.text.clone()).unwrap_or_default())
}

/// The URL stored under `code`, counting the hit.
#[export]
pub fn lookup(code: String) -> Result<Option<String>, String> {
    schema()?;
    run("UPDATE links SET hits = hits + 1 WHERE code = ?1", vec![text(&code)])?;
    let found = rows("SELECT url FROM links WHERE code = ?1", vec![text(&code)])?;
    Ok(found.first().and_then(|r| r.first()).and_then(|v| v.text.clone()))
}

/// The link stored under `code`, with its hits.
#[export]
pub fn details(code: String) -> Result<Option<Link>, String> {
    schema()?;
    let found = rows("SELECT code, url, hits, created_ms FROM links WHERE code = ?1", vec![text(&code)])?;
    Ok(found.first().map(|r| link(r)))
}

/// The `limit` most recent links, newest first.
#[export]
pub fn recent(limit: u32) -> Result<Vec<Link>, String> {
    schema()?;
    let found = rows(
        "SELECT code, url, hits, created_ms FROM links ORDER BY created_ms DESC, code LIMIT ?1",
        vec![int(i64::from(limit.min(1000)))],
    )?;
    Ok(found.iter().map(|r| link(r)).collect())
}

/// Runs `statement` as a query and returns the SQL error the database reports, or none: the error
/// comes back to the module as a value, and the module decides (here: it hands it on).
#[export]
pub fn check(statement: String) -> Option<String> {
    query(statement, Vec::new()).error
}

/// Runs any SQL query on the service's database and returns its first column as text: for
/// trying out SQL (and its errors) from the command line.
#[export]
pub fn sql(statement: String) -> Result<Vec<String>, String> {
    let found = rows(&statement, Vec::new())?;
    Ok(found
        .iter()
        .map(|r| match r.first() {
            Some(Value { integer: Some(n), .. }) => n.to_string(),
            Some(Value { real: Some(x), .. }) => x.to_string(),
            Some(Value { text: Some(t), .. }) => t.clone(),
            Some(Value { blob: Some(b), .. }) => format!("{} bytes", b.len()),
            _ => "NULL".to_string(),
        })
        .collect())
}
