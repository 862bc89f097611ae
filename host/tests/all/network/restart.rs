//! A node restarted on its data directory keeps its identity, modules, blueprints and services.

use serde_json::json;
use weft_host::deploy;

use super::{Net, Transport, examples, on_both, q, run, start_node};

on_both!(a_restarted_node_keeps_identity_modules_blueprints_and_services);

fn a_restarted_node_keeps_identity_modules_blueprints_and_services(t: Transport) {
    let mut net = Net::start(t, 1, |_| vec![]);
    let client = net.client(0);
    let plan = deploy::plan_blueprint(&examples().join("blueprints/greeting.toml"), Some("hello".into()), Vec::new())
        .expect("the blueprint reads");
    let done = deploy::deploy(&client, &[plan], super::TTL).expect("deploys");
    let (service, blueprint) = (done[0].service_id.clone(), done[0].blueprint_id.clone());
    let id = net.id(0);
    client.close();
    net.stop(0);

    let node = start_node(net.peers[0].dir.path(), t, Vec::new(), |_| {});
    assert_eq!(node.peer_id(), id, "the identity survived the restart");
    net.peers[0].node = Some(node);
    let host = net.node(0).host();
    assert_eq!(host.store.modules().unwrap().len(), 1);
    assert_eq!(host.store.blueprints().unwrap()[0].id.to_string(), blueprint);
    assert_eq!(net.node(0).services().record("hello").unwrap().id, service);

    let client = net.client(0);
    let script =
        format!(r#"(seq (call {r} ("hello" "greet") ["Bob"] g) (call %init_peer_id% ("return" "") [g]))"#, r = q(&id));
    assert_eq!(run(&client, &script).value, json!("Hello, Bob!"));
}
