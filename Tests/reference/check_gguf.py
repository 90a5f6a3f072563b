#!/usr/bin/env python3
"""Check a GGUF written by Squeeze against gguf-py, independently of Squeeze.

Reads OUT.gguf with gguf-py's GGUFReader; for every tensor of SOURCE.safetensors (the values
the export started from) checks name, shape (GGUF dims reversed), type, and that the bytes equal
gguf-py's own numpy quantizer output (gguf.quants.quantize) for quantized tensors, or the F32/F16
values for fallback tensors. Blocks holding NaN are skipped: ggml's C reference (which Squeeze follows) and
gguf-py's numpy differ there (see docs/FORMATS.md); ±inf blocks must match. Prints JSON; exits 1 on any mismatch.
Usage: check_gguf.py SOURCE.safetensors OUT.gguf --type q8_0|q4_0|q4_1|q5_0 [--fallback f32|f16]
"""
import argparse
import json
import sys

import ml_dtypes  # noqa: F401
import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf_fast import GGUFTensorReader
from gguf.quants import quantize
from safetensors import safe_open


BERT_EMBEDDINGS = {"embeddings.word_embeddings.weight": "token_embd.weight",
                   "embeddings.position_embeddings.weight": "position_embd.weight",
                   "embeddings.token_type_embeddings.weight": "token_types.weight",
                   "embeddings.LayerNorm.weight": "token_embd_norm.weight", "embeddings.LayerNorm.bias": "token_embd_norm.bias"}
BERT_BLOCK = {"attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
              "attention.output.dense": "attn_output", "attention.output.LayerNorm": "attn_output_norm",
              "intermediate.dense": "ffn_up", "output.dense": "ffn_down", "output.LayerNorm": "layer_output_norm"}


def bert_name(name):
    """llama.cpp's converter's name for a Hugging Face BERT tensor; None for what it leaves out."""
    name = name[5:] if name.startswith("bert.") else name
    if name in BERT_EMBEDDINGS:
        return BERT_EMBEDDINGS[name]
    parts = name.split(".")
    if parts[:2] == ["encoder", "layer"]:
        module, suffix = ".".join(parts[3:-1]), parts[-1]
        if module in BERT_BLOCK:
            return f"blk.{parts[2]}.{BERT_BLOCK[module]}.{suffix}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("gguf")
    ap.add_argument("--type", required=True, choices=["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "f16", "f32"])
    ap.add_argument("--fallback", default="f32", choices=["f32", "f16"])
    a = ap.parse_args()
    qtype = {"q8_0": Q.Q8_0, "q4_0": Q.Q4_0, "q4_1": Q.Q4_1, "q5_0": Q.Q5_0, "q5_1": Q.Q5_1, "f16": Q.F16, "f32": Q.F32}[a.type]
    fb = {"f32": Q.F32, "f16": Q.F16}[a.fallback]
    reader = GGUFTensorReader(a.gguf)
    bert = any(t.name == "token_embd.weight" for t in reader.tensors)  # llama.cpp's names (a generic file keeps the input's)
    # A BERT GGUF holds the converter's names; the pooler and position ids are left out, the
    # position and token-type embeddings and 1-D tensors stay float (as llama.cpp's quantize does).
    got = {t.name: t for t in reader.tensors}
    if bert:
        got = {src: got[g] for src, g in ((n, bert_name(n)) for n in safe_open(a.source, framework="np").keys()) if g in got}
    errors, quantized, fallback, skipped_nonfinite = [], [], [], 0
    with safe_open(a.source, framework="np") as f:
        names = [n for n in f.keys() if not bert or bert_name(n) is not None]
        if sorted(names) != sorted(got):
            errors.append(f"tensor names differ: {sorted(set(names) ^ set(got))}")
        for name in names:
            if name not in got:
                continue
            x = f.get_tensor(name)
            t = got[name]
            shape = tuple(int(d) for d in reversed(t.shape.tolist()))
            if shape != tuple(x.shape) and not (x.ndim == 0 and shape == (1,)):
                errors.append(f"{name}: shape {shape} != {x.shape}")
                continue
            raw = bytes(t.data.tobytes())
            if x.dtype.kind != "f" and x.dtype != ml_dtypes.bfloat16:
                if raw != x.tobytes():
                    errors.append(f"{name}: integer tensor bytes changed")
                continue
            xf = x.astype(np.float32)
            eligible = qtype in (Q.F32, Q.F16) or (x.ndim >= 2 and x.shape[-1] % 32 == 0)
            want_type = qtype if eligible else fb
            if bert and (x.ndim < 2 or bert_name(name) in ("position_embd.weight", "token_types.weight")):
                want_type = Q.F32 if x.ndim < 2 else fb
            if t.tensor_type != want_type:
                errors.append(f"{name}: type {t.tensor_type.name}, want {want_type.name}")
                continue
            (quantized if want_type in (Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1) else fallback).append(name)
            rows = xf.reshape(-1, x.shape[-1]) if x.ndim >= 1 else xf.reshape(1, 1)
            if want_type in (Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1):
                blocks = rows.reshape(-1, 32)
                finite = ~np.isnan(blocks).any(axis=1)  # ±inf must match too; NaN follows ggml's C, not numpy
                with np.errstate(all="ignore"):
                    ref = quantize(rows, want_type).reshape(-1)
                bsz = {Q.Q8_0: 34, Q.Q4_0: 18, Q.Q4_1: 20, Q.Q5_0: 22, Q.Q5_1: 24}[want_type]
                ref_b = np.frombuffer(ref.tobytes(), dtype=np.uint8).reshape(-1, bsz)
                got_b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, bsz)
                if want_type in (Q.Q4_0, Q.Q5_0):
                    # An all-zero block: ggml's C keeps max = +0, so d = +0/-16 = -0 (f16 0x8000); numpy
                    # takes the block's first value, which may be -0 (d = +0). Squeeze follows C.
                    ref_b = ref_b.copy()
                    ref_b[(blocks == 0).all(axis=1), 0:2] = [0x00, 0x80]
                skipped_nonfinite += int((~finite).sum())
                bad = np.nonzero((ref_b != got_b).any(axis=1) & finite)[0]
                if len(bad):
                    i = int(bad[0])
                    errors.append(f"{name}: {len(bad)} blocks differ from gguf-py, first #{i}: "
                                  f"values {blocks[i][:6].tolist()}… ours {got_b[i][:6].tolist()} ref {ref_b[i][:6].tolist()}")
            else:
                dt = np.float32 if want_type == Q.F32 else np.float16
                if raw != xf.astype(dt).tobytes():
                    errors.append(f"{name}: {want_type.name} fallback bytes differ")
    print(json.dumps({"ok": not errors, "quantized": len(quantized), "fallback": fallback,
                      "nan_blocks_skipped": skipped_nonfinite, "errors": errors[:20]}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
