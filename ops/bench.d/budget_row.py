"""One row of `ops/bench budget` as a JSON line: budget_row.py NAME KIND OUT_DIR TIME_FILE.

KIND is llama.cpp (a type or mix Squeeze writes bit-exact with llama-quantize) or squeeze (a size budget).
"""
import json
import os
import sys

name, kind, out, time_file = sys.argv[1:5]
m = json.load(open(os.path.join(out, "manifest.json")))
gguf = next(o for o in m["outputs"] if o["path"].endswith(".gguf") and o["path"] != "imatrix.gguf")
seconds, rss_kb = open(time_file).read().split()[-2:]
budget = (m.get("gguf_budgets") or [None])[0]
print(json.dumps({
    "name": name, "kind": kind, "bytes": gguf["bytes"], "evaluation": m["evaluation"],
    "seconds": float(seconds), "peak_rss_mb": int(rss_kb) / 1024, "budget": budget,
}))
