#!/usr/bin/env python3
"""Split a safetensors file into a directory of two shards plus model.safetensors.index.json
(standard layout, written by the `safetensors` package). Usage: make_sharded.py IN.safetensors OUTDIR"""
import json
import os
import sys

import ml_dtypes  # noqa: F401
from safetensors import safe_open
from safetensors.numpy import save_file


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with safe_open(src, framework="np") as f:
        names = list(f.keys())
        tensors = {k: f.get_tensor(k) for k in names}
    half = len(names) // 2
    weight_map, total = {}, 0
    for i, part in enumerate((names[:half], names[half:])):
        shard = f"model-{i + 1:05d}-of-00002.safetensors"
        save_file({k: tensors[k] for k in part}, os.path.join(out, shard))
        for k in part:
            weight_map[k] = shard
            total += tensors[k].nbytes
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)


if __name__ == "__main__":
    main()
