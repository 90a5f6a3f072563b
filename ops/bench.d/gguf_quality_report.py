"""The docs/QUALITY.md `gguf` section from `ops/bench gguf-quality`'s JSON lines: gguf_quality_report.py ROWS."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_rows import ratio, read_rows  # noqa: E402

rows = read_rows(sys.argv[1])
plain = {r["type"]: r for r in rows if not r.get("imatrix")}
weighted = {r["type"]: r for r in rows if r.get("imatrix")}
dense = rows[0]["evaluation"]["original_perplexity"]


def same(r):
    s = r["llama"]
    return "yes" if s.get("ok") else "no" + (f" ({s.get('error') or len(s.get('mismatches', [])) or 'not checked'})")


print("GGUF types and llama-quantize mixes of SmolLM2-135M's F32 GGUF (`ops/bench gguf-quality`), without and with an")
print("importance matrix; the same 16 held-out windows × 256 tokens as above, evaluated by Squeeze on the file it wrote.")
print(f"Dense perplexity {dense:.2f}. The importance matrix is Squeeze's own (`imatrix: true`): 128 windows × 256 tokens of")
print("the calibration part of the text (never the evaluation windows), written as imatrix.gguf and read back for each type.")
print("\"Same as llama.cpp\" means `llama_model_quantize` (llama-cpp-cffi 0.4.42) on the same F32 GGUF — given the same")
print("importance matrix for the second column — writes every tensor with the same type and bytes, checked in this run,")
print("so llama.cpp's own file (`llama-quantize`, `llama-quantize --imatrix imatrix.gguf`) has these figures.\n")
print("| type | file | ppl | × dense | mean KL | top-1 | with imatrix: ppl | × dense | mean KL | top-1 | same as llama.cpp |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for t, r in plain.items():
    e = r["evaluation"]
    w = weighted.get(t)
    cells = f"{w['evaluation']['perplexity']:.2f} | {ratio(w):.3f}× | {w['evaluation']['mean_kl']:.4f} | {w['evaluation']['top1_agreement']:.3f}" if w else "– | – | – | –"
    size = f"{r['bytes'] / 1e6:.1f} MB" + (f" ({w['bytes'] / 1e6:.1f} MB with)" if w and abs(w["bytes"] - r["bytes"]) >= 50_000 else "")
    print(f"| {t} | {size} | {e['perplexity']:.2f} | {ratio(r):.3f}× | {e['mean_kl']:.4f} | {e['top1_agreement']:.3f} | "
          f"{cells} | {same(r)} / {same(w) if w else '–'} |")
print("\nThe file sizes with and without the importance matrix are the same (same types, same blocks), except IQ4_NL and")
print("IQ4_XS, whose first eighth of `ffn_down` takes Q5_K only without one (llama.cpp's rule). Q8_0 ignores the importance")
print("matrix, as in ggml. SmolLM2's rows (576 values) do not fill 256-value super-blocks, so most matrices take llama.cpp's")
print("fallback: Q5_0 in Q4_K_M/Q4_K_S, Q5_1 in Q5_K_M/Q5_K_S, IQ4_NL in IQ4_XS and Q3_K_M; only `ffn_down` (rows of 1536)")
print("holds k-quants and IQ4_XS; the importance matrix weights the fallbacks too.")
targets = [("q4_k_m", 1.05), ("q5_k_m", 1.02), ("q6_k", 1.01)]
print("Issue 11's targets with an importance matrix: " + "; ".join(
    f"{t} ≤ {g}×: {ratio(weighted[t]):.3f}× ({'met' if ratio(weighted[t]) <= g else 'not met'}; plain {ratio(plain[t]):.3f}×)"
    for t, g in targets if t in weighted and t in plain) + ".")
