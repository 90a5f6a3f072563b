#!/usr/bin/env python3
"""Independent reference for Squeeze's BERT path: tokenizes a text file with the `tokenizers`
package (the model's tokenizer.json), cuts the same windows (first 80% of the tokens for
calibration, last 20% for evaluation, evenly spaced, [CLS] + window + [SEP]), runs a float64
numpy BERT forward (post-LN, exact GELU) and mean-pools + L2-normalizes like sentence-transformers.
Compares with `squeeze embed --json` output: token ids must be equal, cosine of every embedding
>= 0.99999. With --compare-model, also reports the cosine between two models' embeddings.
Prints JSON; exit 1 on failure.
Usage: bert_reference.py MODEL_DIR TEXT SAMPLES SEQ_LEN PART SQUEEZE_JSON [--compare-model DIR2]"""
import json
import math
import os
import sys

import numpy as np
from safetensors import safe_open
from tokenizers import Tokenizer


def windows(model_dir, text_path, samples, seq_len, part):
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    ids = tok.encode(open(text_path, encoding="utf-8").read(), add_special_tokens=False).ids
    cut = len(ids) * 4 // 5
    lo, hi = (0, cut) if part == "calibration" else (cut, len(ids))
    win = seq_len - 2
    spare = (hi - lo) - win
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    out = []
    for i in range(samples):
        start = lo + (0 if samples == 1 else i * spare // (samples - 1))
        out.append([cls] + ids[start:start + win] + [sep])
    return out


def load(model_dir):
    w = {}
    with safe_open(os.path.join(model_dir, "model.safetensors"), framework="np") as f:
        for k in f.keys():
            w[k] = f.get_tensor(k).astype(np.float64)
    return w


def layer_norm(x, g, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def forward(w, cfg, ids):
    h, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg.get("layer_norm_eps", 1e-12)
    d = h // heads
    ids = np.array(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][: ids.shape[1]][None]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    erf = np.vectorize(math.erf)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda t, n: t @ w[p + n + ".weight"].T + w[p + n + ".bias"]  # noqa: E731
        q, k, v = (lin(x, "attention.self." + n).reshape(*x.shape[:2], heads, d).transpose(0, 2, 1, 3) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s = s / s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        a = layer_norm(lin(ctx, "attention.output.dense") + x, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        f = lin(a, "intermediate.dense")
        f = 0.5 * f * (1 + erf(f / math.sqrt(2)))
        x = layer_norm(lin(f, "output.dense") + a, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    e = x.mean(1)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def main():
    model_dir, text, samples, seq_len, part, ours_path = sys.argv[1:7]
    samples, seq_len = int(samples), int(seq_len)
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    ours = json.load(open(ours_path))
    ids = windows(model_dir, text, samples, seq_len, part)
    errors = []
    if ids != ours["ids"]:
        bad = next(i for i in range(len(ids)) if ids[i] != ours["ids"][i])
        errors.append(f"token ids of sample {bad} differ: {ids[bad][:12]} vs {ours['ids'][bad][:12]}")
    ref = forward(load(model_dir), cfg, ids)
    got = np.array(ours["embeddings"], dtype=np.float64)
    cos = (ref * got).sum(1) / np.linalg.norm(got, axis=1)
    if cos.min() < 0.99999:
        errors.append(f"embedding cosine with numpy {cos.min():.7f} < 0.99999")
    out = {"ok": not errors, "samples": samples, "min_cosine": float(cos.min()), "errors": errors}
    if "--compare-model" in sys.argv:
        other = sys.argv[sys.argv.index("--compare-model") + 1]
        out["cosine_between_models"] = float(((forward(load(other), cfg, ids) * ref).sum(1)).mean())
    print(json.dumps(out))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
