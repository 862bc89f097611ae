//! The effector compliance suite on `sqlite`, linked as a library and loaded from its `.so`, and
//! the plugin's own behaviour (typed rows, errors as values, containment, limits) through the
//! suite's test host.

use std::path::Path;
use std::time::{Duration, Instant};

use weft_abi::Provider;
use weft_abi::compliance::effector::{self, Harness, Sample, StateProbe, Suite, TestCall};
use weft_abi::effector::Effector;
use weft_plugin_sqlite::{ExecuteResult, QueryResult, SqlitePlugin, Value};

fn args<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap()
}

fn text(s: &str) -> Value {
    Value { text: Some(s.into()), ..Value::default() }
}

fn int(n: i64) -> Value {
    Value { integer: Some(n), ..Value::default() }
}

fn suite(open: &dyn Fn(&Path) -> Box<dyn Effector>) -> Suite<'_> {
    Suite {
        open,
        samples: vec![
            Sample::new("sqlite", "batch", args(&("CREATE TABLE IF NOT EXISTS t (v TEXT)",))),
            Sample::new("sqlite", "execute", args(&("SELECT ?1", vec![int(1)]))),
            Sample::new("sqlite", "query", args(&("SELECT 1 AS one, 'x', NULL, 2.5, x'00ff'", Vec::<Value>::new()))),
        ],
        state: Some(StateProbe {
            write: Box::new(|marker| {
                let sql = format!("CREATE TABLE IF NOT EXISTS probe (v TEXT); INSERT INTO probe VALUES ('{marker}')");
                Sample::new("sqlite", "batch", args(&(sql,)))
            }),
            read: Sample::new("sqlite", "query", args(&("SELECT v FROM probe", Vec::<Value>::new()))),
            seen: Box::new(|bytes, marker| {
                let r: QueryResult = postcard::from_bytes(bytes).unwrap();
                r.rows.iter().any(|row| row[0].text.as_deref() == Some(marker))
            }),
        }),
    }
}

#[test]
fn linked() {
    effector::run(&suite(&|dir| SqlitePlugin::effector("", dir).unwrap()));
}

#[test]
fn loaded_from_the_shared_library() {
    let path = weft_abi::compliance::built_library(&weft_abi::library_file_name("sqlite"));
    let plugin = weft_abi::Plugin::load(&path).unwrap();
    assert_eq!(plugin.name(), "sqlite");
    effector::run(&suite(&|dir| Box::new(plugin.effector("", dir).unwrap())));
}

struct Db {
    _dir: tempfile::TempDir,
    harness: Harness,
    effector: Box<dyn Effector>,
}

impl Db {
    fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let effector = SqlitePlugin::effector(config, dir.path()).unwrap();
        Db { harness: Harness::new(dir.path()), _dir: dir, effector }
    }

    fn run(&self, call: TestCall) -> Vec<u8> {
        self.harness.grant_and_call(self.effector.as_ref(), &call).unwrap()
    }

    fn batch(&self, service: &str, sql: &str) -> Option<String> {
        postcard::from_bytes(&self.run(TestCall::new("sqlite", "batch", args(&(sql,))).service(service))).unwrap()
    }

    fn execute(&self, call: TestCall) -> ExecuteResult {
        postcard::from_bytes(&self.run(call)).unwrap()
    }

    fn query(&self, call: TestCall) -> QueryResult {
        postcard::from_bytes(&self.run(call)).unwrap()
    }
}

fn execute(sql: &str, params: Vec<Value>) -> TestCall {
    TestCall::new("sqlite", "execute", args(&(sql, params)))
}

fn query(sql: &str, params: Vec<Value>) -> TestCall {
    TestCall::new("sqlite", "query", args(&(sql, params)))
}

#[test]
fn execute_and_query_with_parameters_give_typed_rows() {
    let db = Db::new("");
    assert_eq!(
        db.batch("service-a", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, score REAL, raw BLOB)"),
        None
    );
    let r = db.execute(execute(
        "INSERT INTO notes (body, score, raw) VALUES (?1, ?2, ?3)",
        vec![
            text("héllo"),
            Value { real: Some(2.5), ..Value::default() },
            Value { blob: Some(vec![0, 255]), ..Value::default() },
        ],
    ));
    assert_eq!(r, ExecuteResult { error: None, changes: 1, last_insert_rowid: 1 });
    let r = db.execute(execute("INSERT INTO notes (body) VALUES (?)", vec![Value::default()]));
    assert_eq!((r.error, r.last_insert_rowid), (None, 2));
    let r = db.query(query("SELECT id, body, score, raw FROM notes WHERE id >= ? ORDER BY id", vec![int(1)]));
    assert_eq!(r.error, None);
    assert_eq!(r.columns, ["id", "body", "score", "raw"]);
    assert_eq!(r.rows.len(), 2);
    assert_eq!(r.rows[0][0], int(1));
    assert_eq!(r.rows[0][1], text("héllo"));
    assert_eq!(r.rows[0][2].real, Some(2.5));
    assert_eq!(r.rows[0][3].blob.as_deref(), Some(&[0u8, 255][..]));
    assert_eq!(r.rows[1][1], Value::default(), "NULL is a value with no field set");
    let r = db.execute(execute("UPDATE notes SET score = 1 WHERE body IS NULL OR body = ?", vec![text("héllo")]));
    assert_eq!(r.changes, 2);
}

#[test]
fn sql_errors_come_back_as_values() {
    let db = Db::new("");
    let r = db.query(query("SELEC nonsense", vec![]));
    assert!(r.error.as_deref().unwrap().starts_with("sqlite.query: "), "{r:?}");
    assert!(r.error.unwrap().contains("syntax error"));
    let r = db.execute(execute("INSERT INTO missing VALUES (1)", vec![]));
    assert!(r.error.unwrap().contains("no such table: missing"));
    let r = db.query(query("SELECT ?1, ?2", vec![int(1)]));
    assert!(r.error.is_some(), "too few parameters");
    let r = db.execute(execute("SELECT 1; SELECT 2", vec![]));
    assert!(r.error.is_some(), "execute runs one statement");
    let two = Value { integer: Some(1), text: Some("x".into()), ..Value::default() };
    let r = db.query(query("SELECT ?", vec![two]));
    assert!(r.error.unwrap().contains("parameter 1: a value sets 2 of integer, real, text and blob"));
    assert!(db.batch("service-a", "CREATE TABLE t (x); CREATE TABLE t (x)").unwrap().contains("already exists"));
}

#[test]
fn one_service_cannot_reach_another_services_database() {
    let db = Db::new("");
    assert_eq!(db.batch("service-a", "CREATE TABLE secrets (v TEXT); INSERT INTO secrets VALUES ('a-only')"), None);
    let r = db.query(query("SELECT v FROM secrets", vec![]).service("service-b"));
    assert!(r.error.unwrap().contains("no such table: secrets"), "service-b has its own database");
    let a_file = db.harness.data_dir("service-a").join(weft_plugin_sqlite::DB_FILE);
    assert!(a_file.is_file());
    let attach = format!("ATTACH DATABASE '{}' AS a", a_file.display());
    let e = db.batch("service-b", &attach).unwrap();
    assert!(e.contains("not authorized") && e.contains("ATTACH"), "{e}");
    let e = db.batch("service-b", "VACUUM INTO '/tmp/weft-sqlite-escape.db'").unwrap();
    assert!(!Path::new("/tmp/weft-sqlite-escape.db").exists(), "VACUUM INTO wrote a file: {e}");
    let e = db.batch("service-b", "PRAGMA max_page_count = 999999999").unwrap();
    assert!(e.contains("not authorized"), "limits cannot be raised: {e}");
    assert!(db.batch("service-b", "PRAGMA journal_mode = delete").is_some());
    let r = db.query(query("PRAGMA table_info(secrets)", vec![]));
    assert_eq!(r.error, None, "schema pragmas are allowed");
    assert_eq!(r.rows.len(), 1);
}

#[test]
fn transactions_do_not_outlive_a_call() {
    let db = Db::new("");
    assert_eq!(db.batch("service-a", "CREATE TABLE t (v)"), None);
    assert_eq!(db.batch("service-a", "BEGIN; INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); COMMIT;"), None);
    let e = db.batch("service-a", "BEGIN; INSERT INTO t VALUES (3)").unwrap();
    assert!(e.contains("left a transaction open, so it was rolled back"), "{e}");
    let r = db.query(query("SELECT count(*) FROM t", vec![]));
    assert_eq!(r.rows[0][0], int(2), "the open transaction was rolled back");
}

#[test]
fn read_only_modules_and_row_limits_from_the_module_config() {
    let db = Db::new("max_rows = 50");
    assert_eq!(db.batch("service-a", "CREATE TABLE t (v); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20) INSERT INTO t SELECT x FROM c"), None);
    let reader = r#"{"max_rows":10,"read_only":true}"#;
    let r = db.execute(execute("DELETE FROM t", vec![]).config(reader));
    assert!(r.error.unwrap().contains("not authorized"), "a read_only module cannot write");
    let r = db.query(query("SELECT v FROM t LIMIT 10", vec![]).config(reader));
    assert_eq!(r.rows.len(), 10);
    let r = db.query(query("SELECT v FROM t", vec![]).config(reader));
    assert!(r.error.unwrap().contains("more than 10 rows; add a LIMIT"));
    let r = db.query(query("SELECT v FROM t", vec![]).config(r#"{"max_rows":1000}"#));
    assert_eq!(r.rows.len(), 20, "the node's max_rows (50) caps the module's");
    let e = db.harness.grant(db.effector.as_ref(), &execute("SELECT 1", vec![]).config(r#"{"read_only":"yes"}"#));
    assert!(e.unwrap_err().message().contains("read_only"));
}

#[test]
fn a_runaway_query_stops_when_the_calling_module_runs_out_of_time() {
    let db = Db::new("");
    let forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let started = Instant::now();
    let r = db.query(query(forever, vec![]).time_left(Duration::from_millis(200)));
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert!(r.error.unwrap().contains("stopped after 200 ms"));
    let r = db.query(query("SELECT 1", vec![]));
    assert_eq!(r.error, None, "the database is fine afterwards");
    let db = Db::new("max_result_bytes = 1000");
    let r = db.query(query("SELECT zeroblob(2000)", vec![]));
    assert!(r.error.unwrap().contains("more than 1000 bytes"));
    let db = Db::new("max_sql_bytes = 10");
    let r = db.query(query("SELECT 1 + 1 + 1", vec![]));
    assert!(r.error.unwrap().contains("the SQL text is 16 bytes; at most 10"));
    let db = Db::new("max_db_bytes = 65536");
    let e = db.batch("service-a", "CREATE TABLE big (b); INSERT INTO big VALUES (zeroblob(200000))").unwrap();
    assert!(e.contains("full") || e.contains("size limit"), "{e}");
    assert!(SqlitePlugin::effector("synchronous = \"sometimes\"", Path::new(".")).is_err());
}
