#!/usr/bin/env python3
"""Reference FLAP (An et al., 2024: fluctuation-based adaptive structured pruning), FFN channels,
written out in float64 numpy on a Llama HF directory: the dense model's forward over the same
calibration windows Squeeze cuts; per block, each down_proj input channel's mean and variance over
the tokens; WIFV score = variance × squared norm of the down_proj column; scores standardised per
block (sample standard deviation); one threshold over all blocks (`adaptive`) or the same fraction
per block (`uniform`); widths rounded to a multiple; bias = Σ over removed j of W[:, j] · mean[j];
with `refit`, down_proj's kept columns and bias by least squares on the calibration inputs
(W_K' = W_K + W_R M, bias = W_R (μ_R − M μ_K), M = C_RK (C_KK + 0.01·mean diag·I)⁻¹).

With HEADS `query` or `group` (uniform only), attention heads too: each o_proj input channel's
mean and variance, a head's score the sum of its channels' WIFV (variance × ‖o_proj column‖²), per
block round(ratio × attention parameters ÷ a unit's) units removed — the lowest-scored query head
of every KV group per unit (`query`) or the lowest-scored KV groups (`group`) — and the rest of
the block's share as FFN channels; q/k/v rows and o_proj columns narrowed to the kept heads, o_proj
compensated or refit as down_proj is.

  check_flap.py HF_DIR TEXT SAMPLES SEQ_LEN RATIO STRUCTURE MULTIPLE REFIT OUT_DIR [SCORE [HEADS]]
      OUT_DIR is Squeeze's safetensors export of `prune: {method: flap}` alone; REFIT is true or
      false. Its config.json widths must equal the reference's; each block's kept channels must be
      the reference's (a swap of two channels whose reference scores differ by < 1e-6 is a tie and
      allowed); gate/up rows must be the input's values at the kept channels, exactly, and so must
      down's columns without refit; down_proj's bias (and refit columns) within 1e-4 of the
      reference's without refit, 2e-3 with it (Squeeze sums the Gram in F32), relative to the largest.
Prints JSON; exit 1 on failure.
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import encode, forward, windows  # noqa: E402


def cut(weight, gram, mean, n, kept, refit):
    """A narrowed linear's expected kept columns and bias: the input's columns and the removed ones'
    mean contribution, or with `refit` the least-squares refit on the inputs' covariance."""
    removed = np.ones(weight.shape[1], bool)
    removed[kept] = False
    wk, wr = weight[:, kept], weight[:, removed]
    if not removed.any():
        return wk, np.zeros(weight.shape[0])
    if not refit:
        return wk, wr @ mean[removed]
    cov = gram / n - np.outer(mean, mean)
    ckk = cov[np.ix_(kept, kept)]
    ckk = ckk + 0.01 * np.mean(np.diag(ckk)) * np.eye(len(kept))
    m = np.linalg.solve(ckk, cov[np.ix_(kept, np.flatnonzero(removed))]).T
    return wk + wr @ m, wr @ (mean[removed] - m @ mean[kept])


def relative(got, want):
    """The largest difference relative to the largest expected magnitude."""
    return float(np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-30))


def main():
    hf, text, samples, seq_len, ratio, structure, multiple, refit, out = sys.argv[1:10]
    kind = sys.argv[10] if len(sys.argv) > 10 else "fluctuation"
    head_mode = sys.argv[11] if len(sys.argv) > 11 else "none"
    refit = refit == "true"
    samples, seq_len, ratio, multiple = int(samples), int(seq_len), float(ratio), int(multiple)
    c = json.load(open(os.path.join(hf, "config.json")))
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(hf, "model.safetensors")).items()}
    batch = windows(encode(hf, open(text, encoding="utf-8").read()), samples, seq_len, "calibration")
    layers, hidden = c["num_hidden_layers"], c["hidden_size"]
    sums, squares, grams = {}, {}, {}
    csums, csquares, cgrams = {}, {}, {}

    def on_inputs(i, _, h_att, ctx, h, act):
        sums[i] = sums.get(i, 0) + act.sum(0)
        squares[i] = squares.get(i, 0) + (act * act).sum(0)
        grams[i] = grams.get(i, 0) + act.T @ act
        csums[i] = csums.get(i, 0) + ctx.sum(0)
        csquares[i] = csquares.get(i, 0) + (ctx * ctx).sum(0)
        cgrams[i] = cgrams.get(i, 0) + ctx.T @ ctx

    forward(hf, batch, on_inputs=on_inputs)
    n = samples * seq_len
    mean = [sums[i] / n for i in range(layers)]
    var = [np.maximum(squares[i] / n - mean[i] ** 2, 0) for i in range(layers)]
    down = [w[f"model.layers.{i}.mlp.down_proj.weight"] for i in range(layers)]
    if kind == "wanda":
        score = [np.abs(down[i]).sum(0) * np.sqrt(var[i] + mean[i] ** 2) for i in range(layers)]
    elif kind == "weight-norm":
        score = [np.sqrt((down[i] ** 2).sum(0)) * sum(np.linalg.norm(w[f"model.layers.{i}.mlp.{m}_proj.weight"], axis=1)
                                                     for m in ("up", "gate")) for i in range(layers)]
    else:
        score = [var[i] * (down[i] ** 2).sum(0) for i in range(layers)]
    z = [(s - s.mean()) / s.std(ddof=1) for s in score]
    widths = [len(s) for s in z]
    heads, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    d = c.get("head_dim") or hidden // heads
    block_params = sum(hidden * (2 * heads * d + 2 * kv * d) + 3 * hidden * f for f in widths)
    remove = int(round(ratio * block_params / (3 * hidden)))
    total = sum(widths)
    kept_heads = [(list(range(heads)), list(range(kv)))] * layers
    if head_mode != "none":
        g = heads // kv
        attention = hidden * (2 * heads * d + 2 * kv * d)
        unit = 2 * kv * d * hidden if head_mode == "query" else (2 * g + 2) * d * hidden
        counts, kept_heads = [], []
        for i in range(layers):
            units = int(np.floor(ratio * attention / unit + 0.5))
            units = min(units, g - 1 if head_mode == "query" else kv - 1)
            rest = ratio * (attention + 3 * hidden * widths[i]) - units * unit
            counts.append(widths[i] - max(0, int(np.floor(rest / (3 * hidden) + 0.5))))
            cm = csums[i] / n
            cv = np.maximum(csquares[i] / n - cm ** 2, 0)
            o_w = w[f"model.layers.{i}.self_attn.o_proj.weight"]
            hs = (cv * (o_w ** 2).sum(0)).reshape(heads, d).sum(1)

            def best(items, sc, keep):
                return sorted(sorted(items, key=lambda x: (-sc(x), x))[: max(1, keep)])
            if head_mode == "query":
                q = [h for grp in range(kv) for h in best(range(grp * g, (grp + 1) * g), lambda h: hs[h], g - units)]
                kept_heads.append((q, list(range(kv))))
            else:
                groups = best(range(kv), lambda grp: hs[grp * g:(grp + 1) * g].sum(), kv - units)
                kept_heads.append(([h for grp in groups for h in range(grp * g, (grp + 1) * g)], groups))
    elif structure == "uniform":
        counts = [int(round(f * (1 - remove / total))) for f in widths]
    else:
        ranked = sorted(((z[i][j], -i, -j) for i in range(layers) for j in range(widths[i])), reverse=True)
        counts = [0] * layers
        for _, i, _ in ranked[: total - remove]:
            counts[-i] += 1
    want = [min(widths[i], max(min(multiple, widths[i]), int(np.floor(counts[i] / multiple + 0.5)) * multiple))
            for i in range(layers)]
    oc = json.load(open(os.path.join(out, "config.json")))
    got_widths = oc.get("layer_intermediate_sizes")
    problems = []
    if got_widths != want:
        problems.append(f"widths {got_widths} != reference {want}")
    if head_mode != "none":
        want_heads = [len(q) for q, _ in kept_heads]
        want_kv = [len(k) for _, k in kept_heads]
        if oc.get("layer_num_attention_heads") != want_heads or oc.get("layer_num_key_value_heads") != want_kv:
            problems.append(f"heads {oc.get('layer_num_attention_heads')}/{oc.get('layer_num_key_value_heads')} "
                            f"!= reference {want_heads}/{want_kv}")
    o = load_file(os.path.join(out, "model.safetensors"))
    worst_bias = 0.0
    for i in range(layers):
        if problems:
            break
        p = f"model.layers.{i}."
        g = o[p + "mlp.gate_proj.weight"].astype(np.float64)
        # Which input rows the kept gate rows are (rows are distinct in a random model).
        orig = w[p + "mlp.gate_proj.weight"]
        kept = [int(np.flatnonzero((orig == row).all(1))[0]) for row in g]
        ref = sorted(sorted(range(widths[i]), key=lambda j: (-z[i][j], j))[: want[i]])
        if kept != ref:
            extra, missing = set(kept) - set(ref), set(ref) - set(kept)
            gap = max(abs(z[i][a] - z[i][b]) for a in extra for b in missing)
            if gap >= 1e-6:
                problems.append(f"block {i}: kept {sorted(extra)} instead of {sorted(missing)} (scores differ by {gap:.2e})")
        if not np.array_equal(o[p + "mlp.up_proj.weight"], w[p + "mlp.up_proj.weight"][kept].astype(np.float32)):
            problems.append(f"block {i}: up values are not the input's at the kept channels")
        tol = 2e-3 if refit else 1e-4
        wk, bias = cut(down[i], grams[i], mean[i], n, kept, refit)
        if refit:
            rel_w = relative(o[p + "mlp.down_proj.weight"], wk)
            if rel_w > tol:
                problems.append(f"block {i}: refit down_proj columns differ by {rel_w:.2e} (relative)")
        elif not np.array_equal(o[p + "mlp.down_proj.weight"], down[i][:, kept].astype(np.float32)):
            problems.append(f"block {i}: down values are not the input's at the kept channels")
        rel = relative(o[p + "mlp.down_proj.bias"], bias)
        worst_bias = max(worst_bias, rel)
        if rel > tol:
            problems.append(f"block {i}: down_proj bias differs by {rel:.2e} (relative)")
        if head_mode == "none" or problems:
            continue
        qh, kvh = kept_heads[i]
        qc = [h * d + t for h in qh for t in range(d)]
        kc = [h * d + t for h in kvh for t in range(d)]
        for m, rows in (("q", qc), ("k", kc), ("v", kc)):
            if not np.array_equal(o[p + f"self_attn.{m}_proj.weight"], w[p + f"self_attn.{m}_proj.weight"][rows]
                                  .astype(np.float32)):
                problems.append(f"block {i}: {m}_proj rows are not the input's at the kept heads {qh}/{kvh}")
        ok_, obias = cut(w[p + "self_attn.o_proj.weight"], cgrams[i], csums[i] / n, n, qc, refit)
        rel_o = relative(o[p + "self_attn.o_proj.weight"], ok_)
        if rel_o > tol:
            problems.append(f"block {i}: o_proj columns differ by {rel_o:.2e} (relative)")
        rel = relative(o[p + "self_attn.o_proj.bias"], obias)
        worst_bias = max(worst_bias, rel)
        if rel > tol:
            problems.append(f"block {i}: o_proj bias differs by {rel:.2e} (relative)")
    print(json.dumps({"ok": not problems, "widths": got_widths, "reference_widths": want,
                      "bias_max_relative_difference": worst_bias, "problems": problems}))
    sys.exit(0 if not problems else 1)


if __name__ == "__main__":
    main()
