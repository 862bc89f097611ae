//! Runs a simulation scenario: `simulate SCENARIO.json` prints the output document.
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: simulate SCENARIO.json");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("can't read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    match weft_plugin_air::simulate::simulate(&text) {
        Ok(out) => {
            println!("{}", serde_json::to_string_pretty(&out).expect("JSON values serialize"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            ExitCode::FAILURE
        }
    }
}
