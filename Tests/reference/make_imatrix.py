#!/usr/bin/env python3
"""An importance matrix for a model GGUF in llama.cpp's formats, made outside Squeeze.

  make_imatrix.py MODEL_GGUF OUT [--seed N] [--other-columns] [--unknown-name]
      Random positive per-column values (heavy-tailed, as real activations are) for every 2-D
      `blk.*` matrix of MODEL_GGUF. OUT ending in .gguf: the GGUF-based file llama-imatrix writes
      (NAME.in_sum2 and NAME.counts tensors, general.type = imatrix, imatrix.* keys, written with
      gguf-py); otherwise the legacy .dat layout. --other-columns gives one entry one column more
      than its matrix; --unknown-name adds an entry no matrix has (files for another model);
      --poison nan|inf|huge|negative|zero fills blk.0.attn_q.weight's entry with that value
      (zero: every value 0, which llama.cpp quantizes unweighted).
"""
import sys

import numpy as np
from gguf import GGUFWriter
from gguf_fast import GGUFTensorReader


def main():
    model, out = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    seed = int(rest[rest.index("--seed") + 1]) if "--seed" in rest else 1
    rng = np.random.default_rng(seed)
    entries = {}
    for t in GGUFTensorReader(model).tensors:
        if t.name.startswith("blk.") and len(t.shape) == 2:
            cols = int(t.shape[0])
            entries[t.name] = (rng.lognormal(0.0, 1.5, cols) * 512).astype(np.float32)
    if "--other-columns" in rest:
        k = sorted(entries)[0]
        entries[k] = np.append(entries[k], np.float32(1))
    if "--poison" in rest:
        kind = rest[rest.index("--poison") + 1]
        value = {"nan": np.nan, "inf": np.inf, "huge": 1e38, "negative": -1.0, "zero": 0.0}[kind]
        k = "blk.0.attn_q.weight"
        entries[k] = np.full(entries[k].shape, value, np.float32)
        if kind in ("nan", "negative"):
            entries[k][1:] = 1.0
    if "--unknown-name" in rest:
        entries["blk.99.attn_q.weight"] = np.ones(64, np.float32)
    tokens, chunk = 512, 64
    if out.endswith(".gguf"):
        w = GGUFWriter(out, arch="", endianess=0)
        w.kv_data[0].pop("general.architecture", None)
        w.add_string("general.type", "imatrix")
        w.add_array("imatrix.datasets", ["random.txt"])
        w.add_uint32("imatrix.chunk_count", tokens // chunk)
        w.add_uint32("imatrix.chunk_size", chunk)
        for name in sorted(entries):
            w.add_tensor(name + ".in_sum2", entries[name].reshape(1, -1))
            w.add_tensor(name + ".counts", np.array([[tokens]], np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return
    calls = tokens // chunk
    with open(out, "wb") as f:
        f.write(np.int32(len(entries)).tobytes())
        for name in sorted(entries):
            b = name.encode()
            f.write(np.int32(len(b)).tobytes() + b + np.int32(calls).tobytes() + np.int32(entries[name].size).tobytes())
            f.write((entries[name] / np.float32(tokens) * np.float32(calls)).astype("<f4").tobytes())
        f.write(np.int32(calls).tobytes())
        ds = b"random.txt"
        f.write(np.int32(len(ds)).tobytes() + ds)


if __name__ == "__main__":
    main()
