"""Markdown for `ops/bench deploy`: deploy_report.py DIR CPU-LINE CORES.

DIR holds the SmolLM2 run (out/manifest.json, run.txt: calibration, wall seconds, peak RSS KB),
unpack.json (check_compressed_tensors.py), transformers.json (transformers_logits.py) and
layout.jsonl (compare_ct_layout.py, one line per scheme on the tiny Llama)."""
import json
import os
import sys
from datetime import datetime, timezone

d, cpu, cores = sys.argv[1], sys.argv[2], sys.argv[3]
manifest = json.load(open(os.path.join(d, "out", "manifest.json")))
calib, wall, rss = open(os.path.join(d, "run.txt")).read().split()
unpack = json.load(open(os.path.join(d, "unpack.json")))
tf = json.load(open(os.path.join(d, "transformers.json")))
layout = [json.loads(line) for line in open(os.path.join(d, "layout.jsonl")) if line.strip()]
size = {o["path"]: o["bytes"] for o in manifest["outputs"]}
ev = manifest["evaluation"]

print(f"## Deployable outputs ({datetime.now(timezone.utc):%Y-%m-%d}, {cores} cores, release build)")
print()
print(f"CPU: {cpu}.")
print()
print("`recipes/decoder/gptq-int4-g64-gguf-q8_0.yaml` on SmolLM2-135M (plus a dense export to compare with),")
print("its `compressed-tensors/` directory unpacked by numpy alone (`Tests/reference/check_compressed_tensors.py`)")
print("and loaded by transformers on CPU (`AutoModelForCausalLM.from_pretrained`, compressed-tensors")
print(f"decompressing to float32), whose logits on {tf['samples']} held-out windows of {tf['seq_len']} tokens are")
print("compared with Squeeze's own forward pass of the dense export:")
print()
print("| output | bytes | check |")
print("|---|---|---|")
ct = size.get("compressed-tensors/model.safetensors", 0)
dense = size.get("model.safetensors", 0)
ok = "equal to the dense export" if unpack["ok"] else f"differs: {unpack['errors'][:2]}"
print(f"| `compressed-tensors/model.safetensors` | {ct / 1e6:.1f} MB | numpy: {unpack['quantized']} packed "
      f"linears {ok}, {unpack['plain']} other tensors equal |")
print(f"| transformers {tf['quant_method'] and 'compressed-tensors'} load | {tf['load_s']:.2f} s | largest logit "
      f"difference from Squeeze: {tf['max_abs_diff']:.2e} (target ≤ 1e-3) |")
print(f"| `model-q8_0.gguf` (evaluated) | {size.get('model-q8_0.gguf', 0) / 1e6:.1f} MB | perplexity "
      f"{ev['perplexity']:.3f} against {ev['original_perplexity']:.3f} dense "
      f"({ev['perplexity'] / ev['original_perplexity']:.3f}×) |")
print(f"| `model.safetensors` (dense F32, for the comparison) | {dense / 1e6:.1f} MB | |")
print()
print(f"The job: {float(calib):.1f} s of calibration and GPTQ, {float(wall):.1f} s wall, peak RSS "
      f"{int(rss) / 1024:.0f} MB.")
print()
print("The layout beside llm-compressor 0.14's (`QuantizationModifier`, data-free, min-max observer, every")
print("Linear but lm_head) on the tiny random Llama, float32 (`Tests/reference/compare_ct_layout.py`): tensor")
print("names, dtypes and shapes, config groups and ignore list must match; values are reported.")
print()
print("| scheme | layout | packed words identical | zero points identical | largest scale difference |")
print("|---|---|---|---|---|")
for r in layout:
    zp = f"{r['zero_points_equal']} / {r['zero_points']}" if r["zero_points"] else "none stored (symmetric)"
    print(f"| {r['scheme']} | {'same' if r['layout_equal'] else 'differs: ' + '; '.join(r['errors'][:2])} | "
          f"{r['packed_words_equal']} / {r['packed_words']} | {zp} | {r['max_scale_rel_diff']:.2%} |")
print()
print("Symmetric scales differ by design: llm-compressor divides the largest magnitude by (2^b − 1)/2, Squeeze")
print("by 2^(b−1) − 1 (the unused code −2^(b−1) keeps the grid symmetric); both load the same way. vLLM reads")
print("this format on GPUs; it was not run here.")
