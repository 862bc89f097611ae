//! The `air` plugin: this interpreter behind weft's plugin ABI.
//!
//! Config (TOML, every key optional) sets [`Limits`]:
//! `max_air_size`, `max_data_size`, `max_call_result_size`, `max_nesting`, `max_stream_len`,
//! `max_trace_len`, `max_steps`, `max_stack`.

use serde::Deserialize;
use weft_abi::{Error, Kind, Manifest, Provider, air};

use crate::interpreter::{CallResult, CallResults, Limits, RunParams, run};

/// The plugin provider (exported from the `.so`).
#[derive(Debug)]
pub struct AirPlugin;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    max_air_size: Option<usize>,
    max_data_size: Option<usize>,
    max_call_result_size: Option<usize>,
    max_nesting: Option<usize>,
    max_stream_len: Option<usize>,
    max_trace_len: Option<usize>,
    max_steps: Option<u64>,
    max_stack: Option<usize>,
}

fn limits(config: &str) -> Result<Limits, Error> {
    let c: Config = toml_lite(config)?;
    let mut l = Limits::default();
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = c.$f { l.$f = v; } )* };
    }
    set!(
        max_air_size,
        max_data_size,
        max_call_result_size,
        max_nesting,
        max_stream_len,
        max_trace_len,
        max_steps,
        max_stack
    );
    Ok(l)
}

/// The config is a handful of `key = integer` lines: parsed here without a TOML dependency.
fn toml_lite(text: &str) -> Result<Config, Error> {
    let mut map = serde_json::Map::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| Error::config(format!("air plugin config line {}: expected `key = number`", n + 1)))?;
        let v: u64 = v.trim().replace('_', "").parse().map_err(|_| {
            Error::config(format!("air plugin config line {}: {} must be a non-negative integer", n + 1, k.trim()))
        })?;
        map.insert(k.trim().to_owned(), v.into());
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| Error::config(format!("air plugin config: {e}")))
}

struct Interpreter {
    limits: Limits,
}

impl air::Interpreter for Interpreter {
    fn run(&self, request: air::Request) -> weft_abi::Result<air::Outcome> {
        let p = request.params;
        let params = RunParams {
            init_peer_id: p.init_peer_id,
            current_peer_id: p.current_peer_id,
            timestamp: p.timestamp,
            ttl: p.ttl,
            particle_id: p.particle_id,
            secret_key: p.signing_key,
            limits: self.limits.clone(),
        };
        let results: CallResults = request
            .call_results
            .into_iter()
            .map(|c| {
                let ret_code = i32::try_from(c.ret_code).unwrap_or(if c.ret_code < 0 { i32::MIN } else { i32::MAX });
                (c.id, CallResult { ret_code, result: c.result })
            })
            .collect();
        let o = run(&request.script, &request.prev_data, &request.current_data, &params, &results);
        let call_requests = o
            .call_requests
            .into_iter()
            .map(|c| air::CallRequest {
                id: c.id,
                service_id: c.service_id,
                function_name: c.function_name,
                arguments: serde_json::to_string(&c.arguments).unwrap_or_else(|_| "[]".into()),
                tetraplets: serde_json::to_string(&c.tetraplets).unwrap_or_else(|_| "[]".into()),
            })
            .collect();
        Ok(air::Outcome {
            ret_code: o.ret_code,
            error_message: o.error_message,
            data: o.data,
            next_peers: o.next_peers,
            call_requests,
        })
    }
}

impl Provider for AirPlugin {
    fn manifest() -> Manifest {
        Manifest {
            name: "air".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "the AIR interpreter: full AIR, signed mergeable data".into(),
            kinds: vec![Kind::AIR],
        }
    }

    fn air(config: &str) -> weft_abi::Result<Box<dyn air::Interpreter>> {
        Ok(Box::new(Interpreter { limits: limits(config)? }))
    }
}

weft_abi::export_plugin!(AirPlugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_sets_limits_and_rejects_unknown_keys() {
        let l = limits("max_nesting = 50\nmax_steps = 1_000 # comment\n").unwrap();
        assert_eq!((l.max_nesting, l.max_steps), (50, 1000));
        assert!(limits("").is_ok());
        let e = limits("max_nestin = 5").unwrap_err();
        assert_eq!(e.code(), weft_abi::ErrorCode::INVALID_CONFIG);
        assert!(limits("max_nesting = -1").is_err());
    }

    #[test]
    fn runs_through_the_abi_types() {
        let interpreter = <AirPlugin as Provider>::air("").unwrap();
        let key = [7u8; 32];
        let me = crate::peer_id::peer_id_from_secret(&key);
        let request = air::Request {
            script: r#"(call %init_peer_id% ("op" "identity") ["hi" 1] x)"#.into(),
            params: air::RunParams {
                init_peer_id: me.clone(),
                current_peer_id: me,
                particle_id: "p1".into(),
                timestamp: 1,
                ttl: 1000,
                signing_key: key.to_vec(),
            },
            ..Default::default()
        };
        let o = interpreter.run(request).unwrap();
        assert_eq!(o.ret_code, 0, "{}", o.error_message);
        assert_eq!(o.call_requests.len(), 1);
        assert_eq!(o.call_requests[0].arguments, r#"["hi",1]"#);
        assert_eq!(o.call_requests[0].function_name, "identity");
    }
}
