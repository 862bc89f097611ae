//! Property tests of merging: idempotence (`merge(x, x) = x`) and independence from the order in
//! which parallel branches' data arrive, for generated par / fold / stream scripts.

use proptest::prelude::*;
use weft_plugin_air::{CallResults, Data, run};

use crate::net::{Net, normalize, params};

const PEERS: [&str; 4] = ["A", "B", "C", "D"];

#[derive(Debug, Clone)]
struct Branch {
    chain: Vec<usize>,
    stream: bool,
}

#[derive(Debug, Clone)]
struct Case {
    branches: Vec<Branch>,
    fold_peer: usize,
    par_body: bool,
    fold_last: bool,
}

fn branch() -> impl Strategy<Value = Branch> {
    (prop::collection::vec(0usize..4, 1..3), any::<bool>()).prop_map(|(chain, stream)| Branch { chain, stream })
}

fn case() -> impl Strategy<Value = Case> {
    (prop::collection::vec(branch(), 2..4), 0usize..4, any::<bool>(), any::<bool>())
        .prop_map(|(branches, fold_peer, par_body, fold_last)| Case { branches, fold_peer, par_body, fold_last })
}

fn script(c: &Case) -> String {
    let mut branches = Vec::new();
    for (k, b) in c.branches.iter().enumerate() {
        let out = if b.stream { "$s".to_string() } else { format!("x{k}") };
        let mut calls = Vec::new();
        for (j, p) in b.chain.iter().enumerate() {
            let args = if j == 0 { String::new() } else { format!("t{k}_{}", j - 1) };
            let o = if j + 1 == b.chain.len() { out.clone() } else { format!("t{k}_{j}") };
            calls.push(format!("(call @{} (\"s\" \"b{k}_{j}\") [{args}] {o})", PEERS[*p]));
        }
        // like Aqua-compiled code, every branch hops back to the init peer at its end
        calls.push("(call @A (\"op\" \"noop\") [])".into());
        branches.push(calls.into_iter().reduce(|a, b| format!("(seq {a} {b})")).unwrap());
    }
    let body = branches.into_iter().rev().reduce(|right, left| format!("(par {left} {right})")).unwrap();
    let mut join = Vec::new();
    let scalars: Vec<String> =
        c.branches.iter().enumerate().filter(|(_, b)| !b.stream).map(|(k, _)| format!("x{k}")).collect();
    if !scalars.is_empty() {
        join.push(format!("(call @A (\"s\" \"join\") [{}])", scalars.join(" ")));
    }
    if c.branches.iter().any(|b| b.stream) {
        let q = PEERS[c.fold_peer];
        let call = format!("(seq (call @{q} (\"s\" \"use\") [i] $t) (call @A (\"op\" \"noop\") []))");
        let body = if c.par_body { format!("(par {call} (next i))") } else { format!("(seq {call} (next i))") };
        let last = if c.fold_last { " (null)" } else { "" };
        join.push(format!("(fold $s i {body}{last})"));
        if c.fold_last {
            join.push("(fold $t j (seq (call @A (\"s\" \"fin\") [j]) (next j)) (null))".into());
        }
    }
    join.push("(call @A (\"s\" \"end\") [])".into());
    let join = join.into_iter().reduce(|a, b| format!("(seq {a} {b})")).unwrap();
    format!("(seq {body} {join})")
}

fn executed_multiset(net: &Net) -> Vec<String> {
    let mut v: Vec<String> = net.executed.iter().map(|(p, f, a)| format!("{p} {f} {}", normalize(a))).collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn outcome_does_not_depend_on_arrival_order(c in case(), picks in prop::collection::vec(0usize..1000, 0..300)) {
        let air = script(&c);
        let mut fifo = Net::new(&air, &PEERS, "A");
        fifo.run_with(|_| 0);
        let mut lifo = Net::new(&air, &PEERS, "A");
        lifo.run_with(|n| n - 1);
        let mut random = Net::new(&air, &PEERS, "A");
        let mut it = picks.into_iter();
        random.run_with(|_| it.next().unwrap_or(0));
        for net in [&fifo, &lifo, &random] {
            for (peer, out) in &net.outcomes {
                prop_assert_eq!(out.ret_code, 0, "{} on {}: {}", air, peer, out.error_message);
            }
        }
        let expected = executed_multiset(&fifo);
        // the final call runs once, or never when a stream fold without a last instruction blocks it
        let ends = expected.iter().filter(|e| e.contains(" end ")).count();
        let can_block = c.branches.iter().any(|b| b.stream) && !c.fold_last;
        prop_assert!(ends == 1 || (ends == 0 && can_block), "{}: end ran {} times", air, ends);
        prop_assert_eq!(&executed_multiset(&lifo), &expected, "{}", air);
        prop_assert_eq!(&executed_multiset(&random), &expected, "{}", air);
    }

    #[test]
    fn merge_is_idempotent(c in case()) {
        let air = script(&c);
        let mut net = Net::new(&air, &PEERS, "A");
        net.run_with(|n| n - 1);
        for (name, bytes) in net.store.clone() {
            let p = net.peers[&name].clone();
            let x: Data = Data::decode(&bytes).unwrap();
            for current in [bytes.as_slice(), &[][..]] {
                let out = run(&net.air, &bytes, current, &params(&net.init, &p), &CallResults::new());
                prop_assert_eq!(out.ret_code, 0, "{}", out.error_message);
                prop_assert!(out.next_peers.is_empty() && out.call_requests.is_empty());
                let y = Data::decode(&out.data).unwrap();
                prop_assert_eq!(&y.trace, &x.trace, "{} on {}", air, name);
            }
            // merging the data into a peer that has none reproduces it too
            let out = run(&net.air, &[], &bytes, &params(&net.init, &p), &CallResults::new());
            prop_assert_eq!(out.ret_code, 0, "{}", out.error_message);
        }
    }
}

#[test]
fn generated_script_shape() {
    let c = Case {
        branches: vec![Branch { chain: vec![1], stream: true }, Branch { chain: vec![2, 0], stream: false }],
        fold_peer: 0,
        par_body: true,
        fold_last: true,
    };
    let s = script(&c);
    assert!(s.starts_with("(seq (par (seq (call @B"), "{s}");
    let mut net = Net::new(&s, &PEERS, "A");
    net.run_with(|_| 0);
    assert!(net.outcomes.iter().all(|(_, o)| o.ret_code == 0));
    assert_eq!(net.executed.iter().filter(|e| e.1 == "fin").count(), 1);
}
