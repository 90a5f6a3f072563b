"""Markdown for `ops/bench speed`: speed_report.py DIR CPU-LINE THREADS.

DIR holds forward-squeeze.json and forward-llama-cpp.json (tokens_per_s of the same windows, every
logit computed), generate-squeeze.json and generate-llama-cpp.json (tokens_per_s of the generated
tokens, and the `generated` ids)."""
import json
import os
import sys
from datetime import datetime, timezone

d, cpu, threads = sys.argv[1], sys.argv[2], sys.argv[3]
load = lambda name: json.load(open(os.path.join(d, name)))
fo, ft = load("forward-squeeze.json"), load("forward-llama-cpp.json")
go, gt = load("generate-squeeze.json"), load("generate-llama-cpp.json")

print(f"## Forward pass and generation ({datetime.now(timezone.utc):%Y-%m-%d}, {threads} threads, release build)")
print()
print(f"CPU: {cpu}.")
print()
print("SmolLM2-135M's F32 GGUF, Squeeze and llama.cpp (llama-cpp-cffi, CPU library, F32 KV cache) on the same")
print("file in the same run. Forward: 16 held-out windows of 256 tokens with every logit computed (the")
print("evaluation workload), the same token ids, weights already decoded. Generation: greedy, KV cache on both")
print("sides, 64 tokens after a 6-token prompt, tokens after the first per second.")
print()
print("| workload | Squeeze tokens/s | llama.cpp tokens/s | Squeeze / llama.cpp | same tokens |")
print("|---|---:|---:|---:|---|")
print(f"| forward, 16 × 256 | {fo['tokens_per_s']:.0f} | {ft['tokens_per_s']:.0f} | "
      f"{fo['tokens_per_s'] / ft['tokens_per_s']:.2f}× | same ids in |")
same = "yes" if go["generated"] == gt["generated"] else "no"
print(f"| generate, 64 tokens | {go['tokens_per_s']:.1f} | {gt['tokens_per_s']:.1f} | "
      f"{go['tokens_per_s'] / gt['tokens_per_s']:.2f}× | {same} |")
