"""The docs/QUALITY.md `rounding` section from `ops/bench rounding`'s JSON lines: rounding_report.py ROWS CPU."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_rows import ratio, read_rows  # noqa: E402

rows = read_rows(sys.argv[1])
here = os.path.dirname(os.path.abspath(sys.argv[1]))


def learned(r):
    """The manifest's learned_rounding record of a row's job (None without it)."""
    tag = "none" if r["learned"] == "-" else "learned"
    path = os.path.join(here, f"{r['name']}-{tag}", "manifest.json")
    return json.load(open(path)).get("learned_rounding") if os.path.exists(path) else None


cpu = sys.argv[2]
order = ["q4_0-imatrix-gptq", "iq4_nl-imatrix-gptq", "rtn-int4-g64", "gptq-int4-g64", "gptq-int3-g64"]
rows.sort(key=lambda r: (order.index(r["name"]) if r["name"] in order else len(order), r["learned"] != "-"))

print("## Learned rounding\n")
print(f"Learned rounding (FlexRound) on SmolLM2-135M (`ops/bench rounding`, {cpu}): each quantization of the")
print("210 block matrices with and without `learned_rounding` (its defaults: 100 steps, learning rate 0.001),")
print("128 × 256 calibration tokens, the 16 held-out windows × 256 tokens of the tables above. Time: the whole")
print("job, evaluation excluded.\n")
print("| quantization | learned rounding | ppl | × dense | mean KL | top-1 | output | time | of which learned rounding "
      "| layer output error after / before | codes changed | peak RSS |")
print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
for r in rows:
    e = r["evaluation"]
    lr = "none" if r["learned"] == "-" else f"`{r['learned']}`"
    m = learned(r)
    extra = "– | – | –" if not m else (f"{m['seconds']:.0f} s | {m['error'] / m['start_error']:.3f} | "
                                       f"{m['changed_codes']:,}")
    print(f"| {r['method']} | {lr} | {e['perplexity']:.2f} | {ratio(r):.3f}× | {e['mean_kl']:.4f} | "
          f"{e['top1_agreement']:.3f} | {r['output']} | {r['compute_s']:.0f} s | {extra} | {r['rss_mb']:.0f} MB |")
print()
print("Layer output error: tr(ΔW H ΔWᵀ) on the calibration inputs, summed over the 210 matrices, after learned")
print("rounding over that of the codes it started from (manifest.json, `learned_rounding`).\n")
base = {r["name"]: r for r in rows if r["learned"] == "-"}
with_it = {r["name"]: r for r in rows if r["learned"] != "-"}
better, worse, times = [], [], []
for name, d in with_it.items():
    b = base.get(name)
    if not b:
        continue
    kl = f"mean KL {b['evaluation']['mean_kl']:.4f} → {d['evaluation']['mean_kl']:.4f}"
    (better if ratio(d) < ratio(b) else worse).append(f"{d['method']} {ratio(b):.3f}× → {ratio(d):.3f}× ({kl})")
    times.append(f"{d['method']} {b['compute_s']:.0f} → {d['compute_s']:.0f} s")
if better:
    print("Learned rounding improves the perplexity of " + "; ".join(better) + ".")
if worse:
    print("It does not improve the perplexity of " + "; ".join(worse) + ".")
print("Job time without and with it: " + "; ".join(times) + ".")
gptq = base.get("gptq-int4-g64")
slow = max((d["compute_s"] - base[n]["compute_s"] for n, d in with_it.items() if n in base), default=0)
if gptq:
    print(f"The largest time learned rounding added is {slow:.0f} s, {slow / gptq['compute_s']:.2f}× the GPTQ int4 "
          f"job's {gptq['compute_s']:.0f} s (target: at most 3×).")
later = sorted({r["method"] for r in rows if r.get("later")})
if later:
    print(f"Measured again after the rest, on the same machine: {', '.join(later)}.")
