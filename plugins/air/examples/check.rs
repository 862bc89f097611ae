//! Parses AIR: `check FILE` prints `ok` or the parse error (one line) and exits non-zero.
//! With `--lines`, every line of FILE is a separate script.
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lines = args.iter().any(|a| a == "--lines");
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: check [--lines] FILE.air");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("can't read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let scripts: Vec<&str> = if lines { text.lines().collect() } else { vec![text.as_str()] };
    let mut failed = false;
    for s in scripts {
        match weft_plugin_air::parser::parse(s) {
            Ok(_) => println!("ok"),
            Err(e) => {
                failed = true;
                println!("{e}");
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
