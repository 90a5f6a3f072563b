"""The "Below 3 bits" section of docs/QUALITY.md from ops/bench lowbit's rows: lowbit_report.py ROWS CPU."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
cpu = sys.argv[2]
by = {r["name"]: r for r in rows}
dense = by["dense"]["evaluation"]["perplexity"]


def ratio(r):
    return r["evaluation"]["perplexity"] / dense


def num(v, fmt):
    return "–" if v is None else format(v, fmt)


print("## Below 3 bits")
print()
print(f"SmolLM2-135M, `ops/bench lowbit` on {cpu}; every row in one run, the same 128 × 256 calibration")
print("tokens and 16 held-out windows of 256 tokens. Bits per weight are over the block matrices and count")
print("everything their export stores (codes or indices, scales, zero points, codebooks, BitStack's scales,")
print("errors and loaded blocks); the file holds the F32 embedding as well. Time is the job's wall time less its")
print("evaluation (for BitStack, the one job that writes the stack); peak RSS is that job's. The BitStack rows")
print("are one stack loaded with `squeeze run --size` at each size: bytes are those loaded, and KL and top-1")
print("are not measured there (the evaluation's original is the loaded stack).")
print()
print("| row | method | bits per weight | file | perplexity | × dense | KL | top-1 | time | peak RSS |")
print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    e = r["evaluation"]
    print(f"| {r['name']} | {r['method']} | {r['bpw']:.3f} | {r['file']} {r['bytes'] / 1e6:.1f} MB | "
          f"{e['perplexity']:.2f} | {ratio(r):.3f}× | {num(e['mean_kl'], '.4f')} | {num(e['top1_agreement'], '.3f')} | "
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
o = by.get("vptq-outliers")
if v and o:
    better = "better" if ratio(o) < ratio(v) else "no better"
    print(f"- VPTQ outlier columns (8 per matrix at F16): {o['bpw']:.3f} bits, {ratio(o):.3f}× against the default's "
          f"{v['bpw']:.3f} bits, {ratio(v):.3f}× — {better}, and {'within' if o['bpw'] <= 2.3 else 'over'} 2.3 bits.")
stacks = [r for r in rows if r.get("stack")]
gptq = [r for r in rows if r["name"].startswith("gptq-")]
if stacks and gptq:
    low = [s for s in stacks if s["bpw"] <= 3]
    beaten = []
    for s in low:
        near = min(gptq, key=lambda g: abs(g["bpw"] - s["bpw"]))
        beaten.append(f"{s['bpw']:.2f} bits {ratio(s):.3g}× against {near['name']} {ratio(near):.3g}×"
                      f" ({'beats' if ratio(s) < ratio(near) else 'loses'})")
    ok = all(ratio(s) < ratio(min(gptq, key=lambda g: abs(g["bpw"] - s["bpw"]))) for s in low)
    print(f"- Target BitStack beats GPTQ at the nearest size at every size ≤ 3 bits: {'; '.join(beaten) or 'no size'}"
          f" — {'met' if ok and low else 'not met'}.")
    four = min(stacks, key=lambda s: abs(s["bpw"] - 4))
    g4 = by.get("gptq-int4-g64")
    if g4:
        print(f"- Target BitStack at 4 bits within 1.15× of GPTQ int4 g64: {four['bpw']:.2f} bits {ratio(four):.3g}× dense "
              f"against {ratio(g4):.3f}× — {'met' if ratio(four) <= 1.15 * ratio(g4) else 'not met'}.")
    st = stacks[0]["compute_s"]
    print(f"- Target BitStack decomposition ≤ 5 minutes on 2 cores: {st:.0f} s — {'met' if st <= 300 else 'not met'}.")
    load = max(s["load_s"] for s in stacks)
    print(f"- Target loading a stack at a size ≤ 2× loading the dense model: at most {load:.1f} s against "
          f"{by['dense']['compute_s']:.1f} s (read, then the dense export written, evaluation excluded) — "
          f"{'met' if load <= 2 * by['dense']['compute_s'] else 'not met'}.")
