//! A tiny network of peers for tests: runs the interpreter with chosen delivery orders.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use weft_plugin_air::peer_id::peer_id_from_secret;
use weft_plugin_air::{CallRequest, CallResult, CallResults, Limits, Outcome, RunParams, run};

/// A test peer.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub secret: [u8; 32],
    pub id: String,
}

pub fn peer(name: &str) -> Peer {
    let secret = *blake3::hash(format!("weft-test:{name}").as_bytes()).as_bytes();
    Peer { name: name.into(), secret, id: peer_id_from_secret(&secret) }
}

pub fn params(init: &Peer, current: &Peer) -> RunParams {
    RunParams {
        init_peer_id: init.id.clone(),
        current_peer_id: current.id.clone(),
        timestamp: 1_700_000_000_000,
        ttl: 120_000,
        particle_id: "test-particle".into(),
        secret_key: current.secret.to_vec(),
        limits: Limits::default(),
    }
}

/// Replaces `@NAME` by the quoted id of peer NAME.
pub fn substitute(air: &str, peers: &BTreeMap<String, Peer>) -> String {
    let mut out = air.to_string();
    // longest names first so `@AB` is not taken for `@A`
    let mut names: Vec<&String> = peers.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for n in names {
        out = out.replace(&format!("@{n}"), &format!("\"{}\"", peers[n].id));
    }
    out
}

/// Deterministic service: the result names the function and echoes the arguments.
pub fn answer(req: &CallRequest) -> CallResult {
    let v = json!({"f": req.function_name, "args": req.arguments});
    CallResult { ret_code: 0, result: v.to_string() }
}

/// A record of one executed call request.
pub type Executed = (String, String, Value);

pub struct Net {
    pub air: String,
    pub init: Peer,
    pub peers: BTreeMap<String, Peer>,
    pub store: HashMap<String, Vec<u8>>,
    pub queue: Vec<(String, Vec<u8>)>,
    pub executed: Vec<Executed>,
    pub outcomes: Vec<(String, Outcome)>,
    pub runs: usize,
}

impl Net {
    pub fn new(air: &str, names: &[&str], init: &str) -> Self {
        let peers: BTreeMap<String, Peer> = names.iter().map(|n| (n.to_string(), peer(n))).collect();
        let air = substitute(air, &peers);
        let init = peers[init].clone();
        let queue = vec![(init.name.clone(), Vec::new())];
        Net { air, init, peers, store: HashMap::new(), queue, executed: Vec::new(), outcomes: Vec::new(), runs: 0 }
    }

    fn name_of(&self, id: &str) -> String {
        self.peers.values().find(|p| p.id == id).map(|p| p.name.clone()).unwrap_or_else(|| id.to_string())
    }

    /// Delivers queue item `idx`: runs the peer until it has no call requests, then sends.
    pub fn deliver(&mut self, idx: usize) {
        let (to, mut data) = self.queue.remove(idx);
        let Some(p) = self.peers.get(&to).cloned() else { return };
        let mut results = CallResults::new();
        let mut next = Vec::new();
        loop {
            self.runs += 1;
            let prev = self.store.get(&to).cloned().unwrap_or_default();
            let out = run(&self.air, &prev, &data, &params(&self.init, &p), &results);
            self.store.insert(to.clone(), out.data.clone());
            for n in &out.next_peers {
                if !next.contains(n) {
                    next.push(n.clone());
                }
            }
            results = BTreeMap::new();
            for r in &out.call_requests {
                self.executed.push((to.clone(), r.function_name.clone(), json!(r.arguments)));
                results.insert(r.id, answer(r));
            }
            let last = out.data.clone();
            self.outcomes.push((to.clone(), out));
            if results.is_empty() {
                for n in next {
                    let name = self.name_of(&n);
                    self.queue.push((name, last.clone()));
                }
                return;
            }
            data = Vec::new();
        }
    }

    /// Runs until quiescence, picking queue items with `pick(queue_len)`.
    pub fn run_with(&mut self, mut pick: impl FnMut(usize) -> usize) {
        while !self.queue.is_empty() && self.runs < 2000 {
            let i = pick(self.queue.len()) % self.queue.len();
            self.deliver(i);
        }
    }
}

/// Sorts arrays recursively so values collected in different orders compare equal.
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(normalize).collect();
            items.sort_by_key(|x| x.to_string());
            Value::Array(items)
        }
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()),
        other => other.clone(),
    }
}
