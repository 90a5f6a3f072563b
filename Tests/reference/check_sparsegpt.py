#!/usr/bin/env python3
"""Reference SparseGPT (Frantar & Alistarh, the authors' algorithm written out in float64 numpy) on
block 0's q_proj of a Llama HF directory, whose calibration input is exact in numpy: the first
RMSNorm of the token embeddings of the same calibration windows Squeeze cuts.

  check_sparsegpt.py HF_DIR TEXT SAMPLES SEQ_LEN PATTERN SQUEEZE_SAFETENSORS
      PATTERN is a sparsity (0.5) or N:M (2:4). Squeeze's pruned weight must have the same zeros
      (>= 99.9% of positions agree) and values within 1e-3 relative (Frobenius) of the reference.
Prints JSON; exit 1 on failure.
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import encode, windows  # noqa: E402


def hessian_factor(x, w, damp=0.01):
    """U with H^-1 = U^T U; H = 2/n X^T X, dead inputs set to 1 (weights zeroed), dampened."""
    h = 2.0 / x.shape[0] * (x.T @ x)
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h += damp * np.mean(np.diag(h)) * np.eye(h.shape[0])
    hinv = np.linalg.inv(np.linalg.cholesky(h))
    hinv = hinv.T @ hinv
    return np.linalg.cholesky(hinv).T


def sparsegpt(w, x, sparsity=None, n=0, m=0, block=128):
    w = w.copy()
    rows, cols = w.shape
    u = hessian_factor(x, w)
    if m:
        block = max(m, 128 // m * m)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        cnt = i2 - i1
        w1 = w[:, i1:i2].copy()
        q1 = np.zeros_like(w1)
        err1 = np.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        mask = np.zeros_like(w1, dtype=bool)
        if not m:
            score = (w1 ** 2 / np.diag(u1)[None, :] ** 2).ravel()
            k = int(np.floor(sparsity * score.size + 0.5))
            mask.ravel()[np.argsort(score, kind="stable")[:k]] = True
        for i in range(cnt):
            col = w1[:, i]
            d = u1[i, i]
            if m and (i1 + i) % m == 0:
                score = w1[:, i:i + m] ** 2 / np.diag(u1)[i:i + m][None, :] ** 2
                idx = np.argsort(score, axis=1, kind="stable")[:, :n]
                mask[np.arange(rows)[:, None], i + idx] = True
            q = col.copy()
            q[mask[:, i]] = 0
            q1[:, i] = q
            e = (col - q) / d
            w1[:, i:] -= np.outer(e, u1[i, i:])
            err1[:, i] = e
        w[:, i1:i2] = q1
        w[:, i2:] -= err1 @ u[i1:i2, i2:]
    return w


def main():
    hf_dir, text, samples, seq_len, pattern, out = sys.argv[1:7]
    c = json.load(open(os.path.join(hf_dir, "config.json")))
    wts = load_file(os.path.join(hf_dir, "model.safetensors"))
    ids = windows(encode(hf_dir, open(text, encoding="utf-8").read()), int(samples), int(seq_len), "calibration")
    x = wts["model.embed_tokens.weight"].astype(np.float64)[np.array(ids).ravel()]
    x = x / np.sqrt((x * x).mean(-1, keepdims=True) + c["rms_norm_eps"]) * wts["model.layers.0.input_layernorm.weight"]
    name = "model.layers.0.self_attn.q_proj.weight"
    w = wts[name].astype(np.float64)
    if ":" in pattern:
        n, m = map(int, pattern.split(":"))
        ref = sparsegpt(w, x, n=n, m=m)
    else:
        ref = sparsegpt(w, x, sparsity=float(pattern))
    got = load_file(out)[name].astype(np.float64)
    agree = float(((ref == 0) == (got == 0)).mean())
    rel = float(np.linalg.norm(ref - got) / np.linalg.norm(ref))
    ok = agree >= 0.999 and rel <= 1e-3
    print(json.dumps({"ok": ok, "zero_agreement": agree, "relative_difference": rel, "sparsity": float((got == 0).mean()),
                      "shape": list(w.shape)}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
