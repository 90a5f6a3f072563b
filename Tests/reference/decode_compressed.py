#!/usr/bin/env python3
"""Decode Squeeze's compressed safetensors independently and check it against a numpy RTN reference.

For every tensor listed in __metadata__["squeeze.quantization"]: unpack T.qweight (codes packed
along the last dimension, lowest bits first, rows padded to whole bytes), read T.scales and
T.zeros (asymmetric), recompute codes, scales and zero points from SOURCE with numpy in float32
(round half to even), and require them equal; dequantize (code - zero) * scale and, with
--dense, require the dense export to equal it (cast to the tensor's dtype). Prints JSON; exit 1
on any mismatch. Tensors quantized with GPTQ (metadata "method": "gptq") have codes that depend on
the calibration data, so for them only the layout is checked: codes in range, one scale (and
zero) per group, and the dense export equal to (code - zero) * scale from the file itself.
VPTQ tensors ("method": "vptq") are decoded from their parts alone: per codebook the indices
(packed at log2(entries) bits each along every row, lowest bits first, rows padded to whole bytes)
and the F16 entries, then value = scale[row] * (entry + residual entry) in float32; every index
must be within its codebook, and with --dense the dense export must equal the decoded values.
With "outliers": o, the indices cover the groups that are not outliers (ascending) and each outlier
column (vq_outlier_columns, ascending whole vectors) is scale[row] * vq_outliers[row, m].
Usage: decode_compressed.py SOURCE.safetensors COMPRESSED.safetensors [--dense DENSE]
"""
import argparse
import json
import sys

import ml_dtypes
import numpy as np
from safetensors import safe_open


def grouped(x, gran, group):
    """Rows of one quantization group each: the whole tensor, each output row, or `group` inputs."""
    if gran == "tensor":
        return x.reshape(1, -1)
    if gran == "channel":
        return x.reshape(-1, x.shape[-1])
    return x.reshape(-1, group)


def reference(x, bits, scheme, gran, group):
    shape = x.shape
    x = x.astype(np.float32)
    g = grouped(x, gran, group)
    with np.errstate(all="ignore"):
        if scheme == "symmetric":
            half = np.float32(2 ** (bits - 1))
            s = (np.abs(g).max(axis=1) / (half - np.float32(1))).astype(np.float32)
            z = np.full(s.shape, half, dtype=np.float32)
            q = np.clip(np.rint(g / s[:, None]), -half, half - 1) + half
        else:
            qmax = np.float32(2 ** bits - 1)
            lo = np.minimum(g.min(axis=1), np.float32(0))
            hi = np.maximum(g.max(axis=1), np.float32(0))
            s = ((hi - lo) / qmax).astype(np.float32)
            ok = np.isfinite(s) & (s != 0)
            z = np.where(ok, np.clip(np.rint(-lo / np.where(ok, s, 1)), 0, qmax), 0).astype(np.float32)
            q = np.clip(np.rint(g / s[:, None]) + z[:, None], 0, qmax)
        bad = ~np.isfinite(s) | (s == 0)
        q = np.where(bad[:, None] | np.isnan(g), z[:, None], q)
        deq = ((q - z[:, None]) * np.where(np.isfinite(s), s, 0)[:, None]).astype(np.float32)
    return q.astype(np.uint8).reshape(shape), s, z.astype(np.uint8), deq.reshape(shape)


def dequantize(codes, scales, zeros, bits, scheme, gran, group):
    shape = codes.shape
    g = grouped(codes, gran, group)
    z = zeros.astype(np.float32) if zeros is not None else np.full(scales.shape, 2 ** (bits - 1), dtype=np.float32)
    s = np.where(np.isfinite(scales), scales, 0).astype(np.float32)
    return ((g.astype(np.float32) - z[:, None]) * s[:, None]).astype(np.float32).reshape(shape)


def unpack(packed, shape, pbits):
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    n = shape[-1]
    per = 8 // pbits
    p = packed.reshape(rows, -1)
    out = np.zeros((rows, p.shape[1] * per), dtype=np.uint8)
    for k in range(per):
        out[:, k::per] = (p >> (k * pbits)) & ((1 << pbits) - 1)
    return out[:, :n].reshape(shape)


def unpack_indices(packed, rows, groups, bits):
    """Indices of `bits` bits each, packed along each row, the first in the lowest bits."""
    b = np.unpackbits(packed.reshape(rows, -1), axis=1, bitorder="little")[:, : groups * bits]
    weights = (1 << np.arange(bits, dtype=np.int64))
    return (b.reshape(rows, groups, bits).astype(np.int64) * weights).sum(axis=2)


def decode_vptq(c, name, m, errors):
    """The float32 values a VPTQ tensor decodes to."""
    rows, cols = m["shape"]
    v = m["vector"]
    o = m.get("outliers", 0)
    books = [(".vq_", m["centroids"])] + ([(".vq_residual_", m["residual"])] if m["residual"] else [])
    if o:
        columns = c.get_tensor(name + ".vq_outlier_columns").astype(np.int64)
        outliers = c.get_tensor(name + ".vq_outliers").astype(np.float32)
        starts = columns.reshape(-1, v)
        if (columns.shape != (o,) or outliers.shape != (rows, o) or np.any(np.diff(columns) <= 0)
                or np.any(starts[:, 0] % v) or np.any(starts - starts[:, :1] != np.arange(v))
                or columns.max() >= cols):
            errors.append(f"{name}: outlier columns are not ascending whole vectors of the row")
            return None
        coded = np.setdiff1d(np.arange(cols // v), starts[:, 0] // v)
    else:
        coded = np.arange(cols // v)
    total = np.zeros((rows, len(coded), v), dtype=np.float32)
    for prefix, entries in books:
        bits = max(1, (entries - 1).bit_length())
        idx = unpack_indices(c.get_tensor(name + prefix + "indices"), rows, len(coded), bits)
        book = c.get_tensor(name + prefix + "codebook").astype(np.float32)
        if book.shape != (entries, v):
            errors.append(f"{name}: {prefix}codebook is {book.shape}, expected {(entries, v)}")
            return None
        if idx.max(initial=0) >= entries:
            errors.append(f"{name}: index beyond the {entries}-entry codebook")
            return None
        total = total + book[idx]
    scales = c.get_tensor(name + ".vq_scales").astype(np.float32)
    out = np.zeros((rows, cols // v, v), dtype=np.float32)
    out[:, coded, :] = scales[:, None, None] * total
    out = out.reshape(rows, cols)
    if o:
        out[:, columns] = scales[:, None] * outliers
    return out.astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("compressed")
    ap.add_argument("--dense")
    a = ap.parse_args()
    errors, checked = [], 0
    with safe_open(a.compressed, framework="np") as c, safe_open(a.source, framework="np") as s:
        meta = json.loads(c.metadata()["squeeze.quantization"])
        dense = safe_open(a.dense, framework="np") if a.dense else None
        for name, m in sorted(meta.items()):
            if m.get("method") == "vptq":
                deq = decode_vptq(c, name, m, errors)
                if deq is not None and dense is not None:
                    d = dense.get_tensor(name)
                    if d.tobytes() != deq.astype(d.dtype).tobytes():
                        errors.append(f"{name}: dense export differs from the decoded vectors")
                checked += 1
                continue
            shape, bits, scheme = tuple(m["shape"]), m["bits"], m["scheme"]
            codes = unpack(c.get_tensor(name + ".qweight"), shape, m["packed_bits"])
            scales = c.get_tensor(name + ".scales").reshape(-1)
            zeros = c.get_tensor(name + ".zeros").reshape(-1) if scheme == "asymmetric" else None
            if m.get("method", "rtn") == "gptq":
                n_groups = codes.size // (codes.size if m["granularity"] == "tensor" else
                                          shape[-1] if m["granularity"] == "channel" else m["group_size"])
                if scales.size != n_groups or (zeros is not None and zeros.size != n_groups):
                    errors.append(f"{name}: {scales.size} scales for {n_groups} groups")
                deq = dequantize(codes, scales, zeros, bits, scheme, m["granularity"], m.get("group_size"))
            else:
                rq, rs, rz, deq = reference(s.get_tensor(name), bits, scheme, m["granularity"], m.get("group_size"))
                if not np.array_equal(codes, rq):
                    errors.append(f"{name}: {int((codes != rq).sum())} codes differ")
                if scales.tobytes() != rs.astype(np.float32).tobytes():
                    errors.append(f"{name}: scales differ")
                if zeros is not None and not np.array_equal(zeros, rz):
                    errors.append(f"{name}: zero points differ")
            if codes.max(initial=0) >= 2 ** bits:
                errors.append(f"{name}: code out of range for {bits} bits")
            if dense is not None:
                d = dense.get_tensor(name)
                if d.tobytes() != deq.astype(d.dtype).tobytes():
                    errors.append(f"{name}: dense export differs from the dequantized codes")
            checked += 1
    print(json.dumps({"ok": not errors and checked > 0, "checked": checked, "errors": errors[:20]}))
    sys.exit(0 if not errors and checked > 0 else 1)


if __name__ == "__main__":
    main()
