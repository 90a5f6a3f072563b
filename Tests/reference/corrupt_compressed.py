#!/usr/bin/env python3
"""Write a hostile copy of a VPTQ compressed export (model.compressed.safetensors).

Modes, each on the first VPTQ tensor T (sorted by name; stack-shape: the first BitStack tensor):
  beyond    T's codebook cut to 200 entries (metadata says 200) and one index set to 255
  shape     T.vq_scales one value short
  missing   T.vq_codebook removed
  outliers  T.vq_outlier_columns reversed (no longer ascending whole vectors)
  truncate  the file cut in the middle of its data
  stack-shape  T.bs_u.0 one row short
Usage: corrupt_compressed.py IN OUT MODE
"""
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file


def main():
    src, dst, mode = sys.argv[1:4]
    if mode == "truncate":
        data = open(src, "rb").read()
        open(dst, "wb").write(data[: len(data) // 2])
        return
    with safe_open(src, framework="np") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    q = json.loads(meta["squeeze.quantization"])
    method = "bitstack" if mode.startswith("stack") else "vptq"
    name = sorted(k for k, v in q.items() if v.get("method") == method)[0]
    if mode == "stack-shape":
        tensors[name + ".bs_u.0"] = np.ascontiguousarray(tensors[name + ".bs_u.0"][:-1])
    elif mode == "beyond":
        tensors[name + ".vq_codebook"] = np.ascontiguousarray(tensors[name + ".vq_codebook"][:200])
        q[name]["centroids"] = 200
        idx = tensors[name + ".vq_indices"].copy()
        idx[0, 0] = 255
        tensors[name + ".vq_indices"] = idx
    elif mode == "shape":
        tensors[name + ".vq_scales"] = np.ascontiguousarray(tensors[name + ".vq_scales"][:-1])
    elif mode == "missing":
        del tensors[name + ".vq_codebook"]
    elif mode == "outliers":
        tensors[name + ".vq_outlier_columns"] = np.ascontiguousarray(tensors[name + ".vq_outlier_columns"][::-1])
    else:
        sys.exit(f"unknown mode {mode}")
    meta["squeeze.quantization"] = json.dumps(q, sort_keys=True)
    save_file(tensors, dst, metadata=meta)


if __name__ == "__main__":
    main()
