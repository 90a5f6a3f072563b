"""llama.cpp's perplexity on a GGUF over Squeeze's evaluation windows, scored as Squeeze's `evaluate`
scores it (each window's second half, next-token NLL from all logits), THREADS threads. Prints JSON.
Usage (LD_PRELOAD the shim): llama_cpp_structured.py GGUF IDS_JSON THREADS"""
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "reference"))
import llama_cpp_check as L  # noqa: E402

gguf, ids_file, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
windows = json.load(open(ids_file))["ids"]
model, ctx, n_vocab = L.open_threads(gguf, len(windows[0]), threads)
nll, scored = 0.0, 0
for w in windows:
    logits = L.decode_all(ctx, w, n_vocab).astype(np.float64)
    for p in range(len(w) // 2, len(w) - 1):
        row = logits[p]
        m = row.max()
        nll -= row[w[p + 1]] - m - math.log(np.exp(row - m).sum())
        scored += 1
print(json.dumps({"perplexity": math.exp(nll / scored), "scored_tokens": scored, "threads": threads}))
