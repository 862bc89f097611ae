//! `weft air simulate`: one script across simulated peers with scripted services, in one process
//! (the contract is `shared/air/SIMULATION.md`).
//!
//! Peer `NAME` gets the Ed25519 key whose seed is `sha256("air-oracle:" + NAME)`, and the matching
//! `12D3KooW…` peer id, exactly like the reference oracle, so ids embedded in error messages are
//! the same. `@NAME` in the script becomes the quoted id; `"@NAME"` strings in service results
//! become the id; ids are written back as `@NAME` in the output.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::{Map, Value as JValue, json};
use sha2::{Digest, Sha256};

use crate::interpreter::{CallRequest, CallResult, Limits, RunParams, run};
use crate::peer_id::peer_id_from_secret;

/// Why a scenario could not be simulated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The scenario is not valid JSON or lacks a field.
    #[error("invalid scenario: {0}")]
    Scenario(String),
    /// A service rule names an unknown behaviour.
    #[error("unknown service behaviour '{0}' (expected echo, echo_all, unit, tetraplets, params, fail or timeout)")]
    UnknownBehaviour(String),
}

#[derive(Debug, Clone)]
struct Peer {
    name: String,
    secret: [u8; 32],
    id: String,
}

#[derive(Debug, Default)]
struct Peers {
    by_name: BTreeMap<String, Peer>,
    by_id: HashMap<String, String>,
}

impl Peers {
    fn add(&mut self, name: &str) -> Peer {
        if let Some(p) = self.by_name.get(name) {
            return p.clone();
        }
        let secret: [u8; 32] = Sha256::digest(format!("air-oracle:{name}").as_bytes()).into();
        let peer = Peer { name: name.to_string(), secret, id: peer_id_from_secret(&secret) };
        self.by_id.insert(peer.id.clone(), name.to_string());
        self.by_name.insert(name.to_string(), peer.clone());
        peer
    }

    /// A name or a known id.
    fn resolve(&mut self, reference: &str) -> Peer {
        if let Some(name) = self.by_id.get(reference).cloned() {
            return self.by_name[&name].clone();
        }
        self.add(reference.strip_prefix('@').unwrap_or(reference))
    }

    fn name_of(&self, id: &str) -> String {
        self.by_id.get(id).cloned().unwrap_or_else(|| id.to_string())
    }

    /// Replaces `@NAME` and `@"NAME"` by the quoted peer id.
    fn substitute_air(&mut self, air: &str) -> String {
        let mut out = String::with_capacity(air.len());
        let mut rest = air;
        while let Some(at) = rest.find('@') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, consumed) = if let Some(q) = after.strip_prefix('"') {
                match q.find('"') {
                    Some(end) if end > 0 => (Some(&q[..end]), end + 2),
                    _ => (None, 0),
                }
            } else if after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                let end =
                    after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(after.len());
                (Some(&after[..end]), end)
            } else {
                (None, 0)
            };
            match name {
                Some(n) => {
                    let id = self.add(n).id;
                    out.push_str(&JValue::String(id).to_string());
                    rest = &after[consumed..];
                }
                None => {
                    out.push('@');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Replaces `"@NAME"` strings by peer ids (iteratively: values may nest).
    fn substitute_json(&mut self, v: &JValue) -> JValue {
        let mut names = Vec::new();
        let mut stack: Vec<&JValue> = vec![v];
        while let Some(x) = stack.pop() {
            match x {
                JValue::String(s) if s.len() > 1 && s.starts_with('@') => names.push(s[1..].to_string()),
                JValue::Array(a) => stack.extend(a.iter()),
                JValue::Object(o) => stack.extend(o.values()),
                _ => {}
            }
        }
        let ids: HashMap<String, String> = names.into_iter().map(|n| (n.clone(), self.add(&n).id)).collect();
        let mut v = v.clone();
        let mut stack: Vec<&mut JValue> = vec![&mut v];
        while let Some(x) = stack.pop() {
            match x {
                JValue::String(s) if s.len() > 1 && s.starts_with('@') => {
                    if let Some(id) = ids.get(&s[1..]) {
                        *s = id.clone();
                    }
                }
                JValue::Array(a) => stack.extend(a.iter_mut()),
                JValue::Object(o) => stack.extend(o.values_mut()),
                _ => {}
            }
        }
        v
    }

    /// Writes peer ids back as `@NAME` (strings and object keys).
    fn name_json(&self, v: &mut JValue) {
        let mut stack: Vec<&mut JValue> = vec![v];
        while let Some(x) = stack.pop() {
            match x {
                JValue::String(s) => {
                    if let Some(n) = self.by_id.get(s.as_str()) {
                        *s = format!("@{n}");
                    }
                }
                JValue::Array(a) => stack.extend(a.iter_mut()),
                JValue::Object(o) => {
                    if o.keys().any(|k| self.by_id.contains_key(k)) {
                        let old = std::mem::take(o);
                        for (k, val) in old {
                            let k = self.by_id.get(&k).map(|n| format!("@{n}")).unwrap_or(k);
                            o.insert(k, val);
                        }
                    }
                    stack.extend(o.values_mut());
                }
                _ => {}
            }
        }
    }
}

/// One scripted answer.
enum Answer {
    None,
    Some { ret_code: i32, text: String, shown: JValue },
}

struct Services {
    rules: Vec<Map<String, JValue>>,
    counters: Vec<usize>,
}

impl Services {
    fn answer(&mut self, peers: &mut Peers, peer_name: &str, req: &CallRequest) -> Result<Answer, Error> {
        let matches = |pat: Option<&JValue>, v: &str, strip: bool| match pat {
            None => true,
            Some(JValue::String(p)) if p == "*" => true,
            Some(JValue::String(p)) => (if strip { p.strip_prefix('@').unwrap_or(p) } else { p }) == v,
            Some(_) => false,
        };
        for (i, rule) in self.rules.iter().enumerate() {
            if !matches(rule.get("peer"), peer_name, true)
                || !matches(rule.get("service"), &req.service_id, false)
                || !matches(rule.get("function"), &req.function_name, false)
            {
                continue;
            }
            let ret_code = rule.get("ret_code").and_then(|r| r.as_i64()).unwrap_or(0) as i32;
            if let Some(raw) = rule.get("raw_result") {
                let text = raw.as_str().map(str::to_string).unwrap_or_else(|| raw.to_string());
                return Ok(Answer::Some { ret_code, shown: json!({"ret_code": ret_code, "raw_result": text}), text });
            }
            if let Some(JValue::Array(results)) = rule.get("results") {
                let n = self.counters[i].min(results.len().saturating_sub(1));
                self.counters[i] += 1;
                let v = peers.substitute_json(results.get(n).unwrap_or(&JValue::Null));
                return Ok(value_answer(ret_code, v));
            }
            if let Some(result) = rule.get("result") {
                return Ok(value_answer(ret_code, peers.substitute_json(result)));
            }
            let b = rule.get("behaviour").and_then(|b| b.as_str()).unwrap_or("echo");
            return behaviour(b, req, ret_code);
        }
        behaviour("echo", req, 0)
    }
}

fn value_answer(ret_code: i32, v: JValue) -> Answer {
    Answer::Some { ret_code, text: v.to_string(), shown: json!({"ret_code": ret_code, "result": v}) }
}

fn behaviour(b: &str, req: &CallRequest, ret_code: i32) -> Result<Answer, Error> {
    let v = match b {
        "echo" => req.arguments.first().map(|a| (**a).clone()).unwrap_or(JValue::Null),
        "echo_all" => JValue::Array(req.arguments.iter().map(|a| (**a).clone()).collect()),
        "unit" => JValue::String("result from unit_call_service".into()),
        "tetraplets" => serde_json::to_value(&req.tetraplets).unwrap_or(JValue::Null),
        "params" => {
            json!({"service_id": req.service_id, "function_name": req.function_name, "arguments": req.arguments})
        }
        "fail" => return Ok(value_answer(if ret_code != 0 { ret_code } else { 1 }, JValue::String("failed".into()))),
        "timeout" => return Ok(Answer::None),
        other => return Err(Error::UnknownBehaviour(other.to_string())),
    };
    Ok(value_answer(ret_code, v))
}

/// Runs a scenario and returns the output document (`steps`, `sends`, `undelivered`).
///
/// # Errors
/// [`Error`] when the scenario is not valid JSON, lacks `air`, or names an unknown behaviour.
pub fn simulate(scenario_json: &str) -> Result<JValue, Error> {
    let scenario: JValue = serde_json::from_str(scenario_json).map_err(|e| Error::Scenario(e.to_string()))?;
    let air = scenario.get("air").and_then(|a| a.as_str()).ok_or_else(|| Error::Scenario("no 'air' string".into()))?;
    let mut peers = Peers::default();
    let air = peers.substitute_air(air);
    let init_name = scenario.get("init_peer").and_then(|v| v.as_str()).unwrap_or("A");
    let init = peers.resolve(init_name);
    let rules: Vec<Map<String, JValue>> = match scenario.get("services") {
        None | Some(JValue::Null) => Vec::new(),
        Some(JValue::Array(a)) => a
            .iter()
            .map(|r| r.as_object().cloned().ok_or_else(|| Error::Scenario("a service rule is not an object".into())))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Error::Scenario("'services' is not a list".into())),
    };
    // peers named in service rules exist too
    for r in &rules {
        if let Some(JValue::String(p)) = r.get("peer")
            && p != "*"
        {
            peers.resolve(p);
        }
    }
    let mut services = Services { counters: vec![0; rules.len()], rules };
    let only: Option<Vec<String>> = match scenario.get("only_peers") {
        Some(JValue::Array(a)) => Some(a.iter().filter_map(|n| n.as_str()).map(|n| peers.resolve(n).id).collect()),
        _ => None,
    };
    let max_steps = scenario.get("max_steps").and_then(|m| m.as_u64()).unwrap_or(200) as usize;
    let rp = scenario.get("run_params");
    let get = |k: &str| rp.and_then(|r| r.get(k));
    let timestamp = get("timestamp").and_then(|v| v.as_u64()).unwrap_or(1_700_000_000_000);
    let ttl = get("ttl").and_then(|v| v.as_u64()).unwrap_or(120_000) as u32;
    let particle_id = get("particle_id").and_then(|v| v.as_str()).unwrap_or("oracle-particle").to_string();

    let mut store: HashMap<String, Vec<u8>> = HashMap::new();
    let mut queue: VecDeque<(String, Vec<u8>)> = VecDeque::from([(init.id.clone(), Vec::new())]);
    let mut steps: Vec<JValue> = Vec::new();
    let mut sends: Vec<JValue> = Vec::new();
    let mut undelivered: Vec<JValue> = Vec::new();

    while steps.len() < max_steps {
        let Some((to, mut data)) = queue.pop_front() else { break };
        let known = peers.by_id.contains_key(&to);
        if !known || only.as_ref().is_some_and(|o| !o.contains(&to)) {
            undelivered.push(JValue::String(peers.name_of(&to)));
            continue;
        }
        let peer = peers.resolve(&to);
        let mut results: BTreeMap<u32, CallResult> = BTreeMap::new();
        let mut shown_results = Map::new();
        let mut pending: Vec<String> = Vec::new();
        loop {
            let params = RunParams {
                init_peer_id: init.id.clone(),
                current_peer_id: peer.id.clone(),
                timestamp,
                ttl,
                particle_id: particle_id.clone(),
                secret_key: peer.secret.to_vec(),
                limits: Limits::default(),
            };
            let prev = store.get(&peer.id).cloned().unwrap_or_default();
            let out = run(&air, &prev, &data, &params, &results);
            store.insert(peer.id.clone(), out.data.clone());
            let mut next: Vec<String> = out.next_peers.clone();
            next.sort_by_key(|id| peers.name_of(id));
            let mut step = Map::new();
            step.insert("peer".into(), json!(format!("@{}", peer.name)));
            step.insert("ret_code".into(), json!(out.ret_code));
            if out.ret_code != 0 {
                step.insert("error_message".into(), json!(out.error_message));
            }
            if !shown_results.is_empty() {
                step.insert("call_results_in".into(), JValue::Object(std::mem::take(&mut shown_results)));
            }
            step.insert("next_peer_pks".into(), json!(next));
            let reqs: Vec<JValue> = out
                .call_requests
                .iter()
                .map(|r| {
                    json!({"id": r.id, "service": r.service_id, "function": r.function_name,
                           "args": r.arguments, "tetraplets": r.tetraplets})
                })
                .collect();
            step.insert("call_requests".into(), JValue::Array(reqs));
            steps.push(JValue::Object(step));
            for p in next {
                if !pending.contains(&p) {
                    pending.push(p);
                }
            }
            results = BTreeMap::new();
            if !out.call_requests.is_empty() && steps.len() < max_steps {
                let mut reqs = out.call_requests.clone();
                reqs.sort_by_key(|r| r.id);
                for r in &reqs {
                    if let Answer::Some { ret_code, text, shown } = services.answer(&mut peers, &peer.name, r)? {
                        results.insert(r.id, CallResult { ret_code, result: text });
                        shown_results.insert(r.id.to_string(), shown);
                    }
                }
            }
            if results.is_empty() {
                // first-seen order of the per-step sorted lists, as the reference oracle does
                for p in pending {
                    sends.push(json!([peer.name, peers.name_of(&p)]));
                    queue.push_back((p, out.data.clone()));
                }
                break;
            }
            data = Vec::new();
        }
    }
    let mut output = json!({"steps": steps, "sends": sends, "undelivered": undelivered});
    peers.name_json(&mut output["steps"]);
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oracle_peer_ids() {
        let mut peers = Peers::default();
        // the id of A appears verbatim in the reference's error messages
        assert_eq!(peers.add("A").id, "12D3KooWREuzXCcL6frzBFqH5oA8hWze5puBVrwrf9onygQZD1Rd");
        let air = peers.substitute_air("(call @A (\"s\" \"f\") [@\"B C\" x@y])");
        assert!(air.starts_with("(call \"12D3KooWREuzXCcL6frzBFqH5oA8hWze5puBVrwrf9onygQZD1Rd\""));
        assert!(peers.by_name.contains_key("B C") && peers.by_name.contains_key("y"));
    }
}
