//! Runs every conformance scenario through `simulate` and compares like `check.py`: number of
//! steps; per step the peer, ret_code (and a non-empty message when ≠ 0), the sorted next
//! peers and the call requests in id order (service, function, args, tetraplets); then `sends`
//! and `undelivered`. Scenarios listed in `tests/deviations.json` must differ (they document a
//! reference bug weft fixes) and are reported, not counted.

use std::path::Path;

use serde_json::{Value, json};
use weft_plugin_air::simulate::simulate;

const SCENARIO_KEYS: [&str; 7] = ["name", "air", "init_peer", "services", "run_params", "only_peers", "max_steps"];

fn norm_requests(reqs: Option<&Value>) -> Vec<Value> {
    let mut reqs: Vec<Value> = reqs.and_then(|r| r.as_array()).cloned().unwrap_or_default();
    reqs.sort_by_key(|r| r.get("id").and_then(|i| i.as_u64()).unwrap_or(0));
    reqs.iter()
        .map(|r| json!({"service": r.get("service"), "function": r.get("function"), "args": r.get("args"), "tetraplets": r.get("tetraplets")}))
        .collect()
}

fn sorted_peers(v: Option<&Value>) -> Vec<String> {
    let mut p: Vec<String> = v
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default();
    p.sort();
    p
}

/// The differences between the reference output and ours (empty when equal).
pub fn compare(golden: &Value, got: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    let empty = Vec::new();
    let gs = golden["steps"].as_array().unwrap_or(&empty);
    let Some(ws) = got["steps"].as_array() else { return vec!["output has no 'steps' list".into()] };
    if gs.len() != ws.len() {
        diffs.push(format!("steps: expected {}, got {}", gs.len(), ws.len()));
    }
    for (i, (g, w)) in gs.iter().zip(ws).enumerate() {
        let at = format!("step {i} ({})", g["peer"]);
        if g["peer"] != w["peer"] {
            diffs.push(format!("{at}: peer {}", w["peer"]));
        }
        if g["ret_code"] != w["ret_code"] {
            diffs.push(format!(
                "{at}: ret_code expected {}, got {} ({})",
                g["ret_code"], w["ret_code"], w["error_message"]
            ));
        } else if g["ret_code"].as_i64().unwrap_or(0) != 0 && w["error_message"].as_str().unwrap_or("").is_empty() {
            diffs.push(format!("{at}: ret_code {} without an error_message", g["ret_code"]));
        }
        if sorted_peers(g.get("next_peer_pks")) != sorted_peers(w.get("next_peer_pks")) {
            diffs.push(format!("{at}: next_peer_pks expected {}, got {}", g["next_peer_pks"], w["next_peer_pks"]));
        }
        let (gr, wr) = (norm_requests(g.get("call_requests")), norm_requests(w.get("call_requests")));
        if gr != wr {
            diffs.push(format!("{at}: call_requests expected {}, got {}", json!(gr), json!(wr)));
        }
        if !diffs.is_empty() {
            return diffs;
        }
    }
    for key in ["sends", "undelivered"] {
        let g = golden.get(key).cloned().unwrap_or(json!([]));
        let w = got.get(key).cloned().unwrap_or(json!([]));
        if diffs.is_empty() && g != w {
            diffs.push(format!("{key}: expected {g}, got {w}"));
        }
    }
    diffs
}

fn scenario_of(golden: &Value) -> Value {
    let mut s = serde_json::Map::new();
    for k in SCENARIO_KEYS {
        if let Some(v) = golden.get(k).filter(|v| !v.is_null()) {
            s.insert(k.into(), v.clone());
        }
    }
    Value::Object(s)
}

fn run_dir(dir: &str) -> (usize, Vec<String>, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deviations: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("tests/deviations.json")).unwrap()).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    let (mut passed, mut failed, mut deviating) = (0, Vec::new(), Vec::new());
    for path in files {
        let golden: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = golden["name"].as_str().unwrap_or_default().to_string();
        let got = simulate(&scenario_of(&golden).to_string()).unwrap_or_else(|e| json!({"error": e.to_string()}));
        let diffs = compare(&golden, &got);
        if deviations.get(&name).is_some() {
            assert!(!diffs.is_empty(), "{name} is listed as a deviation but now matches the reference");
            deviating.push(name);
        } else if diffs.is_empty() {
            passed += 1;
        } else {
            failed.push(format!("{name}: {}", diffs.join("; ")));
        }
    }
    (passed, failed, deviating)
}

#[test]
fn shared_conformance_scenarios() {
    let (passed, failed, deviating) = run_dir("tests/conformance");
    assert!(failed.is_empty(), "{} failed:\n{}", failed.len(), failed.join("\n"));
    assert_eq!(passed, 53);
    assert_eq!(deviating, vec!["ap_map_bad_key".to_string()]);
}

#[test]
fn extra_differential_scenarios() {
    let (passed, failed, _) = run_dir("tests/conformance-extra");
    assert!(failed.is_empty(), "{} failed:\n{}", failed.len(), failed.join("\n"));
    assert!(passed >= 160);
}

#[test]
fn ap_map_bad_key_is_fixed() {
    // the reference fails the third run with 20000; weft replays the ap and the xor cleanly
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/ap_map_bad_key.json");
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let got = simulate(&scenario_of(&golden).to_string()).unwrap();
    let codes: Vec<i64> = got["steps"].as_array().unwrap().iter().map(|s| s["ret_code"].as_i64().unwrap()).collect();
    assert_eq!(codes, vec![0, 0, 0]);
}
