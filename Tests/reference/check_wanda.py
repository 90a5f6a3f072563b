#!/usr/bin/env python3
"""Check Wanda pruning of encoder layer 0's query/key/value weights independently: their input is
the embedding output, so numpy recomputes it (float64) for the same calibration windows
(bert_reference.windows), takes ||X_j||_2 per input feature, and in each output row zeroes the k
smallest |W_ij| * ||X_j|| (stable order). At most 0.1% of the weights may differ (float32 vs
float64 activations can swap near-equal scores); kept weights must be unchanged.
Prints JSON; exit 1 on failure.
Usage: check_wanda.py MODEL_DIR TEXT SAMPLES SEQ_LEN SPARSITY OUTPUT.safetensors"""
import json
import os
import sys

import numpy as np
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bert_reference import layer_norm, load, windows  # noqa: E402


def main():
    model_dir, text, samples, seq_len, sparsity, out = sys.argv[1:7]
    samples, seq_len, sparsity = int(samples), int(seq_len), float(sparsity)
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = load(model_dir)
    ids = np.array(windows(model_dir, text, samples, seq_len, "calibration"))
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:seq_len][None]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], cfg.get("layer_norm_eps", 1e-12))
    norms = np.sqrt((x.reshape(-1, x.shape[-1]) ** 2).sum(0))
    errors, report = [], {}
    with safe_open(out, framework="np") as f:
        for n in ("query", "key", "value"):
            name = f"encoder.layer.0.attention.self.{n}.weight"
            orig = w[name].astype(np.float32)
            got = f.get_tensor(name)
            k = int(np.floor(sparsity * orig.shape[1] + 0.5))
            score = np.abs(orig.astype(np.float64)) * norms[None, :]
            want = orig.copy()
            idx = np.argsort(score, axis=1, kind="stable")[:, :k]
            np.put_along_axis(want, idx, 0, axis=1)
            diff = int((want != got).sum())
            report[name] = diff
            if diff > 0.001 * want.size:
                errors.append(f"{name}: {diff} weights differ from numpy's Wanda selection")
            kept = got != 0
            if not np.array_equal(got[kept], orig[kept]):
                errors.append(f"{name}: kept weights changed")
            if int((got == 0).sum(1).min()) < k:
                errors.append(f"{name}: a row has fewer than {k} zeros")
    print(json.dumps({"ok": not errors, "differing": report, "errors": errors}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
