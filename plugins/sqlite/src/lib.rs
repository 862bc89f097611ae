//! The `sqlite` effector plugin: a real database for services.
//!
//! Each service gets its own SQLite database, `<service data dir>/sqlite/service.db` (SQLite
//! compiled in, WAL journal). Capability `sqlite` (grant it with `capabilities = ["sqlite"]`):
//!
//! ```text
//! record value { integer: optional<s64>, real: optional<f64>, text: optional<string>, blob: optional<bytes> }
//! record execute_result { error: optional<string>, changes: u64, last_insert_rowid: s64 }
//! record query_result { error: optional<string>, columns: array<string>, rows: array<array<value>> }
//!
//! execute(sql: string, params: array<value>) -> execute_result   // one statement
//! query(sql: string, params: array<value>) -> query_result       // one statement, its rows
//! batch(sql: string) -> optional<string>                         // several statements, no parameters
//! ```
//!
//! A `value` is SQL NULL when none of its fields is set, else exactly one of them. Parameters bind
//! by position (`?`, `?NNN`). SQL errors, limits and timeouts come back in the `error` field
//! (`batch`: its result), never as a trap: the module decides what to do.
//!
//! Each call is atomic on its own: a transaction must begin and end within one call (`batch` with
//! `BEGIN; ...; COMMIT;`); a call that leaves one open is rolled back and reported as an error.
//!
//! # Containment
//! SQL text comes from modules and is hostile. Every connection refuses `ATTACH`/`DETACH` (a
//! service cannot open another's file, or any file), pragmas other than a read-only allow-list
//! (so limits cannot be changed), loading extensions (not compiled in), and runs in SQLite's
//! defensive mode with untrusted schemas. Each call stops when the calling module's time runs out
//! (a progress handler), results are capped in rows and bytes, SQL text in length, and the
//! database file in size.
//!
//! # Configuration
//! Node (`[plugins.config.sqlite]`, TOML, every key optional):
//!
//! ```toml
//! max_rows = 10000                 # rows one query returns
//! max_result_bytes = 16777216      # bytes of one query's values
//! max_sql_bytes = 1048576          # length of SQL text
//! max_db_bytes = 1073741824        # size of one service's database file
//! time_limit_ms = 10000            # longest call, whatever the module's time limit
//! max_open = 64                    # databases kept open
//! synchronous = "normal"           # or "full": fsync on every commit
//! ```
//!
//! Module (`[modules.capability_config.sqlite]` of a blueprint):
//!
//! ```toml
//! read_only = true                 # this module may only read
//! max_rows = 100                   # lower than the node's
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use weft_abi::effector::{Call, Capability, Effector, Grant};
use weft_abi::interface::{Function, Record, Type};
use weft_abi::{Error, ErrorCode, Kind, Manifest, Provider, Result};

/// The capability's name.
pub const CAPABILITY: &str = "sqlite";

/// The file of a service's database, relative to its data directory.
pub const DB_FILE: &str = "sqlite/service.db";

/// The node's configuration of the plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Most rows one query returns.
    pub max_rows: u32,
    /// Most bytes of values one query returns (text and blobs by length, numbers as 8).
    pub max_result_bytes: u64,
    /// Longest SQL text.
    pub max_sql_bytes: u32,
    /// Largest database file.
    pub max_db_bytes: u64,
    /// Longest call, in ms (a call also stops when the calling module's time runs out).
    pub time_limit_ms: u64,
    /// Databases kept open at once (least recently used are closed).
    pub max_open: usize,
    /// `"normal"` (WAL, durable across crashes of the process) or `"full"` (fsync every commit).
    pub synchronous: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_rows: 10_000,
            max_result_bytes: 16 << 20,
            max_sql_bytes: 1 << 20,
            max_db_bytes: 1 << 30,
            time_limit_ms: 10_000,
            max_open: 64,
            synchronous: "normal".into(),
        }
    }
}

impl Config {
    /// Parses the configuration text (empty means defaults).
    ///
    /// # Errors
    /// Malformed TOML, unknown keys, values out of range: `INVALID_CONFIG`.
    pub fn parse(text: &str) -> Result<Self> {
        let c: Self = toml::from_str(text).map_err(|e| {
            Error::config(format!("sqlite plugin config: {}", e.message().lines().next().unwrap_or("invalid")))
        })?;
        if c.max_open == 0 {
            return Err(Error::config("sqlite plugin config: max_open must be at least 1"));
        }
        if c.max_db_bytes < 1 << 16 {
            return Err(Error::config("sqlite plugin config: max_db_bytes must be at least 65536"));
        }
        if c.synchronous != "normal" && c.synchronous != "full" {
            return Err(Error::config(format!(
                "sqlite plugin config: synchronous {:?} is not \"normal\" or \"full\"",
                c.synchronous
            )));
        }
        Ok(c)
    }
}

/// A module's configuration of the capability (`[modules.capability_config.sqlite]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModuleConfig {
    /// The module may only read.
    pub read_only: bool,
    /// At most this many rows per query (capped by the node's `max_rows`).
    pub max_rows: Option<u32>,
}

impl ModuleConfig {
    /// Parses a module's configuration (JSON).
    ///
    /// # Errors
    /// Not a JSON object of the known keys: `INVALID_CONFIG`.
    pub fn parse(text: &str) -> Result<Self> {
        if text == "{}" {
            return Ok(Self::default());
        }
        serde_json::from_str(text).map_err(|e| Error::config(format!("sqlite module config {text:?}: {e}")))
    }
}

/// A SQL value: NULL when no field is set, else exactly one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Value {
    /// INTEGER
    pub integer: Option<i64>,
    /// REAL
    pub real: Option<f64>,
    /// TEXT
    pub text: Option<String>,
    /// BLOB
    pub blob: Option<Vec<u8>>,
}

/// What `execute` returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecuteResult {
    /// Why it failed, if it did (then the other fields are 0).
    pub error: Option<String>,
    /// Rows inserted, updated or deleted.
    pub changes: u64,
    /// The rowid of the last insert on this database.
    pub last_insert_rowid: i64,
}

/// What `query` returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    /// Why it failed, if it did (then there are no rows).
    pub error: Option<String>,
    /// Column names.
    pub columns: Vec<String>,
    /// The rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
}

/// Pragmas a module may use: reading the schema and a few harmless switches.
const PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "foreign_keys",
    "integrity_check",
    "quick_check",
    "user_version",
    "application_id",
    "data_version",
    "page_count",
    "freelist_count",
    "defer_foreign_keys",
    "recursive_triggers",
    "case_sensitive_like",
];

/// Pragmas of [`PRAGMAS`] that change something when given a value (refused to read-only modules).
const SETTINGS: &[&str] = &[
    "foreign_keys",
    "user_version",
    "application_id",
    "defer_foreign_keys",
    "recursive_triggers",
    "case_sensitive_like",
];

/// One service's open database.
struct Db {
    conn: Connection,
    /// When the current call must stop (the progress handler reads it).
    deadline: Arc<Mutex<Instant>>,
    /// Whether the current call's module is read-only (the authorizer reads it).
    read_only: Arc<AtomicBool>,
    last_used: AtomicU64,
}

/// The effector.
#[derive(Debug)]
pub struct Sqlite {
    config: Config,
    open: Mutex<HashMap<String, Arc<Mutex<Db>>>>,
    clock: AtomicU64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn authorize(ctx: AuthContext<'_>, read_only: bool) -> Authorization {
    use AuthAction as A;
    match ctx.action {
        A::Attach { .. } | A::Detach { .. } => Authorization::Deny,
        A::Pragma { pragma_name, pragma_value } => {
            let name = pragma_name.to_ascii_lowercase();
            let setting = SETTINGS.contains(&name.as_str()) && pragma_value.is_some();
            if PRAGMAS.contains(&name.as_str()) && !(read_only && setting) {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        A::Select | A::Read { .. } | A::Function { .. } | A::Recursive => Authorization::Allow,
        A::Transaction { .. } | A::Savepoint { .. } => Authorization::Allow,
        _ if read_only => Authorization::Deny,
        _ => Authorization::Allow,
    }
}

impl Sqlite {
    /// A `sqlite` effector with `config`.
    pub fn new(config: Config) -> Self {
        Sqlite { config, open: Mutex::default(), clock: AtomicU64::new(0) }
    }

    fn open_db(&self, dir: &Path) -> std::result::Result<Db, String> {
        let path = dir.join(DB_FILE);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| format!("cannot open the database: {e}"))?;
        let setup = || -> rusqlite::Result<()> {
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "wal")?;
            conn.pragma_update(None, "synchronous", &self.config.synchronous)?;
            conn.pragma_update(None, "foreign_keys", true)?;
            conn.pragma_update(None, "trusted_schema", false)?;
            let page_size: u64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            conn.pragma_update(None, "max_page_count", self.config.max_db_bytes / page_size.max(512))?;
            conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
            conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
            let sql_len = i32::try_from(self.config.max_sql_bytes).unwrap_or(i32::MAX);
            conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, sql_len)?;
            conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, 64 << 20)?;
            conn.set_prepared_statement_cache_capacity(32);
            Ok(())
        };
        setup().map_err(|e| format!("cannot set up the database: {e}"))?;
        let deadline = Arc::new(Mutex::new(Instant::now()));
        let read_only = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&deadline);
        conn.progress_handler(1000, Some(move || Instant::now() > *lock(&d)));
        let ro = Arc::clone(&read_only);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| authorize(ctx, ro.load(Ordering::Relaxed))));
        Ok(Db { conn, deadline, read_only, last_used: AtomicU64::new(0) })
    }

    /// The open database of the calling service, opened if needed.
    fn db(&self, service: &str, dir: &Path) -> std::result::Result<Arc<Mutex<Db>>, String> {
        if let Some(db) = lock(&self.open).get(service) {
            return Ok(Arc::clone(db));
        }
        let db = Arc::new(Mutex::new(self.open_db(dir)?));
        let mut open = lock(&self.open);
        if open.len() >= self.config.max_open {
            // Close the least recently used database that is not in use.
            let victim = open
                .iter()
                .filter_map(|(k, v)| v.try_lock().ok().map(|d| (d.last_used.load(Ordering::Relaxed), k.clone())))
                .min()
                .map(|(_, k)| k);
            if let Some(k) = victim {
                open.remove(&k);
            }
        }
        Ok(Arc::clone(open.entry(service.to_owned()).or_insert(db)))
    }

    fn max_rows(&self, module: &ModuleConfig) -> usize {
        module.max_rows.unwrap_or(self.config.max_rows).min(self.config.max_rows) as usize
    }
}

fn bind(params: &[Value]) -> std::result::Result<Vec<SqlValue>, String> {
    params
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let set = usize::from(v.integer.is_some())
                + usize::from(v.real.is_some())
                + usize::from(v.text.is_some())
                + usize::from(v.blob.is_some());
            if set > 1 {
                return Err(format!(
                    "parameter {}: a value sets {set} of integer, real, text and blob; set one (or none for NULL)",
                    i + 1
                ));
            }
            Ok(match v {
                Value { integer: Some(n), .. } => SqlValue::Integer(*n),
                Value { real: Some(x), .. } => SqlValue::Real(*x),
                Value { text: Some(s), .. } => SqlValue::Text(s.clone()),
                Value { blob: Some(b), .. } => SqlValue::Blob(b.clone()),
                _ => SqlValue::Null,
            })
        })
        .collect()
}

fn value(v: ValueRef<'_>) -> (Value, u64) {
    match v {
        ValueRef::Null => (Value::default(), 1),
        ValueRef::Integer(n) => (Value { integer: Some(n), ..Value::default() }, 8),
        ValueRef::Real(x) => (Value { real: Some(x), ..Value::default() }, 8),
        ValueRef::Text(t) => {
            (Value { text: Some(String::from_utf8_lossy(t).into_owned()), ..Value::default() }, t.len() as u64 + 1)
        }
        ValueRef::Blob(b) => (Value { blob: Some(b.to_vec()), ..Value::default() }, b.len() as u64 + 1),
    }
}

/// A SQL failure as the message a module gets.
fn sql_error(function: &str, e: &rusqlite::Error, time_left: Duration) -> String {
    let text = e.to_string().replace('\n', " ");
    if let rusqlite::Error::SqliteFailure(f, _) = e {
        if f.code == rusqlite::ErrorCode::OperationInterrupted {
            return format!(
                "sqlite.{function}: stopped after {} ms, the time the call had; make the statement cheaper or raise the module's time_limit",
                time_left.as_millis()
            );
        }
        if f.code == rusqlite::ErrorCode::AuthorizationForStatementDenied {
            return format!(
                "sqlite.{function}: {text}: ATTACH, DETACH, pragmas that change settings, and writes from a read_only module are not allowed"
            );
        }
        if f.code == rusqlite::ErrorCode::DiskFull {
            return format!("sqlite.{function}: {text}: the database reached its size limit (max_db_bytes)");
        }
    }
    format!("sqlite.{function}: {text}")
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| Error::other(format!("sqlite: cannot encode the results: {e}")))
}

impl Sqlite {
    fn execute(&self, db: &Db, sql: &str, params: &[Value], time_left: Duration) -> ExecuteResult {
        let failed = |error: String| ExecuteResult { error: Some(error), ..ExecuteResult::default() };
        let params = match bind(params) {
            Ok(p) => p,
            Err(e) => return failed(format!("sqlite.execute: {e}")),
        };
        let run = || -> rusqlite::Result<u64> {
            let mut stmt = db.conn.prepare_cached(sql)?;
            let changes = stmt.execute(rusqlite::params_from_iter(params.iter()))?;
            Ok(changes as u64)
        };
        match run() {
            Ok(changes) => ExecuteResult { error: None, changes, last_insert_rowid: db.conn.last_insert_rowid() },
            Err(e) => failed(sql_error("execute", &e, time_left)),
        }
    }

    fn query(&self, db: &Db, sql: &str, params: &[Value], max_rows: usize, time_left: Duration) -> QueryResult {
        let failed = |error: String| QueryResult { error: Some(error), ..QueryResult::default() };
        let params = match bind(params) {
            Ok(p) => p,
            Err(e) => return failed(format!("sqlite.query: {e}")),
        };
        let max_bytes = self.config.max_result_bytes;
        let run = || -> rusqlite::Result<std::result::Result<QueryResult, String>> {
            let mut stmt = db.conn.prepare_cached(sql)?;
            let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
            let n = columns.len();
            let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
            let mut out = Vec::new();
            let mut bytes = 0u64;
            while let Some(row) = rows.next()? {
                if out.len() >= max_rows {
                    return Ok(Err(format!(
                        "sqlite.query: more than {max_rows} rows; add a LIMIT (or raise max_rows)"
                    )));
                }
                let mut values = Vec::with_capacity(n);
                for i in 0..n {
                    let (v, size) = value(row.get_ref(i)?);
                    bytes += size;
                    values.push(v);
                }
                if bytes > max_bytes {
                    return Ok(Err(format!(
                        "sqlite.query: the rows hold more than {max_bytes} bytes; select less (or raise max_result_bytes)"
                    )));
                }
                out.push(values);
            }
            Ok(Ok(QueryResult { error: None, columns, rows: out }))
        };
        match run() {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => failed(e),
            Err(e) => failed(sql_error("query", &e, time_left)),
        }
    }
}

impl Effector for Sqlite {
    fn capabilities(&self) -> Result<Vec<Capability>> {
        let value = Type::record("value");
        let params = || Type::array(Type::record("value"));
        let error = || Type::optional(Type::String);
        Ok(vec![
            Capability::new(CAPABILITY)
                .record(
                    Record::new("value")
                        .field("integer", Type::optional(Type::S64))
                        .field("real", Type::optional(Type::F64))
                        .field("text", Type::optional(Type::String))
                        .field("blob", Type::optional(Type::Bytes)),
                )
                .record(
                    Record::new("execute_result")
                        .field("error", error())
                        .field("changes", Type::U64)
                        .field("last_insert_rowid", Type::S64),
                )
                .record(
                    Record::new("query_result")
                        .field("error", error())
                        .field("columns", Type::array(Type::String))
                        .field("rows", Type::array(Type::array(value))),
                )
                .function(
                    Function::new("execute")
                        .param("sql", Type::String)
                        .param("params", params())
                        .result(Type::record("execute_result")),
                )
                .function(
                    Function::new("query")
                        .param("sql", Type::String)
                        .param("params", params())
                        .result(Type::record("query_result")),
                )
                .function(Function::new("batch").param("sql", Type::String).result(error())),
        ])
    }

    fn grant(&self, grant: &Grant<'_>) -> Result<()> {
        ModuleConfig::parse(grant.config()).map(drop)
    }

    fn call(&self, call: &Call<'_>) -> Result<Vec<u8>> {
        if call.capability() != CAPABILITY || !matches!(call.function(), "execute" | "query" | "batch") {
            return Err(call.unknown_function());
        }
        let module = ModuleConfig::parse(call.config())?;
        let function = call.function();
        let (sql, params): (String, Vec<Value>) = if function == "batch" {
            let (sql,): (String,) = postcard::from_bytes(call.args()).map_err(|e| call.bad_args(e))?;
            (sql, Vec::new())
        } else {
            postcard::from_bytes(call.args()).map_err(|e| call.bad_args(e))?
        };
        let refuse = |message: String| match function {
            "execute" => encode(&ExecuteResult { error: Some(message), ..ExecuteResult::default() }),
            "query" => encode(&QueryResult { error: Some(message), ..QueryResult::default() }),
            _ => encode(&Some(message)),
        };
        if sql.len() > self.config.max_sql_bytes as usize {
            return refuse(format!(
                "sqlite.{function}: the SQL text is {} bytes; at most {} are allowed",
                sql.len(),
                self.config.max_sql_bytes
            ));
        }
        let db = match self.db(call.service_id(), call.data_dir()) {
            Ok(db) => db,
            Err(e) => return Err(Error::new(ErrorCode::IO, format!("sqlite: {e}"))),
        };
        let db = lock(&db);
        let time_left = call.time_left().min(Duration::from_millis(self.config.time_limit_ms));
        *lock(&db.deadline) = Instant::now() + time_left;
        db.read_only.store(module.read_only, Ordering::Relaxed);
        db.last_used.store(self.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        let mut results = match function {
            "execute" => encode(&self.execute(&db, &sql, &params, time_left)),
            "query" => encode(&self.query(&db, &sql, &params, self.max_rows(&module), time_left)),
            _ => encode(&db.conn.execute_batch(&sql).err().map(|e| sql_error("batch", &e, time_left))),
        };
        if !db.conn.is_autocommit() {
            // A transaction left open would leak into the next call, maybe of another module.
            let _ = db.conn.execute_batch("ROLLBACK");
            results = refuse(format!(
                "sqlite.{function}: the statement left a transaction open, so it was rolled back; \
                 begin and commit within one call (batch \"BEGIN; ...; COMMIT;\")"
            ));
        }
        results
    }

    fn forget(&self, service_id: &str) -> Result<()> {
        lock(&self.open).remove(service_id);
        Ok(())
    }
}

/// The plugin provider.
#[derive(Debug)]
pub struct SqlitePlugin;

impl Provider for SqlitePlugin {
    fn manifest() -> Manifest {
        Manifest {
            name: "sqlite".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "a SQLite database per service, in its data directory".into(),
            kinds: vec![Kind::EFFECTOR],
        }
    }

    fn effector(config: &str, _dir: &Path) -> Result<Box<dyn Effector>> {
        Ok(Box::new(Sqlite::new(Config::parse(config)?)))
    }
}

weft_abi::export_plugin!(SqlitePlugin);
