#!/usr/bin/env python3
"""Check a pruned safetensors artifact against its input, independently of Squeeze.

Loads both files with the `safetensors` package (numpy backend, ml_dtypes for BF16) and checks:
same names, dtypes and shapes; targeted tensors have exactly floor(s*n + 0.5) zeros, pruned
entries are the smallest magnitudes and kept entries are unchanged; untargeted tensors are
byte-identical. Prints a JSON summary; exits 1 on any failure.
Usage: check_prune.py INPUT OUTPUT --sparsity S --targets PAT... [--ignore PAT...]
"""
import argparse
import fnmatch
import json
import sys

import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy)
import numpy as np
from safetensors import safe_open


def load(path):
    with safe_open(path, framework="np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--sparsity", type=float, required=True)
    ap.add_argument("--targets", nargs="+", required=True)
    ap.add_argument("--ignore", nargs="*", default=[])
    a = ap.parse_args()
    src, dst = load(a.input), load(a.output)
    errors, targeted = [], []
    if sorted(src) != sorted(dst):
        errors.append(f"tensor names differ: {sorted(set(src) ^ set(dst))}")
    for name in sorted(set(src) & set(dst)):
        x, y = src[name], dst[name]
        if x.dtype != y.dtype or x.shape != y.shape:
            errors.append(f"{name}: {x.dtype}{x.shape} became {y.dtype}{y.shape}")
            continue
        hit = any(fnmatch.fnmatchcase(name, p) for p in a.targets) and not any(fnmatch.fnmatchcase(name, p) for p in a.ignore)
        if not hit:
            if x.tobytes() != y.tobytes():
                errors.append(f"{name}: untargeted tensor changed")
            continue
        targeted.append(name)
        xf, yf = x.astype(np.float32).ravel(), y.astype(np.float32).ravel()
        n = xf.size
        want = int(np.floor(a.sparsity * n + 0.5))
        zeros = int(np.count_nonzero(yf == 0))
        if zeros != want:
            errors.append(f"{name}: {zeros} zeros, want {want} of {n}")
        kept = yf != 0
        if not np.array_equal(xf[kept], yf[kept]):
            errors.append(f"{name}: kept values changed")
        pruned = ~kept
        if pruned.any() and kept.any() and np.abs(xf[pruned]).max() > np.abs(xf[kept]).min():
            errors.append(f"{name}: a pruned value is larger than a kept one")
    print(json.dumps({"ok": not errors, "targeted": targeted, "errors": errors}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
