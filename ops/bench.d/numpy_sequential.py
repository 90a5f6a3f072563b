#!/usr/bin/env python3
"""A straightforward numpy implementation of what `ops/bench decoder` times Squeeze on: calibrated
compression of every block matrix of a Llama HF directory, block by block, true-sequential inside
each block as Squeeze runs it (Q/K/V, then O on the compressed attention, then gate/up, then down),
each block's compressed output feeding the next. float32 activations, float64 Hessians; the authors'
SparseGPT (lazy blocks of 128, 1% dampening) and GPTQ (asymmetric int4, groups of 64, act order
with static groups, min/max grid) written out in numpy, BLAS for every product.

  numpy_sequential.py HF_DIR TEXT METHOD [SAMPLES SEQ_LEN]
      METHOD: sparsegpt-50 | gptq-int4-g64. Prints one JSON line: wall seconds (calibration and
      compression; loading excluded), peak RSS, and the block sparsity reached.
"""
import json
import os
import resource
import sys
import time

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "reference"))
from llama_reference import encode, windows  # noqa: E402


def hessian_inverse_factor(h, w, damp=0.01):
    """Upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU) after zeroing dead inputs and dampening."""
    h = h.copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h += damp * np.mean(np.diag(h)) * np.eye(h.shape[0])
    hinv = np.linalg.inv(np.linalg.cholesky(h))
    return np.linalg.cholesky(hinv.T @ hinv).T.astype(np.float32)


def sparsegpt(w, h, sparsity=0.5, block=128):
    rows, cols = w.shape
    u = hessian_inverse_factor(h, w)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        w1 = w[:, i1:i2].copy()
        q1 = np.zeros_like(w1)
        err1 = np.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        score = w1 ** 2 / np.diag(u1)[None, :] ** 2
        mask = score <= np.sort(score, axis=None)[int(score.size * sparsity)]
        for i in range(i2 - i1):
            col = w1[:, i]
            q = np.where(mask[:, i], 0, col)
            q1[:, i] = q
            e = (col - q) / u1[i, i]
            w1[:, i:] -= np.outer(e, u1[i, i:])
            err1[:, i] = e
        w[:, i1:i2] = q1
        w[:, i2:] -= err1 @ u[i1:i2, i2:]
    return w


def grid(g, bits=4):
    lo, hi = np.minimum(g.min(1), 0), np.maximum(g.max(1), 0)
    scale = (hi - lo) / (2 ** bits - 1)
    scale[scale == 0] = 1
    return scale, np.round(-lo / scale)


def gptq(w, h, group=64, bits=4, block=128):
    rows, cols = w.shape
    maxq = 2 ** bits - 1
    groups = [grid(w[:, i:i + group], bits) for i in range(0, cols, group)]
    perm = np.argsort(-np.diag(h), kind="stable")
    w = w[:, perm]
    u = hessian_inverse_factor(h[perm][:, perm], w)
    q = np.zeros_like(w)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        w1 = w[:, i1:i2].copy()
        err1 = np.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = w1[:, i]
            scale, zero = groups[perm[i1 + i] // group]
            qc = (np.clip(np.round(col / scale) + zero, 0, maxq) - zero) * scale
            q[:, i1 + i] = qc
            e = (col - qc) / u1[i, i]
            w1[:, i:] -= np.outer(e, u1[i, i:])
            err1[:, i] = e
        w[:, i2:] -= err1 @ u[i1:i2, i2:]
    return q[:, np.argsort(perm)]


def main():
    hf_dir, text, method = sys.argv[1:4]
    samples, seq_len = (int(sys.argv[4]), int(sys.argv[5])) if len(sys.argv) > 5 else (128, 256)
    c = json.load(open(os.path.join(hf_dir, "config.json")))
    wts = load_file(os.path.join(hf_dir, "model.safetensors"))
    ids = np.array(windows(encode(hf_dir, open(text, encoding="utf-8").read()), samples, seq_len, "calibration"))
    H, nh = c["hidden_size"], c["num_attention_heads"]
    nkv = c.get("num_key_value_heads", nh)
    d = c.get("head_dim") or H // nh
    eps, theta = c["rms_norm_eps"], c.get("rope_theta", 10000.0)
    inv = 1.0 / theta ** (np.arange(0, d, 2) / d)
    ang = np.arange(seq_len)[:, None] * inv[None, :]
    cos, sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
    compress = (lambda w, h: sparsegpt(w, h)) if method == "sparsegpt-50" else (lambda w, h: gptq(w, h))

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    def rope(x):  # [windows, L, heads, d]
        a, b = x[..., : d // 2], x[..., d // 2:]
        cs, sn = cos[None, :, None], sin[None, :, None]
        return np.concatenate([a * cs - b * sn, b * cs + a * sn], -1)

    def calibrated(name, x):
        w = wts[name].astype(np.float32).copy()
        h = (2.0 / x.shape[0]) * (x.T.astype(np.float64) @ x.astype(np.float64))
        wts[name] = compress(w, h).astype(np.float32)
        return wts[name]

    def attention(q, k, v):
        q = rope(q.reshape(samples, seq_len, nh, d))
        k = np.repeat(rope(k.reshape(samples, seq_len, nkv, d)), nh // nkv, axis=2)
        v = np.repeat(v.reshape(samples, seq_len, nkv, d), nh // nkv, axis=2)
        out = np.empty_like(q)
        causal = np.triu(np.full((seq_len, seq_len), -np.inf, dtype=np.float32), 1)
        for s in range(samples):
            sc = np.einsum("qhd,khd->hqk", q[s], k[s]) / np.float32(np.sqrt(d)) + causal
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            sc /= sc.sum(-1, keepdims=True)
            out[s] = np.einsum("hqk,khd->qhd", sc, v[s])
        return out.reshape(samples * seq_len, nh * d)

    t0 = time.perf_counter()
    x = wts["model.embed_tokens.weight"][ids.ravel()].astype(np.float32)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        xn = rms(x, wts[p + "input_layernorm.weight"])
        q, k, v = (xn @ calibrated(p + f"self_attn.{n}_proj.weight", xn).T for n in "qkv")
        ctx = attention(q, k, v)
        x = x + ctx @ calibrated(p + "self_attn.o_proj.weight", ctx).T
        hn = rms(x, wts[p + "post_attention_layernorm.weight"])
        g, up = (hn @ calibrated(p + f"mlp.{n}_proj.weight", hn).T for n in ("gate", "up"))
        act = g / (1 + np.exp(-g)) * up
        x = x + act @ calibrated(p + "mlp.down_proj.weight", act).T
    seconds = time.perf_counter() - t0
    names = [n for n in wts if n.startswith("model.layers.") and n.endswith("proj.weight")]
    sparsity = sum(int((wts[n] == 0).sum()) for n in names) / sum(wts[n].size for n in names)
    print(json.dumps({"name": method, "peer": "numpy", "numpy": np.__version__, "compute_s": round(seconds, 1),
                      "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "block_sparsity": sparsity}))


if __name__ == "__main__":
    main()
