#!/usr/bin/env python3
"""Check global magnitude pruning independently: over all selected tensors exactly
floor(s*N + 0.5) values are zeroed (capped by min_keep per tensor), no tensor keeps less than
min_keep of its values, kept values are unchanged, and no pruned |w| exceeds a kept |w| of a
tensor that still had room under its cap. Also recomputes the per-tensor counts with numpy
(sort-based) and requires them equal. Prints JSON; exit 1 on failure.
Usage: check_global.py INPUT OUTPUT --sparsity S --min-keep K --targets P... [--ignore P...]"""
import argparse
import fnmatch
import json
import math
import sys

import ml_dtypes  # noqa: F401
import numpy as np
from safetensors import safe_open


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--sparsity", type=float, required=True)
    ap.add_argument("--min-keep", type=float, default=0.0)
    ap.add_argument("--targets", nargs="+", required=True)
    ap.add_argument("--ignore", nargs="*", default=[])
    a = ap.parse_args()
    src, dst = safe_open(a.input, framework="np"), safe_open(a.output, framework="np")
    names = [k for k in src.keys() if any(fnmatch.fnmatchcase(k, p) for p in a.targets)
             and not any(fnmatch.fnmatchcase(k, p) for p in a.ignore) and src.get_tensor(k).dtype.kind in "fV"]
    xs = {n: np.abs(src.get_tensor(n).astype(np.float32).ravel()) for n in names}
    ys = {n: dst.get_tensor(n).astype(np.float32).ravel() for n in names}
    total = sum(x.size for x in xs.values())
    caps = {n: max(0, xs[n].size - math.ceil(a.min_keep * xs[n].size)) for n in names}
    k = min(int(math.floor(a.sparsity * total + 0.5)), sum(caps.values()))
    # Reference counts: walk all values in (|w|, tensor order, index) order, skipping full tensors.
    order = sorted(((float(v), ti) for ti, n in enumerate(names) for v in np.sort(xs[n])))
    want = {n: 0 for n in names}
    left = k
    for v, ti in order:
        if left == 0:
            break
        n = names[ti]
        if want[n] < caps[n]:
            want[n] += 1
            left -= 1
    errors = []
    got = {n: int((ys[n] == 0).sum()) for n in names}
    if got != want:
        diff = {n: (got[n], want[n]) for n in names if got[n] != want[n]}
        errors.append(f"per-tensor zero counts differ (got, want): {diff}")
    for n in names:
        kept = ys[n] != 0
        if not np.array_equal(np.abs(ys[n][kept]), xs[n][kept]):
            errors.append(f"{n}: kept values changed")
        if got[n] > caps[n]:
            errors.append(f"{n}: density below min_keep")
    print(json.dumps({"ok": not errors, "pruned": sum(got.values()), "want": k, "tensors": len(names), "errors": errors[:5]}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
