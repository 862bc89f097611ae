//! Blueprints: the pinned recipe of a service, its TOML file form and its canonical encoding.
//!
//! A blueprint is a name and an ordered list of modules, each with the name other modules import
//! it by, its module id and its [`ModuleConfig`]. Its id is blake3 of the canonical encoding
//! ([`Blueprint::encode`]), so it pins code **and** permissions: changing a limit, an env var, a
//! mapped dir or a capability makes another blueprint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use weft_storage::Hash;

/// Format byte of the canonical encoding of a blueprint without capability configurations (the
/// first format; such blueprints keep their ids).
const FORMAT_1: u8 = 1;

/// Format byte of the canonical encoding with per-module capability configurations.
const FORMAT_2: u8 = 2;

/// Largest capability configuration (canonical JSON text) of one module and capability.
pub const MAX_CAPABILITY_CONFIG: usize = 64 << 10;

/// Deepest nesting of arrays and tables in a capability configuration.
pub const MAX_CONFIG_DEPTH: usize = 16;

/// Most modules in one blueprint.
pub const MAX_MODULES: usize = 64;

/// Default per-module memory limit: 64 MiB.
pub const DEFAULT_MAX_MEMORY: u64 = 64 << 20;

/// Default per-call time limit: 1 s.
pub const DEFAULT_TIME_LIMIT_MS: u64 = 1000;

/// Largest memory limit a blueprint may set: 4 GiB, all a wasm32 memory can address.
pub const MAX_MAX_MEMORY: u64 = 4 << 30;

/// Longest per-call time limit a blueprint may set: 10 minutes.
pub const MAX_TIME_LIMIT_MS: u64 = 600_000;

/// Import module names no blueprint module may take: weft's own and WASI's.
const RESERVED: &[&str] = &[weft_compiler::abi::HOST_MODULE, "wasi_snapshot_preview1", "wasi_unstable"];

/// What one module of a service may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleConfig {
    /// Most bytes its memory may grow to.
    pub max_memory: u64,
    /// Longest one call into it may run, in milliseconds.
    pub time_limit_ms: u64,
    /// Environment variables it sees through WASI.
    pub env: BTreeMap<String, String>,
    /// Guest directory (absolute, e.g. `/data`) → directory relative to the service's data
    /// directory (e.g. `data`). The module sees no other files.
    pub mapped_dirs: BTreeMap<String, String>,
    /// Effector capabilities granted to it: import modules it may import from besides earlier
    /// modules of the blueprint.
    pub capabilities: BTreeSet<String>,
    /// Its configuration of granted capabilities, by capability: a JSON object in canonical form
    /// ([`canonical_json`]), e.g. the http plugin's allow-list. The effector receives it with each
    /// grant and call; it is part of the blueprint id.
    #[serde(default)]
    pub capability_config: BTreeMap<String, String>,
}

impl Default for ModuleConfig {
    fn default() -> Self {
        Self {
            max_memory: DEFAULT_MAX_MEMORY,
            time_limit_ms: DEFAULT_TIME_LIMIT_MS,
            env: BTreeMap::new(),
            mapped_dirs: BTreeMap::new(),
            capabilities: BTreeSet::new(),
            capability_config: BTreeMap::new(),
        }
    }
}

impl ModuleConfig {
    /// The configuration of capability `name` as canonical JSON: `{}` when there is none.
    pub fn capability_config(&self, name: &str) -> &str {
        self.capability_config.get(name).map_or("{}", String::as_str)
    }
}

/// Format 1 of the canonical encoding: everything but the capability configurations.
#[derive(Serialize, Deserialize)]
struct BlueprintV1 {
    name: String,
    modules: Vec<ModuleSpecV1>,
}

#[derive(Serialize, Deserialize)]
struct ModuleSpecV1 {
    name: String,
    module: Hash,
    config: ModuleConfigV1,
}

#[derive(Serialize, Deserialize)]
struct ModuleConfigV1 {
    max_memory: u64,
    time_limit_ms: u64,
    env: BTreeMap<String, String>,
    mapped_dirs: BTreeMap<String, String>,
    capabilities: BTreeSet<String>,
}

impl From<&Blueprint> for BlueprintV1 {
    fn from(b: &Blueprint) -> Self {
        BlueprintV1 {
            name: b.name.clone(),
            modules: b
                .modules
                .iter()
                .map(|m| ModuleSpecV1 {
                    name: m.name.clone(),
                    module: m.module,
                    config: ModuleConfigV1 {
                        max_memory: m.config.max_memory,
                        time_limit_ms: m.config.time_limit_ms,
                        env: m.config.env.clone(),
                        mapped_dirs: m.config.mapped_dirs.clone(),
                        capabilities: m.config.capabilities.clone(),
                    },
                })
                .collect(),
        }
    }
}

impl From<BlueprintV1> for Blueprint {
    fn from(b: BlueprintV1) -> Self {
        Blueprint {
            name: b.name,
            modules: b
                .modules
                .into_iter()
                .map(|m| ModuleSpec {
                    name: m.name,
                    module: m.module,
                    config: ModuleConfig {
                        max_memory: m.config.max_memory,
                        time_limit_ms: m.config.time_limit_ms,
                        env: m.config.env,
                        mapped_dirs: m.config.mapped_dirs,
                        capabilities: m.config.capabilities,
                        capability_config: BTreeMap::new(),
                    },
                })
                .collect(),
        }
    }
}

/// One module of a blueprint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleSpec {
    /// The name later modules import it by (`(import "<name>" "<function>" ...)`).
    pub name: String,
    /// The module id.
    pub module: Hash,
    /// What it may use.
    pub config: ModuleConfig,
}

/// A blueprint: modules in order; the last is the facade, whose functions are the service's API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blueprint {
    /// A name for people.
    pub name: String,
    /// The modules, in instantiation order.
    pub modules: Vec<ModuleSpec>,
}

/// A blueprint that is malformed or breaks a rule. One line; names the module and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BlueprintError(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, BlueprintError> {
    Err(BlueprintError(message.into()))
}

impl Blueprint {
    /// The canonical encoding: a format byte, then postcard of the blueprint (maps and sets are
    /// sorted by construction, so equal blueprints encode equally). Format 1 when no module has a
    /// capability configuration (so blueprints from before it keep their ids), else format 2,
    /// which appends each module's `capability_config` to its config.
    pub fn encode(&self) -> Vec<u8> {
        // Strings, integers, hashes and sorted maps: serialising into a Vec cannot fail.
        if self.modules.iter().all(|m| m.config.capability_config.is_empty()) {
            let mut out = vec![FORMAT_1];
            out.extend(postcard::to_stdvec(&BlueprintV1::from(self)).unwrap_or_default());
            out
        } else {
            let mut out = vec![FORMAT_2];
            out.extend(postcard::to_stdvec(self).unwrap_or_default());
            out
        }
    }

    /// Reads a canonical encoding back and checks the rules.
    ///
    /// # Errors
    /// Unknown format, malformed bytes, or a broken rule.
    pub fn decode(bytes: &[u8]) -> Result<Self, BlueprintError> {
        let blueprint = match bytes.split_first() {
            Some((&FORMAT_1, rest)) => match postcard::from_bytes::<BlueprintV1>(rest) {
                Ok(b) => Blueprint::from(b),
                Err(e) => return fail(format!("malformed blueprint encoding: {e}")),
            },
            Some((&FORMAT_2, rest)) => match postcard::from_bytes::<Blueprint>(rest) {
                Ok(b) => b,
                Err(e) => return fail(format!("malformed blueprint encoding: {e}")),
            },
            Some((v, _)) => {
                return fail(format!(
                    "blueprint format {v} is not one this weft reads (it reads {FORMAT_1} and {FORMAT_2})"
                ));
            }
            None => return fail("empty blueprint encoding"),
        };
        blueprint.check()?;
        Ok(blueprint)
    }

    /// blake3 of [`Blueprint::encode`].
    pub fn id(&self) -> Hash {
        Hash::of(&self.encode())
    }

    /// The facade: the last module.
    pub fn facade(&self) -> Option<&ModuleSpec> {
        self.modules.last()
    }

    /// Checks the rules: a name; 1 to [`MAX_MODULES`] modules with unique, well-formed names that
    /// are not reserved; limits in range; env names without `=` or NUL; mapped dirs from an
    /// absolute guest path to a relative host path that stays inside the service's directory.
    ///
    /// # Errors
    /// The first broken rule, naming the module and field.
    pub fn check(&self) -> Result<(), BlueprintError> {
        check_name("blueprint name", &self.name)?;
        if self.modules.is_empty() {
            return fail(format!("blueprint {}: it lists no modules; add at least one [[modules]] entry", self.name));
        }
        if self.modules.len() > MAX_MODULES {
            return fail(format!("blueprint {}: {} modules, more than {MAX_MODULES}", self.name, self.modules.len()));
        }
        let mut seen = BTreeSet::new();
        for m in &self.modules {
            let at = format!("module {}", m.name);
            check_name(&format!("{at}: name"), &m.name)?;
            if RESERVED.contains(&m.name.as_str()) {
                return fail(format!("{at}: the name `{}` is reserved; choose another", m.name));
            }
            if !seen.insert(m.name.as_str()) {
                return fail(format!("{at}: two modules are named `{}`; names must be unique", m.name));
            }
            check_config(&at, &m.config)?;
        }
        Ok(())
    }
}

fn check_name(what: &str, name: &str) -> Result<(), BlueprintError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok { Ok(()) } else { fail(format!("{what} {name:?}: use 1 to 64 characters of a-z, A-Z, 0-9, _, - and .")) }
}

fn check_config(at: &str, c: &ModuleConfig) -> Result<(), BlueprintError> {
    if c.max_memory < 65536 || c.max_memory > MAX_MAX_MEMORY {
        return fail(format!("{at}: max_memory {} is outside 64 KiB..=4 GiB", c.max_memory));
    }
    if c.time_limit_ms == 0 || c.time_limit_ms > MAX_TIME_LIMIT_MS {
        return fail(format!("{at}: time_limit {} ms is outside 1 ms..=10 min", c.time_limit_ms));
    }
    for key in c.env.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return fail(format!("{at}: env name {key:?} must be non-empty, without '=' or NUL"));
        }
    }
    if let Some((key, _)) = c.env.iter().find(|(_, v)| v.contains('\0')) {
        return fail(format!("{at}: env {key} contains a NUL byte"));
    }
    for (guest, host) in &c.mapped_dirs {
        if !guest.starts_with('/') || guest.contains('\0') {
            return fail(format!("{at}: mapped_dirs guest path {guest:?} must be absolute, e.g. \"/data\""));
        }
        let path = Path::new(host);
        let inside = !host.is_empty()
            && !host.contains('\0')
            && path.components().all(|part| matches!(part, Component::Normal(_) | Component::CurDir));
        if !inside {
            return fail(format!(
                "{at}: mapped_dirs {guest:?} = {host:?}: the host side must be a relative path inside the service's \
                 data directory, without '..', e.g. \"data\""
            ));
        }
    }
    for cap in &c.capabilities {
        check_name(&format!("{at}: capability"), cap)?;
    }
    for (cap, text) in &c.capability_config {
        let here = format!("{at}: capability_config.{cap}");
        if !c.capabilities.contains(cap) {
            return fail(format!(
                "{here}: capability `{cap}` is not granted to this module; add it to capabilities or remove the table"
            ));
        }
        if text.len() > MAX_CAPABILITY_CONFIG {
            return fail(format!("{here}: {} bytes, more than {MAX_CAPABILITY_CONFIG}", text.len()));
        }
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return fail(format!("{here}: not JSON: {e}")),
        };
        if !value.is_object() {
            return fail(format!("{here}: must be a table (a JSON object)"));
        }
        if canonical_json(&value).map_err(|e| BlueprintError(format!("{here}: {e}")))? != *text {
            return fail(format!("{here}: not in canonical form (sorted keys, no spaces)"));
        }
    }
    Ok(())
}

/// A JSON value as canonical text: object keys sorted by their UTF-8 bytes, no whitespace, numbers
/// as serde_json writes them. Equal configurations give equal text, hence equal blueprint ids.
///
/// # Errors
/// Nesting deeper than [`MAX_CONFIG_DEPTH`].
pub fn canonical_json(value: &serde_json::Value) -> Result<String, String> {
    fn write(out: &mut String, v: &serde_json::Value, depth: usize) -> Result<(), String> {
        if depth > MAX_CONFIG_DEPTH {
            return Err(format!("nested deeper than {MAX_CONFIG_DEPTH} levels"));
        }
        match v {
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(out, item, depth + 1)?;
                }
                out.push(']');
            }
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                out.push('{');
                for (i, (k, item)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    write(out, item, depth + 1)?;
                }
                out.push('}');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
        Ok(())
    }
    let mut out = String::new();
    write(&mut out, value, 0)?;
    Ok(out)
}

/// A TOML table of a blueprint file as canonical JSON text (datetimes become strings).
fn toml_to_canonical(table: toml::Table) -> Result<String, String> {
    fn convert(v: toml::Value, depth: usize) -> Result<serde_json::Value, String> {
        if depth > MAX_CONFIG_DEPTH {
            return Err(format!("nested deeper than {MAX_CONFIG_DEPTH} levels"));
        }
        Ok(match v {
            toml::Value::String(s) => serde_json::Value::String(s),
            toml::Value::Integer(i) => serde_json::Value::from(i),
            toml::Value::Float(f) => match serde_json::Number::from_f64(f) {
                Some(n) => serde_json::Value::Number(n),
                None => return Err(format!("{f} is not a finite number")),
            },
            toml::Value::Boolean(b) => serde_json::Value::Bool(b),
            toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
            toml::Value::Array(items) => serde_json::Value::Array(
                items.into_iter().map(|i| convert(i, depth + 1)).collect::<Result<Vec<_>, _>>()?,
            ),
            toml::Value::Table(t) => serde_json::Value::Object(
                t.into_iter().map(|(k, v)| Ok((k, convert(v, depth + 1)?))).collect::<Result<_, String>>()?,
            ),
        })
    }
    canonical_json(&convert(toml::Value::Table(table), 0)?)
}

/// Where a module of a blueprint file comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A .wasm or .wat file (resolved against the blueprint file's directory).
    Path(PathBuf),
    /// A module already stored, by id or unique prefix.
    Hash(String),
}

/// A blueprint as written in a file, before its modules are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// The blueprint's name.
    pub name: String,
    /// `(name, where from, config)`; `name` is `None` when the file leaves it to default.
    pub modules: Vec<(Option<String>, Source, ModuleConfig)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    name: String,
    #[serde(default)]
    modules: Vec<ModuleRepr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleRepr {
    name: Option<String>,
    path: Option<PathBuf>,
    hash: Option<String>,
    max_memory: Option<Size>,
    time_limit: Option<Duration>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    mapped_dirs: BTreeMap<String, String>,
    #[serde(default)]
    capabilities: BTreeSet<String>,
    #[serde(default)]
    capability_config: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Duration {
    Millis(u64),
    Text(String),
}

/// `"64 MiB"`, `"512KiB"`, `"1 GiB"`, `"65536"` → bytes.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "KB" | "kB" => 1 << 10,
        "MiB" | "M" | "MB" => 1 << 20,
        "GiB" | "G" | "GB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// `"1s"`, `"250ms"`, `"2 min"` → milliseconds.
fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "ms" => 1,
        "s" | "" => 1000,
        "min" | "m" => 60_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

impl Draft {
    /// Parses a blueprint TOML file's text; `dir` is the file's directory (module paths are
    /// relative to it); `file` names the file in errors.
    ///
    /// ```toml
    /// name = "textstats"
    ///
    /// [[modules]]
    /// name = "textstats"                 # optional, defaults to the file stem
    /// path = "textstats.wasm"            # or: hash = "<module id or prefix>"
    ///
    /// [[modules]]
    /// name = "facade"
    /// path = "facade.wasm"
    /// max_memory = "32 MiB"              # default 64 MiB
    /// time_limit = "2s"                  # default 1s, per call
    /// env = { GREETING = "hello" }
    /// mapped_dirs = { "/data" = "data" } # guest path = dir inside the service's data dir
    /// capabilities = ["kv", "http"]      # effector capabilities granted
    ///
    /// [modules.capability_config.http]   # this module's configuration of a granted capability
    /// allow_hosts = ["127.0.0.1"]
    /// ```
    ///
    /// # Errors
    /// Malformed TOML, an unknown key, a module with both or neither of `path` and `hash`, a size
    /// or duration that does not parse.
    pub fn parse(text: &str, dir: &Path, file: &str) -> Result<Self, BlueprintError> {
        let repr: FileRepr = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => return fail(format!("{file}: {}", e.to_string().trim().replace('\n', " "))),
        };
        let mut modules = Vec::with_capacity(repr.modules.len());
        for (i, m) in repr.modules.into_iter().enumerate() {
            let at = format!("{file}: modules[{i}]{}", m.name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default());
            let source = match (m.path, m.hash) {
                (Some(p), None) => Source::Path(dir.join(p)),
                (None, Some(h)) => Source::Hash(h),
                _ => return fail(format!("{at}: give exactly one of `path` and `hash`")),
            };
            let mut config = ModuleConfig::default();
            if let Some(size) = m.max_memory {
                config.max_memory = match size {
                    Size::Bytes(b) => b,
                    Size::Text(t) => match parse_size(&t) {
                        Some(b) => b,
                        None => return fail(format!("{at}: max_memory {t:?} is not a size like \"64 MiB\"")),
                    },
                };
            }
            if let Some(d) = m.time_limit {
                config.time_limit_ms = match d {
                    Duration::Millis(ms) => ms,
                    Duration::Text(t) => match parse_duration(&t) {
                        Some(ms) => ms,
                        None => {
                            return fail(format!("{at}: time_limit {t:?} is not a duration like \"1s\" or \"500ms\""));
                        }
                    },
                };
            }
            config.env = m.env;
            config.mapped_dirs = m.mapped_dirs;
            config.capabilities = m.capabilities;
            for (cap, table) in m.capability_config {
                let text = toml_to_canonical(table)
                    .map_err(|e| BlueprintError(format!("{at}: capability_config.{cap}: {e}")))?;
                config.capability_config.insert(cap, text);
            }
            modules.push((m.name, source, config));
        }
        Ok(Draft { name: repr.name, modules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Blueprint {
        let mut config = ModuleConfig::default();
        config.env.insert("A".into(), "1".into());
        config.mapped_dirs.insert("/data".into(), "data".into());
        Blueprint {
            name: "demo".into(),
            modules: vec![
                ModuleSpec { name: "pure".into(), module: Hash::of(b"a"), config: ModuleConfig::default() },
                ModuleSpec { name: "facade".into(), module: Hash::of(b"b"), config },
            ],
        }
    }

    #[test]
    fn encoding_round_trips_and_pins_permissions() {
        let b = sample();
        assert_eq!(Blueprint::decode(&b.encode()).unwrap(), b);
        let mut more = b.clone();
        more.modules[1].config.capabilities.insert("kv".into());
        assert_ne!(more.id(), b.id());
        let mut bytes = b.encode();
        bytes[0] = 7;
        assert!(Blueprint::decode(&bytes).unwrap_err().0.contains("format 7"));
        assert!(Blueprint::decode(&bytes[..5]).is_err());
    }

    #[test]
    fn capability_config_is_pinned_and_format_1_ids_stay() {
        let b = sample();
        assert_eq!(b.encode()[0], 1, "no capability config: format 1, as before");
        let mut granted = b.clone();
        granted.modules[1].config.capabilities.insert("http".into());
        let plain = granted.id();
        granted.modules[1].config.capability_config.insert("http".into(), r#"{"allow_hosts":["a"]}"#.into());
        assert_eq!(granted.encode()[0], 2);
        assert_eq!(Blueprint::decode(&granted.encode()).unwrap(), granted);
        assert_ne!(granted.id(), plain, "the configuration is part of the id");
        let mut other = granted.clone();
        other.modules[1].config.capability_config.insert("http".into(), r#"{"allow_hosts":["b"]}"#.into());
        assert_ne!(other.id(), granted.id());
        assert_eq!(granted.modules[1].config.capability_config("http"), r#"{"allow_hosts":["a"]}"#);
        assert_eq!(granted.modules[1].config.capability_config("kv"), "{}");

        let mut bad = granted.clone();
        bad.modules[1].config.capability_config.insert("sqlite".into(), "{}".into());
        assert!(bad.check().unwrap_err().0.contains("capability_config.sqlite: capability `sqlite` is not granted"));
        let mut bad = granted.clone();
        bad.modules[1].config.capability_config.insert("http".into(), r#"{ "b":1,"a":2}"#.into());
        assert!(bad.check().unwrap_err().0.contains("canonical"), "{:?}", bad.check());
        let mut bad = granted;
        bad.modules[1].config.capability_config.insert("http".into(), "[1]".into());
        assert!(bad.check().unwrap_err().0.contains("must be a table"));
    }

    #[test]
    fn capability_config_tables_become_canonical_json() {
        let text = r#"
            name = "svc"
            [[modules]]
            path = "a.wasm"
            capabilities = ["http"]
            [modules.capability_config.http]
            timeout = "2s"
            allow_hosts = ["b.example", "a.example"]
            limits = { z = 1, a = 2.5 }
        "#;
        let d = Draft::parse(text, Path::new("/bp"), "svc.toml").unwrap();
        assert_eq!(
            d.modules[0].2.capability_config["http"],
            r#"{"allow_hosts":["b.example","a.example"],"limits":{"a":2.5,"z":1},"timeout":"2s"}"#
        );
        let deep = format!(
            "name = \"x\"\n[[modules]]\npath = \"a\"\ncapabilities = [\"c\"]\n[modules.capability_config.c]\nv = {}1{}\n",
            "[".repeat(20),
            "]".repeat(20)
        );
        let e = Draft::parse(&deep, Path::new("."), "x.toml").unwrap_err().0;
        assert!(e.contains("capability_config.c: nested deeper"), "{e}");
        let json = serde_json::json!({"b": [1, {"d": null, "c": "é"}], "a": true});
        assert_eq!(canonical_json(&json).unwrap(), r#"{"a":true,"b":[1,{"c":"é","d":null}]}"#);
    }

    #[test]
    fn rules_name_the_module_and_field() {
        let mut b = sample();
        b.modules[1].config.mapped_dirs.insert("/x".into(), "../escape".into());
        assert!(b.check().unwrap_err().0.contains("module facade: mapped_dirs \"/x\""), "{:?}", b.check());
        let mut b = sample();
        b.modules[0].name = "facade".into();
        assert!(b.check().unwrap_err().0.contains("unique"));
        let mut b = sample();
        b.modules[0].name = "weft".into();
        assert!(b.check().unwrap_err().0.contains("reserved"));
        let mut b = sample();
        b.modules[0].config.time_limit_ms = 0;
        assert!(b.check().unwrap_err().0.contains("time_limit"));
        let mut b = sample();
        b.modules[1].config.mapped_dirs.insert("rel".into(), "data".into());
        assert!(b.check().unwrap_err().0.contains("absolute"));
    }

    #[test]
    fn files_parse_with_units_and_defaults() {
        let text = r#"
            name = "svc"
            [[modules]]
            path = "a.wasm"
            [[modules]]
            name = "facade"
            hash = "abcdef"
            max_memory = "32 MiB"
            time_limit = "250ms"
            env = { K = "v" }
            mapped_dirs = { "/data" = "data" }
            capabilities = ["kv"]
        "#;
        let d = Draft::parse(text, Path::new("/bp"), "svc.toml").unwrap();
        assert_eq!(d.name, "svc");
        assert_eq!(d.modules[0].1, Source::Path(PathBuf::from("/bp/a.wasm")));
        assert_eq!(d.modules[0].2, ModuleConfig::default());
        let c = &d.modules[1].2;
        assert_eq!((c.max_memory, c.time_limit_ms), (32 << 20, 250));
        assert!(c.capabilities.contains("kv"));
        let e = Draft::parse("name = \"x\"\n[[modules]]\npath = \"a\"\nhash = \"b\"", Path::new("."), "x.toml");
        assert!(e.unwrap_err().0.contains("exactly one of `path` and `hash`"));
        let e =
            Draft::parse("name = \"x\"\n[[modules]]\npath = \"a\"\nmax_memory = \"lots\"", Path::new("."), "x.toml");
        assert!(e.unwrap_err().0.contains("max_memory \"lots\""));
        let e = Draft::parse("name = \"x\"\nfrobnicate = 1", Path::new("."), "x.toml");
        assert!(e.unwrap_err().0.starts_with("x.toml: "));
    }
}
