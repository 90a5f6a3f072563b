#!/usr/bin/env python3
"""Unpack Squeeze's compressed-tensors export with numpy alone and check it against its dense export.

Reads DIR/config.json's quantization_config (compressed-tensors, pack-quantized) and
DIR/model.safetensors. For every module with `weight_packed`: unpacks the int32 words (values
least-significant first, 32 // num_bits per word, minus 2^(num_bits-1)), unpacks
`weight_zero_point` along the output dimension when the scheme is asymmetric, dequantizes
(q - zero_point) * scale in float32 by the module's config group (group or channel strategy), and
requires the result to equal DENSE's `<module>.weight` byte for byte; every other tensor must equal
DENSE's. Also checks the config: format, status, every linear either in exactly one group's
targets or in `ignore`, `lm_head` ignored unless quantized, and the tokenizer files beside it.
Prints JSON; exit 1 on any mismatch.
Usage: check_compressed_tensors.py DIR DENSE.safetensors
"""
import json
import os
import sys

import numpy as np
from safetensors import safe_open


def unpack(words, num_bits, length, axis):
    """The signed values of int32 words packed along `axis` (0: output rows, 1: along each row)."""
    per = 32 // num_bits
    w = words.astype(np.int64) & 0xFFFFFFFF
    mask = (1 << num_bits) - 1
    if axis == 0:
        w = w.T
    out = np.zeros((w.shape[0], w.shape[1] * per), dtype=np.int64)
    for i in range(per):
        out[:, i::per] = (w >> (num_bits * i)) & mask
    out = out[:, :length] - (1 << (num_bits - 1))
    return out.T if axis == 0 else out


def main():
    root, dense_path = sys.argv[1], sys.argv[2]
    errors = []
    cfg = json.load(open(os.path.join(root, "config.json")))
    qc = cfg.get("quantization_config") or {}
    for key, want in [("quant_method", "compressed-tensors"), ("format", "pack-quantized"),
                      ("quantization_status", "compressed")]:
        if qc.get(key) != want:
            errors.append(f"quantization_config.{key} is {qc.get(key)!r}, not {want!r}")
    scheme = {}
    for gname, g in (qc.get("config_groups") or {}).items():
        for t in g["targets"]:
            if t in scheme:
                errors.append(f"{t} is targeted by two groups")
            scheme[t] = g["weights"]
    ignore = set(qc.get("ignore") or [])
    if not os.path.exists(os.path.join(root, "tokenizer.json")):
        errors.append("tokenizer.json is missing")
    quantized, plain = 0, 0
    with safe_open(os.path.join(root, "model.safetensors"), framework="np") as f, \
            safe_open(dense_path, framework="np") as d:
        names = set(f.keys())
        modules = sorted(n[:-len(".weight_packed")] for n in names if n.endswith(".weight_packed"))
        if "lm_head" not in ignore and "lm_head" not in modules:
            errors.append("lm_head is neither quantized nor ignored")
        for m in modules:
            w = scheme.get(m)
            if w is None:
                errors.append(f"{m}: packed but no config group targets it")
                continue
            if m in ignore:
                errors.append(f"{m}: packed and ignored")
            bits = w["num_bits"]
            rows, cols = (int(v) for v in f.get_tensor(m + ".weight_shape"))
            q = unpack(f.get_tensor(m + ".weight_packed"), bits, cols, axis=1)
            scale = f.get_tensor(m + ".weight_scale").astype(np.float32)
            groups = cols // w["group_size"] if w["strategy"] == "group" else 1
            if scale.shape != (rows, groups):
                errors.append(f"{m}: weight_scale shape {scale.shape}, want {(rows, groups)}")
                continue
            if w["symmetric"]:
                zp = np.zeros((rows, groups), dtype=np.int64)
                if m + ".weight_zero_point" in names:
                    errors.append(f"{m}: symmetric but has weight_zero_point")
            else:
                zp = unpack(f.get_tensor(m + ".weight_zero_point"), bits, rows, axis=0)
            if q.min() < -(1 << (bits - 1)) or q.max() >= 1 << (bits - 1):
                errors.append(f"{m}: values out of range for {bits} bits")
            per_group = cols // groups
            x = (q.reshape(rows, groups, per_group).astype(np.float32)
                 - zp.reshape(rows, groups, 1).astype(np.float32)) * scale.reshape(rows, groups, 1)
            want = d.get_tensor(m + ".weight")
            if x.reshape(rows, cols).astype(want.dtype).tobytes() != want.tobytes():
                bad = int((x.reshape(rows, cols).astype(want.dtype) != want).sum())
                errors.append(f"{m}: {bad} dequantized values differ from the dense export")
            quantized += 1
        packed_parts = {m + s for m in modules for s in (".weight_packed", ".weight_scale", ".weight_zero_point",
                                                         ".weight_shape")}
        for n in sorted(names - packed_parts):
            a, b = f.get_tensor(n), d.get_tensor(n)
            if a.dtype != b.dtype or a.tobytes() != b.tobytes():
                errors.append(f"{n}: differs from the dense export")
            plain += 1
        dense_linear = {n[:-len(".weight")] for n in d.keys()
                        if n.endswith("_proj.weight") or n.endswith(".dense.weight") or n == "lm_head.weight"}
        for m in sorted(dense_linear - set(modules) - ignore):
            errors.append(f"{m}: a linear neither quantized nor ignored")
    ok = not errors and quantized > 0
    print(json.dumps({"ok": ok, "quantized": quantized, "plain": plain, "errors": errors[:20]}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
