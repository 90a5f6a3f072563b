#!/usr/bin/env python3
"""Compare two GGUF files block by block, read with gguf-py (independent of Squeeze).

  gguf_block_scales.py A.gguf B.gguf -> exit 0 when both hold the same tensors with the same types, every
  block of a Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 or IQ4_NL tensor keeps its scale (and min) bytes, and some
  blocks' codes differ; prints how many blocks differ, per type. Other tensors must be identical.
"""
import sys
from collections import Counter

import numpy as np
from gguf_fast import GGUFTensorReader

# Block bytes and how many leading bytes hold the fp16 scale (and min).
LAYOUT = {"Q4_0": (18, 2), "Q4_1": (20, 4), "Q5_0": (22, 2), "Q5_1": (24, 4), "Q8_0": (34, 2), "IQ4_NL": (18, 2)}


def main():
    a, b = sys.argv[1:3]
    ra, rb = {t.name: t for t in GGUFTensorReader(a).tensors}, {t.name: t for t in GGUFTensorReader(b).tensors}
    if sorted(ra) != sorted(rb):
        sys.exit(f"tensor names differ: {len(ra)} against {len(rb)}")
    changed, blocks = Counter(), Counter()
    for n in sorted(ra):
        ta, tb = ra[n], rb[n]
        kind = ta.tensor_type.name
        if kind != tb.tensor_type.name:
            sys.exit(f"{n}: types differ ({kind} vs {tb.tensor_type.name})")
        da, db = np.asarray(ta.data).tobytes(), np.asarray(tb.data).tobytes()
        if kind not in LAYOUT:
            if da != db:
                sys.exit(f"{n}: {kind} bytes differ")
            continue
        size, head = LAYOUT[kind]
        xa = np.frombuffer(da, dtype=np.uint8).reshape(-1, size)
        xb = np.frombuffer(db, dtype=np.uint8).reshape(-1, size)
        if not np.array_equal(xa[:, :head], xb[:, :head]):
            sys.exit(f"{n}: {kind} scales differ in {int((xa[:, :head] != xb[:, :head]).any(axis=1).sum())} blocks")
        changed[kind] += int((xa[:, head:] != xb[:, head:]).any(axis=1).sum())
        blocks[kind] += xa.shape[0]
    if not sum(changed.values()):
        sys.exit("no block's codes differ")
    print(", ".join(f"{k}: codes differ in {changed[k]} of {blocks[k]} blocks" for k in sorted(blocks)))


if __name__ == "__main__":
    main()
