#!/usr/bin/env python3
"""Reference SliceGPT (Ashkboos et al., 2024), uniform variant, in float64 numpy on a Llama HF
directory: the dense model's forward over the calibration windows Squeeze cuts; every residual
stream vector a norm reads (each block's input, the stream after its attention, the last block's
output) divided by its RMS (√(mean square + eps)); their Gram's eigenvectors by falling eigenvalue,
each signed so its largest component is positive, the leading `kept` as Qₖ; norms folded into the
linears that read them, W·Qₖ for the embedding and those linears (the head untied), Qₖᵀ·W for
o_proj and down_proj, every norm weight √(hidden / kept). With REFIT (`true`, Squeeze's default), a
linear that reads the stream at place p (block i's input: q/k/v; its stream after the attention:
gate/up; the last output: the head) multiplies by R_p = C_p·Qₖ·(Qₖᵀ·C_p·Qₖ + 1e-6·mean diag)⁻¹ / f_p
instead of Qₖ, C_p the Gram of the normalised vectors there and f_p = √(tr C_p / tr Qₖᵀ·C_p·Qₖ).

With VARIANT `perblock` (`uniform: false`), every place p gets its own rotation Q_p from the stream
the already sliced model computes there: place 0 from the embedding; then block by block the sliced
stream x (in Q_p's basis) goes through the attention (the FFN) with sliced readers, and the full
signal x·Q_pᵀ + output is normalised and its Gram's eigenvectors give Q_(p+1); the residual carries
the shortcut Q_pᵀ·Q_(p+1) (`attn_shortcut_Q`, `mlp_shortcut_Q`), the embedding is E·Q_0, o_proj
Q_(2i+1)ᵀ·W, down_proj Q_(2i+2)ᵀ·W, and each reader its own place's Q_p (or refit map).

  check_slice.py HF_DIR TEXT SAMPLES SEQ_LEN KEPT OUT_DIR [REFIT] [VARIANT]
      OUT_DIR is Squeeze's safetensors export of `slice` alone. Its config must keep KEPT
      dimensions, untied; the logits of Squeeze's sliced model and of the reference's (both by the
      numpy forward, on 2 evaluation windows) must agree within 1e-3 of the largest logit, and
      with KEPT equal to hidden both must equal the unsliced model's within 1e-4 of it.
Prints JSON; exit 1 on failure.
"""
import json
import os
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import encode, forward, windows  # noqa: E402


def rotation(gram, kept):
    """The leading `kept` eigenvectors of gram by falling eigenvalue, each signed so its largest
    component is positive; and the eigenvalues, falling."""
    vals, vecs = np.linalg.eigh(gram)
    q = vecs[:, ::-1][:, :kept].copy()
    for k in range(kept):
        if q[np.argmax(np.abs(q[:, k])), k] < 0:
            q[:, k] = -q[:, k]
    return q, vals[::-1]


def reader_map(c_p, q, kept, n, refit):
    if not refit or kept == n:
        return q
    m = q.T @ c_p @ q
    f = np.sqrt(np.trace(c_p) / np.trace(m))
    m = m + 1e-6 * np.trace(m) / kept * np.eye(kept)
    return np.linalg.solve(m, (c_p @ q).T).T / f


def per_block(c, w, batch, kept, refit):
    """The per-block variant's weights (float64), computed place by place on the sliced model."""
    n, eps, layers = c["hidden_size"], c["rms_norm_eps"], c["num_hidden_layers"]
    nh = c["num_attention_heads"]
    nkv = c.get("num_key_value_heads", nh)
    d = c.get("head_dim") or n // nh
    L = len(batch[0])
    inv = 1.0 / c.get("rope_theta", 10000.0) ** (np.arange(0, d, 2) / d)
    ang = np.arange(L)[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)
    mask = np.triu(np.full((L, L), -np.inf), 1)
    scale = np.sqrt(n / kept)

    def rope(x):
        a, b = x[..., : d // 2], x[..., d // 2:]
        return np.concatenate([a * cos[:, None] - b * sin[:, None], b * cos[:, None] + a * sin[:, None]], -1)

    def place(signals):
        gram = sum(u.T @ u for u in (f / np.sqrt((f * f).mean(-1, keepdims=True) + eps) for f in signals))
        q, _ = rotation(gram, kept)
        return q, reader_map(gram, q, kept, n, refit)

    def half(i, k, h, maps):
        p = f"model.layers.{i}."
        if k == 0:
            g = w[p + "input_layernorm.weight"]
            qp, kp, vp = ((w[p + f"self_attn.{m}_proj.weight"] * g @ maps) for m in "qkv")
            q = rope((h @ qp.T).reshape(L, nh, d))
            kk = np.repeat(rope((h @ kp.T).reshape(L, nkv, d)), nh // nkv, axis=1)
            v = np.repeat((h @ vp.T).reshape(L, nkv, d), nh // nkv, axis=1)
            s = np.einsum("qhd,khd->hqk", q, kk) / np.sqrt(d) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            return np.einsum("hqk,khd->qhd", s, v).reshape(L, nh * d) @ w[p + "self_attn.o_proj.weight"].T
        g = w[p + "post_attention_layernorm.weight"]
        gate = h @ (w[p + "mlp.gate_proj.weight"] * g @ maps).T
        up = h @ (w[p + "mlp.up_proj.weight"] * g @ maps).T
        return (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T

    full = [w["model.embed_tokens.weight"][ids] for ids in batch]
    places = [place(full)]
    for i in range(layers):
        for k in range(2):
            q, maps = places[-1]
            xs = [f @ q for f in full]
            hs = [x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * scale for x in xs]
            full = [x @ q.T + half(i, k, h, maps) for x, h in zip(xs, hs)]
            places.append(place(full))
    ref = {"model.embed_tokens.weight": w["model.embed_tokens.weight"] @ places[0][0]}
    for i in range(layers):
        p = f"model.layers.{i}."
        for k, (norm, readers, writer, cut) in enumerate([
                ("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), "self_attn.o_proj",
                 "attn_shortcut_Q"),
                ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj"), "mlp.down_proj", "mlp_shortcut_Q")]):
            q, maps = places[2 * i + k]
            ref[p + norm + ".weight"] = np.full(kept, scale)
            for r in readers:
                ref[p + r + ".weight"] = w[p + r + ".weight"] * w[p + norm + ".weight"] @ maps
            ref[p + writer + ".weight"] = places[2 * i + k + 1][0].T @ w[p + writer + ".weight"]
            ref[p + cut] = q.T @ places[2 * i + k + 1][0]
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    ref["lm_head.weight"] = head * w["model.norm.weight"] @ places[-1][1]
    ref["model.norm.weight"] = np.full(kept, scale)
    return ref


def uniform(hf, c, w, batch, kept, refit):
    """The uniform variant's weights (float64) and the kept share of the variance."""
    n, eps, layers = c["hidden_size"], c["rms_norm_eps"], c["num_hidden_layers"]
    places = [np.zeros((n, n)) for _ in range(2 * layers + 1)]

    def add(v, p):
        u = v / np.sqrt((v * v).mean(-1, keepdims=True) + eps)
        places[p] += u.T @ u

    def on_inputs(i, _, h_att, ctx, h, act):
        # The stream is recovered from the norm's output: x = n1 / g · rms(x) is not needed, as the
        # normalised stream is n1 / g.
        g1 = w[f"model.layers.{i}.input_layernorm.weight"]
        g2 = w[f"model.layers.{i}.post_attention_layernorm.weight"]
        add(h_att / g1, 2 * i)
        add(h / g2, 2 * i + 1)

    forward(hf, batch, on_inputs=on_inputs, on_final=lambda f: add(f, 2 * layers))
    q, vals = rotation(sum(places), kept)

    def reader(p):
        return reader_map(places[p], q, kept, n, refit)

    ref = {}
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    for name, v in w.items():
        part = name.split(".", 3)[-1] if name.startswith("model.layers.") else name
        if name == "model.embed_tokens.weight":
            ref[name] = v @ q
        elif name == "lm_head.weight":
            continue
        elif name == "model.norm.weight" or part in ("input_layernorm.weight", "post_attention_layernorm.weight"):
            ref[name] = np.full(kept, np.sqrt(n / kept))
        elif part.startswith(("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight")):
            ref[name] = v * w[name.replace(part, "input_layernorm.weight")] @ reader(2 * int(name.split(".")[2]))
        elif part in ("mlp.gate_proj.weight", "mlp.up_proj.weight"):
            norm = w[name.replace(part, "post_attention_layernorm.weight")]
            ref[name] = v * norm @ reader(2 * int(name.split(".")[2]) + 1)
        elif part in ("self_attn.o_proj.weight", "mlp.down_proj.weight", "self_attn.o_proj.bias", "mlp.down_proj.bias"):
            ref[name] = q.T @ v
        else:
            ref[name] = v
    ref["lm_head.weight"] = head * w["model.norm.weight"] @ reader(2 * layers)
    return ref, float(vals[:kept].sum() / vals.sum())


def main():
    hf, text, samples, seq_len, kept, out = sys.argv[1:7]
    refit = (sys.argv[7] if len(sys.argv) > 7 else "true") == "true"
    variant = sys.argv[8] if len(sys.argv) > 8 else "uniform"
    samples, seq_len, kept = int(samples), int(seq_len), int(kept)
    c = json.load(open(os.path.join(hf, "config.json")))
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(hf, "model.safetensors")).items()}
    ids = encode(hf, open(text, encoding="utf-8").read())
    batch = windows(ids, samples, seq_len, "calibration")
    if variant == "perblock":
        ref, share = per_block(c, w, batch, kept, refit), None
    else:
        ref, share = uniform(hf, c, w, batch, kept, refit)
    n = c["hidden_size"]
    problems = []
    oc = json.load(open(os.path.join(out, "config.json")))
    if oc["hidden_size"] != kept or oc.get("tie_word_embeddings", False):
        problems.append(f"config hidden_size {oc['hidden_size']} (want {kept}), tied {oc.get('tie_word_embeddings')}")
    if oc.get("residual_shortcuts", False) != (variant == "perblock"):
        problems.append(f"config residual_shortcuts is {oc.get('residual_shortcuts')} for the {variant} variant")
    evaluation = windows(ids, 2, seq_len, "evaluation")
    got = forward(out, evaluation)
    with tempfile.TemporaryDirectory() as tmp:
        rc = dict(oc)
        json.dump(rc, open(os.path.join(tmp, "config.json"), "w"))
        for f in os.listdir(out):
            if f.startswith("tokenizer") or f == "special_tokens_map.json":
                os.symlink(os.path.join(out, f), os.path.join(tmp, f))
        save_file({k: v.astype(np.float32) for k, v in ref.items()}, os.path.join(tmp, "model.safetensors"))
        want = forward(tmp, evaluation)
    scale = float(np.abs(want).max())
    diff = float(np.abs(got - want).max()) / scale
    if diff > 1e-3:
        problems.append(f"logits differ from the reference's by {diff:.2e} of the largest")
    result = {"kept": kept, "relative_logit_difference": diff, "kept_variance": share}
    if kept == n:
        dense = forward(hf, evaluation)
        inv = float(np.abs(got - dense).max()) / float(np.abs(dense).max())
        result["unsliced_difference"] = inv
        if inv > 1e-4:
            problems.append(f"ratio 0 changes the logits by {inv:.2e} of the largest (computational invariance)")
    result["ok"] = not problems
    result["problems"] = problems
    print(json.dumps(result))
    sys.exit(0 if not problems else 1)


if __name__ == "__main__":
    main()
