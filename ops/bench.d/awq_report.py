"""The docs/QUALITY.md `awq` section from `ops/bench awq`'s JSON lines: awq_report.py ROWS CPU."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_rows import ratio, read_rows  # noqa: E402

rows = read_rows(sys.argv[1])
cpu = sys.argv[2]
order = ["q4_0", "q4_0-imatrix", "q4_0-imatrix-gptq", "q4_k_m-imatrix-gptq", "rtn-int4-g64", "gptq-int4-g64"]
rows.sort(key=lambda r: (order.index(r["name"]) if r["name"] in order else len(order)))


print("## AWQ (activation-aware scaling)\n")
print(f"AWQ on SmolLM2-135M (`ops/bench awq`, {cpu}): each quantization of the 210 block matrices with and")
print("without an `awq` stage before it, 128 × 256 calibration tokens, the 16 held-out windows × 256 tokens of the")
print("tables above. Time: the whole job, evaluation excluded; AWQ: the part of it the awq pass took.\n")
print("| quantization | awq | ppl | × dense | mean KL | top-1 | output | time | AWQ | peak RSS |")
print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|")
for r in rows:
    e = r["evaluation"]
    awq = "none" if r["awq"] == "-" else f"`{r['awq']}`"
    t = f"{r['awq_s']:.0f} s" if r.get("awq_s") else "–"
    print(f"| {r['method']} | {awq} | {e['perplexity']:.2f} | {ratio(r):.3f}× | {e['mean_kl']:.4f} | "
          f"{e['top1_agreement']:.3f} | {r['output']} | {r['compute_s']:.0f} s | {t} | {r['rss_mb']:.0f} MB |")
print()
# Each quantization: the plain row against the default-options row.
base = {r["name"]: r for r in rows if r["awq"] == "-"}
default = {r["name"]: r for r in rows if r["awq"] == "{}"}
better, worse = [], []
for name, d in default.items():
    b = base.get(name)
    if not b:
        continue
    (better if ratio(d) < ratio(b) else worse).append(f"{d['method']} {ratio(b):.3f}× → {ratio(d):.3f}×")
if better:
    print("AWQ with its defaults improves " + "; ".join(better) + ".")
if worse:
    print("It does not improve " + "; ".join(worse) + ".")
gptq = [r for r in rows if r["name"] == "gptq-int4-g64" and r["awq"] == "-"]
slow = max((r["awq_s"] or 0 for r in rows if r["awq"] != "-"), default=0)
if gptq:
    later = sorted({r["method"] for r in rows if r.get("later")})
if later:
    print(f"Measured again after the rest, on the same machine: {', '.join(later)} (with and without AWQ).")
print(f"The slowest AWQ pass took {slow:.0f} s, {slow / gptq[0]['compute_s']:.2f}× the GPTQ int4 job's "
          f"{gptq[0]['compute_s']:.0f} s (target: at most 3×).")
