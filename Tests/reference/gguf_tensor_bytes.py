#!/usr/bin/env python3
"""Compare one tensor's stored bytes in two GGUF files, read with gguf-py (independent of Squeeze).

  gguf_tensor_bytes.py A.gguf B.gguf NAME   -> exit 0 when NAME has the same type and bytes in both,
  and its blocks are not all zero; prints what differs otherwise.
  gguf_tensor_bytes.py A.gguf B.gguf --all  -> the same for every tensor (the same names in both, in any order).
"""
import sys

import numpy as np
from gguf_fast import GGUFTensorReader


def tensor(path, name):
    for t in GGUFTensorReader(path).tensors:
        if t.name == name:
            return t
    sys.exit(f"{path}: no tensor {name}")


def main():
    a, b, name = sys.argv[1:4]
    if name == "--all":
        ra, rb = {t.name: t for t in GGUFTensorReader(a).tensors}, {t.name: t for t in GGUFTensorReader(b).tensors}
        na, nb = sorted(ra), sorted(rb)
        if na != nb:
            sys.exit(f"tensor names differ: {len(na)} against {len(nb)}")
        for n in na:
            ta, tb = ra[n], rb[n]
            if ta.tensor_type != tb.tensor_type or np.asarray(ta.data).tobytes() != np.asarray(tb.data).tobytes():
                sys.exit(f"{n}: differs")
        print(f"{len(na)} tensors identical")
        return
    ta, tb = tensor(a, name), tensor(b, name)
    if ta.tensor_type != tb.tensor_type:
        sys.exit(f"{name}: types differ ({ta.tensor_type.name} vs {tb.tensor_type.name})")
    da, db = np.asarray(ta.data).tobytes(), np.asarray(tb.data).tobytes()
    if not any(da):
        sys.exit(f"{name}: every byte is zero in {a}")
    if da != db:
        sys.exit(f"{name}: bytes differ")
    print(f"{name}: {len(da)} bytes identical")


if __name__ == "__main__":
    main()
