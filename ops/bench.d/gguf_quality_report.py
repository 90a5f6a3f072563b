"""The docs/QUALITY.md `gguf` section from `ops/bench gguf-quality`'s JSON lines: gguf_quality_report.py ROWS."""
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
dense = rows[0]["evaluation"]["original_perplexity"]
print(f"GGUF types and llama-quantize mixes of SmolLM2-135M's F32 GGUF (`ops/bench gguf-quality`), no importance matrix;")
print(f"the same 16 held-out windows × 256 tokens as above, evaluated by Squeeze on the file it wrote. Dense perplexity {dense:.2f}.")
print("\"Same as llama.cpp\" means `llama_model_quantize` (llama-cpp-cffi 0.4.42) on the same F32 GGUF gives every tensor")
print("the same type and bytes, checked in this run, so llama.cpp's own file of that type has these figures.\n")
print("| type | file | ppl | × dense | mean KL | top-1 | same as llama.cpp |")
print("|---|---:|---:|---:|---:|---:|---|")
for r in rows:
    e = r["evaluation"]
    same = r["llama"]
    ok = "yes" if same.get("ok") else "no" + (f" ({same.get('error') or len(same.get('mismatches', [])) or 'not checked'})")
    print(f"| {r['type']} | {r['bytes'] / 1e6:.1f} MB | {e['perplexity']:.2f} | {e['perplexity'] / e['original_perplexity']:.3f}× | "
          f"{e['mean_kl']:.4f} | {e['top1_agreement']:.3f} | {ok} |")
by = {r["type"]: r["evaluation"]["perplexity"] / r["evaluation"]["original_perplexity"] for r in rows}
print("\nSmolLM2's rows (576 values) do not fill 256-value super-blocks, so most matrices take llama.cpp's legacy")
print("fallback: Q5_0 in Q4_K_M/Q4_K_S, Q5_1 in Q5_K_M/Q5_K_S; only `ffn_down` (rows of 1536) holds k-quants.")
print("Issue 11's targets *with an importance matrix* (not built yet), against these plain files: " + ", ".join(
    f"{t} ≤ {g}× (plain {by[t]:.3f}×)" for t, g in [("q4_k_m", 1.05), ("q5_k_m", 1.02), ("q6_k", 1.01)] if t in by) + ".")
