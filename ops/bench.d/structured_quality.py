"""docs/QUALITY.md's structured section from `ops/bench structured`'s rows:
structured_quality.py ROWS.jsonl CPU-LINE DIR.

What each structured method does to SmolLM2-135M's quality and size, and the issue's targets,
each checked against the figures of this run (DIR/speed-*.json hold the prompt speeds)."""
import sys

from report_rows import block_params, prompt_speeds, ratio, read_rows, row_block_params

rows = {r["name"]: r for r in read_rows(sys.argv[1])}
cpu, d = sys.argv[2], sys.argv[3]
prompt = prompt_speeds(d)
dense = rows["dense"]
base = block_params(dense["config"])


def met(ok):
    return "met" if ok else "not met"


print("## Structured pruning that shrinks the model (FLAP, SliceGPT)")
print()
print(f"`ops/bench structured` on {cpu} (docs/BENCHMARKS.md, section \"Structured pruning\", has every row with")
print("llama.cpp's perplexity and prompt speed on the F32 and Q8_0 GGUFs): SmolLM2-135M, 128 × 256 calibration")
print("tokens, the 16 held-out windows of the table above, Squeeze's evaluation against the dense model.")
print()
print("| row | method | block params removed | shape | ppl × dense | mean KL | top-1 | Q8_0 GGUF |")
print("|---|---|---:|---|---:|---:|---:|---:|")
what = {
    "flap-10": "FLAP, FFN channels (uniform, refit)", "flap-20": "FLAP, FFN channels (uniform, refit)",
    "flap-30": "FLAP, FFN channels (uniform, refit)", "flap-20-adaptive": "FLAP, adaptive widths",
    "flap-20-no-refit": "FLAP, mean compensation only", "flap-20-heads-query": "FLAP, FFN + a query head per KV group",
    "flap-20-heads-group": "FLAP, FFN + a KV group", "wanda-sp-20": "Wanda-sp (baseline)",
    "weight-norm-20": "weight norm (baseline)", "slice-10": "SliceGPT uniform", "slice-20": "SliceGPT uniform",
    "slice-30": "SliceGPT uniform", "slice-20-no-refit": "SliceGPT uniform, Qₖ only (no refit)",
    "slice-10-per-block": "SliceGPT per block", "slice-20-per-block": "SliceGPT per block",
    "slice-30-per-block": "SliceGPT per block",
    "wanda-sp-10": "Wanda-sp (baseline)", "wanda-sp-30": "Wanda-sp (baseline)",
    "weight-norm-10": "weight norm (baseline)", "weight-norm-30": "weight norm (baseline)",
    "svd-10": "SVD (baseline)", "svd-20": "SVD (baseline)", "svd-30": "SVD (baseline)",
    "svd-llm-10": "SVD-LLM", "svd-llm-20": "SVD-LLM", "svd-llm-30": "SVD-LLM",
}
for name, r in rows.items():
    if name == "dense":
        continue
    c = r["config"]
    widths = c.get("layer_intermediate_sizes", [c["intermediate_size"]])
    heads = c.get("layer_num_attention_heads", [c["num_attention_heads"]])
    shape = f"FFN {min(widths)}–{max(widths)}" if min(widths) != max(widths) else f"FFN {widths[0]}"
    kv = c.get("layer_num_key_value_heads", [c.get("num_key_value_heads", c["num_attention_heads"])])
    if min(heads) < c["num_attention_heads"]:
        shape += f", {min(heads)} query / {min(kv)} KV heads"
    if r.get("slice"):
        shape = f"hidden {r['slice']['kept']} (untied head" + (", shortcuts)" if c.get("residual_shortcuts") else ")")
    if r.get("lowrank"):
        shape = "rank-r factors (files: their dense product)"
    removed = 1 - row_block_params(r) / base
    e = r["evaluation"]
    q8 = f"{r['bytes']['q8_0'] / 1e6:.1f} MB" if r["bytes"]["q8_0"] else "— (none)"
    print(f"| {name} | {what.get(name, name)} | {removed * 100:.1f}% | {shape} | {ratio(r):.3f}× | {e['mean_kl']:.4f} "
          f"| {e['top1_agreement']:.3f} | {q8} |")
print()
print(f"Dense: {dense['bytes']['q8_0'] / 1e6:.1f} MB Q8_0 GGUF. Targets, measured in this run:")
print()
f20 = rows["flap-20"]
small = 1 - f20["bytes"]["q8_0"] / dense["bytes"]["q8_0"]
pf, pq = prompt("flap-20", "f32") / prompt("dense", "f32"), prompt("flap-20", "q8_0") / prompt("dense", "q8_0")
print(f"- FLAP at 20% of block parameters: ≤ 1.2× dense — {ratio(f20):.3f}×, {met(ratio(f20) <= 1.2)} (the refit is part "
      "of `flap`; no `distill` stage).")
print(f"- The same file ≥ 15% smaller — the Q8_0 GGUF {small * 100:.1f}% smaller, {met(small >= 0.15)}.")
print(f"- Its llama.cpp prompt processing ≥ 1.15× the dense model's — F32 {pf:.2f}×, Q8_0 {pq:.2f}×, "
      f"{met(min(pf, pq) >= 1.15)}{'' if min(pf, pq) >= 1.15 else ' for ' + ('F32' if pf < 1.15 else 'Q8_0')}.")
times = [rows[n]["structure"]["seconds"] for n in ("flap-10", "flap-20", "flap-30")]
print(f"- FLAP's own time under 60 s on 2 cores — {min(times):.1f}–{max(times):.1f} s at 10/20/30%, "
      f"{met(max(times) < 60)}.")
heads = [n for n in ("flap-20-heads-query", "flap-20-heads-group") if n in rows]
if heads:
    print("- Attention heads (`heads: query`, `heads: group`) at 20%: " + ", ".join(
        f"{n.split('-')[-1]} {ratio(rows[n]):.3f}×" for n in heads) + f" against FFN channels alone {ratio(f20):.3f}×: "
          "SmolLM2 has 3 query heads per KV group, so the smallest unit is a third of a block's query heads; "
          "FFN channels only (`heads: none`) stay the default.")
if "slice-20" in rows:
    s20 = rows["slice-20"]
    lf = s20["llama_cpp"]["f32"]["perplexity"]
    sq = s20["evaluation"]["perplexity"]
    print(f"- SliceGPT at 20% slicing: ≤ 1.6× dense — the uniform variant {ratio(s20):.3f}×, {met(ratio(s20) <= 1.6)}"
          + (f" (without the readers' refit {ratio(rows['slice-20-no-refit']):.3f}×)" if "slice-20-no-refit" in rows
             else "") + (f"; the per-block variant {ratio(rows['slice-20-per-block']):.3f}×, "
                         f"{met(ratio(rows['slice-20-per-block']) <= 1.6)}, removing "
                         f"{(1 - block_params(rows['slice-20-per-block']['config']) / base) * 100:.1f}% of block "
                         "parameters with its shortcut matrices counted (Squeeze's forward only)"
                         if "slice-20-per-block" in rows else "") + ".")
    print(f"- The uniform variant runs in llama.cpp with the perplexity Squeeze predicts (within 1%) — llama.cpp "
          f"{lf:.3f} against Squeeze {sq:.3f} on the same windows ({(lf / sq - 1) * 100:+.2f}%), "
          f"{met(abs(lf / sq - 1) <= 0.01)}.")
if "svd-20" in rows and "svd-llm-20" in rows:
    excess = ratio(rows["svd-llm-20"]) - 1, ratio(rows["svd-20"]) - 1
    print(f"- SVD-LLM at 20% fewer block parameters: excess perplexity at most half of plain SVD's — {excess[0]:.3f} "
          f"against {excess[1]:.3f}, {met(excess[0] <= excess[1] / 2)}.")
