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

  check_slice.py HF_DIR TEXT SAMPLES SEQ_LEN KEPT OUT_DIR [REFIT]
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


def main():
    hf, text, samples, seq_len, kept, out = sys.argv[1:7]
    refit = (sys.argv[7] if len(sys.argv) > 7 else "true") == "true"
    samples, seq_len, kept = int(samples), int(seq_len), int(kept)
    c = json.load(open(os.path.join(hf, "config.json")))
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(hf, "model.safetensors")).items()}
    ids = encode(hf, open(text, encoding="utf-8").read())
    batch = windows(ids, samples, seq_len, "calibration")
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
    vals, vecs = np.linalg.eigh(sum(places))
    q = vecs[:, ::-1][:, :kept].copy()
    for k in range(kept):
        if q[np.argmax(np.abs(q[:, k])), k] < 0:
            q[:, k] = -q[:, k]

    def reader(p):
        if not refit or kept == n:
            return q
        c_p = places[p]
        m = q.T @ c_p @ q
        f = np.sqrt(np.trace(c_p) / np.trace(m))
        m = m + 1e-6 * np.trace(m) / kept * np.eye(kept)
        return np.linalg.solve(m, (c_p @ q).T).T / f

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
    problems = []
    oc = json.load(open(os.path.join(out, "config.json")))
    if oc["hidden_size"] != kept or oc.get("tie_word_embeddings", False):
        problems.append(f"config hidden_size {oc['hidden_size']} (want {kept}), tied {oc.get('tie_word_embeddings')}")
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
    share = float(vals[::-1][:kept].sum() / vals.sum())
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
