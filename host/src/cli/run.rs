//! `weft run SCRIPT.air --peer ADDR [--data JSON]` — send a particle through a peer.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use weft_host::client::{Client, Event};
use weft_host::{Options, Setup};

/// `weft run` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The AIR script (`-` reads standard input).
    pub script: PathBuf,
    /// The node to connect to: a multiaddress ending in /p2p/<peer id>.
    #[arg(long, value_name = "ADDR", env = "WEFT_PEER")]
    pub peer: String,
    /// Values for `getDataSrv`: a JSON object (or @FILE holding one).
    #[arg(long, value_name = "JSON")]
    pub data: Option<String>,
    /// The particle's time to live (and how long to wait for its result): "30s", "500ms", "2min".
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub ttl: Duration,
    /// Print the result indented.
    #[arg(long)]
    pub pretty: bool,
}

/// `"30s"`, `"500ms"`, `"2min"`, `"45"` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{text:?} is not a duration such as 30s, 500ms or 2min"))?;
    let ms = match unit.trim() {
        "ms" => n,
        "" | "s" => n.saturating_mul(1000),
        "min" | "m" => n.saturating_mul(60_000),
        _ => return Err(format!("{text:?} is not a duration such as 30s, 500ms or 2min")),
    };
    if ms == 0 || ms > u64::from(u32::MAX) {
        return Err(format!("{text:?}: a ttl is 1 ms to 49 days"));
    }
    Ok(Duration::from_millis(ms))
}

/// Reads `--data`.
pub fn parse_data(data: Option<&str>) -> Result<Map<String, Value>> {
    let Some(text) = data else { return Ok(Map::new()) };
    let text = match text.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file).with_context(|| format!("--data @{file}: cannot read"))?,
        None => text.to_owned(),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => bail!("--data must be a JSON object of named values, got {}", other),
        Err(e) => bail!("--data is not JSON: {e}"),
    }
}

/// Reads and checks a script file, with errors at `file:line:column`.
pub fn read_script(path: &std::path::Path) -> Result<String> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the script from standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?
    };
    if let Err(e) = weft_plugin_air::parser::parse(&text) {
        bail!("{}:{}:{}: {}; check it with `weft air check`", path.display(), e.line, e.column, e.kind);
    }
    Ok(text)
}

/// Runs `weft run`.
pub fn run(options: &Options, args: Args) -> Result<()> {
    let script = read_script(&args.script)?;
    let data = parse_data(args.data.as_deref())?;
    let setup = Setup::new(options)?;
    let client = Client::connect(&setup, &args.peer)?;
    let (tx, rx) = smol::channel::bounded::<Event>(1024);
    let printer = std::thread::spawn(move || {
        while let Ok(Event::Printed(values)) = rx.recv_blocking() {
            let line: Vec<String> =
                values.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect();
            eprintln!("{}", line.join(" "));
        }
    });
    let result = client.run_with_events(&script, data, args.ttl, Some(tx));
    let _ = printer.join();
    let run = result?;
    let text = if args.pretty { serde_json::to_string_pretty(&run.value)? } else { run.value.to_string() };
    println!("{text}");
    tracing::info!(particle = %run.particle_id, "result in {:.1} ms", run.elapsed.as_secs_f64() * 1e3);
    client.close();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2min").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn data_must_be_an_object() {
        assert!(parse_data(None).unwrap().is_empty());
        assert_eq!(parse_data(Some(r#"{"a": 1}"#)).unwrap()["a"], 1);
        assert!(parse_data(Some("[1]")).unwrap_err().to_string().contains("JSON object"));
        assert!(parse_data(Some("{")).unwrap_err().to_string().starts_with("--data is not JSON"));
    }
}
