"""Two safetensors files hold the same tensors: names, dtypes, shapes and bytes (metadata aside).
Usage: same_safetensors.py A.safetensors B.safetensors; prints JSON, exit 1 on any difference."""
import json
import sys

from safetensors import safe_open

with safe_open(sys.argv[1], framework="np") as a, safe_open(sys.argv[2], framework="np") as b:
    names_a, names_b = set(a.keys()), set(b.keys())
    diff = sorted(names_a ^ names_b)[:10]
    for n in sorted(names_a & names_b):
        x, y = a.get_tensor(n), b.get_tensor(n)
        if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
            diff.append(n)
print(json.dumps({"ok": not diff, "tensors": len(names_a), "differ": diff[:10]}))
sys.exit(0 if not diff else 1)
