//! The example application (the URL shortener: facade + pure module + a module granted the
//! `sqlite` effector) deployed to a node through particles and used by a client; its database
//! survives the node's restart.

use serde_json::json;
use weft_host::deploy;

use super::{Net, Transport, on_both, q, run, start_node};

on_both!(the_url_shortener_deployed_called_and_kept_across_a_restart);

/// The shortener's blueprint with its module paths pointing at the modules this test run built.
fn blueprint(dir: &std::path::Path) -> std::path::PathBuf {
    let built = crate::services::examples();
    let text = std::fs::read_to_string(super::examples().join("blueprints/shortener.toml")).unwrap();
    let text = text.replace("../../target/examples-wasm/", &format!("{}/", built.display()));
    let file = dir.join("shortener.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn the_url_shortener_deployed_called_and_kept_across_a_restart(t: Transport) {
    let mut net = Net::start(t, 1, |_| vec![]);
    let client = net.client(0);
    let dir = tempfile::tempdir().unwrap();
    let plan = deploy::plan_blueprint(&blueprint(dir.path()), Some("short".into()), Vec::new()).expect("reads");
    let done = deploy::deploy(&client, &[plan], super::TTL).expect("deploys");
    assert_eq!(done[0].name, "shortener");
    let relay = q(&net.id(0));
    let call = |function: &str, arg: &str| {
        format!(
            r#"(xor
  (seq (call {relay} ("short" "{function}") [{arg}] r) (call %init_peer_id% ("return" "") [r]))
  (call %init_peer_id% ("errorHandlingSrv" "error") [%last_error%]))"#,
            arg = q(arg)
        )
    };
    let code = run(&client, &call("shorten", "https://Example.com/a/long/path")).value;
    let code = code.as_str().expect("a code").to_owned();
    assert_eq!(run(&client, &call("resolve", &code)).value, json!("https://example.com/a/long/path"));
    // a bad URL comes back as the script's error, through errorHandlingSrv
    let e = client.run(&call("shorten", "ftp://example.com"), serde_json::Map::new(), super::TTL).unwrap_err();
    assert!(e.to_string().contains("not an http:// or https:// URL"), "{e}");
    client.close();

    net.stop(0);
    let node = start_node(net.peers[0].dir.path(), t, Vec::new(), |_| {});
    net.peers[0].node = Some(node);
    let client = net.client(0);
    assert_eq!(run(&client, &call("resolve", &code)).value, json!("https://example.com/a/long/path"));
    let stats = run(&client, &call("stats", &code)).value;
    assert_eq!(stats["hits"], json!(2), "{stats}");
}
