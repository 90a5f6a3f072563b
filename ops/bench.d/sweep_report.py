"""Markdown for `ops/bench sweep`: sweep_report.py DIR CPU-LINE CORES.

DIR/rows.jsonl: the independent and sweep batches (jobs, wall_s) and the sweep's quality rows; DIR/same.txt: one line per type with
gguf_tensor_bytes.py's verdict on the two files of that type."""
import json
import os
import sys
from datetime import datetime, timezone

d, cpu, cores = sys.argv[1], sys.argv[2], sys.argv[3]
all_rows = [json.loads(line) for line in open(os.path.join(d, "rows.jsonl")) if line.strip()]
rows = {r["setup"]: r for r in all_rows if r.get("eval", 16) == 16}
plain = {r["setup"]: r for r in all_rows if r.get("eval") == 0}
same = [line.split(" ", 1) for line in open(os.path.join(d, "same.txt")) if line.strip()]
for r in all_rows:
    if "jobs" in r and r["succeeded"] != r["jobs"]:
        sys.exit(f"sweep_report: {r['setup']} (eval {r.get('eval')}): {r['jobs'] - r['succeeded']} job(s) failed")
identical = sum(1 for _, v in same if v.strip().endswith("tensors identical"))

print(f"## Sweep ({datetime.now(timezone.utc):%Y-%m-%d}, {cores} cores, release build)")
print()
print(f"CPU: {cpu}.")
print()
print("SmolLM2-135M, the 7 GGUF types of docs/QUALITY.md's importance-matrix table, through two workers")
print("(`--exit-when-idle`, default threads) on this machine. Independent: one batch of 7 jobs that each calibrate")
print("(128 × 256 tokens, `imatrix: true`) and write their type. Sweep: `squeeze sweep`, one job that calibrates and")
print("writes the first type, and 6 that wait for it (`imatrix: {job: KEY}`) and only quantize. Each setup with every")
print("file evaluated on 16 held-out windows × 256 tokens (the sweep's default, for its table; the sweep's first job")
print("saves the original model's logits, `save_reference`, and the others read them, `reference: {job: KEY}`, instead")
print("of running the original again), and without evaluation (`--eval-samples 0`). Wall time: first job created to")
print("last job finished.")
print()
print("| setup | evaluation | wall time | against independent |")
print("|---|---|---:|---:|")
for label, group in (("16 windows per file", rows), ("none", plain)):
    if "independent" not in group or "sweep" not in group:
        continue
    ind, sw = group["independent"], group["sweep"]
    ratio = sw["wall_s"] / ind["wall_s"]
    print(f"| 7 independent imatrix jobs | {label} | {ind['wall_s']:.1f} s | 1.00× |")
    print(f"| `squeeze sweep` | {label} | {sw['wall_s']:.1f} s | {ratio:.2f}× (target ≤ 0.35×: "
          f"{'met' if ratio <= 0.35 else 'not met'}) |")
print()
print("With evaluation, each independent job runs the original and its quantized model over the held-out windows;")
print("in the sweep the original runs once, and each export's own evaluation of its file bounds the gain.")
print()
print(f"Tensors byte-identical between the two files of each type (gguf-py, every tensor): {identical} of "
      f"{len(same)} types ({', '.join(t for t, v in same if v.strip().endswith('tensors identical'))}). The files'")
print("metadata differ only where the recipes do: `squeeze.recipe` and `quantize.imatrix.file` (the dependency's path).")
print()
if "quality" in rows:
    print("The sweep's size-against-quality table (what `squeeze sweep --wait` prints):")
    print()
    print("| type | file | ppl × dense | mean KL | top-1 |")
    print("|---|---:|---:|---:|---:|")
    for q in rows["quality"]["rows"]:
        t = q["key"].split(":")[1]
        print(f"| {t} | {q['model_bytes'] / 1e6:.1f} MB | {q['ratio']:.3f}× | {q['mean_kl']:.4f} | {q['top1']:.3f} |")
    print()
