#!/usr/bin/env python3
"""Peers for the kernel benchmark: gguf-py's numpy Q8_0/Q4_0 quantizers over every matrix of a
model whose rows are a multiple of 32 (the ones Squeeze quantizes), and global 50% magnitude
pruning of the same matrices with np.partition (threshold, then a mask). Best of N; JSON out.
Usage: gguf_py_quant.py MODEL.safetensors [N]"""
import json
import sys
import time

import ml_dtypes  # noqa: F401
import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize
from safetensors import safe_open


def main():
    path, reps = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
    mats = []
    with safe_open(path, framework="np") as f:
        for k in f.keys():
            x = f.get_tensor(k)
            if x.dtype.kind == "f" and x.ndim >= 2 and x.shape[-1] % 32 == 0:
                mats.append(np.ascontiguousarray(x.astype(np.float32)))
    out = {"matrices": len(mats), "params": int(sum(m.size for m in mats)), "seconds": {}}
    for name, q in (("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0), ("q4_1", Q.Q4_1), ("q5_0", Q.Q5_0)):
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            for m in mats:
                quantize(m, q)
            best = min(best, time.perf_counter() - t0)
        out["seconds"][name] = best
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        flat = np.abs(np.concatenate([m.ravel() for m in mats]))
        k = int(np.floor(0.5 * flat.size + 0.5))
        thr = np.partition(flat, k - 1)[k - 1]
        pruned = [np.where(np.abs(m) <= thr, np.float32(0), m) for m in mats]
        best = min(best, time.perf_counter() - t0)
    out["seconds"]["global_prune"] = best
    dst = [np.empty_like(m) for m in mats]
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for m, d in zip(mats, dst):
            np.copyto(d, m)
        best = min(best, time.perf_counter() - t0)
    out["seconds"]["memcpy"] = best
    print(json.dumps(out))


if __name__ == "__main__":
    main()
