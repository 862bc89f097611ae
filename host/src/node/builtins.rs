//! The builtin services every node answers from AIR, and the node's [`Handler`]: builtins first,
//! then the node's own services by id or alias.
//!
//! | service | functions |
//! |---|---|
//! | `peer` | `identify`, `timestamp_ms`, `timestamp_sec`, `is_connected(peer)`, `connect(peer, [addrs])`, `timeout(ms, value)` |
//! | `op` | `noop`, `identity(x)`, `array(..)`, `array_length(a)`, `concat(a, b, ..)`, `concat_strings(..)`, `string_to_b58(s)`, `string_from_b58(s)`, `bytes_to_b58(a)`, `bytes_from_b58(s)`, `sha256_string(s)` |
//! | `srv` | `create(blueprint_id)`, `remove(service)`, `list`, `get_interface(service)`, `add_alias(alias, service)`, `resolve_alias(alias)` |
//! | `dist` | `add_module(base64, name?)`, `add_blueprint(blueprint)`, `list_modules`, `list_blueprints`, `get_module_interface(hash)`, `get_blueprint(id)` |
//! | `kad` | `neighborhood(key, count?)` |
//!
//! Values and errors are documented in docs/builtins.md.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;
use weft_abi::dht::Dht as _;
use weft_abi::peer_id::{base58_decode, base58_encode};
use weft_compiler::interface::{Function, Interface};
use weft_storage::Hash;

use super::core::{Call, CallError, CallFuture, Core, Handler};
use crate::services::{Blueprint, CallParams, ModuleConfig, ModuleSpec, Services};

/// The builtin service names: a service of this name can't be reached by alias.
pub const BUILTINS: &[&str] = &["peer", "op", "srv", "dist", "kad"];

/// Most peers `kad.neighborhood` returns.
const MAX_NEIGHBORHOOD: usize = 100;

/// A node's handler: builtins and services.
pub(crate) struct NodeHandler {
    pub services: Arc<Services>,
    pub owner: Option<String>,
    pub version: &'static str,
}

type R = Result<Value, CallError>;

fn fail<T>(message: impl Into<String>) -> Result<T, CallError> {
    Err(CallError::new(message))
}

/// The arguments of one builtin call, with errors that name the function and the argument.
struct Args<'a> {
    what: String,
    args: &'a [Value],
}

impl<'a> Args<'a> {
    fn new(call: &'a Call) -> Self {
        Self { what: format!("{}.{}", call.service, call.function), args: &call.args }
    }

    fn count(&self, min: usize, max: usize) -> Result<(), CallError> {
        let n = self.args.len();
        if n < min || n > max {
            let want = if min == max { format!("{min}") } else { format!("{min} to {max}") };
            return fail(format!("{}: takes {want} argument(s), got {n}", self.what));
        }
        Ok(())
    }

    fn get(&self, i: usize) -> Option<&'a Value> {
        self.args.get(i)
    }

    fn str(&self, i: usize, name: &str) -> Result<&'a str, CallError> {
        match self.args.get(i) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => fail(format!("{}: argument {name} must be a string, got {}", self.what, kind(other))),
            None => fail(format!("{}: argument {name} is missing", self.what)),
        }
    }

    fn u64(&self, i: usize, name: &str) -> Result<u64, CallError> {
        match self.args.get(i) {
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or(0)),
            Some(other) => {
                fail(format!("{}: argument {name} must be a non-negative integer, got {}", self.what, kind(other)))
            }
            None => fail(format!("{}: argument {name} is missing", self.what)),
        }
    }

    fn array(&self, i: usize, name: &str) -> Result<&'a Vec<Value>, CallError> {
        match self.args.get(i) {
            Some(Value::Array(a)) => Ok(a),
            Some(other) => fail(format!("{}: argument {name} must be an array, got {}", self.what, kind(other))),
            None => fail(format!("{}: argument {name} is missing", self.what)),
        }
    }
}

fn kind(v: &Value) -> String {
    let text = v.to_string();
    let short: String = text.chars().take(40).collect();
    let ellipsis = if short.len() < text.len() { "…" } else { "" };
    format!("{short}{ellipsis}")
}

impl Handler for NodeHandler {
    fn call(&self, core: &Arc<Core>, call: Call) -> CallFuture {
        let core = Arc::clone(core);
        let services = Arc::clone(&self.services);
        let owner = self.owner.clone();
        let version = self.version;
        Box::pin(async move {
            match call.service.as_str() {
                "peer" => peer(&core, &call, version).await,
                "op" => op(&call),
                "srv" => {
                    let blocking = smol::unblock(move || srv(&services, &call, owner.as_deref()));
                    blocking.await
                }
                "dist" => smol::unblock(move || dist(&services, &call)).await,
                "kad" => kad(&core, &call).await,
                _ => smol::unblock(move || service(&services, call)).await,
            }
        })
    }
}

fn unknown(call: &Call, known: &str) -> R {
    fail(format!("{} has no function {:?}; it has: {known}", call.service, call.function))
}

// ------------------------------------------------------------------------------------- peer

async fn peer(core: &Arc<Core>, call: &Call, version: &str) -> R {
    let a = Args::new(call);
    match call.function.as_str() {
        "identify" => {
            a.count(0, 0)?;
            let me = core.peer_id();
            let addrs: Vec<String> = core.listening().iter().map(|l| super::core::with_p2p(l, me)).collect();
            Ok(json!({
                "peer_id": me,
                "external_addresses": addrs,
                "node_version": version,
                "air_version": "weft",
                "connected_peers": core.connected_peers().len(),
            }))
        }
        "timestamp_ms" => {
            a.count(0, 0)?;
            Ok(json!(super::now_ms()))
        }
        "timestamp_sec" => {
            a.count(0, 0)?;
            Ok(json!(super::now_ms() / 1000))
        }
        "is_connected" => {
            a.count(1, 1)?;
            Ok(json!(core.is_connected(a.str(0, "peer_id")?)))
        }
        "connect" => {
            a.count(1, 2)?;
            let peer = a.str(0, "peer_id")?;
            let addrs: Vec<String> = match a.get(1) {
                None | Some(Value::Null) => Vec::new(),
                Some(_) => a
                    .array(1, "addresses")?
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| CallError::new("peer.connect: addresses must be strings"))?,
            };
            match core.connect(peer, &addrs).await {
                Ok(()) => Ok(json!(true)),
                Err(e) => {
                    tracing::info!(particle = %call.particle.id, "peer.connect {peer}: {e}");
                    Ok(json!(false))
                }
            }
        }
        "timeout" => {
            a.count(1, 2)?;
            let ms = a.u64(0, "duration_ms")?;
            smol::Timer::after(Duration::from_millis(ms)).await;
            Ok(a.get(1).cloned().unwrap_or(Value::Null))
        }
        _ => unknown(call, "identify, timestamp_ms, timestamp_sec, is_connected, connect, timeout"),
    }
}

// --------------------------------------------------------------------------------------- op

pub(crate) fn op(call: &Call) -> R {
    let a = Args::new(call);
    match call.function.as_str() {
        "noop" => Ok(Value::Null),
        "identity" => {
            a.count(0, 1)?;
            Ok(a.get(0).cloned().unwrap_or(Value::Null))
        }
        "array" => Ok(Value::Array(call.args.clone())),
        "array_length" => {
            a.count(1, 1)?;
            Ok(json!(a.array(0, "array")?.len()))
        }
        "concat" => {
            let mut out = Vec::new();
            for i in 0..call.args.len() {
                out.extend(a.array(i, &format!("{}", i + 1))?.iter().cloned());
            }
            Ok(Value::Array(out))
        }
        "concat_strings" => {
            let mut out = String::new();
            for i in 0..call.args.len() {
                out.push_str(a.str(i, &format!("{}", i + 1))?);
            }
            Ok(Value::String(out))
        }
        "string_to_b58" => {
            a.count(1, 1)?;
            Ok(Value::String(base58_encode(a.str(0, "string")?.as_bytes())))
        }
        "string_from_b58" => {
            a.count(1, 1)?;
            let bytes = base58_decode(a.str(0, "b58")?)
                .ok_or_else(|| CallError::new("op.string_from_b58: not base58 (or longer than 128 characters)"))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| CallError::new("op.string_from_b58: the decoded bytes are not UTF-8"))
        }
        "bytes_to_b58" => {
            a.count(1, 1)?;
            let bytes: Option<Vec<u8>> =
                a.array(0, "bytes")?.iter().map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok())).collect();
            let bytes = bytes.ok_or_else(|| CallError::new("op.bytes_to_b58: bytes must be numbers 0..=255"))?;
            Ok(Value::String(base58_encode(&bytes)))
        }
        "bytes_from_b58" => {
            a.count(1, 1)?;
            let bytes = base58_decode(a.str(0, "b58")?)
                .ok_or_else(|| CallError::new("op.bytes_from_b58: not base58 (or longer than 128 characters)"))?;
            Ok(json!(bytes))
        }
        "sha256_string" => {
            a.count(1, 1)?;
            let digest = sha2::Sha256::digest(a.str(0, "string")?.as_bytes());
            Ok(Value::String(base58_encode(&digest)))
        }
        _ => unknown(
            call,
            "noop, identity, array, array_length, concat, concat_strings, string_to_b58, string_from_b58, bytes_to_b58, bytes_from_b58, sha256_string",
        ),
    }
}

// -------------------------------------------------------------------------------------- srv

fn srv(services: &Services, call: &Call, node_owner: Option<&str>) -> R {
    let a = Args::new(call);
    let init = &call.particle.init_peer_id;
    match call.function.as_str() {
        "create" => {
            a.count(1, 1)?;
            let id = parse_hash(a.str(0, "blueprint_id")?, "srv.create: blueprint_id")?;
            Ok(json!(services.create(&id, init, None)?))
        }
        "remove" => {
            a.count(1, 1)?;
            services.remove(a.str(0, "service")?, init, node_owner)?;
            Ok(Value::Null)
        }
        "list" => {
            a.count(0, 0)?;
            let list: Vec<Value> = services
                .list()?
                .into_iter()
                .map(|s| {
                    json!({
                        "id": s.id,
                        "blueprint_id": s.blueprint.to_string(),
                        "owner_id": s.owner,
                        "aliases": s.aliases,
                        "created_ms": s.created_ms,
                    })
                })
                .collect();
            Ok(Value::Array(list))
        }
        "get_interface" => {
            a.count(1, 1)?;
            Ok(interface_json(&services.interface(a.str(0, "service")?)?))
        }
        "add_alias" => {
            a.count(2, 2)?;
            let alias = a.str(0, "alias")?;
            let service = a.str(1, "service")?;
            if BUILTINS.contains(&alias) {
                return fail(format!("srv.add_alias: {alias:?} is a builtin service name"));
            }
            let record = services.record(service)?;
            if record.owner != *init && node_owner != Some(init.as_str()) {
                return fail(format!(
                    "srv.add_alias: only the owner of service {} ({}) or the node owner may alias it",
                    record.id, record.owner
                ));
            }
            services.add_alias(alias, service)?;
            Ok(Value::Null)
        }
        "resolve_alias" => {
            a.count(1, 1)?;
            let alias = a.str(0, "alias")?;
            match services.store().alias(alias)? {
                Some(id) => Ok(json!(id)),
                None => fail(format!("srv.resolve_alias: no service has the alias {alias:?}")),
            }
        }
        _ => unknown(call, "create, remove, list, get_interface, add_alias, resolve_alias"),
    }
}

fn parse_hash(text: &str, what: &str) -> Result<Hash, CallError> {
    text.parse::<Hash>().map_err(|_| CallError::new(format!("{what}: {text:?} is not a 64-hex-digit id")))
}

/// A module interface as JSON: `{functions: [{name, params: [{name, type}], results: [type]}], records, imports}`.
pub fn interface_json(i: &Interface) -> Value {
    let params = |ps: &[(String, weft_compiler::interface::Type)]| -> Vec<Value> {
        ps.iter().map(|(n, t)| json!({"name": n, "type": t.to_string()})).collect()
    };
    let function = |f: &Function| {
        json!({
            "name": f.name,
            "params": params(&f.params),
            "results": f.results.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "signature": f.to_string(),
        })
    };
    json!({
        "functions": i.functions.iter().map(function).collect::<Vec<_>>(),
        "records": i.records.iter().map(|r| json!({"name": r.name, "fields": params(&r.fields)})).collect::<Vec<_>>(),
        "imports": i.imports.iter().map(|m| json!({
            "module": m.module, "name": m.name, "params": params(&m.params),
            "results": m.results.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

// ------------------------------------------------------------------------------------- dist

fn dist(services: &Services, call: &Call) -> R {
    let a = Args::new(call);
    let store = services.store();
    match call.function.as_str() {
        "add_module" => {
            a.count(1, 2)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a.str(0, "module_base64")?)
                .map_err(|e| CallError::new(format!("dist.add_module: module_base64 is not base64: {e}")))?;
            let name = match a.get(1) {
                None | Some(Value::Null) => "module".to_owned(),
                Some(_) => a.str(1, "name")?.to_owned(),
            };
            let info = crate::modules::check(&bytes).map_err(|e| CallError::new(format!("dist.add_module: {e}")))?;
            let (hash, _) = crate::modules::store(store, &bytes, &info, &name)?;
            store.flush()?;
            Ok(json!(hash.to_string()))
        }
        "add_blueprint" => {
            a.count(1, 1)?;
            let blueprint = blueprint_from_json(a.get(0).unwrap_or(&Value::Null))
                .map_err(|e| CallError::new(format!("dist.add_blueprint: {e}")))?;
            Ok(json!(services.add_blueprint(&blueprint)?.to_string()))
        }
        "list_modules" => {
            a.count(0, 0)?;
            let list: Vec<Value> = store
                .modules()?
                .into_iter()
                .map(|m| json!({"hash": m.hash.to_string(), "name": m.name, "size": m.size}))
                .collect();
            Ok(Value::Array(list))
        }
        "list_blueprints" => {
            a.count(0, 0)?;
            let mut list = Vec::new();
            for record in store.blueprints()? {
                let (_, blueprint) = services.blueprint(&record.id)?;
                list.push(blueprint_json(&record.id, &blueprint));
            }
            Ok(Value::Array(list))
        }
        "get_blueprint" => {
            a.count(1, 1)?;
            let id = parse_hash(a.str(0, "blueprint_id")?, "dist.get_blueprint: blueprint_id")?;
            let (_, blueprint) = services.blueprint(&id)?;
            Ok(blueprint_json(&id, &blueprint))
        }
        "get_module_interface" => {
            a.count(1, 1)?;
            let hash = parse_hash(a.str(0, "module_hash")?, "dist.get_module_interface: module_hash")?;
            let Some(bytes) = store.get_blob(&hash)? else {
                return fail(format!("dist.get_module_interface: no module {hash} on this peer"));
            };
            let info =
                crate::modules::check(&bytes).map_err(|e| CallError::new(format!("dist.get_module_interface: {e}")))?;
            Ok(interface_json(&info.interface))
        }
        _ => unknown(
            call,
            "add_module, add_blueprint, list_modules, list_blueprints, get_blueprint, get_module_interface",
        ),
    }
}

/// A blueprint as JSON: `{id, name, modules: [{name, hash, config: {...}}]}`; `dist.add_blueprint`
/// takes the same shape without `id` (config keys may be left out: defaults).
pub fn blueprint_json(id: &Hash, b: &Blueprint) -> Value {
    let modules: Vec<Value> = b
        .modules
        .iter()
        .map(|m| json!({"name": m.name, "hash": m.module.to_string(), "config": serde_json::to_value(&m.config).unwrap_or(Value::Null)}))
        .collect();
    json!({"id": id.to_string(), "name": b.name, "modules": modules})
}

/// Reads [`blueprint_json`]'s shape (without `id`).
///
/// # Errors
/// One line naming the field.
pub fn blueprint_from_json(v: &Value) -> Result<Blueprint, String> {
    let Value::Object(o) = v else { return Err(format!("a blueprint is an object, got {}", kind(v))) };
    for key in o.keys() {
        if !matches!(key.as_str(), "name" | "modules" | "id") {
            return Err(format!("unknown key {key:?} (use name, modules)"));
        }
    }
    let name = o.get("name").and_then(Value::as_str).ok_or("name must be a string")?.to_owned();
    let Some(Value::Array(list)) = o.get("modules") else { return Err("modules must be an array".into()) };
    let defaults = serde_json::to_value(ModuleConfig::default()).map_err(|e| e.to_string())?;
    let mut modules = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let Value::Object(m) = m else { return Err(format!("modules[{i}] must be an object")) };
        for key in m.keys() {
            if !matches!(key.as_str(), "name" | "hash" | "config") {
                return Err(format!("modules[{i}]: unknown key {key:?} (use name, hash, config)"));
            }
        }
        let name = m.get("name").and_then(Value::as_str).ok_or(format!("modules[{i}].name must be a string"))?;
        let hash = m.get("hash").and_then(Value::as_str).ok_or(format!("modules[{i}].hash must be a string"))?;
        let hash: Hash = hash.parse().map_err(|_| format!("modules[{i}].hash {hash:?} is not a 64-hex-digit id"))?;
        let mut config = defaults.clone();
        match (m.get("config"), &mut config) {
            (None | Some(Value::Null), _) => {}
            (Some(Value::Object(given)), Value::Object(base)) => {
                for (k, v) in given {
                    if !base.contains_key(k) {
                        let known: Vec<&String> = base.keys().collect();
                        return Err(format!("modules[{i}].config: unknown key {k:?} (known: {known:?})"));
                    }
                    base.insert(k.clone(), v.clone());
                }
            }
            _ => return Err(format!("modules[{i}].config must be an object")),
        }
        let config: ModuleConfig = serde_json::from_value(config).map_err(|e| format!("modules[{i}].config: {e}"))?;
        modules.push(ModuleSpec { name: name.to_owned(), module: hash, config });
    }
    Ok(Blueprint { name, modules })
}

// -------------------------------------------------------------------------------------- kad

async fn kad(core: &Arc<Core>, call: &Call) -> R {
    let a = Args::new(call);
    match call.function.as_str() {
        "neighborhood" => {
            a.count(1, 2)?;
            let key = a.str(0, "key")?;
            let count = match a.get(1) {
                None | Some(Value::Null) => 20,
                Some(_) => usize::try_from(a.u64(1, "count")?).unwrap_or(MAX_NEIGHBORHOOD).min(MAX_NEIGHBORHOOD),
            };
            // a peer id is looked up by its multihash bytes (as Kademlia keys peers); anything
            // else by its UTF-8 bytes
            let bytes = match weft_abi::peer_id::public_key_from_peer_id(key) {
                Some(_) => base58_decode(key).unwrap_or_default(),
                None => key.as_bytes().to_vec(),
            };
            let timeout = Duration::from_millis(core.limits().lookup_timeout_ms);
            let core2 = Arc::clone(core);
            let found = smol::unblock(move || core2.dht().map(|d| d.neighborhood(&bytes, count, timeout))).await;
            match found {
                Some(Ok(peers)) => Ok(json!(peers)),
                Some(Err(e)) => fail(format!("kad.neighborhood: {e}")),
                None => fail("kad.neighborhood: this node has no dht"),
            }
        }
        _ => unknown(call, "neighborhood"),
    }
}

// --------------------------------------------------------------------------------- services

fn service(services: &Services, call: Call) -> R {
    let params = CallParams {
        particle_id: call.particle.id.clone(),
        init_peer_id: call.particle.init_peer_id.clone(),
        timestamp: call.particle.timestamp,
        ttl: call.particle.ttl,
        tetraplets: call.tetraplets,
        ..CallParams::default()
    };
    services
        .call(&call.service, &call.function, &Value::Array(call.args), params)
        .map_err(|e| CallError::new(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::core::ParticleInfo;

    fn call(service: &str, function: &str, args: Value) -> Call {
        let Value::Array(args) = args else { panic!("args are an array") };
        Call {
            particle: Arc::new(ParticleInfo { id: "p".into(), init_peer_id: "i".into(), timestamp: 0, ttl: 1 }),
            service: service.into(),
            function: function.into(),
            args,
            tetraplets: Vec::new(),
        }
    }

    #[test]
    fn op_functions() {
        let ok = |f: &str, args: Value| op(&call("op", f, args)).unwrap();
        assert_eq!(ok("identity", json!([5])), json!(5));
        assert_eq!(ok("identity", json!([])), Value::Null);
        assert_eq!(ok("array", json!([1, "a"])), json!([1, "a"]));
        assert_eq!(ok("array_length", json!([[1, 2, 3]])), json!(3));
        assert_eq!(ok("concat", json!([[1], [], [2, 3]])), json!([1, 2, 3]));
        assert_eq!(ok("concat_strings", json!(["a", "b"])), json!("ab"));
        let b58 = ok("string_to_b58", json!(["hello world"]));
        assert_eq!(b58, json!("StV1DL6CwTryKyV"));
        assert_eq!(ok("string_from_b58", json!([b58])), json!("hello world"));
        assert_eq!(ok("bytes_from_b58", json!([ok("bytes_to_b58", json!([[0, 1, 255]]))])), json!([0, 1, 255]));
        let e = op(&call("op", "identity", json!([1, 2]))).unwrap_err();
        assert_eq!(e.message, "op.identity: takes 0 to 1 argument(s), got 2");
        let e = op(&call("op", "array_length", json!(["x"]))).unwrap_err();
        assert_eq!(e.message, "op.array_length: argument array must be an array, got \"x\"");
        let e = op(&call("op", "nope", json!([]))).unwrap_err();
        assert!(e.message.starts_with("op has no function \"nope\"; it has: noop"), "{}", e.message);
        assert!(op(&call("op", "bytes_to_b58", json!([[256]]))).is_err());
        assert!(op(&call("op", "string_from_b58", json!(["0OIl"]))).is_err());
    }

    #[test]
    fn blueprints_read_from_json_with_defaults_and_clear_errors() {
        let h = Hash::of(b"m").to_string();
        let b = blueprint_from_json(&json!({"name": "x", "modules": [{"name": "m", "hash": h}]})).unwrap();
        assert_eq!(b.modules[0].config, ModuleConfig::default());
        let b = blueprint_from_json(
            &json!({"name": "x", "modules": [{"name": "m", "hash": h, "config": {"time_limit_ms": 5}}]}),
        )
        .unwrap();
        assert_eq!(b.modules[0].config.time_limit_ms, 5);
        let back = blueprint_from_json(&blueprint_json(&Hash::of(b"id"), &b)).unwrap();
        assert_eq!(back, b);
        let e =
            blueprint_from_json(&json!({"name": "x", "modules": [{"name": "m", "hash": h, "config": {"time": 5}}]}))
                .unwrap_err();
        assert!(e.starts_with("modules[0].config: unknown key \"time\""), "{e}");
        let e = blueprint_from_json(&json!({"name": "x", "modules": [{"name": "m", "hash": "zz"}]})).unwrap_err();
        assert_eq!(e, "modules[0].hash \"zz\" is not a 64-hex-digit id");
        assert!(blueprint_from_json(&json!([1])).is_err());
    }
}
