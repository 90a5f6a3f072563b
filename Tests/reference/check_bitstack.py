#!/usr/bin/env python3
"""Check a BitStack compressed export read at a size against an independent numpy decoder.

Reads every tensor marked "method": "bitstack" in squeeze.quantization, orders the blocks beyond
each matrix's first as Squeeze documents (docs/FORMATS.md): repeatedly the next block of the matrix
whose next block removes the most recorded error per byte, ties to the matrix first by name; takes
the longest prefix whose bits per weight (scales, errors and blocks of the decomposed matrices) stay
within BPW; decodes (sum over the loaded blocks of sign * (U V), U V summed term by term, then
divided by the column scales) in float32, and requires DENSE (the safetensors `squeeze run --model
... --size BPWbpw` wrote) to equal it byte for byte, every other tensor too. With BPW "all", every
block. Prints JSON; exit 1 on a mismatch.
Usage: check_bitstack.py COMPRESSED.safetensors BPW DENSE.safetensors
"""
import json
import sys

import numpy as np
from safetensors import safe_open


def main():
    path, bpw, dense_path = sys.argv[1:4]
    errors = []
    with safe_open(path, framework="np") as f, safe_open(dense_path, framework="np") as d:
        meta = json.loads(f.metadata()["squeeze.quantization"])
        stacks = sorted(k for k, v in meta.items() if v.get("method") == "bitstack")
        parts = set()
        mats = []
        for name in stacks:
            m = meta[name]
            own = [name + ".bs_scales", name + ".bs_errors"] + [
                name + f".bs_{p}.{k}" for k in range(m["blocks"]) for p in ("signs", "u", "v")]
            parts.update(own)
            fixed = sum(f.get_tensor(p).nbytes for p in own[:2])
            block = sum(f.get_tensor(p).nbytes for p in own[2:5])
            rows, cols = m["shape"]
            mats.append({"name": name, "numel": rows * cols, "fixed": fixed, "block": block,
                         "errors": f.get_tensor(name + ".bs_errors").astype(np.float64), "meta": m})
        other = sum(f.get_tensor(k).nbytes for k in f.keys() if k not in parts)
        counts = [1] * len(mats)
        steps = []
        nxt = [1] * len(mats)
        while True:
            best, best_gain = None, None
            for i, m in enumerate(mats):
                if nxt[i] < len(m["errors"]):
                    gain = (m["errors"][nxt[i] - 1] - m["errors"][nxt[i]]) / m["block"]
                    if best is None or gain > best_gain:
                        best, best_gain = i, gain
            if best is None:
                break
            steps.append(best)
            nxt[best] += 1

        def measure(c):
            stack = sum(m["fixed"] + c[i] * m["block"] for i, m in enumerate(mats))
            return other + stack, stack * 8 / sum(m["numel"] for m in mats)

        if bpw == "all":
            counts = [m["meta"]["blocks"] for m in mats]
        else:
            for i in steps:
                counts[i] += 1
                if measure(counts)[1] > float(bpw):
                    counts[i] -= 1
                    break
        for m, count in zip(mats, counts):
            name, rank = m["name"], m["meta"]["rank"]
            rows, cols = m["meta"]["shape"]
            total = np.zeros((rows, cols), dtype=np.float32)
            for k in range(count):
                bits = np.unpackbits(f.get_tensor(name + f".bs_signs.{k}"), axis=1, bitorder="little")[:, :cols]
                u = f.get_tensor(name + f".bs_u.{k}").astype(np.float32)
                v = f.get_tensor(name + f".bs_v.{k}").astype(np.float32)
                mag = np.zeros((rows, cols), dtype=np.float32)
                for t in range(rank):
                    mag = mag + u[:, t:t + 1] * v[t:t + 1, :]
                total = total + np.where(bits == 1, mag, -mag)
            value = total / f.get_tensor(name + ".bs_scales").astype(np.float32)[None, :]
            got = d.get_tensor(name)
            if got.tobytes() != value.astype(got.dtype).tobytes():
                diff = np.abs(got.astype(np.float64) - value).max()
                errors.append(f"{name}: {count} blocks differ (largest difference {diff:.3g})")
        for k in f.keys():
            if k not in parts and d.get_tensor(k).tobytes() != f.get_tensor(k).tobytes():
                errors.append(f"{k}: differs")
        size, measured = measure(counts)
    print(json.dumps({"ok": not errors, "matrices": len(mats), "blocks": sum(counts), "bytes": size,
                      "bpw": measured, "errors": errors[:10]}))
    sys.exit(0 if not errors and mats else 1)


if __name__ == "__main__":
    main()
