#!/usr/bin/env python3
"""Write a small BERT-like safetensors model with F32, F16, BF16 and I64 tensors.

Written by hand (header + raw little-endian bytes) so the fixture does not depend on the
code under test. Usage: make_model.py OUT.safetensors [--seed N] [--truncate BYTES]
"""
import argparse
import json
import struct

import numpy as np


def bf16_bytes(x: np.ndarray) -> bytes:
    """float32 -> bfloat16 with round-to-nearest-even (NaN kept NaN)."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    rounded[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded.astype("<u2").tobytes()


def tensors(seed: int):
    rng = np.random.default_rng(seed)
    out = []
    out.append(("embeddings.word_embeddings.weight", "F32", [100, 128], rng.standard_normal((100, 128), dtype=np.float32)))
    out.append(("embeddings.position_ids", "I64", [1, 32], np.arange(32, dtype=np.int64).reshape(1, 32)))
    out.append(("embeddings.LayerNorm.weight", "F32", [128], np.ones(128, dtype=np.float32)))
    for layer in range(2):
        p = f"encoder.layer.{layer}."
        out.append((p + "attention.self.query.weight", "F32", [128, 128], rng.standard_normal((128, 128), dtype=np.float32) * 0.05))
        out.append((p + "attention.self.query.bias", "F32", [128], rng.standard_normal(128, dtype=np.float32)))
        out.append((p + "intermediate.dense.weight", "F16", [256, 128], (rng.standard_normal((256, 128)) * 0.1).astype(np.float16)))
        out.append((p + "output.dense.weight", "BF16", [128, 256], rng.standard_normal((128, 256), dtype=np.float32) * 0.1))
        out.append((p + "output.LayerNorm.weight", "F32", [128], rng.standard_normal(128, dtype=np.float32)))
    return out


def encode(dtype, arr):
    if dtype == "BF16":
        return bf16_bytes(arr)
    return np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--truncate", type=int, default=0, help="drop this many bytes from the end")
    a = ap.parse_args()
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, dtype, shape, arr in tensors(a.seed):
        b = encode(dtype, arr)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    data = struct.pack("<Q", len(h)) + h + b"".join(blobs)
    if a.truncate:
        data = data[: len(data) - a.truncate]
    with open(a.out, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
