//! The effector compliance suite, and [`Harness`]: a small test host for effector plugins.
//!
//! Every effector plugin runs [`run`] from its `tests/compliance.rs`, against the effector linked
//! as a library *and* loaded from its `.so`:
//!
//! ```ignore
//! use weft_abi::compliance::effector::{self, Sample, Suite};
//!
//! let suite = Suite {
//!     open: &|dir| MyPlugin::effector("", dir).unwrap(),
//!     samples: vec![Sample::new("counter", "get", postcard::to_stdvec(&("visits",)).unwrap())],
//!     state: None,
//! };
//! effector::run(&suite);
//! ```
//!
//! [`Harness`] plays the host: it gives each test service a data directory and an in-memory
//! [`StateBackend`] scoped by capability and service, builds calls and grants, and removes services
//! as the host does. Plugin authors use it in their own tests too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::effector::{Call, CallParams, Capability, Context, Effector, Grant, StateBackend, Usage};
use crate::error::{Error, ErrorCode, Result};
use crate::interface::{Interface, Type};
use crate::storage::Op;

/// Longest key the harness's state store (like the host's) accepts.
pub const MAX_STATE_KEY: usize = 1024;
/// Largest value the harness's state store (like the host's) accepts.
pub const MAX_STATE_VALUE: usize = 1 << 20;

type Scopes = BTreeMap<(String, String), BTreeMap<Vec<u8>, Vec<u8>>>;

/// A test host for effectors: service data directories under one root, and per-service state in
/// memory (kept across reopening an effector, as the node's store is).
#[derive(Debug)]
pub struct Harness {
    root: PathBuf,
    scopes: Mutex<Scopes>,
}

/// One call to make through a [`Harness`].
#[derive(Clone, Debug)]
pub struct TestCall {
    /// The capability.
    pub capability: String,
    /// The function.
    pub function: String,
    /// The calling service (default `"service-a"`).
    pub service: String,
    /// The calling module (default `"module"`).
    pub module: String,
    /// The module's configuration of the capability, JSON (default `{}`).
    pub config: String,
    /// Postcard-encoded arguments.
    pub args: Vec<u8>,
    /// Time the calling module has left (default 5 s).
    pub time_left: Duration,
    /// The call parameters.
    pub params: CallParams,
}

impl TestCall {
    /// A call of `capability.function` with `args`, from module `module` of service `service-a`.
    pub fn new(capability: &str, function: &str, args: Vec<u8>) -> Self {
        TestCall {
            capability: capability.into(),
            function: function.into(),
            service: "service-a".into(),
            module: "module".into(),
            config: "{}".into(),
            args,
            time_left: Duration::from_secs(5),
            params: CallParams {
                service_id: "service-a".into(),
                function_name: "f".into(),
                host_peer_id: "test-peer".into(),
                service_owner: "owner".into(),
                init_peer_id: "init".into(),
                ..CallParams::default()
            },
        }
    }

    /// The same call from another service.
    #[must_use]
    pub fn service(mut self, service: &str) -> Self {
        self.service = service.into();
        self.params.service_id = service.into();
        self
    }

    /// The same call from another module.
    #[must_use]
    pub fn module(mut self, module: &str) -> Self {
        self.module = module.into();
        self
    }

    /// The same call with a module configuration (JSON object text).
    #[must_use]
    pub fn config(mut self, config: &str) -> Self {
        self.config = config.into();
        self
    }

    /// The same call with another time budget.
    #[must_use]
    pub fn time_left(mut self, time_left: Duration) -> Self {
        self.time_left = time_left;
        self
    }
}

struct Scoped<'a> {
    harness: &'a Harness,
    scope: (String, String),
}

impl StateBackend for Scoped<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let scopes = self.harness.scopes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(scopes.get(&self.scope).and_then(|m| m.get(key).cloned()))
    }

    fn apply(&self, ops: Vec<Op>) -> Result<()> {
        for op in &ops {
            if op.key.len() > MAX_STATE_KEY {
                return Err(Error::new(ErrorCode::LIMIT, format!("state key of {} bytes is too long", op.key.len())));
            }
            if op.value.as_ref().is_some_and(|v| v.len() > MAX_STATE_VALUE) {
                return Err(Error::new(ErrorCode::LIMIT, "state value is too large"));
            }
        }
        let mut scopes = self.harness.scopes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let map = scopes.entry(self.scope.clone()).or_default();
        for op in ops {
            match op.value {
                Some(v) => {
                    map.insert(op.key, v);
                }
                None => {
                    map.remove(&op.key);
                }
            }
        }
        Ok(())
    }

    fn scan(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let scopes = self.harness.scopes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(map) = scopes.get(&self.scope) else { return Ok(Vec::new()) };
        Ok(map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| start_after.is_none_or(|a| k.as_slice() > a))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn usage(&self) -> Result<Usage> {
        let scopes = self.harness.scopes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(map) = scopes.get(&self.scope) else { return Ok(Usage::default()) };
        Ok(Usage { keys: map.len() as u64, bytes: map.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum() })
    }
}

struct TestContext<'a> {
    call: &'a TestCall,
    dir: PathBuf,
    params: Vec<u8>,
    state: Scoped<'a>,
    grant: bool,
}

impl Context for TestContext<'_> {
    fn capability(&self) -> &str {
        &self.call.capability
    }
    fn function(&self) -> &str {
        if self.grant { "" } else { &self.call.function }
    }
    fn service_id(&self) -> &str {
        &self.call.service
    }
    fn module(&self) -> &str {
        &self.call.module
    }
    fn args(&self) -> &[u8] {
        if self.grant { &[] } else { &self.call.args }
    }
    fn config(&self) -> &str {
        &self.call.config
    }
    fn data_dir(&self) -> &Path {
        &self.dir
    }
    fn time_left_ms(&self) -> u64 {
        if self.grant { 0 } else { u64::try_from(self.call.time_left.as_millis()).unwrap_or(u64::MAX) }
    }
    fn call_parameters(&self) -> &[u8] {
        &self.params
    }
    fn state(&self) -> &dyn StateBackend {
        &self.state
    }
}

impl Harness {
    /// A harness keeping service directories under `root`.
    pub fn new(root: &Path) -> Self {
        Harness { root: root.to_path_buf(), scopes: Mutex::default() }
    }

    /// The data directory of `service` (created).
    ///
    /// # Panics
    /// It cannot be created.
    pub fn data_dir(&self, service: &str) -> PathBuf {
        let dir = self.root.join("services").join(service);
        std::fs::create_dir_all(&dir).expect("create the service's data dir");
        dir
    }

    fn context<'a>(&'a self, call: &'a TestCall, grant: bool) -> TestContext<'a> {
        TestContext {
            call,
            dir: self.data_dir(&call.service),
            params: if grant { Vec::new() } else { call.params.encode() },
            state: Scoped { harness: self, scope: (call.capability.clone(), call.service.clone()) },
            grant,
        }
    }

    /// Grants `call.capability` with `call.config` to `call.module` of `call.service`, as linking
    /// does.
    ///
    /// # Errors
    /// What the effector's `grant` says.
    pub fn grant(&self, effector: &dyn Effector, call: &TestCall) -> Result<()> {
        let ctx = self.context(call, true);
        effector.grant(&Grant::new(&ctx))
    }

    /// Makes a call, as a module's import does (without granting first).
    ///
    /// # Errors
    /// What the effector's `call` says.
    pub fn call(&self, effector: &dyn Effector, call: &TestCall) -> Result<Vec<u8>> {
        let ctx = self.context(call, false);
        effector.call(&Call::new(&ctx))
    }

    /// Grants, then calls.
    ///
    /// # Errors
    /// The grant or the call failed.
    pub fn grant_and_call(&self, effector: &dyn Effector, call: &TestCall) -> Result<Vec<u8>> {
        self.grant(effector, call)?;
        self.call(effector, call)
    }

    /// Removes a service as the host does: tells the effector, deletes the service's state and
    /// its data directory.
    ///
    /// # Errors
    /// What the effector's `forget` says (the rest is done anyway).
    pub fn remove_service(&self, effector: &dyn Effector, service: &str) -> Result<()> {
        let forgot = effector.forget(service);
        self.scopes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|(_, s), _| s != service);
        let _ = std::fs::remove_dir_all(self.root.join("services").join(service));
        forgot
    }
}

/// A call the effector under test must answer with `Ok` and results of the declared types, given
/// `config` (which its `grant` must accept).
#[derive(Clone, Debug)]
pub struct Sample {
    /// The capability.
    pub capability: String,
    /// The function.
    pub function: String,
    /// The module configuration, JSON.
    pub config: String,
    /// Postcard-encoded arguments.
    pub args: Vec<u8>,
}

impl Sample {
    /// `capability.function(args)` with the configuration `{}`.
    pub fn new(capability: &str, function: &str, args: Vec<u8>) -> Self {
        Sample { capability: capability.into(), function: function.into(), config: "{}".into(), args }
    }

    /// The same sample with a configuration.
    #[must_use]
    pub fn config(mut self, config: &str) -> Self {
        self.config = config.into();
        self
    }

    fn test_call(&self) -> TestCall {
        TestCall::new(&self.capability, &self.function, self.args.clone()).config(&self.config)
    }
}

/// Whether the results of a probe's `read` show a marker.
pub type Seen = Box<dyn Fn(&[u8], &str) -> bool>;

/// How to see per-service state in a stateful effector: `write(marker)` stores something that
/// depends on `marker`, and `seen(results of read, marker)` says whether a `read` shows it.
#[allow(missing_debug_implementations)]
pub struct StateProbe {
    /// A call that stores `marker` for the calling service.
    pub write: Box<dyn Fn(&str) -> Sample>,
    /// A call that shows what the calling service stored.
    pub read: Sample,
    /// Whether `read`'s results show `marker`.
    pub seen: Seen,
}

/// What the suite needs from a plugin.
#[allow(missing_debug_implementations)]
pub struct Suite<'a> {
    /// Opens the effector (with the plugin configuration under test) keeping its own files in
    /// the given directory. Called again on the same directory to test reopening.
    pub open: &'a dyn Fn(&Path) -> Box<dyn Effector>,
    /// Calls that must succeed, at least one per capability.
    pub samples: Vec<Sample>,
    /// For effectors that keep per-service state.
    pub state: Option<StateProbe>,
}

type Case = (&'static str, fn(&Suite<'_>, &Path));

/// Runs every case, each in a fresh temporary directory. Panics on the first failure, naming it.
pub fn run(suite: &Suite<'_>) {
    let cases: [Case; 11] = [
        ("declares valid capabilities", declares),
        ("samples cover every capability", samples_cover),
        ("grants check the configuration", grants),
        ("samples succeed with results of the declared types", samples),
        ("an unknown function or capability is an error", unknown),
        ("hostile arguments are errors, not panics", hostile),
        ("no time left: returns promptly", no_time),
        ("concurrent calls from several services", concurrent),
        ("state is per service", state_per_service),
        ("state survives reopening", state_reopen),
        ("a removed service's state is gone", state_removed),
    ];
    for (name, case) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(suite, dir.path())));
        if let Err(payload) = result {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("effector compliance case {name:?} failed: {msg}");
        }
    }
}

fn open(suite: &Suite<'_>, dir: &Path) -> (Box<dyn Effector>, Harness) {
    let plugin_dir = dir.join("plugin");
    std::fs::create_dir_all(&plugin_dir).expect("plugin dir");
    ((suite.open)(&plugin_dir), Harness::new(dir))
}

fn capabilities(e: &dyn Effector) -> Vec<Capability> {
    e.capabilities().expect("capabilities()")
}

fn not_a_panic(what: &str, e: &Error) {
    assert_ne!(e.code(), ErrorCode::PANIC, "{what}: the effector panicked: {e}");
    assert!(!e.message().is_empty(), "{what}: an error without a message");
    assert!(!e.message().contains('\n'), "{what}: an error message of several lines: {e}");
}

const RESERVED: [&str; 3] = ["weft", "wasi_snapshot_preview1", "wasi_unstable"];

fn declares(suite: &Suite<'_>, dir: &Path) {
    let (e, _) = open(suite, dir);
    let caps = capabilities(e.as_ref());
    assert!(!caps.is_empty(), "an effector offers at least one capability");
    let mut names = std::collections::BTreeSet::new();
    for c in &caps {
        let ok = !c.name.is_empty()
            && c.name.len() <= 64
            && c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.');
        assert!(ok, "capability name {:?}: use 1 to 64 characters of a-z, A-Z, 0-9, _, - and .", c.name);
        assert!(!RESERVED.contains(&c.name.as_str()), "capability name {:?} is reserved", c.name);
        assert!(names.insert(c.name.clone()), "two capabilities are named {:?}", c.name);
        assert!(!c.interface.functions.is_empty(), "capability {} declares no function", c.name);
        assert!(c.interface.imports.is_empty(), "capability {} declares imports", c.name);
        c.interface.check().unwrap_or_else(|err| panic!("capability {}: {err}", c.name));
        let decoded = Interface::decode(&c.interface.encode())
            .unwrap_or_else(|err| panic!("capability {}: its interface does not encode and decode: {err}", c.name));
        assert_eq!(decoded, c.interface, "capability {}: the interface round-trips", c.name);
    }
    assert_eq!(capabilities(e.as_ref()), caps, "capabilities() answers the same twice");
}

fn samples_cover(suite: &Suite<'_>, dir: &Path) {
    let (e, _) = open(suite, dir);
    for c in capabilities(e.as_ref()) {
        assert!(suite.samples.iter().any(|s| s.capability == c.name), "no sample calls capability {}", c.name);
    }
}

fn grants(suite: &Suite<'_>, dir: &Path) {
    let (e, h) = open(suite, dir);
    for c in capabilities(e.as_ref()) {
        let call = TestCall::new(&c.name, "", Vec::new());
        if let Err(err) = h.grant(e.as_ref(), &call) {
            not_a_panic("grant with {}", &err);
            assert_eq!(err.code(), ErrorCode::INVALID_CONFIG, "grant with {{}}: {err}");
        }
        let key = "surely_not_an_option_of_any_effector";
        let err = h
            .grant(e.as_ref(), &call.clone().config(&format!("{{\"{key}\":1}}")))
            .expect_err("a configuration with an unknown key must be refused (a typo must not drop a limit)");
        not_a_panic("grant with an unknown key", &err);
        assert_eq!(err.code(), ErrorCode::INVALID_CONFIG, "{err}");
        assert!(err.message().contains(key), "the refusal names the unknown key: {err}");
        for bad in ["[1,2]", "\"text\"", "{", ""] {
            let err = h.grant(e.as_ref(), &call.clone().config(bad)).expect_err("malformed configuration");
            not_a_panic(&format!("grant with {bad:?}"), &err);
            assert_eq!(err.code(), ErrorCode::INVALID_CONFIG, "grant with {bad:?}: {err}");
        }
    }
}

fn function_of<'c>(caps: &'c [Capability], cap: &str, function: &str) -> (&'c Interface, &'c [Type]) {
    let c = caps.iter().find(|c| c.name == cap).unwrap_or_else(|| panic!("sample of unknown capability {cap}"));
    let f = c.interface.function(function).unwrap_or_else(|| panic!("sample of unknown function {cap}.{function}"));
    (&c.interface, &f.results)
}

fn samples(suite: &Suite<'_>, dir: &Path) {
    let (e, h) = open(suite, dir);
    let caps = capabilities(e.as_ref());
    for s in &suite.samples {
        let (iface, results) = function_of(&caps, &s.capability, &s.function);
        let got = h
            .grant_and_call(e.as_ref(), &s.test_call())
            .unwrap_or_else(|err| panic!("sample {}.{}: {err}", s.capability, s.function));
        check_values(iface, results, &got).unwrap_or_else(|why| {
            panic!("sample {}.{}: its results are not of the declared types: {why}", s.capability, s.function)
        });
    }
}

fn unknown(suite: &Suite<'_>, dir: &Path) {
    let (e, h) = open(suite, dir);
    for c in capabilities(e.as_ref()) {
        let err = h.call(e.as_ref(), &TestCall::new(&c.name, "no_such_function", Vec::new())).expect_err("unknown");
        not_a_panic("an unknown function", &err);
        assert!(err.message().contains("no_such_function"), "the error names the function: {err}");
    }
    let err = h.call(e.as_ref(), &TestCall::new("no-such-capability", "f", Vec::new())).expect_err("unknown");
    not_a_panic("an unknown capability", &err);
}

fn hostile(suite: &Suite<'_>, dir: &Path) {
    let (e, h) = open(suite, dir);
    let caps = capabilities(e.as_ref());
    for s in &suite.samples {
        let (iface, results) = function_of(&caps, &s.capability, &s.function);
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![0xff; 16],
            vec![0x80; 11],
            vec![0xff, 0xff, 0xff, 0xff, 0x0f],
            vec![0x01, 0xc3],
            (0..64u8).map(|i| i.wrapping_mul(37)).collect(),
        ];
        if !s.args.is_empty() {
            cases.push(s.args[..s.args.len() - 1].to_vec());
        }
        cases.push([s.args.as_slice(), &[0]].concat());
        for args in cases {
            let call = TestCall { args: args.clone(), ..s.test_call() };
            match h.grant_and_call(e.as_ref(), &call) {
                Ok(got) => check_values(iface, results, &got).unwrap_or_else(|why| {
                    panic!("{}.{} with arguments {args:02x?}: bad results: {why}", s.capability, s.function)
                }),
                Err(err) => not_a_panic(&format!("{}.{} with arguments {args:02x?}", s.capability, s.function), &err),
            }
        }
    }
}

fn no_time(suite: &Suite<'_>, dir: &Path) {
    let (e, h) = open(suite, dir);
    for s in &suite.samples {
        let started = Instant::now();
        let call = s.test_call().time_left(Duration::ZERO);
        if let Err(err) = h.grant_and_call(e.as_ref(), &call) {
            not_a_panic(&format!("{}.{} without time", s.capability, s.function), &err);
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{}.{} with no time left took {:?}",
            s.capability,
            s.function,
            started.elapsed()
        );
    }
}

fn concurrent(suite: &Suite<'_>, dir: &Path) {
    let (e, h) = open(suite, dir);
    let samples = &suite.samples;
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (e, h) = (&e, &h);
            scope.spawn(move || {
                for i in 0..10 {
                    for s in samples {
                        let call = s.test_call().service(&format!("service-{t}"));
                        h.grant_and_call(e.as_ref(), &call).unwrap_or_else(|err| {
                            panic!("thread {t}, round {i}: {}.{}: {err}", s.capability, s.function)
                        });
                    }
                }
            });
        }
    });
}

fn probe_call(h: &Harness, e: &dyn Effector, sample: &Sample, service: &str) -> Vec<u8> {
    let call = sample.test_call().service(service);
    h.grant_and_call(e, &call)
        .unwrap_or_else(|err| panic!("{}.{} from {service}: {err}", sample.capability, sample.function))
}

fn state_per_service(suite: &Suite<'_>, dir: &Path) {
    let Some(p) = &suite.state else { return };
    let (e, h) = open(suite, dir);
    probe_call(&h, e.as_ref(), &(p.write)("marker-a"), "service-a");
    assert!((p.seen)(&probe_call(&h, e.as_ref(), &p.read, "service-a"), "marker-a"), "a service sees its own state");
    let b = probe_call(&h, e.as_ref(), &p.read, "service-b");
    assert!(!(p.seen)(&b, "marker-a"), "service-b sees service-a's state");
    probe_call(&h, e.as_ref(), &(p.write)("marker-b"), "service-b");
    let a = probe_call(&h, e.as_ref(), &p.read, "service-a");
    assert!(!(p.seen)(&a, "marker-b") && (p.seen)(&a, "marker-a"), "service-a's state is its own");
}

fn state_reopen(suite: &Suite<'_>, dir: &Path) {
    let Some(p) = &suite.state else { return };
    let (e, h) = open(suite, dir);
    probe_call(&h, e.as_ref(), &(p.write)("durable"), "service-a");
    drop(e);
    let e = (suite.open)(&dir.join("plugin"));
    assert!((p.seen)(&probe_call(&h, e.as_ref(), &p.read, "service-a"), "durable"), "state survives reopening");
}

fn state_removed(suite: &Suite<'_>, dir: &Path) {
    let Some(p) = &suite.state else { return };
    let (e, h) = open(suite, dir);
    probe_call(&h, e.as_ref(), &(p.write)("doomed"), "service-a");
    probe_call(&h, e.as_ref(), &(p.write)("kept"), "service-b");
    h.remove_service(e.as_ref(), "service-a").unwrap_or_else(|err| panic!("forget: {err}"));
    let a = probe_call(&h, e.as_ref(), &p.read, "service-a");
    assert!(!(p.seen)(&a, "doomed"), "a service created again under a removed id starts empty");
    assert!((p.seen)(&probe_call(&h, e.as_ref(), &p.read, "service-b"), "kept"), "other services keep theirs");
}

// ---------------------------------------------------------------------------- value checking

/// Deepest nesting of optionals, arrays and records the checker follows (as the host's codec).
const MAX_VALUE_DEPTH: usize = 64;

/// Checks that `bytes` hold exactly one value of each of `types`, in the module ABI's encoding
/// (docs/module-abi.md), as the host does with an effector's results.
///
/// # Errors
/// Why not, with the byte offset.
pub fn check_values(iface: &Interface, types: &[Type], bytes: &[u8]) -> Result<(), String> {
    let mut r = ValueReader { bytes, pos: 0 };
    for (i, ty) in types.iter().enumerate() {
        r.value(iface, ty, 0).map_err(|e| format!("result {i}: {e}"))?;
    }
    if r.pos != bytes.len() {
        return Err(format!("{} trailing bytes after the results", bytes.len() - r.pos));
    }
    Ok(())
}

struct ValueReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl ValueReader<'_> {
    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.pos))
    }

    fn byte(&mut self) -> Result<u8, String> {
        let Some(&b) = self.bytes.get(self.pos) else { return self.fail("truncated") };
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self, bits: u32) -> Result<u64, String> {
        match crate::varint::get(self.bytes.get(self.pos..).unwrap_or_default(), bits) {
            Ok((value, n)) => {
                self.pos += n;
                Ok(value)
            }
            Err(crate::varint::Refused::Truncated) => {
                self.pos = self.bytes.len();
                self.fail("truncated")
            }
            Err(crate::varint::Refused::Invalid) => self.fail("over-long or overflowing varint"),
        }
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        let end = usize::try_from(n).ok().and_then(|n| self.pos.checked_add(n)).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else { return self.fail(&format!("length {n} beyond the bytes left")) };
        self.pos = end;
        Ok(())
    }

    fn value(&mut self, iface: &Interface, ty: &Type, depth: usize) -> Result<(), String> {
        if depth > MAX_VALUE_DEPTH {
            return self.fail("nested too deeply");
        }
        match ty {
            Type::Bool => match self.byte()? {
                0 | 1 => Ok(()),
                _ => self.fail("invalid bool"),
            },
            Type::S8 | Type::U8 => self.byte().map(drop),
            Type::S16 | Type::U16 => self.varint(16).map(drop),
            Type::S32 | Type::U32 => self.varint(32).map(drop),
            Type::S64 | Type::U64 => self.varint(64).map(drop),
            Type::F32 => self.skip(4),
            Type::F64 => self.skip(8),
            Type::String => {
                let n = self.varint(64)?;
                let start = self.pos;
                self.skip(n)?;
                if std::str::from_utf8(&self.bytes[start..self.pos]).is_err() {
                    return self.fail("string is not utf-8");
                }
                Ok(())
            }
            Type::Bytes => {
                let n = self.varint(64)?;
                self.skip(n)
            }
            Type::Optional(inner) => match self.byte()? {
                0 => Ok(()),
                1 => self.value(iface, inner, depth + 1),
                _ => self.fail("invalid optional tag"),
            },
            Type::Array(inner) => {
                let n = self.varint(64)?;
                if n > (self.bytes.len() - self.pos) as u64 {
                    // Every element takes at least a byte except empty records; refuse huge counts.
                    return self.fail(&format!("array count {n} beyond the bytes left"));
                }
                for _ in 0..n {
                    self.value(iface, inner, depth + 1)?;
                }
                Ok(())
            }
            Type::Record(name) => {
                let Some(record) = iface.record(name) else { return self.fail(&format!("unknown record {name}")) };
                for (_, field) in &record.fields {
                    self.value(iface, field, depth + 1)?;
                }
                Ok(())
            }
        }
    }
}
