#!/usr/bin/env python3
"""Compare two compressed-tensors directories (Squeeze's and llm-compressor's) tensor by tensor.

  compare_ct_layout.py OURS THEIRS

Layout must match exactly: the same tensor names, dtypes and shapes, `format: pt` metadata, and for
every module the same quantization arguments (num_bits, type, symmetric, strategy, group_size),
the same `ignore` list, format and status. Values are reported, not required: the share of
identical packed words and zero points, and the largest relative scale difference (the two
tools round scales and ranges in their own float arithmetic). Prints one JSON line; exit 1 when
the layouts differ.
"""
import json
import os
import sys

import numpy as np
from safetensors import safe_open

ARGS = ("num_bits", "type", "symmetric", "strategy", "group_size")


def scheme_of(qc, module):
    """The weights args of the config group that targets `module` (by name, or every Linear)."""
    for g in qc["config_groups"].values():
        if module in g["targets"] or ("Linear" in g["targets"] and module not in qc.get("ignore", [])):
            return {k: g["weights"].get(k) for k in ARGS}
    return None


def main():
    ours, theirs = sys.argv[1], sys.argv[2]
    errors = []
    qa = json.load(open(os.path.join(ours, "config.json")))["quantization_config"]
    qb = json.load(open(os.path.join(theirs, "config.json")))["quantization_config"]
    for k in ("quant_method", "format", "quantization_status"):
        if qa.get(k) != qb.get(k):
            errors.append(f"quantization_config.{k}: {qa.get(k)!r} against {qb.get(k)!r}")
    if sorted(qa.get("ignore", [])) != sorted(qb.get("ignore", [])):
        errors.append(f"ignore: {qa.get('ignore')} against {qb.get('ignore')}")
    words = same_words = zps = same_zps = 0
    worst_scale = 0.0
    with safe_open(os.path.join(ours, "model.safetensors"), "np") as a, \
            safe_open(os.path.join(theirs, "model.safetensors"), "np") as b:
        if (a.metadata() or {}).get("format") != "pt":
            errors.append("safetensors metadata has no format: pt")
        count = len(set(a.keys()))
        if set(a.keys()) != set(b.keys()):
            errors.append(f"tensor names differ: {sorted(set(a.keys()) ^ set(b.keys()))[:10]}")
        for n in sorted(set(a.keys()) & set(b.keys())):
            sa, sb = a.get_slice(n), b.get_slice(n)
            if (sa.get_dtype(), sa.get_shape()) != (sb.get_dtype(), sb.get_shape()):
                errors.append(f"{n}: {sa.get_dtype()} {sa.get_shape()} against {sb.get_dtype()} {sb.get_shape()}")
                continue
            x, y = a.get_tensor(n), b.get_tensor(n)
            if n.endswith(".weight_packed"):
                m = n[:-len(".weight_packed")]
                if scheme_of(qa, m) != scheme_of(qb, m):
                    errors.append(f"{m}: {scheme_of(qa, m)} against {scheme_of(qb, m)}")
                words += x.size
                same_words += int((x == y).sum())
            elif n.endswith(".weight_zero_point"):
                zps += x.size
                same_zps += int((x == y).sum())
            elif n.endswith(".weight_scale"):
                x, y = x.astype(np.float64), y.astype(np.float64)
                rel = np.abs(x - y) / np.maximum(np.abs(y), 1e-30)
                worst_scale = max(worst_scale, float(rel.max()))
            elif n.endswith(".weight_shape"):
                if not np.array_equal(x, y):
                    errors.append(f"{n}: {x} against {y}")
    print(json.dumps({"layout_equal": not errors, "tensors": count, "packed_words_equal": same_words,
                      "packed_words": words, "zero_points_equal": same_zps, "zero_points": zps,
                      "max_scale_rel_diff": worst_scale, "errors": errors[:20]}))
    sys.exit(0 if not errors else 1)


if __name__ == "__main__":
    main()
