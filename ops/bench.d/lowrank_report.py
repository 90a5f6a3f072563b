"""The docs/QUALITY.md `lowrank` section from `ops/bench lowrank`'s JSON lines: lowrank_report.py ROWS CPU."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_rows import ratio, read_rows  # noqa: E402

rows = read_rows(sys.argv[1])
cpu = sys.argv[2]
by = {r["name"]: r for r in rows}


print("## Low-rank (SVD, SVD-LLM, ASVD)\n")
print(f"Low-rank factorization of SmolLM2-135M's block matrices (`ops/bench lowrank`, {cpu}): the linears of the 30")
print("blocks keep 80% of their parameters as rank-r factors (`ratio: 0.2`: each matrix under `uniform`, all of them")
print("together under `global`; the export holds the dense product, so the file does not shrink), 128 × 256")
print("calibration tokens for the activation-aware methods, the 16 held-out windows")
print("× 256 tokens of the tables above, evaluated by Squeeze. Time and peak RSS of the whole job, evaluation excluded.\n")
print("| method | allocation | ppl | × dense | mean KL | top-1 | time | peak RSS |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    e = r["evaluation"]
    print(f"| {r['method']} | {r['allocation']} | {e['perplexity']:.1f} | {ratio(r):.3f}× | {e['mean_kl']:.3f} | "
          f"{e['top1_agreement']:.3f} | {r['compute_s']:.0f} s | {r['rss_mb']:.0f} MB |")
svd, llm = by.get("svd-uniform"), by.get("svd-llm-uniform")
if svd and llm:
    a, b = ratio(llm) - 1, ratio(svd) - 1
    print(f"\nSVD-LLM's excess perplexity against plain SVD's, both uniform: {a:.3f} against {b:.3f} "
          f"({'met' if a <= b / 2 else 'not met'}: the target is at most half).")
uni = [r for r in rows if r["allocation"] == "uniform"]
glo = {r["method"]: r for r in rows if r["allocation"] == "global"}
worse = [r["method"] for r in uni if r["method"] in glo and ratio(glo[r["method"]]) > ratio(r)]
if worse:
    print(f"The global allocation (one budget, ranks by each singular value's share of its matrix's scaled energy per")
    print(f"parameter) scores worse than the uniform one for {', '.join(worse)} here, so `uniform` is the default.")
