#!/usr/bin/env python3
"""Write a safetensors file of adversarial 32-value blocks for quantizer tests: all zeros, one
huge value, exact .5 ties after scaling, subnormals, ±inf, NaN, mixed signs with equal
magnitudes, tiny and huge scales, plus random rows. Usage: make_adversarial.py OUT"""
import json
import struct
import sys

import numpy as np


def blocks():
    rng = np.random.default_rng(5)
    b = []
    b.append(np.zeros(32))
    one = np.zeros(32); one[7] = 1e30; b.append(one)
    b.append(np.array([127 * (k + 0.5) / 127 for k in range(-16, 16)]))  # d = 1 after amax → ties at .5
    b.append(np.arange(-16, 16) * 0.5)
    b.append(np.full(32, 1e-45) * np.arange(32))  # subnormals
    b.append(np.full(32, 5e-39))
    tie = np.ones(32); tie[3] = -2; tie[9] = 2; b.append(tie)  # Q4_0: first signed max wins
    tie2 = np.ones(32); tie2[3] = 2; tie2[9] = -2; b.append(tie2)  # ... positive first
    b.append(np.full(32, -0.0))  # negative zeros: d from +0 as in C
    b.append(np.array([8.0 * (k % 2 * 2 - 1) for k in range(32)]))
    b.append(np.linspace(-65504, 65504, 32))
    b.append(np.linspace(-1e-8, 1e-8, 32))
    b.append(rng.standard_normal(32) * 1e5)
    b.append(rng.standard_normal(32) * 1e-5)
    inf = rng.standard_normal(32); inf[4] = np.inf; b.append(inf)
    ninf = rng.standard_normal(32); ninf[30] = -np.inf; b.append(ninf)
    nan = rng.standard_normal(32); nan[2] = np.nan; b.append(nan)
    lastnan = rng.standard_normal(32); lastnan[31] = np.nan; b.append(lastnan)
    for _ in range(48):
        b.append(rng.standard_normal(32) * rng.choice([1e-3, 1, 1e3]))
    return np.stack(b).astype(np.float32)


def main():
    x = blocks().reshape(-1, 64)  # rows of 64 values = 2 blocks each
    one_d = np.arange(10, dtype=np.float32)
    odd = np.ones((4, 33), dtype=np.float32)
    tensors = [("adversarial.weight", x), ("bias", one_d), ("odd.weight", odd)]
    header, blobs, off = {}, [], 0
    for name, arr in tensors:
        data = arr.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(sys.argv[1], "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    main()
