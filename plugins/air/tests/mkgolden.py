#!/usr/bin/env python3
"""Turn scenario files (SIMULATION.md format) into golden files with the reference oracle.

usage: AVM_NODE_DIR=... python3 mkgolden.py OUT_DIR SCENARIO.json...  (see shared/air/README.md)
"""
import json, subprocess, sys, os
out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)
for path in sys.argv[2:]:
    sc = json.load(open(path))
    spec = {"air": sc["air"], "init_peer": sc.get("init_peer", "A").lstrip("@"),
            "services": sc.get("services", []), "resolved": True, "trace": False}
    if "only_peers" in sc: spec["only_peers"] = [p.lstrip("@") for p in sc["only_peers"]]
    if "max_steps" in sc: spec["max_steps"] = sc["max_steps"]
    rp = sc.get("run_params", {})
    for k in ("timestamp", "ttl", "particle_id"):
        if k in rp: spec[k] = rp[k]
    r = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../../shared/air/oracle/oracle.mjs"), "sim", "-"], input=json.dumps(spec),
                       capture_output=True, text=True, env={**os.environ, "AVM_NODE_DIR": os.environ.get("AVM_NODE_DIR", "")})
    if r.returncode != 0:
        print("oracle failed", path, r.stderr[:500]); continue
    res = json.loads(r.stdout)
    g = dict(sc)
    g["steps"] = [{k: s.get(k) for k in ("peer", "ret_code", "error_message", "call_results_in", "next_peer_pks", "call_requests") if s.get(k) is not None} for s in res["steps"]]
    for s in g["steps"]:
        s["call_requests"] = [{"id": c["id"], "service": c["service_id"], "function": c["function_name"], "args": c["arguments"], "tetraplets": c["tetraplets"]} for c in s.get("call_requests", [])]
    g["sends"] = res["sends"]; g["undelivered"] = res["undelivered"]
    g["final_traces"] = res.get("final_traces")
    json.dump(g, open(os.path.join(out_dir, os.path.basename(path)), "w"), indent=1)
