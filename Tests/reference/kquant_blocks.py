#!/usr/bin/env python3
"""256-value super-blocks for k-quant tests: zeros, constants, one outlier per super-block,
extremes as large as fp16 scales allow (llama.cpp refuses a row whose scale overflows), subnormals, tiny and huge scales, all-positive and all-negative blocks, exact
ties, plus random rows (`blocks()`, used by make_llama.py --adversarial). As a script, writes a
safetensors file of them plus a 1536-, a 576- and a 40-column matrix (llama.cpp's legacy fallbacks)
and a 1-D tensor: kquant_blocks.py OUT"""
import json
import struct
import sys

import numpy as np


def blocks():
    rng = np.random.default_rng(11)
    b = [np.zeros(256), np.full(256, 0.75), np.full(256, -3.0)]
    spike = rng.standard_normal(256) * 0.01
    spike[::32] = 40.0
    b.append(spike)
    one = np.zeros(256); one[200] = 6e5; b.append(one)
    b.append(np.linspace(-6e5, 6e5, 256))  # the largest range whose packed scales stay finite in fp16
    b.append(np.full(256, 1e-45) * np.arange(256))
    b.append(np.full(256, 3e-39))
    b.append(np.linspace(-1e-10, 1e-10, 256))
    b.append(np.abs(rng.standard_normal(256)) + 2)
    b.append(-np.abs(rng.standard_normal(256)) - 2)
    b.append(np.arange(-128, 128) * 0.5)
    b.append(np.repeat(np.arange(16) - 8.0, 16))
    b.append(np.full(256, -0.0))
    for _ in range(50):
        b.append(rng.standard_normal(256) * rng.choice([1e-4, 0.02, 1, 300]))
    return np.stack(b).astype(np.float32)


def main():
    rng = np.random.default_rng(12)
    tensors = [
        ("kblocks.weight", blocks().reshape(-1, 512)),
        ("wide.weight", (rng.standard_normal((24, 1536)) * 0.05).astype(np.float32)),
        ("narrow.weight", (rng.standard_normal((16, 576)) * 0.05).astype(np.float32)),
        ("odd.weight", rng.standard_normal((4, 40)).astype(np.float32)),
        ("norm", np.ones(256, dtype=np.float32)),
    ]
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
