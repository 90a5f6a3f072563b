"""Markdown for `ops/bench structured`: structured_report.py ROWS.jsonl CPU-LINE THREADS DIR.

One row per model (the dense one first): Squeeze's evaluation against the dense model, the files'
sizes, the blocks' parameters, and llama.cpp's perplexity, prompt and generation tokens/s on its F32
and Q8_0 GGUFs, all on the same 16 held-out windows of 256 tokens; DIR/speed-f32.json and
speed-q8_0.json hold the prompt speeds measured interleaved (llama_cpp_prompt_speed.py), by file
path, DIR/generate-*.jsonl the generation speeds (llama_cpp_generate.py)."""
import sys
from datetime import datetime, timezone

from report_rows import block_params, generation_speeds, prompt_speeds, read_rows, row_block_params

rows = read_rows(sys.argv[1])
cpu, threads, d = sys.argv[2], sys.argv[3], sys.argv[4]
prompt = prompt_speeds(d)
generate = generation_speeds(d)


def speed_cell(measure, name, t):
    v, base = measure(name, t), measure("dense", t)
    return "—" if v is None or base is None else f"{v:.0f} ({v / base:.2f}×)"


dense = next(r for r in rows if r["name"] == "dense")
base = block_params(dense["config"])
print(f"## Structured pruning ({datetime.now(timezone.utc):%Y-%m-%d}, {threads} threads, release build)")
print()
print(f"CPU: {cpu}.")
print()
print("SmolLM2-135M, FLAP on FFN channels (`prune: {method: flap}` with its defaults: uniform, widths multiples of")
print("32, least-squares refit of down_proj) at 10/20/30% of the blocks' parameters, and at 20% with `structure:")
print("adaptive`, with `refit: false` (mean compensation only), with attention heads too (`heads: query`: one")
print("query head of every KV group per unit; `heads: group`: whole KV groups; o_proj refit as down_proj is),")
print("and the baselines at 10/20/30% with the same uniform")
print("widths, neither compensated nor refit: Wanda-sp (`score: wanda`) and the data-free weight norm (`score:")
print("weight-norm`); low-rank SVD and SVD-LLM (`lowrank: {ratio: R}` on every block matrix: the parameter")
print("count is the rank-r factors', but the files hold their dense product, since neither llama.cpp's graph nor")
print("a calibrated `lowrank` stage writes factors); and SliceGPT's uniform variant (`slice: {ratio: R}`: the residual stream rotated by its")
print("principal components, R of its 576 dimensions deleted, the head untied, so the parameter count")
print("counts the blocks only and the files include the new head) and its per-block variant (`uniform: false`:")
print("a rotation per place, whose two kept × kept shortcut matrices per block count as block parameters;")
print("no GGUF, as llama.cpp cannot run them), 128 × 256 calibration tokens, beside the dense model, in one run.")
print("Squeeze: `evaluate` on 16 held-out windows of 256 tokens against the dense model (perplexity ratio, KL,")
print("top-1 agreement), the pass's own time (FLAP's or SliceGPT's statistics pass and the staged smaller model), the whole run's")
print("wall time and peak RSS (evaluation and three exports included). llama.cpp (llama-cpp-cffi, CPU) on the")
print("F32 and Q8_0 GGUFs (`deci` for the pruned models): perplexity on the same windows scored as `evaluate`")
print("does, prompt processing (each 256-token window from a fresh KV cache, last token's logits only, as")
print("llama-bench measures; every file of one type in turn, three rounds, the median round) and greedy generation")
print("(64 tokens after a 64-token prompt, one run per file, one file after another: the SVD rows, whose files are")
print("the dense one's size, show how far one run strays), relative to the dense file of the same type.")
print()
print("| model | block params removed | FFN widths | heads (query/KV) | safetensors | Q8_0 GGUF | Squeeze ppl × dense "
      "| KL | top-1 | llama.cpp ppl F32 / Q8_0 | prompt tok/s F32 | prompt tok/s Q8_0 | generate tok/s F32 "
      "| generate tok/s Q8_0 | pass time | run wall, peak RSS |")
print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    e, cpp, c = r["evaluation"], r["llama_cpp"], r["config"]
    llama = f"{cpp['f32']['perplexity']:.3f} / {cpp['q8_0']['perplexity']:.3f}" if cpp else "— (no GGUF)"
    q8 = f"{r['bytes']['q8_0'] / 1e6:.1f} MB" if r["bytes"]["q8_0"] else "—"
    dense_row = r["name"] == "dense"
    removed = "—" if dense_row else f"{(1 - row_block_params(r) / base) * 100:.1f}%"
    widths = c.get("layer_intermediate_sizes")
    shown = f"{min(widths)}–{max(widths)}" if widths else str(c["intermediate_size"])
    if r.get("slice"):
        shown += f", hidden {r['slice']['kept']}"
    if r.get("lowrank"):
        shown += ", rank-r factors (dense product in the files)"
    hq = c.get("layer_num_attention_heads", [c["num_attention_heads"]])
    hk = c.get("layer_num_key_value_heads", [c.get("num_key_value_heads", c["num_attention_heads"])])
    heads = "/".join(f"{min(v)}" if min(v) == max(v) else f"{min(v)}–{max(v)}" for v in (hq, hk))
    st = r["structure"] or r.get("slice")
    seconds = st["seconds"] if st else r["timings"].get("calibration_s")
    ppl = "1" if dense_row else f"{e['perplexity'] / e['original_perplexity']:.3f}"
    print(f"| {r['name']} | {removed} | {shown} | {heads} | {r['bytes']['safetensors'] / 1e6:.0f} MB | {q8} | {ppl} "
          f"| {e['mean_kl']:.4f} | {e['top1_agreement']:.3f} | {llama} "
          f"| {speed_cell(prompt, r['name'], 'f32')} | {speed_cell(prompt, r['name'], 'q8_0')} "
          f"| {speed_cell(generate, r['name'], 'f32')} | {speed_cell(generate, r['name'], 'q8_0')} "
          f"| {'—' if dense_row or seconds is None else f'{seconds:.1f} s'} "
          f"| {r['wall_s']:.0f} s, {r['rss_kb'] / 1024:.0f} MB |")
