"""One row of `ops/bench quality` as a JSON line: quality_row.py NAME METHOD OUT_DIR TIME_FILE."""
import json, os, sys
name, method, out, tfile = sys.argv[1:5]
m = json.load(open(os.path.join(out, "manifest.json")))
wall, rss = open(tfile).read().split()[-2:]
files = {o["path"]: o["bytes"] for o in m["outputs"] if o["format"] in ("safetensors", "gguf", "compressed-safetensors", "compressed-tensors")}
main = next((p for p in files if p.endswith(".gguf")), next(iter(files)))
ev = m["evaluation"]
print(json.dumps({"name": name, "method": method, "evaluation": ev, "output": f"{main} {files[main] / 1e6:.0f} MB",
                  "compute_s": float(wall) - ev["seconds"], "rss_mb": int(rss) / 1024}))
