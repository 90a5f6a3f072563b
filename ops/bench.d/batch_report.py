"""Markdown for `ops/bench batch`: batch_report.py DIR.

DIR/meta.json: the run (date, cpu, cores, how many recipes recipes/ holds, the largest tensor's F32
bytes); DIR/rows.jsonl: each batch (kind "batch": recipe set, workers, threads each, wall seconds from
the first claim to the last success, the largest worker's peak RSS in KiB) and each lone `squeeze run`
(kind "run": recipe, wall seconds, peak RSS in KiB)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_rows import read_rows  # noqa: E402

d = sys.argv[1]
meta = json.load(open(os.path.join(d, "meta.json")))
rows = read_rows(os.path.join(d, "rows.jsonl"))

print(f"## Jobs: the shipped recipes on MiniLM ({meta['date']}, {meta['cpu']}, {meta['cores']} cores, "
      "release build)")
print()
print("Batches on all-MiniLM-L6-v2 (22.7 M parameters, 87 MiB F32): the six demo recipes (pruning, 2:4, F16, GGUF")
print(f"Q8_0/Q4_0), then all {meta['all_recipes']} recipes in recipes/ (adding RTN int8/int4, global, gradual, "
      "structured, low-rank,")
print("and calibrated Wanda + distillation, GPTQ int4, evaluation). Wall time from the first claim to the last "
      "success; peak")
print("RSS of the largest worker (`/usr/bin/time`).")
print()
print("| recipes | workers | threads each | batch wall time | peak worker RSS |")
print("|---|---|---|---|---|")
for r in (r for r in rows if r["kind"] == "batch"):
    print(f"| {r['recipes']} ({r['set']}) | {r['workers']} | {r['threads']} | {r['wall_s']:.2f} s "
          f"| {r['rss_kb'] // 1024} MiB |")
print()
print("`squeeze run` alone (all cores), wall time and peak RSS:")
print()
print("| recipe | wall | peak RSS |")
print("|---|---|---|")
for r in (r for r in rows if r["kind"] == "run"):
    print(f"| `{r['recipe']}` | {r['wall_s']:.2f} s | {r['rss_kb'] // 1024} MiB |")
print()
print(f"The largest tensor is {meta['largest_tensor_bytes'] // 1048576} MiB as F32 and the input file 87 MiB (read "
      "tensor by tensor with pread; its pages stay in the page cache, not in the process).")
