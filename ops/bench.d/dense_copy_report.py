"""Markdown for `ops/bench dense-copy`: dense_copy_report.py DIR CPU-LINE CORES.

DIR/rows.jsonl: the GGUF-only and with-dense runs (setup, wall_s, rss_kb, largest file, total bytes)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_rows import median, read_rows  # noqa: E402
from datetime import datetime, timezone

d, cpu, cores = sys.argv[1], sys.argv[2], sys.argv[3]
all_rows = read_rows(os.path.join(d, "rows.jsonl"))
print(f"## Calibrated jobs without a dense copy ({datetime.now(timezone.utc):%Y-%m-%d}, {cpu}, {cores} cores, "
      "release build)")
print()
runs = {k: [r for r in all_rows if r["setup"] == k] for k in ("gguf-only", "with-dense")}
if runs["gguf-only"] and runs["with-dense"]:
    print("A calibrated GGUF-only job: `recipes/decoder/gguf-q4_k_m-imatrix.yaml` (`squeeze run`), against the same")
    print(f"recipe with a dense safetensors export, as every calibrated job had to write before; "
          f"{len(runs['gguf-only'])} runs of each, interleaved (medians, range in brackets):")
    print()
    print("| recipe | wall | peak RSS | largest file written | all files |")
    print("|---|---:|---:|---|---:|")
    mid = {}
    for name, key in (("GGUF only", "gguf-only"), ("with a dense copy", "with-dense")):
        rs = runs[key]
        rss = [r["rss_kb"] / 1024 for r in rs]
        mid[key] = median(rss)
        r = rs[-1]
        print(f"| {name} | {median([x['wall_s'] for x in rs]):.1f} s | {mid[key]:.0f} MB "
              f"[{min(rss):.0f}–{max(rss):.0f}] | {r['largest']} ({r['largest_bytes'] / 1e6:.1f} MB) "
              f"| {r['total_bytes'] / 1e6:.1f} MB |")
    print()
    g = runs["gguf-only"][-1]
    print(f"Median peak RSS {mid['gguf-only'] / mid['with-dense']:.2f}× the dense-copy run's (target: within 10%); the "
          f"largest file the GGUF-only job writes is {g['largest']}. The peak is reached in the final evaluation and "
          "counts the mmapped input's pages, hence the spread between identical runs.")
