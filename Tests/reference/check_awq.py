#!/usr/bin/env python3
"""Reference AWQ (Lin et al., 2024) in float64 numpy on a Llama HF directory, for the grid of a
`quantize: {bits: B, group_size: G}` stage (symmetric round to nearest, minmax): the dense model's
forward over the calibration windows Squeeze cuts; per block, the inputs of q/k/v, o, gate/up and
down; for q/k/v, gate/up and down, s = mean|x|^α / (mean ŵ^(1−α) + 1e-4) clamped at 1e-4 (ŵ: |w|
over its group's largest, averaged over the group's rows), normalised by sqrt(max·min), α = i/grid,
for v → o too where every head has its own v (its rows, and bias, take 1/s),
with s = 1 as the baseline; the loss is the outputs' squared error ‖X Wᵀ − X (Q(W·diag s)/s)ᵀ‖²
computed from the tokens themselves (not a Gram). Then per row and group of v, o, gate, up and down,
clipping to c·max|w|, c in 1, 0.95, …, 0.55, scored by that group's share of the outputs.

  check_awq.py HF_DIR TEXT SAMPLES SEQ_LEN BITS GROUP GRID OUT_DIR
      OUT_DIR holds Squeeze's safetensors export of `calibrate → awq → quantize → export`, with its
      manifest.json. Checks, per block: each chosen α's reference loss is within 1e-4 of the best
      (relative; float32 against float64 may break near-ties differently); the norms (and up_proj's
      rows) are the input's divided by the reference's scales at Squeeze's α, within 1e-4; q and k
      (never clipped) are Q(W·diag s) within one grid step (the model is written scaled: weights
      W·diag s, norms over s); for v, o, gate, up and down, the output error of Squeeze's weights
      on the scaled inputs is at most 1.001 × the reference's best clipping.
Prints JSON; exit 1 on failure.
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import encode, forward, windows  # noqa: E402


def rtn(w, bits, group):
    """Symmetric round to nearest in groups along rows (np.rint: half to even), dequantized."""
    g = w.reshape(w.shape[0], -1, group)
    scale = np.abs(g).max(-1, keepdims=True) / (2 ** (bits - 1) - 1)
    q = np.clip(np.rint(np.divide(g, scale, out=np.zeros_like(g), where=scale > 0)), -2 ** (bits - 1),
                2 ** (bits - 1) - 1)
    return (q * scale).reshape(w.shape)


def main():
    hf, text, samples, seq_len, bits, group, grid, out = sys.argv[1:9]
    samples, seq_len, bits, group, grid = int(samples), int(seq_len), int(bits), int(group), int(grid)
    c = json.load(open(os.path.join(hf, "config.json")))
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(hf, "model.safetensors")).items()}
    o = {k: v.astype(np.float64) for k, v in load_file(os.path.join(out, "model.safetensors")).items()}
    found = json.load(open(os.path.join(out, "manifest.json")))["awq"]["groups"]
    batch = windows(encode(hf, open(text, encoding="utf-8").read()), samples, seq_len, "calibration")
    inputs = {}

    def on_inputs(i, _, att, ctx, mlp, act):
        for k, x in (("att", att), ("ctx", ctx), ("mlp", mlp), ("act", act)):
            inputs.setdefault((i, k), []).append(x)

    forward(hf, batch, on_inputs=on_inputs)
    x = {k: np.concatenate(v) for k, v in inputs.items()}
    problems, checked = [], 0

    def loss(X, W, s):
        return sum(float(((X @ (rtn(m * s, bits, group) / s - m).T) ** 2).sum()) for m in W)

    def scales(X, W, alpha):
        xm = np.abs(X).mean(0)
        wn = np.concatenate([np.abs(m.reshape(m.shape[0], -1, group)) / np.abs(m.reshape(m.shape[0], -1, group)).max(
            -1, keepdims=True) for m in W]).reshape(-1, X.shape[1]).mean(0)
        s = np.maximum(xm ** alpha / (wn ** (1 - alpha) + 1e-4), 1e-4)
        return s / np.sqrt(s.max() * s.min())

    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        chosen = {g["group"]: g.get("alpha") for g in found if g["block"] == i}
        plan = [("attention", "att", ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], "input_layernorm"),
                ("mlp", "mlp", ["mlp.gate_proj", "mlp.up_proj"], "post_attention_layernorm"),
                ("down", "act", ["mlp.down_proj"], None)]
        heads = c.get("layer_num_attention_heads", [c["num_attention_heads"]] * c["num_hidden_layers"])[i]
        kv = c.get("layer_num_key_value_heads", [c.get("num_key_value_heads", c["num_attention_heads"])]
                   * c["num_hidden_layers"])[i]
        if heads == kv:  # v → o: o's inputs are v's rows, one per head
            plan.insert(1, ("output", "ctx", ["self_attn.o_proj"], None))
        s_of = {}
        for name, key, linears, norm in plan:
            X, W = x[(i, key)], [w[p + n + ".weight"] for n in linears]
            one = np.ones(X.shape[1])
            losses = {None: loss(X, W, one)}
            for a in range(grid):
                losses[a / grid] = loss(X, W, scales(X, W, a / grid))
            best = min(losses.values())
            got = chosen.get(name, "missing")
            # Squeeze writes α null when no scaling (s = 1) won.
            mine = losses.get(got) if got != "missing" else None
            if mine is None or mine > best * (1 + 1e-4):
                problems.append(f"block {i} {name}: α {got} loses {mine}, best {best} at "
                                f"{min(losses, key=losses.get)}")
            s = scales(X, W, got) if isinstance(got, float) else one
            s_of[name] = s
            checked += 1
            if norm:
                want, have = w[p + norm + ".weight"] / s, o[p + norm + ".weight"]
                if np.abs(want - have).max() > 1e-4 * np.abs(want).max():
                    problems.append(f"block {i} {norm}: differs from the input over s by {np.abs(want - have).max()}")
        # q and k: quantized, never clipped.
        step = lambda m: np.abs(m.reshape(m.shape[0], -1, group)).max(-1) / (2 ** (bits - 1) - 1)  # noqa: E731
        for n in ("self_attn.q_proj", "self_attn.k_proj"):
            want = rtn(w[p + n + ".weight"] * s_of["attention"], bits, group)
            diff = np.abs(want - o[p + n + ".weight"]).reshape(want.shape[0], -1, group).max(-1)
            if (diff > 1.01 * step(w[p + n + ".weight"] * s_of["attention"]) + 1e-6).any():
                problems.append(f"block {i} {n}: more than one grid step from the reference's codes")
        # Clipped linears: Squeeze's output error against the reference's best clipping.
        up = w[p + "mlp.up_proj.weight"] / s_of["down"][:, None]
        so = s_of.get("output", np.ones(w[p + "self_attn.o_proj.weight"].shape[1]))
        v = w[p + "self_attn.v_proj.weight"] * s_of["attention"]
        if "output" in s_of:
            v = v / so[:, None]
        if p + "self_attn.v_proj.bias" in w and "output" in s_of:
            want, have = w[p + "self_attn.v_proj.bias"] / so, o[p + "self_attn.v_proj.bias"]
            if np.abs(want - have).max() > 1e-4 * np.abs(want).max():
                problems.append(f"block {i} v_proj bias: differs from the input over s by {np.abs(want - have).max()}")
        clip = [("self_attn.v_proj", v, x[(i, "att")] / s_of["attention"]),
                ("self_attn.o_proj", w[p + "self_attn.o_proj.weight"] * so, x[(i, "ctx")] / so),
                ("mlp.gate_proj", w[p + "mlp.gate_proj.weight"] * s_of["mlp"], x[(i, "mlp")] / s_of["mlp"]),
                ("mlp.up_proj", up * s_of["mlp"], x[(i, "mlp")] / s_of["mlp"]),
                ("mlp.down_proj", w[p + "mlp.down_proj.weight"] * s_of["down"], x[(i, "act")] / s_of["down"])]
        for n, W, X in clip:
            rows, cols = W.shape
            best = np.full((rows, cols // group), np.inf)
            for r in range(10):
                ratio = 1 - r / 20
                g = W.reshape(rows, -1, group)
                m = np.abs(g).max(-1, keepdims=True) * ratio
                d = (rtn(np.clip(g, -m, m).reshape(rows, cols), bits, group) - W).reshape(rows, -1, group)
                e = np.stack([((X[:, k * group:(k + 1) * group] @ d[:, k, :].T) ** 2).sum(0) for k in range(cols // group)], 1)
                best = np.minimum(best, e)
            d = (o[p + n + ".weight"] - W).reshape(rows, -1, group)
            mine = sum(float(((X[:, k * group:(k + 1) * group] @ d[:, k, :].T) ** 2).sum()) for k in range(cols // group))
            if mine > 1.001 * best.sum() + 1e-9:
                problems.append(f"block {i} {n}: clipped output error {mine} above the reference's best {best.sum()}")
            checked += 1
    print(json.dumps({"ok": not problems, "checked": checked, "problems": problems[:10]}))
    sys.exit(0 if not problems else 1)


if __name__ == "__main__":
    main()
