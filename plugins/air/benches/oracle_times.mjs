#!/usr/bin/env node
// oracle_times.mjs - time the reference interpreter (AquaVM 0.62.0 in marine-js 0.13.0, driven
// through shared/air/oracle/oracle.mjs) on the same scripts and the same data preparation as
// benches/interpreter.rs, so the README can show both on one machine.
//
//   export AVM_NODE_DIR=$(mktemp -d)
//   npm install --prefix "$AVM_NODE_DIR" @fluencelabs/avm@0.62.0 @fluencelabs/marine-js@0.13.0
//   node plugins/air/benches/oracle_times.mjs [--time SECONDS] [--only NAME,NAME] [--cache DIR]
//
// Peers are the oracle's (seed = sha256("air-oracle:" + name)), the particle id, timestamp and
// ttl are the bench's, so the scripts are byte for byte the ones weft runs. Each case is prepared
// by real runs of the AVM (the 10,000-call seq tree takes 10,000 runs of B over a growing trace:
// about 5 hours on the 2-core machine; --cache DIR keeps B's data between invocations, and the
// state after every 100th run, so that an interrupted preparation resumes). Then the one timed run is
// repeated for --time seconds (default 3) after a 1 s warm-up. Reported per run: the median of
// the wall time of `invoke` (marine-js argument passing + the Wasm interpreter + result
// deserialization), and the process CPU time per run (node's own threads included).
//
// Where the preparation differs from weft's: the reference's data has its own format (CIDs, one
// signature per peer over the CIDs it produced), so "signatures on" means AquaVM's scheme; the
// results of a run are verified by AquaVM as it always does (one signature per peer in
// current_data). The script text, the call results and the order of runs are the same.

import fs from 'fs';
import path from 'path';
import { fileURLToPath, pathToFileURL } from 'url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ORACLE = process.env.ORACLE_MJS || path.join(HERE, '../../../../shared/air/oracle/oracle.mjs');
const { loadAvm, peerKey } = await import(pathToFileURL(ORACLE).href);

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const SECONDS = Number(opt('--time', '3'));
const ONLY = opt('--only', null)?.split(',');
const CACHE = opt('--cache', null);

const PARTICLE_ID = 'bench-particle';
const A = peerKey('A');
const B = peerKey('B');
const params = (init, cur) => ({
  initPeerId: init.peerId, currentPeerId: cur.peerId, secret: cur.secret,
  timestamp: 1700000000000, ttl: 120000, particleId: PARTICLE_ID,
});
const PA = params(A, A);
const PB = params(A, B);

const avm = await loadAvm();
function okRun(p, air, prev, cur, results = {}) {
  const out = avm.invoke(p, air, prev, cur, results);
  if (out.ret_code !== 0) throw new Error(`ret_code ${out.ret_code}: ${out.error_message}`);
  return out;
}
// call results as the oracle takes them: {id: {ret_code, result: <JSON value>}}
const answerAll = (out, f) => Object.fromEntries(out.call_requests.map((r) => [r.id, { ret_code: 0, result: f(r) }]));

// ---------------------------------------------------------------- the scripts (as in interpreter.rs)
function balancedSeq(items) {
  while (items.length > 1) {
    const next = [];
    for (let i = 0; i < items.length; i += 2) next.push(i + 1 < items.length ? `(seq ${items[i]} ${items[i + 1]})` : items[i]);
    items = next;
  }
  return items[0];
}
const sub = (air) => air.replaceAll('@A', JSON.stringify(A.peerId)).replaceAll('@B', JSON.stringify(B.peerId));
const chainedAp = (n) => balancedSeq(['(ap "value" x0)', ...Array.from({ length: n - 1 }, (_, k) => `(ap x${k} x${k + 1})`)]);
const seqTree = (n) => `(seq (ap @B b) ${balancedSeq([
  ...Array.from({ length: n }, (_, i) => `(call b ("svc" "get") [${i}] r${i})`), '(call @A ("op" "done") [])'])})`;
// the reference's parser-10000-100 shape, exactly as benches/interpreter.rs makes it (xorshift64)
function parser10000100() {
  const M = (1n << 64n) - 1n;
  let state = 0x9e3779b97f4a7c15n;
  const next = () => {
    state ^= (state << 13n) & M; state ^= state >> 7n; state ^= (state << 17n) & M;
    return state;
  };
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  const leaves = Array.from({ length: 10000 }, () => {
    const len = 1 + Number(next() % 100n);
    let name = '';
    for (let k = 0; k < len; k++) name += letters[Number(next() % 52n)];
    return `(ap i ${name})`;
  });
  return `(seq (call "peer" ("serv" "func") [] stream) (fold stream i ${balancedSeq(leaves)}))`;
}
const FOLD_CALLS = `
(seq
   (call %init_peer_id% ("init" "init") [] data)
   (fold data i
       (par
          (call %init_peer_id% ("handle" "handle") [i i i i i i i i i i i i i i i i i i i i i i i i] $stream)
          (next i))))
`;
const STREAM = `
(seq
   (seq
      (call @B ("gen" "list") [] list)
      (fold list i
         (par
            (call @B ("gen" "item") [i] $s)
            (next i))))
   (canon @A $s #s))
`;

// ---------------------------------------------------------------- the cases
const EMPTY = new Uint8Array();
const cases = {
  null: () => ({ p: PA, air: '(null)', prev: EMPTY, cur: EMPTY, results: {} }),
  chained_ap_10k: () => {
    const air = chainedAp(10000);
    okRun(PA, air, EMPTY, EMPTY);
    return { p: PA, air, prev: EMPTY, cur: EMPTY, results: {} };
  },
  parser_10000_100: () => {
    const air = parser10000100();
    const out = okRun(PA, air, EMPTY, EMPTY);
    if (out.next_peer_pks.length !== 1 || out.next_peer_pks[0] !== 'peer') throw new Error('expected the call on peer');
    return { p: PA, air, prev: EMPTY, cur: EMPTY, results: {} };
  },
  seq_tree_10k_calls: () => {
    const n = Number(process.env.ORACLE_SEQ_TREE_N || 10000); // smaller only to try the preparation out
    const air = sub(seqTree(n));
    const aFirst = okRun(PA, air, EMPTY, EMPTY);
    const cached = CACHE && path.join(CACHE, `seq_tree_${n}_b.bin`);
    let bData;
    if (cached && fs.existsSync(cached)) {
      bData = new Uint8Array(fs.readFileSync(cached));
    } else {
      // B's runs are O(n²) in the AVM (each one replays the whole trace: ~0.34 ms per state on
      // the 2-core machine, ~5 h for n = 10,000), so with --cache the state after every 100th run
      // is saved and a later invocation resumes from it
      const partial = cached && `${cached}.partial.json`;
      const t0 = Date.now();
      let out;
      let done = 0;
      if (partial && fs.existsSync(partial)) {
        const saved = JSON.parse(fs.readFileSync(partial, 'utf8'));
        out = { data: new Uint8Array(Buffer.from(saved.data, 'base64')), call_requests: saved.call_requests };
        done = saved.runs;
        process.stderr.write(`seq tree: resuming B after ${done} runs\n`);
      } else {
        out = okRun(PB, air, EMPTY, aFirst.data);
        done = 1;
      }
      if (CACHE) fs.mkdirSync(CACHE, { recursive: true });
      while (out.call_requests.length) {
        out = okRun(PB, air, out.data, EMPTY, answerAll(out, (r) => `result ${r.arguments[0]}`));
        done += 1;
        if (partial && done % 100 === 0) {
          const saved = { runs: done, data: Buffer.from(out.data).toString('base64'), call_requests: out.call_requests };
          fs.writeFileSync(`${partial}.tmp`, JSON.stringify(saved));
          fs.renameSync(`${partial}.tmp`, partial);
          process.stderr.write(`seq tree: B ${done} runs, ${((Date.now() - t0) / 1000).toFixed(0)} s in this invocation\n`);
        }
      }
      bData = out.data;
      process.stderr.write(`seq tree: B's ${n} runs took ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      if (cached) { fs.writeFileSync(cached, bData); if (fs.existsSync(partial)) fs.unlinkSync(partial); }
    }
    const merged = okRun(PA, air, aFirst.data, bData);
    if (merged.call_requests.length !== 1) throw new Error('expected the call on A');
    const done = answerAll(merged, () => 'ok');
    const last = okRun(PA, air, merged.data, EMPTY, done);
    if (last.call_requests.length || last.next_peer_pks.length) throw new Error('seq tree did not finish');
    return {
      p: PA, air, prev: merged.data, cur: EMPTY, results: done,
      extra: {
        'seq_tree_10k_calls/first_run': { p: PA, air, prev: EMPTY, cur: EMPTY, results: {} },
        'seq_tree_10k_calls/first_arrival': { p: PA, air, prev: aFirst.data, cur: bData, results: {} },
      },
    };
  },
  fold_500_call_requests: () => {
    const list = Array.from({ length: 500 }, (_, i) => String(i));
    const run1 = okRun(PA, FOLD_CALLS, EMPTY, EMPTY);
    const init = answerAll(run1, () => list);
    const run2 = okRun(PA, FOLD_CALLS, run1.data, EMPTY, init);
    if (run2.call_requests.length !== 500) throw new Error('expected 500 call requests');
    const results = answerAll(run2, (r) => r.arguments);
    const run3 = okRun(PA, FOLD_CALLS, run2.data, EMPTY, results);
    if (run3.call_requests.length) throw new Error('fold did not finish');
    return {
      p: PA, air: FOLD_CALLS, prev: run1.data, cur: EMPTY, results: init,
      extra: { call_results_500: { p: PA, air: FOLD_CALLS, prev: run2.data, cur: EMPTY, results } },
    };
  },
  stream_merge_1000: () => {
    const air = sub(STREAM);
    const items = Array.from({ length: 1000 }, (_, i) => `item-${i}`);
    const a1 = okRun(PA, air, EMPTY, EMPTY);
    const b1 = okRun(PB, air, EMPTY, a1.data);
    const b2 = okRun(PB, air, b1.data, EMPTY, answerAll(b1, () => items));
    if (b2.call_requests.length !== 1000) throw new Error('expected 1000 call requests');
    const b3 = okRun(PB, air, b2.data, EMPTY, answerAll(b2, (r) => ({ value: r.arguments[0] })));
    if (b3.next_peer_pks.length !== 1 || b3.next_peer_pks[0] !== A.peerId) throw new Error('B did not send to A');
    const merged = okRun(PA, air, a1.data, b3.data);
    if (merged.call_requests.length || merged.next_peer_pks.length) throw new Error('A did not finish');
    return { p: PA, air, prev: a1.data, cur: b3.data, results: {} };
  },
};

// ---------------------------------------------------------------- timing
function time(c) {
  const once = () => {
    const t0 = process.hrtime.bigint();
    const out = avm.invoke(c.p, c.air, c.prev, c.cur, c.results);
    const dt = Number(process.hrtime.bigint() - t0) / 1e6;
    if (out.ret_code !== 0) throw new Error(`ret_code ${out.ret_code}: ${out.error_message}`);
    return dt;
  };
  const warm = Date.now();
  do once(); while (Date.now() - warm < 1000);
  const samples = [];
  const cpu0 = process.cpuUsage();
  const start = Date.now();
  do samples.push(once()); while (Date.now() - start < SECONDS * 1000 || samples.length < 5);
  const cpu = process.cpuUsage(cpu0);
  samples.sort((a, b) => a - b);
  return {
    runs: samples.length,
    median_ms: samples[samples.length >> 1],
    min_ms: samples[0],
    cpu_ms: (cpu.user + cpu.system) / 1000 / samples.length,
  };
}

const order = ['null', 'chained_ap_10k', 'parser_10000_100', 'seq_tree_10k_calls', 'fold_500_call_requests', 'stream_merge_1000'];
const report = {};
for (const name of order) {
  const extraNames = { seq_tree_10k_calls: ['seq_tree_10k_calls/first_run', 'seq_tree_10k_calls/first_arrival'], fold_500_call_requests: ['call_results_500'] }[name] ?? [];
  if (ONLY && !ONLY.includes(name) && !extraNames.some((e) => ONLY.includes(e))) continue;
  const c = cases[name]();
  for (const [n, cc] of [[name, c], ...Object.entries(c.extra ?? {})]) {
    if (ONLY && !ONLY.includes(n)) continue;
    report[n] = time(cc);
    const r = report[n];
    console.log(`${n.padEnd(36)} median ${r.median_ms.toFixed(3)} ms  min ${r.min_ms.toFixed(3)} ms  cpu ${r.cpu_ms.toFixed(3)} ms  (${r.runs} runs)`);
  }
}
console.log(JSON.stringify({ avm_version: avm.version, report }));
