"""One row of `ops/bench gguf-quality` as a JSON line: gguf_quality_row.py TYPE OUT_DIR LLAMA_CHECK_JSON [imatrix]."""
import json, os, sys
t, out, same = sys.argv[1:4]
m = json.load(open(os.path.join(out, "manifest.json")))
size = next(o["bytes"] for o in m["outputs"] if o["path"].endswith(".gguf"))
try:
    same = json.loads(same)
except ValueError:
    same = {"ok": False}
print(json.dumps({"type": t, "imatrix": sys.argv[4:5] == ["imatrix"], "evaluation": m["evaluation"], "bytes": size, "llama": same}))
