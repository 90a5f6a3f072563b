"""llama.cpp on a GGUF and Squeeze's evaluation windows: perplexity as Squeeze's `evaluate` scores it
(each window's second half, next-token NLL from all logits), and prompt processing throughput as
llama-bench measures it (each window decoded from a fresh KV cache with the last token's logits
only, after one warm-up window), THREADS threads. Prints JSON.
Usage (LD_PRELOAD the shim): llama_cpp_structured.py GGUF IDS_JSON THREADS"""
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "reference"))
import llama_cpp_check as L  # noqa: E402

gguf, ids_file, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
windows = json.load(open(ids_file))["ids"]
os.environ["OMP_NUM_THREADS"] = str(threads)
model, ctx = L.open_model(gguf, len(windows[0]))
L.lib.llama_set_n_threads(ctx, threads, threads)
n_vocab = L.lib.llama_vocab_n_tokens(L.lib.llama_model_get_vocab(model))

nll, scored = 0.0, 0
for w in windows:
    logits = L.decode_all(ctx, w, n_vocab).astype(np.float64)
    for p in range(len(w) // 2, len(w) - 1):
        row = logits[p]
        m = row.max()
        nll -= row[w[p + 1]] - m - math.log(np.exp(row - m).sum())
        scored += 1


def prompt(ids):
    L.lib.llama_kv_self_clear(ctx)
    b = L.lib.llama_batch_init(len(ids), 0, 1)
    for i, t in enumerate(ids):
        b.token[i], b.pos[i], b.n_seq_id[i] = t, i, 1
        b.seq_id[i][0] = 0
        b.logits[i] = 1 if i == len(ids) - 1 else 0
    b.n_tokens = len(ids)
    assert L.lib.llama_decode(ctx, b) == 0
    L.lib.llama_batch_free(b)


prompt(windows[0])
t0 = time.perf_counter()
for w in windows:
    prompt(w)
secs = time.perf_counter() - t0
tokens = sum(len(w) for w in windows)
print(json.dumps({"perplexity": math.exp(nll / scored), "scored_tokens": scored,
                  "prompt_tokens_per_s": tokens / secs, "threads": threads}))
