"""llama.cpp's forward throughput on the same windows Squeeze ran: every window decoded with all
logits (a fresh KV cache each), F32 KV cache, THREADS threads. Prints JSON.
Usage (LD_PRELOAD the shim): llama_cpp_speed.py GGUF IDS_JSON THREADS"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "reference"))
import llama_cpp_check as L  # noqa: E402

gguf, ids_file, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
windows = json.load(open(ids_file))["ids"]
model, ctx, n_vocab = L.open_threads(gguf, len(windows[0]), threads)
L.decode_all(ctx, windows[0], n_vocab)  # warm-up
t0 = time.perf_counter()
for w in windows:
    L.decode_all(ctx, w, n_vocab)
secs = time.perf_counter() - t0
tokens = sum(len(w) for w in windows)
print(json.dumps({"tokens": tokens, "seconds": secs, "tokens_per_s": tokens / secs, "threads": threads}))
