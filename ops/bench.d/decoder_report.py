"""Markdown for `ops/bench decoder`: decoder_report.py DIR.

DIR/meta.json: the run (date, cpu, cores, threads, SmolLM2's config.json, OpenBLAS's kernel core);
DIR/rows.jsonl: kind "depth" (random Llamas of 8 and 32 blocks: F32 MB, wall, peak RSS in KiB) and
kind "calibrated" (SmolLM2 rows: Squeeze's compression and wall seconds and peak RSS of each run —
two runs around the peer's with --peer — and the numpy and llm-compressor JSON lines, or null)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decoder_memory import paragraph  # noqa: E402
from report_rows import read_rows  # noqa: E402

d = sys.argv[1]
meta = json.load(open(os.path.join(d, "meta.json")))
rows = read_rows(os.path.join(d, "rows.jsonl"))

print(f"## Decoders ({meta['date']}, {meta['cores']} cores, release build)")
print()
print(f"CPU: {meta['cpu']}; OpenBLAS kernels: {meta['blas']}.")
print()
print("Peak RSS of a calibrated run does not grow with depth: SparseGPT 50% on every block matrix of")
print("random Llamas of the same width (hidden 576, FFN 1536, vocabulary 400) and 8 or 32 blocks,")
print("32 × 256 calibration tokens. Calibration holds one block's weights and the activations of")
print("every calibration token for that block, never the whole model:")
print()
print("| blocks | F32 weights | wall | peak RSS |")
print("|---:|---:|---:|---:|")
for r in (r for r in rows if r["kind"] == "depth"):
    print(f"| {r['blocks']} | {r['weights_mb']} MB | {r['wall_s']:.2f} s | {r['rss_kb'] // 1024} MB |")
print()
print("Calibrated compression of SmolLM2-135M's 210 block matrices, 128 × 256 calibration tokens,")
print(f"{meta['threads']} threads, no evaluation. Squeeze's compression is the manifest's `timings.calibration_s`: "
      "tokenizing")
print("the calibration text, every forward pass and every layer's kernels, up to the last layer handed to the")
print("writers (opening the input and closing the outputs excluded, as the peers exclude loading the model);")
print("its wall is the whole `squeeze run` process, start to published files, with its peak RSS. Targets")
print("≤ 68 s and ≤ 640 MB, from llm-compressor 0.14 as the issue's author measured it: SparseGPT 205 s at")
print("1.93 GB, GPTQ 203 s at 1.90 GB. Beside them, in the same run: the same algorithms written")
print("straightforwardly in numpy (ops/bench.d/numpy_sequential.py: same windows, same true-sequential order,")
print("BLAS for every product; GPTQ with act order and the min/max grid, as the gptq-int4-g64 row; its clock")
print("starts after loading and tokenizing) and, with `--peer`, llm-compressor's `oneshot` (model loading")
print("excluded). Speed-up = their time / Squeeze's compression, and in parentheses / Squeeze's wall. With")
print("`--peer`, the two rows the peers run are run by Squeeze just before and just after llm-compressor's run")
print("(this machine's speed drifts by tens of percent within an hour): their times are the mean of the two,")
print("each shown in parentheses, and both speed-ups are against that mean.")
print("Rows ending in -bf16h are the row above with the calibrate stage's `hessian: bf16` (XᵀX from the")
print("inputs rounded to BF16, F32 sums: AVX512-BF16 where the CPU line says so, else its exact AVX2 emulation),")
print("against the same numpy and llm-compressor times")
print("(both compute XᵀX in F32).")
print()
print("| recipe | Squeeze compression | Squeeze wall | Squeeze peak RSS | numpy | speed-up vs numpy | llm-compressor "
      "| speed-up vs llm-compressor |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")


def versus(other, comp, wall):
    """Two cells for another implementation's JSON line beside Squeeze's compression and wall seconds."""
    if other is None:
        return "— | —"
    t = other["compute_s"]
    return f"{t:.1f} s, {other['rss_mb']} MB | {t / comp:.2f}× ({t / wall:.2f}×)"


for r in (r for r in rows if r["kind"] == "calibrated"):
    comps, walls = r["compression_s"], r["wall_s"]
    comp, wall = sum(comps) / len(comps), sum(walls) / len(walls)
    shown = f"{comp:.1f} s" if len(comps) == 1 else f"{comp:.1f} s ({' / '.join(f'{c:.1f}' for c in comps)})"
    print(f"| {r['name']} | {shown} | {wall:.1f} s | {max(r['rss_kb']) // 1024} MB | "
          f"{versus(r['numpy'], comp, wall)} | {versus(r['peer'], comp, wall)} |")
print()
print(paragraph(json.load(open(meta["config"])), 128, 256))
