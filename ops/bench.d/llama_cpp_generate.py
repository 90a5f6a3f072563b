"""llama.cpp's greedy generation speed, as `squeeze generate` runs: the prompt decoded once, then
one token per llama_decode with the KV cache kept, THREADS threads. Prints JSON (tokens/s of the
generated tokens, and the ids, to compare with Squeeze's).
Usage (LD_PRELOAD the shim): llama_cpp_generate.py GGUF PROMPT_IDS_JSON TOKENS THREADS"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "reference"))
import llama_cpp_check as L  # noqa: E402

gguf, ids_file, count, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
prompt = json.load(open(ids_file))["prompt"]
os.environ["OMP_NUM_THREADS"] = str(threads)
model, ctx = L.open_model(gguf, len(prompt) + count + 8)
L.lib.llama_set_n_threads(ctx, threads, threads)
n_vocab = L.lib.llama_vocab_n_tokens(L.lib.llama_model_get_vocab(model))


def step(ids, start):
    b = L.lib.llama_batch_init(len(ids), 0, 1)
    for i, t in enumerate(ids):
        b.token[i], b.pos[i], b.n_seq_id[i] = t, start + i, 1
        b.seq_id[i][0] = 0
        b.logits[i] = 1 if i == len(ids) - 1 else 0
    b.n_tokens = len(ids)
    assert L.lib.llama_decode(ctx, b) == 0
    logits = np.frombuffer(L.ffi.buffer(L.lib.llama_get_logits_ith(ctx, len(ids) - 1), 4 * n_vocab), np.float32)
    L.lib.llama_batch_free(b)
    return int(np.argmax(logits))


L.lib.llama_kv_self_clear(ctx)
nxt = step(prompt, 0)
out, t0 = [nxt], time.perf_counter()
for k in range(count - 1):
    nxt = step([nxt], len(prompt) + k)
    out.append(nxt)
secs = time.perf_counter() - t0
print(json.dumps({"generated": out, "tokens_per_s": (count - 1) / secs, "threads": threads}))
