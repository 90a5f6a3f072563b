#!/usr/bin/env python3
"""Formats the kernel benchmark table from Squeeze's and gguf-py's JSON timings.
Usage: kernels_report.py OURS_ALL_CORES_JSON OURS_ONE_THREAD_JSON PEER_JSON CORES CPU-LINE"""
import datetime
import json
import sys

ours, ours1, peer, cores = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
assert ours["params"] == peer["params"], (ours["params"], peer["params"])
n = ours["params"]
print(f"## Kernels: GGUF quantization and global pruning of MiniLM ({datetime.date.today()}, {sys.argv[5]}, "
      f"{cores} cores, release build)")
print()
print(f"All {ours['matrices']} MiniLM matrices ({n / 1e6:.1f} M parameters, F32 in memory), best of 7 (Squeeze) / 3 (gguf-py).")
print("Peer: gguf-py's numpy quantizers (`gguf.quants.quantize`), whose output Squeeze matches bit for bit.")
print("Global pruning: Squeeze's exact radix threshold (one histogram over all matrices; per-tensor histograms only when a")
print("min_keep cap binds), then each matrix copied to an output buffer and zeroed with exact ties;")
print("numpy: |w| concatenated, np.partition for the threshold, then a mask per matrix (ties not resolved exactly).")
print("The bound is a parallel memcpy of the same floats (read + write) in the same process.")
print()
print("| kernel | Squeeze 1 thread | Squeeze all cores | gguf-py | speed-up vs gguf-py | × memcpy time |")
print("|---|---|---|---|---|---|")
for k in ("q8_0", "q4_0", "q4_1", "q5_0"):
    s1, s, p, m = ours1["seconds"][k], ours["seconds"][k], peer["seconds"][k], ours["seconds"]["memcpy"]
    print(f"| {k.upper()} | {n / s1 / 1e9:.2f} G params/s | {n / s / 1e9:.2f} G params/s | {n / p / 1e6:.0f} M params/s | {p / s:.0f}× | {s / m:.1f}× |")
s1, s, p, m = ours1["seconds"]["global_prune"], ours["seconds"]["global_prune"], peer["seconds"]["global_prune"], ours["seconds"]["memcpy"]
print(f"| global 50% magnitude pruning | {n / s1 / 1e9:.2f} G params/s | {n / s / 1e9:.2f} G params/s | np.partition {n / p / 1e6:.0f} M params/s | {p / s:.1f}× | {s / m:.1f}× |")
m = ours["seconds"]["memcpy"]
print(f"| memcpy (bound) | — | {n / m / 1e9:.2f} G params/s | numpy copy {n / peer['seconds']['memcpy'] / 1e9:.2f} G params/s | — | 1.0× |")
print()
print(f"Of the global pruning time, planning (threshold, ties, per-matrix counts) takes {ours['seconds']['global_prune_plan'] * 1e3:.0f} ms on all cores;")
print("the rest copies each matrix to its output buffer and zeroes it.")
