"""llama.cpp's prompt processing throughput on several GGUFs, interleaved: each round decodes every
window of IDS_JSON (fresh KV cache, last token's logits only, as llama-bench measures) with each
model in turn, so a drift in the machine's speed reaches all of them alike; the median round per
model is reported. Prints JSON {gguf: tokens/s}.
Usage (LD_PRELOAD the shim): llama_cpp_prompt_speed.py IDS_JSON THREADS ROUNDS GGUF..."""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "reference"))
import llama_cpp_check as L  # noqa: E402

ids_file, threads, rounds, paths = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
windows = json.load(open(ids_file))["ids"]
models = {p: L.open_threads(p, len(windows[0]), threads)[1] for p in paths}
for ctx in models.values():
    L.prompt(ctx, windows[0])  # warm-up
speeds = {p: [] for p in paths}
tokens = sum(len(w) for w in windows)
for _ in range(rounds):
    for p, ctx in models.items():
        t0 = time.perf_counter()
        for w in windows:
            L.prompt(ctx, w)
        speeds[p].append(tokens / (time.perf_counter() - t0))
print(json.dumps({p: statistics.median(v) for p, v in speeds.items()}))
