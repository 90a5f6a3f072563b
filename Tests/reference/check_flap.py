#!/usr/bin/env python3
"""Reference FLAP (An et al., 2024: fluctuation-based adaptive structured pruning), FFN channels,
written out in float64 numpy on a Llama HF directory: the dense model's forward over the same
calibration windows Squeeze cuts; per block, each down_proj input channel's mean and variance over
the tokens; WIFV score = variance × squared norm of the down_proj column; scores standardised per
block (sample standard deviation); one threshold over all blocks (`adaptive`) or the same fraction
per block (`uniform`); widths rounded to a multiple; bias = Σ over removed j of W[:, j] · mean[j].

  check_flap.py HF_DIR TEXT SAMPLES SEQ_LEN RATIO STRUCTURE MULTIPLE OUT_DIR
      OUT_DIR is Squeeze's safetensors export of `prune: {method: flap}` alone. Its config.json
      widths must equal the reference's; each block's kept channels must be the reference's (a swap
      of two channels whose reference scores differ by < 1e-6 is a tie and allowed); gate/up rows
      and down columns must be the input's values at the kept channels, exactly; down_proj's bias
      within 1e-4 of the reference's (relative to its largest value).
Prints JSON; exit 1 on failure.
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import encode, forward, windows  # noqa: E402


def main():
    hf, text, samples, seq_len, ratio, structure, multiple, out = sys.argv[1:9]
    samples, seq_len, ratio, multiple = int(samples), int(seq_len), float(ratio), int(multiple)
    c = json.load(open(os.path.join(hf, "config.json")))
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(hf, "model.safetensors")).items()}
    batch = windows(encode(hf, open(text, encoding="utf-8").read()), samples, seq_len, "calibration")
    layers, hidden = c["num_hidden_layers"], c["hidden_size"]
    sums, squares, tokens = {}, {}, 0

    def on_product(i, _, act):
        sums[i] = sums.get(i, 0) + act.sum(0)
        squares[i] = squares.get(i, 0) + (act * act).sum(0)

    forward(hf, batch, on_product)
    n = samples * seq_len
    mean = [sums[i] / n for i in range(layers)]
    var = [np.maximum(squares[i] / n - mean[i] ** 2, 0) for i in range(layers)]
    down = [w[f"model.layers.{i}.mlp.down_proj.weight"] for i in range(layers)]
    score = [var[i] * (down[i] ** 2).sum(0) for i in range(layers)]
    z = [(s - s.mean()) / s.std(ddof=1) for s in score]
    widths = [len(s) for s in z]
    heads, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    d = c.get("head_dim") or hidden // heads
    block_params = sum(hidden * (2 * heads * d + 2 * kv * d) + 3 * hidden * f for f in widths)
    remove = int(round(ratio * block_params / (3 * hidden)))
    total = sum(widths)
    if structure == "uniform":
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
        if not (np.array_equal(o[p + "mlp.up_proj.weight"], w[p + "mlp.up_proj.weight"][kept].astype(np.float32))
                and np.array_equal(o[p + "mlp.down_proj.weight"], w[p + "mlp.down_proj.weight"][:, kept].astype(np.float32))):
            problems.append(f"block {i}: up/down values are not the input's at the kept channels")
        removed = np.ones(widths[i], bool)
        removed[kept] = False
        bias = down[i][:, removed] @ mean[i][removed]
        got = o[p + "mlp.down_proj.bias"].astype(np.float64)
        rel = float(np.abs(got - bias).max() / max(np.abs(bias).max(), 1e-30))
        worst_bias = max(worst_bias, rel)
        if rel > 1e-4:
            problems.append(f"block {i}: down_proj bias differs by {rel:.2e} (relative)")
    print(json.dumps({"ok": not problems, "widths": got_widths, "reference_widths": want,
                      "bias_max_relative_difference": worst_bias, "problems": problems}))
    sys.exit(0 if not problems else 1)


if __name__ == "__main__":
    main()
