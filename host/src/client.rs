//! Applications: send particles through a peer and run the script's client-side part locally.
//!
//! A [`Client`] connects to one node (its *relay*) with a fresh identity, starts particles signed
//! by that identity, and answers the calls the script addresses to `%init_peer_id%`:
//!
//! | service | function | answers |
//! |---|---|---|
//! | `getDataSrv` | `-relay-` | the relay's peer id |
//! | `getDataSrv` | NAME | the value NAME of the run's data (`weft run --data '{"NAME": …}'`) |
//! | `return`, `callbackSrv` | any | takes the arguments as the run's result (one argument: it, else the array) and ends the run |
//! | `errorHandlingSrv` | `error` | takes the error (`%last_error%`) and ends the run with it |
//! | `console`, `run-console` | any | prints the arguments (a [`Event::Printed`]) |
//! | `op` | the node's `op` builtins | as on a node |
//! | `peer` | `identify`, `timestamp_ms`, `timestamp_sec` | this client |
//!
//! ```no_run
//! let setup = weft_host::Setup::new(&weft_host::Options::default())?;
//! let client = weft_host::client::Client::connect(&setup, "/ip4/127.0.0.1/tcp/7770/p2p/12D3KooW...")?;
//! let script = r#"(seq (call "12D3KooW..." ("op" "identity") ["hi"] x) (call %init_peer_id% ("return" "") [x]))"#;
//! let run = client.run(script, serde_json::Map::new(), std::time::Duration::from_secs(10))?;
//! println!("{}", run.value);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use weft_abi::Kind;

use crate::Setup;
use crate::identity::Identity;
use crate::node::core::{Call, CallError, CallFuture, Core, EventQueue, Handler, Parts, lock};
use crate::node::{Limits, now_ms, p2p_of, spawn_workers};
use crate::particle::Particle;

/// Why a client or a run failed. One line each.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No plugin for a kind the client needs.
    #[error(transparent)]
    Select(#[from] crate::plugins::SelectError),
    /// A plugin refused.
    #[error("{kind} plugin {plugin}: {source}")]
    Plugin {
        /// The kind.
        kind: &'static str,
        /// The plugin.
        plugin: String,
        /// What it said.
        source: weft_abi::Error,
    },
    /// The relay address names no peer.
    #[error("peer address {0:?} must end in /p2p/<peer id> (a node prints its addresses when it starts)")]
    Address(String),
    /// The relay could not be reached.
    #[error("cannot connect to {address}: {reason}; check that the node runs and the address is right")]
    Connect {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// No randomness for keys and ids.
    #[error(transparent)]
    Identity(#[from] crate::identity::Error),
    /// The script did not call `return` in time.
    #[error(
        "no result within the ttl of {ttl_ms} ms: the script did not call (call %init_peer_id% (\"return\" \"\") [...]) in time{hint}"
    )]
    Timeout {
        /// The particle's ttl.
        ttl_ms: u64,
        /// What went wrong on the way, when known.
        hint: String,
    },
    /// The script reported an error through `errorHandlingSrv`.
    #[error("the script failed: {0}")]
    Script(String),
    /// The interpreter refused the script on this client.
    #[error("the script failed here (code {code}): {message}")]
    Air {
        /// The AIR error code.
        code: i64,
        /// Its message.
        message: String,
    },
}

/// Something the script did on the client, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `console.*` / `run-console.*` printed these arguments.
    Printed(Vec<Value>),
}

/// What a finished run gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The arguments of `return` (one argument: it; else the array).
    pub value: Value,
    /// The particle id.
    pub particle_id: String,
    /// From start to result.
    pub elapsed: Duration,
}

enum Outcome {
    Value(Value),
    Error(String),
    Air(i64, String),
}

struct RunState {
    data: Map<String, Value>,
    done: smol::channel::Sender<Outcome>,
    events: Option<smol::channel::Sender<Event>>,
}

struct ClientHandler {
    relay: String,
    runs: Mutex<HashMap<String, RunState>>,
}

impl ClientHandler {
    fn finish(&self, particle: &str, outcome: Outcome) {
        if let Some(run) = lock(&self.runs).get(particle) {
            let _ = run.done.try_send(outcome);
        }
    }
}

fn as_one(args: Vec<Value>) -> Value {
    if args.len() == 1 { args.into_iter().next().unwrap_or(Value::Null) } else { Value::Array(args) }
}

impl Handler for ClientHandler {
    fn outcome(&self, particle: &crate::node::ParticleInfo, ret_code: i64, error_message: &str) {
        // an error in the client's own part of the script: it cannot return any more
        if ret_code != 0 {
            self.finish(&particle.id, Outcome::Air(ret_code, error_message.to_owned()));
        }
    }

    fn call(&self, core: &Arc<Core>, call: Call) -> CallFuture {
        let result = match (call.service.as_str(), call.function.as_str()) {
            ("getDataSrv", "-relay-") => Ok(json!(self.relay)),
            ("getDataSrv", name) => match lock(&self.runs).get(&call.particle.id).and_then(|r| r.data.get(name)) {
                Some(v) => Ok(v.clone()),
                None => Err(CallError::new(format!(
                    "getDataSrv: the run has no value {name:?}; pass it with --data '{{\"{name}\": ...}}'"
                ))),
            },
            ("return" | "callbackSrv", _) => {
                self.finish(&call.particle.id, Outcome::Value(as_one(call.args)));
                Ok(Value::Null)
            }
            ("errorHandlingSrv", _) => {
                let text = match call.args.first() {
                    Some(Value::Object(o)) => o.get("message").and_then(Value::as_str).map_or_else(
                        || Value::Object(o.clone()).to_string(),
                        |m| match o.get("error_code") {
                            Some(code) => format!("{m} (code {code})"),
                            None => m.to_owned(),
                        },
                    ),
                    Some(v) => v.to_string(),
                    None => "errorHandlingSrv called without arguments".into(),
                };
                self.finish(&call.particle.id, Outcome::Error(text));
                Ok(Value::Null)
            }
            ("console" | "run-console", _) => {
                if let Some(events) = lock(&self.runs).get(&call.particle.id).and_then(|r| r.events.clone()) {
                    let _ = events.try_send(Event::Printed(call.args));
                }
                Ok(Value::Null)
            }
            ("peer", "identify") => Ok(json!({"peer_id": core.peer_id(), "external_addresses": [], "client": true})),
            ("peer", "timestamp_ms") => Ok(json!(now_ms())),
            ("peer", "timestamp_sec") => Ok(json!(now_ms() / 1000)),
            ("op", _) => crate::node::builtins::op(&call),
            (service, function) => Err(CallError::new(format!(
                "this client has no service {service:?} (function {function:?}); clients answer getDataSrv, return, callbackSrv, errorHandlingSrv, console, op and peer"
            ))),
        };
        Box::pin(async move { result })
    }
}

/// An application's connection to the network through one relay node.
pub struct Client {
    core: Arc<Core>,
    handler: Arc<ClientHandler>,
    relay: String,
    stop: Option<smol::channel::Sender<()>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    ex: Option<Arc<smol::Executor<'static>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("peer_id", &self.core.peer_id()).field("relay", &self.relay).finish()
    }
}

/// How long connecting to the relay may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    /// Connects to the node at `relay` (a multiaddress ending in `/p2p/<peer id>`) through the
    /// transport plugin the configuration chooses, with a fresh identity.
    ///
    /// # Errors
    /// See [`Error`].
    pub fn connect(setup: &Setup, relay: &str) -> Result<Self, Error> {
        Self::connect_with(setup, relay, Identity::generate()?)
    }

    /// As [`Client::connect`], with a given identity.
    ///
    /// # Errors
    /// See [`Error`].
    pub fn connect_with(setup: &Setup, relay: &str, identity: Identity) -> Result<Self, Error> {
        let relay_id = p2p_of(relay).ok_or_else(|| Error::Address(relay.to_owned()))?.to_owned();
        let transport_plugin = setup.select(Kind::TRANSPORT)?;
        let air_plugin = setup.select(Kind::AIR)?;
        let limits = Limits::default();
        let mut events = EventQueue::new(limits.event_queue);
        let name = transport_plugin.name().to_owned();
        let transport = transport_plugin
            .transport(&client_config(setup, &name), &identity.secret(), events.take_sink())
            .map_err(|source| Error::Plugin { kind: "transport", plugin: name.clone(), source })?;
        let air = air_plugin
            .air(&setup.config.plugins.config_text(air_plugin.name()))
            .map_err(|source| Error::Plugin { kind: "air", plugin: air_plugin.name().to_owned(), source })?;
        let handler = Arc::new(ClientHandler { relay: relay_id.clone(), runs: Mutex::default() });
        let (ex, stop, workers) = spawn_workers(2, "weft-client");
        let dyn_handler: Arc<dyn Handler> = Arc::clone(&handler) as Arc<dyn Handler>;
        let parts = Parts { identity, transport, dht: None, air, limits, handler: dyn_handler };
        let core = Core::start(parts, Arc::clone(&ex), events);
        let client = Client { core, handler, relay: relay_id.clone(), stop: Some(stop), workers, ex: Some(ex) };
        let addr = relay.to_owned();
        smol::block_on(client.core.connect(&relay_id, std::slice::from_ref(&addr)))
            .map_err(|reason| Error::Connect { address: relay.to_owned(), reason })?;
        Ok(client)
    }

    /// This client's peer id (the init peer of its particles).
    pub fn peer_id(&self) -> &str {
        self.core.peer_id()
    }

    /// The relay's peer id.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// The particle loop (counters, connections).
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Runs `script` with `data` for `getDataSrv`, waiting for its `return` at most `ttl`.
    ///
    /// # Errors
    /// [`Error::Timeout`], [`Error::Script`], [`Error::Air`].
    pub fn run(&self, script: &str, data: Map<String, Value>, ttl: Duration) -> Result<Run, Error> {
        self.run_with_events(script, data, ttl, None)
    }

    /// As [`Client::run`], reporting [`Event`]s (console output) as they happen.
    ///
    /// # Errors
    /// As [`Client::run`].
    pub fn run_with_events(
        &self,
        script: &str,
        data: Map<String, Value>,
        ttl: Duration,
        events: Option<smol::channel::Sender<Event>>,
    ) -> Result<Run, Error> {
        let ttl_ms = u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX);
        let particle = Particle::new(self.core.identity(), script.to_owned(), now_ms(), ttl_ms)?;
        let id = particle.id.clone();
        let (done, result) = smol::channel::bounded(4);
        lock(&self.handler.runs).insert(id.clone(), RunState { data, done, events });
        let start = Instant::now();
        let before = self.core.stats();
        self.core.start_particle(particle);
        let got = smol::block_on(async {
            use smol::future::FutureExt as _;
            async { result.recv().await.ok() }
                .or(async {
                    smol::Timer::after(ttl).await;
                    None
                })
                .await
        });
        lock(&self.handler.runs).remove(&id);
        match got {
            Some(Outcome::Value(value)) => Ok(Run { value, particle_id: id, elapsed: start.elapsed() }),
            Some(Outcome::Error(e)) => Err(Error::Script(e)),
            Some(Outcome::Air(code, message)) => Err(Error::Air { code, message }),
            None => {
                let after = self.core.stats();
                let hint = if after.send_failed > before.send_failed {
                    "; sending the particle failed (see the log with -v)".to_owned()
                } else if after.interpreter_errors > before.interpreter_errors {
                    "; the script failed on this client (see the log with -v)".to_owned()
                } else if after.received == before.received {
                    "; nothing came back from the network".to_owned()
                } else {
                    String::new()
                };
                Err(Error::Timeout { ttl_ms: u64::from(ttl_ms), hint })
            }
        }
    }

    /// Closes the connection.
    pub fn close(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let Some(stop) = self.stop.take() else { return };
        self.core.shutdown();
        drop(stop);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.ex = None;
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// The transport configuration for an application: the node's `[plugins.config.NAME]`, plus
/// `mode = "client"` for the libp2p plugin (applications do not serve the DHT).
fn client_config(setup: &Setup, name: &str) -> String {
    let mut table = setup.config.plugins.config.get(name).cloned().unwrap_or_default();
    if name == "libp2p" && !table.contains_key("mode") {
        table.insert("mode".into(), toml::Value::String("client".into()));
    }
    toml::to_string(&table).unwrap_or_default()
}
