#!/usr/bin/env python3
"""Reads a llama GGUF Squeeze wrote with gguf-py and compares it with a reference GGUF of the same
weights written by gguf-py itself (Tests/reference/make_llama.py, which permutes Q/K as llama.cpp's
converter does): every `llama.*` and `tokenizer.ggml.*` key of the reference is present (but the optional ones a
Hugging Face directory does not state) with an
equal value, the tensors are the same set under the same names and shapes, 1-D tensors are F32,
and every tensor's values are equal (F32) or within the quantization error of its type.

Usage: check_llama_gguf.py OUT.gguf REFERENCE.gguf [--max-rel R]   (prints JSON; exit 1 on failure)
"""
import argparse
import json
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf_fast import GGUFReader
from gguf.quants import dequantize


# Keys a Hugging Face directory does not say (llama.cpp has defaults for them).
OPTIONAL = {"tokenizer.ggml.add_space_prefix", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
            "tokenizer.chat_template"}


def values(t):
    return dequantize(t.data, t.tensor_type).astype(np.float64).reshape(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("reference")
    ap.add_argument("--max-rel", type=float, default=0.0)
    a = ap.parse_args()
    out, ref = GGUFReader(a.out), GGUFReader(a.reference)
    errors = []
    if out.fields["general.architecture"].contents() != "llama":
        errors.append("general.architecture is not llama")
    for k, f in ref.fields.items():
        if not (k.startswith("llama.") or k.startswith("tokenizer.ggml.")):
            continue
        if k not in out.fields:
            if k not in OPTIONAL:
                errors.append(f"missing key {k}")
        elif out.fields[k].contents() != f.contents():
            errors.append(f"key {k} differs")
    got = {t.name: t for t in out.tensors}
    want = {t.name: t for t in ref.tensors}
    if set(got) != set(want):
        errors.append(f"tensor names differ: {sorted(set(got) ^ set(want))[:10]}")
    worst = 0.0
    for name, t in want.items():
        g = got.get(name)
        if g is None:
            continue
        if list(g.shape) != list(t.shape):
            errors.append(f"{name}: shape {list(g.shape)} != {list(t.shape)}")
            continue
        if len(g.shape) == 1 and g.tensor_type != Q.F32:
            errors.append(f"{name}: 1-D tensor is {g.tensor_type.name}, not F32")
        x, y = values(g), values(t)
        rel = float(np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-30))
        worst = max(worst, rel)
        if rel > a.max_rel:
            errors.append(f"{name}: relative difference {rel:.3g} > {a.max_rel}")
    print(json.dumps({"ok": not errors, "tensors": len(got), "keys": len(out.fields), "worst_relative_difference": worst,
                      "errors": errors[:10]}))
    sys.exit(0 if not errors else 1)


if __name__ == "__main__":
    main()
