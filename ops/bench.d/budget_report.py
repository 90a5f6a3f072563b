"""The docs/QUALITY.md `budget` section from `ops/bench budget`'s JSON lines: budget_report.py ROWS CPU."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_rows import ratio, read_rows  # noqa: E402

rows = read_rows(sys.argv[1])
cpu = sys.argv[2]
values = 134_515_008  # SmolLM2-135M's parameters, every tensor of the file
peers = [r for r in rows if r["kind"] == "llama.cpp"]
budgets = sorted((r for r in rows if r["kind"] == "squeeze"), key=lambda r: r["bytes"])
dense = rows[0]["evaluation"]["original_perplexity"]


def nearest(r):
    return min(peers, key=lambda p: abs(p["bytes"] - r["bytes"]))


def label(p):
    return p["name"].replace("-imatrix", " + imatrix").upper().replace(" + IMATRIX", " + imatrix")


def spearman(a, b):
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0] * len(v)
        for k, i in enumerate(order):
            r[i] = k
        return r
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb)) / (n * (n * n - 1)) if n > 1 else 1.0


def budget_label(r):
    n = r["name"]
    if n.startswith("bpw-"):
        return n[len("bpw-"):] + " bpw"
    n = n[len("budget-"):]
    return n[:-len("-gptq")] + " B + error feedback" if n.endswith("-gptq") else n + " B"


print("## GGUF files built to a size budget\n")
print(f"SmolLM2-135M's F32 GGUF exported to size budgets (`export: {{format: gguf, budget: B, imatrix: FILE}}`;")
print("`ops/bench budget`), each beside llama.cpp's type or mix nearest in size, produced in the same run (Squeeze")
print("writes those bit-exact with `llama_model_quantize`, with the same importance matrix: 128 windows × 256 tokens")
print(f"of the calibration text). The same 16 held-out windows × 256 tokens as above; dense perplexity {dense:.2f}.")
print(f"{cpu}. Rows with error feedback add `gptq: true` (each tensor quantized GPTQ-style on the 128 × 256")
print("calibration tokens the importance matrix came from; their time includes that calibration pass).\n")
print("| budget | file | bits/weight | ppl × dense | mean KL | top-1 | types chosen | nearest llama.cpp file | its size | its ppl × dense | time (s) | of which measuring (s) |")
print("|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|")
for r in budgets:
    e, p, b = r["evaluation"], nearest(r), r["budget"] or {}
    types = ", ".join(f"{k} {v}" for k, v in sorted(b.get("types", {}).items(), key=lambda kv: -kv[1]))
    print(f"| {budget_label(r)} | "
          f"{r['bytes'] / 1e6:.2f} MB | {r['bytes'] * 8 / values:.2f} | {ratio(r):.3f}× | {e['mean_kl']:.4f} | "
          f"{e['top1_agreement']:.3f} | {types} | {label(p)} | {p['bytes'] / 1e6:.2f} MB | {ratio(p):.3f}× | "
          f"{r['seconds']:.0f} | {b.get('seconds', 0):.0f} |")
print("\nllama.cpp's files in this run:\n")
print("| file | size | bits/weight | ppl × dense | mean KL | top-1 | time (s) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for p in sorted(peers, key=lambda p: p["bytes"]):
    e = p["evaluation"]
    print(f"| {label(p)} | {p['bytes'] / 1e6:.2f} MB | {p['bytes'] * 8 / values:.2f} | {ratio(p):.3f}× | "
          f"{e['mean_kl']:.4f} | {e['top1_agreement']:.3f} | {p['seconds']:.0f} |")
exact = [r for r in budgets if r["evaluation"]["mean_kl"] == 0]
if exact:
    print(f"\nThis F32 fixture is the SmolLM2 package's Q4_1 GGUF decoded to F32 (ops/lib.sh), so Q4_1 blocks, and")
    print(f"Q8_0 for the embedding, give its weights back exactly: from {min(r['bytes'] for r in exact) / 1e6:.1f} MB the "
          "budget finds that (predicted loss 0, KL 0). A property of the fixture, not of Squeeze: a model trained in")
    print("BF16 has no such type. The rows below that size are the informative ones.")
plain = [r for r in budgets if r["budget"] and not r["name"].endswith("-gptq")]
pred = [r["budget"]["predicted_error"] for r in plain]
meas = [ratio(r) for r in plain]
print(f"\nThe predicted loss (the chosen types' summed importance-weighted error) ranks the {len(pred)} budgeted files "
      f"without error feedback as their measured perplexity does with Spearman ρ = {spearman(pred, meas):.2f}.")
for target_name, target in [("q4_0-imatrix", 1.08), ("q4_k_m-imatrix", 1.005)]:
    peer = next((p for p in peers if p["name"] == target_name), None)
    mine = [r for r in budgets if peer and r["name"] in (f"budget-{peer['bytes']}", f"budget-{peer['bytes']}-gptq")]
    if peer and mine:
        best = min(ratio(r) for r in mine)
        verdict = "met" if best <= target else "not met"
        figures = " and ".join(f"{ratio(r):.3f}× dense{' with error feedback' if r['name'].endswith('-gptq') else ''}"
                               for r in mine)
        print(f"At the size of llama.cpp's {label(peer)} ({peer['bytes'] / 1e6:.1f} MB): {figures} "
              f"against its {ratio(peer):.3f}× (target ≤ {target}×: {verdict}).")
