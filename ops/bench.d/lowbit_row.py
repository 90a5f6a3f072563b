"""One row of `ops/bench lowbit` as a JSON line.

lowbit_row.py NAME METHOD OUT_DIR TIME_FILE [--stack LOAD_LOG STACK_TIME_FILE]

Bits per weight count everything the export stores for the block matrices (codes or indices,
scales, zero points, codebooks): the manifest's per-tensor bits over the 2-D tensors of
model.layers.*, weighted by their sizes. A BitStack row (--stack) is an evaluation of the stack
loaded at a size: its bits and bytes are the ones `squeeze run --size` reported loading
("bitstack: N of M blocks, B bytes (X bpw)"), its time the stack job's, its load time the run's
wall time less the evaluation; KL and top-1 are not measured (the evaluation's original is the
loaded stack itself).
"""
import json
import os
import re
import sys

name, method, out, tfile = sys.argv[1:5]
m = json.load(open(os.path.join(out, "manifest.json")))
wall, rss = open(tfile).read().split()[-2:]
files = {o["path"]: o["bytes"] for o in m["outputs"]
         if o["format"] in ("safetensors", "gguf", "compressed-safetensors", "compressed-tensors")}
main = next((p for p in files if p.endswith(".gguf")), next(iter(files)))
ev = m["evaluation"]
row = {"name": name, "method": method, "evaluation": ev, "compute_s": float(wall) - ev["seconds"],
       "rss_mb": int(rss) / 1024}
if len(sys.argv) > 5 and sys.argv[5] == "--stack":
    line = open(sys.argv[6]).read()
    got = re.search(r"bitstack: (\d+) of (\d+) blocks, (\d+) bytes \(([0-9.]+) bpw\)", line)
    stack_wall, stack_rss = open(sys.argv[7]).read().split()[-2:]
    row.update({"file": f"stack.safetensors, {got.group(1)} of {got.group(2)} blocks",
                "bytes": int(got.group(3)), "bpw": float(got.group(4)), "load_s": row["compute_s"],
                "compute_s": float(stack_wall), "rss_mb": int(stack_rss) / 1024, "stack": True})
    ev["mean_kl"] = None
    ev["top1_agreement"] = None
else:
    blocks = [u for u in m["layers"] if u["tensor"].startswith("model.layers.") and len(u["shape"]) == 2]
    row.update({"file": main, "bytes": files[main],
                "bpw": sum(u["bits"] * u["numel"] for u in blocks) / sum(u["numel"] for u in blocks)})
print(json.dumps(row))
