#!/usr/bin/env python3
"""llm-compressor (the peer) on SmolLM2 beside `ops/bench quality`'s rows, one recipe a process:

  llmcompressor_peer.py HF_DIR TEXT RECIPE [SQUEEZE_RECIPE]
      RECIPE: wanda-50 | sparsegpt-50 | sparsegpt-2of4 | gptq-int4-g64
      SQUEEZE_RECIPE (wanda-50 only): a Squeeze recipe whose prune stages give blocks different
      sparsities (targets blk.N.*); llm-compressor gets the same per-layer list.

Same 210 block matrices (every Linear but lm_head), the same 128 calibration windows × 256 tokens
and 16 held-out evaluation windows that Squeeze cuts (Tests/reference/llama_reference.py's windows),
2 torch threads. Times `oneshot` alone and reads the process's peak RSS right after it (the F32
model, its Hessians and activations: what the compression holds). Then scores the compressed model
against the dense one reloaded from HF_DIR exactly as Squeeze's evaluation does: each window's
second half, perplexity, mean KL(dense ‖ compressed) and top-1 agreement. Prints one JSON line.
"""
import json
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "reference"))
from llama_reference import encode, windows  # noqa: E402


def block_sparsities(squeeze_recipe, layers):
    """Each block's sparsity in a Squeeze recipe: the first prune stage whose targets match the
    block's q_proj (GGUF name blk.N.attn_q.weight) and whose ignore patterns do not."""
    import fnmatch
    import yaml
    stages = [s["prune"] for s in yaml.safe_load(open(squeeze_recipe))["stages"] if "prune" in s]
    out = []
    for i in range(layers):
        name = f"blk.{i}.attn_q.weight"
        hit = next(s for s in stages if any(fnmatch.fnmatchcase(name, t) for t in s.get("targets", ["*"]))
                   and not any(fnmatch.fnmatchcase(name, g) for g in s.get("ignore", [])))
        out.append(float(hit["sparsity"]))
    return out


def modifier(recipe, sparsity=0.5):
    if recipe == "wanda-50":
        from llmcompressor.modifiers.pruning import WandaPruningModifier
        return WandaPruningModifier(sparsity=sparsity, mask_structure="0:0", targets=["Linear"], ignore=["lm_head"])
    if recipe in ("sparsegpt-50", "sparsegpt-2of4"):
        from llmcompressor.modifiers.pruning import SparseGPTModifier
        return SparseGPTModifier(sparsity=0.5, mask_structure="2:4" if recipe.endswith("2of4") else "0:0",
                                 targets=["Linear"], ignore=["lm_head"])
    if recipe == "gptq-int4-g64":
        from llmcompressor.modifiers.quantization import GPTQModifier
        return GPTQModifier(ignore=["lm_head"], config_groups={"group_0": {
            "targets": ["Linear"],
            "weights": {"num_bits": 4, "type": "int", "symmetric": False, "strategy": "group", "group_size": 64}}})
    raise SystemExit(f"unknown recipe {recipe}")


def load(hf_dir):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()


def log_probs(model, ids):
    with torch.no_grad():
        out = model(torch.tensor([ids])).logits[0].double()
    return torch.log_softmax(out, dim=-1)


def main():
    hf_dir, text, recipe = sys.argv[1:4]
    layers = json.load(open(os.path.join(hf_dir, "config.json")))["num_hidden_layers"]
    sparsity = block_sparsities(sys.argv[4], layers) if len(sys.argv) > 4 else 0.5
    torch.set_num_threads(2)
    from loguru import logger
    logger.remove()  # llm-compressor logs every module to stdout; this script's stdout is its JSON line
    logger.add(sys.stderr, level="WARNING")
    from datasets import Dataset
    from llmcompressor import oneshot
    from transformers import PreTrainedTokenizerFast

    ids = encode(hf_dir, open(text, encoding="utf-8").read())
    calib = windows(ids, 128, 256, "calibration")
    held = windows(ids, 16, 256, "evaluation")
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(hf_dir, "tokenizer.json"))
    data = Dataset.from_dict({"input_ids": calib, "attention_mask": [[1] * len(w) for w in calib]})
    model = load(hf_dir)
    if isinstance(sparsity, list):
        # llm-compressor takes one value per module its targets match (every Linear, in module order).
        import re
        per_block = sparsity
        sparsity = [per_block[int(m.group(1))] if (m := re.match(r"model\.layers\.(\d+)\.", name)) else 0.5
                    for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)]
    t0 = time.perf_counter()
    oneshot(model=model, tokenizer=tok, dataset=data, recipe=[modifier(recipe, sparsity)], num_calibration_samples=len(calib),
            max_seq_length=256, shuffle_calibration_samples=False)
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    zeros = total = 0
    for name, p in model.named_parameters():
        if name.startswith("model.layers.") and name.endswith("proj.weight"):
            zeros += int((p == 0).sum())
            total += p.numel()
    dense = load(hf_dir)
    nll_d = nll_c = kl = 0.0
    agree = n = 0
    for w in held:
        a, b = log_probs(dense, w), log_probs(model, w)
        pos = torch.arange(len(w) // 2, len(w) - 1)
        tgt = torch.tensor(w)[pos + 1]
        a, b = a[pos], b[pos]
        nll_d -= float(a.gather(1, tgt[:, None]).sum())
        nll_c -= float(b.gather(1, tgt[:, None]).sum())
        kl += float((a.exp() * (a - b)).sum())
        agree += int((a.argmax(1) == b.argmax(1)).sum())
        n += len(pos)
    print(json.dumps({"name": recipe + ("-by-block" if isinstance(sparsity, list) else ""), "peer": "llm-compressor", "version": __import__("llmcompressor").__version__,
                      "torch": torch.__version__, "compute_s": round(seconds, 1), "rss_mb": round(rss_mb),
                      "ppl": float(np.exp(nll_c / n)), "dense_ppl": float(np.exp(nll_d / n)), "mean_kl": kl / n,
                      "top1": agree / n, "tokens": n, "block_sparsity": zeros / max(total, 1)}))


if __name__ == "__main__":
    main()
