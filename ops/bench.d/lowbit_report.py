"""The "below 3 bits" section of docs/QUALITY.md from ops/bench lowbit's rows: lowbit_report.py ROWS CPU."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
cpu = sys.argv[2]
by = {r["name"]: r for r in rows}
dense = by["dense"]["evaluation"]["perplexity"]


def ratio(r):
    return r["evaluation"]["perplexity"] / dense


print("## Below 3 bits")
print()
print(f"SmolLM2-135M, `ops/bench lowbit` on {cpu}; every row in one run, the same 128 × 256 calibration")
print("tokens and 16 held-out windows of 256 tokens. Bits per weight are over the block matrices and count")
print("everything their export stores (codes or indices, scales, zero points, codebooks); the file holds")
print("the F32 embedding as well. Time is the job's wall time less its evaluation.")
print()
print("| row | method | bits per weight | file | perplexity | × dense | KL | top-1 | time | peak RSS |")
print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    e = r["evaluation"]
    print(f"| {r['name']} | {r['method']} | {r['bpw']:.3f} | {r['file']} {r['bytes'] / 1e6:.1f} MB | "
          f"{e['perplexity']:.2f} | {ratio(r):.3f}× | {e['mean_kl']:.4f} | {e['top1_agreement']:.3f} | "
          f"{r['compute_s']:.0f} s | {r['rss_mb']:.0f} MB |")
print()
v, g2, g3 = by.get("vptq"), by.get("gptq-int2-g64"), by.get("gptq-int3-g64")
if v and g2 and g3:
    met = "met" if v["bpw"] <= 2.3 and ratio(v) <= 2 else "not met"
    print(f"- Target VPTQ at ≤ 2.3 bits per weight, ≤ 2× dense: {v['bpw']:.3f} bits, {ratio(v):.3f}× — {met}.")
    print(f"  GPTQ int2 g64 is {ratio(g2):.2f}× at {g2['bpw']:.2f} bits; int3 g64 {ratio(g3):.3f}× at {g3['bpw']:.2f} bits.")
    t = v["compute_s"] / g2["compute_s"]
    print(f"- Target VPTQ time ≤ 5× GPTQ's: {v['compute_s']:.0f} s against {g2['compute_s']:.0f} s (int2), "
          f"{t:.1f}× — {'met' if t <= 5 else 'not met'}.")
