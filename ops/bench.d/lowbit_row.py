"""One row of `ops/bench lowbit` as a JSON line: lowbit_row.py NAME METHOD OUT_DIR TIME_FILE.

Bits per weight count everything the export stores for the block matrices (codes or indices,
scales, zero points, codebooks): the manifest's per-tensor bits over the 2-D tensors of
model.layers.*, weighted by their sizes.
"""
import json
import os
import sys

name, method, out, tfile = sys.argv[1:5]
m = json.load(open(os.path.join(out, "manifest.json")))
wall, rss = open(tfile).read().split()[-2:]
files = {o["path"]: o["bytes"] for o in m["outputs"]
         if o["format"] in ("safetensors", "gguf", "compressed-safetensors", "compressed-tensors")}
main = next((p for p in files if p.endswith(".gguf")), next(iter(files)))
blocks = [u for u in m["layers"] if u["tensor"].startswith("model.layers.") and len(u["shape"]) == 2]
bpw = sum(u["bits"] * u["numel"] for u in blocks) / sum(u["numel"] for u in blocks)
ev = m["evaluation"]
print(json.dumps({"name": name, "method": method, "evaluation": ev, "file": main, "bytes": files[main], "bpw": bpw,
                  "compute_s": float(wall) - ev["seconds"], "rss_mb": int(rss) / 1024}))
