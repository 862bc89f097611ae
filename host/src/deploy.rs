//! Deploying services through particles: upload modules, add the blueprint, create the service.
//!
//! A deploy file names blueprints and the peers to create their services on:
//!
//! ```toml
//! # deploy.toml
//! [[services]]
//! blueprint = "blueprints/greeting.toml"   # a blueprint file, relative to this file
//! alias = "greeting"                       # optional: an alias on each peer
//! peers = ["relay", "12D3KooW..."]         # "relay" = the peer `--peer` connects to (the default)
//! ```
//!
//! For each service and peer, one particle: the client hands the module bytes (base64) and the
//! blueprint to the script with `getDataSrv`; on the peer, `dist.add_module` stores each module,
//! `dist.add_blueprint` the blueprint, `srv.create` makes the service (owned by the client's
//! peer id), `srv.add_alias` names it; the ids come back to the client. Any failure comes back
//! through `errorHandlingSrv` as one line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use weft_storage::Hash;

use crate::client::{self, Client};
use crate::node::builtins::blueprint_json;
use crate::services::blueprint::{Draft, Source};
use crate::services::{Blueprint, ModuleSpec};

/// Why a deployment failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The deploy or blueprint file is unreadable or malformed.
    #[error("{0}")]
    File(String),
    /// A module file is not a valid module.
    #[error("{path}: {reason}")]
    Module {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The network part failed.
    #[error("deploying {blueprint} to {peer}: {source}")]
    Run {
        /// The blueprint's name.
        blueprint: String,
        /// The peer.
        peer: String,
        /// What happened.
        source: Box<client::Error>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    services: Vec<ServiceRepr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceRepr {
    blueprint: PathBuf,
    alias: Option<String>,
    #[serde(default)]
    peers: Vec<String>,
}

/// One service to deploy: a blueprint with its module bytes, where, under which alias.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The blueprint (module ids computed from the bytes).
    pub blueprint: Blueprint,
    /// `(name, bytes)` of the modules to upload, in blueprint order (modules given by hash are
    /// expected on the peer already).
    pub modules: Vec<(String, Vec<u8>)>,
    /// An alias to set.
    pub alias: Option<String>,
    /// Peer ids, or `"relay"`.
    pub peers: Vec<String>,
}

/// What one deployment made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// The blueprint's name.
    pub name: String,
    /// The peer.
    pub peer: String,
    /// The blueprint id.
    pub blueprint_id: String,
    /// The service id.
    pub service_id: String,
    /// How long it took.
    pub elapsed: Duration,
}

fn read_module(path: &Path) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Module { path: path.to_path_buf(), reason: format!("cannot read: {e}") })?;
    let bytes = if path.extension().is_some_and(|e| e == "wat") {
        wat::parse_bytes(&bytes)
            .map_err(|e| Error::Module {
                path: path.to_path_buf(),
                reason: format!("invalid WebAssembly text: {}", e.to_string().replace('\n', " ")),
            })?
            .into_owned()
    } else {
        bytes
    };
    crate::modules::check(&bytes).map_err(|e| Error::Module { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok(bytes)
}

/// Reads a blueprint file into a [`Plan`] for `peers`.
///
/// # Errors
/// The file, a module file, or a hash prefix (modules given by `hash` must be full ids here).
pub fn plan_blueprint(file: &Path, alias: Option<String>, peers: Vec<String>) -> Result<Plan, Error> {
    let text =
        std::fs::read_to_string(file).map_err(|e| Error::File(format!("{}: cannot read: {e}", file.display())))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let draft = Draft::parse(&text, dir, &file.display().to_string()).map_err(|e| Error::File(e.to_string()))?;
    let mut modules = Vec::new();
    let mut specs = Vec::new();
    for (name, source, config) in draft.modules {
        let (hash, default_name) = match source {
            Source::Path(path) => {
                let bytes = read_module(&path)?;
                let stem = path.file_stem().map_or_else(|| "module".to_owned(), |s| s.to_string_lossy().into_owned());
                let hash = Hash::of(&bytes);
                modules.push((name.clone().unwrap_or_else(|| stem.clone()), bytes));
                (hash, stem)
            }
            Source::Hash(h) => {
                let hash: Hash = h.parse().map_err(|_| {
                    Error::File(format!(
                        "{}: module hash {h:?}: give the full 64-hex-digit id when deploying to another peer",
                        file.display()
                    ))
                })?;
                (hash, h)
            }
        };
        specs.push(ModuleSpec { name: name.unwrap_or(default_name), module: hash, config });
    }
    let blueprint = Blueprint { name: draft.name, modules: specs };
    blueprint.check().map_err(|e| Error::File(format!("{}: {e}", file.display())))?;
    let peers = if peers.is_empty() { vec!["relay".to_owned()] } else { peers };
    Ok(Plan { blueprint, modules, alias, peers })
}

/// Reads a deploy file.
///
/// # Errors
/// The file or what it names.
pub fn plan_file(file: &Path) -> Result<Vec<Plan>, Error> {
    let text =
        std::fs::read_to_string(file).map_err(|e| Error::File(format!("{}: cannot read: {e}", file.display())))?;
    let repr: FileRepr = toml::from_str(&text)
        .map_err(|e| Error::File(format!("{}: {}", file.display(), e.to_string().trim().replace('\n', " "))))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    repr.services.into_iter().map(|s| plan_blueprint(&dir.join(&s.blueprint), s.alias, s.peers)).collect()
}

/// The script that deploys one plan on `peer` through `relay` (see the module docs). Every hop
/// between the client and `peer` goes through the relay, which holds the client's connection.
pub fn script(relay: &str, peer: &str, alias: Option<&str>) -> String {
    let q = |s: &str| Value::String(s.to_owned()).to_string();
    let (r, p) = (q(relay), q(peer));
    let alias_call = match alias {
        Some(a) => format!("(call {p} (\"srv\" \"add_alias\") [{} service_id])", q(a)),
        None => "(null)".to_owned(),
    };
    format!(
        r#"(xor
  (seq
    (seq
      (call %init_peer_id% ("getDataSrv" "modules") [] modules)
      (call %init_peer_id% ("getDataSrv" "blueprint") [] blueprint))
    (seq
      (call {r} ("op" "noop") [])
      (seq
        (fold modules m
          (seq
            (call {p} ("dist" "add_module") [m.$.base64 m.$.name] hash)
            (next m)))
        (seq
          (call {p} ("dist" "add_blueprint") [blueprint] blueprint_id)
          (seq
            (call {p} ("srv" "create") [blueprint_id] service_id)
            (seq
              {alias_call}
              (seq
                (call {r} ("op" "noop") [])
                (call %init_peer_id% ("return" "") [service_id blueprint_id]))))))))
  (seq
    (call {r} ("op" "noop") [])
    (call %init_peer_id% ("errorHandlingSrv" "error") [%last_error%])))"#
    )
}

/// Deploys every plan through `client`, one particle per service and peer, in order.
///
/// # Errors
/// The first failure, naming blueprint and peer.
pub fn deploy(client: &Client, plans: &[Plan], ttl: Duration) -> Result<Vec<Deployed>, Error> {
    let mut out = Vec::new();
    for plan in plans {
        for target in &plan.peers {
            let peer = if target == "relay" { client.relay().to_owned() } else { target.clone() };
            out.push(deploy_one(client, plan, &peer, ttl)?);
        }
    }
    Ok(out)
}

/// Deploys one plan on one peer.
///
/// # Errors
/// What went wrong, naming blueprint and peer.
pub fn deploy_one(client: &Client, plan: &Plan, peer: &str, ttl: Duration) -> Result<Deployed, Error> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let modules: Vec<Value> =
        plan.modules.iter().map(|(name, bytes)| json!({"name": name, "base64": b64.encode(bytes)})).collect();
    let mut blueprint = blueprint_json(&Hash::of(b""), &plan.blueprint);
    if let Value::Object(o) = &mut blueprint {
        o.remove("id");
    }
    let mut data = Map::new();
    data.insert("modules".into(), Value::Array(modules));
    data.insert("blueprint".into(), blueprint);
    let run = client.run(&script(client.relay(), peer, plan.alias.as_deref()), data, ttl).map_err(|source| {
        Error::Run { blueprint: plan.blueprint.name.clone(), peer: peer.to_owned(), source: Box::new(source) }
    })?;
    let ids = run.value.as_array().cloned().unwrap_or_default();
    let text = |i: usize| ids.get(i).and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(Deployed {
        name: plan.blueprint.name.clone(),
        peer: peer.to_owned(),
        service_id: text(0),
        blueprint_id: text(1),
        elapsed: run.elapsed,
    })
}
