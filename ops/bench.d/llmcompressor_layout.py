#!/usr/bin/env python3
"""What llm-compressor writes for a round-to-nearest weight scheme, to compare layouts with Squeeze's.

  llmcompressor_layout.py HF_DIR OUT_DIR BITS SCHEME GROUP
      SCHEME: symmetric | asymmetric; GROUP: a group size, or 0 for one scale per output channel

Runs llm-compressor's data-free QuantizationModifier (every Linear but lm_head, min-max observer)
on the model in float32 and saves it compressed (compressed-tensors, pack-quantized) to OUT_DIR.
"""
import sys

import torch


def main():
    hf_dir, out_dir, bits, scheme, group = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    torch.set_num_threads(2)
    from loguru import logger
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from transformers import AutoModelForCausalLM
    weights = {"num_bits": bits, "type": "int", "symmetric": scheme == "symmetric",
               "strategy": "group" if group else "channel", "observer": "minmax"}
    if group:
        weights["group_size"] = group
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    recipe = QuantizationModifier(ignore=["lm_head"], config_groups={
        "group_0": {"targets": ["Linear"], "weights": weights}})
    oneshot(model=model, recipe=recipe)
    model.save_pretrained(out_dir, save_compressed=True)


if __name__ == "__main__":
    main()
