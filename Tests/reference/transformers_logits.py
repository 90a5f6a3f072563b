#!/usr/bin/env python3
"""Logits of a Hugging Face directory run by transformers on CPU (float32), against Squeeze's.

  transformers_logits.py HF_DIR IDS_JSON SQUEEZE_LOGITS

IDS_JSON is `squeeze logits`'s stdout ({"ids": [[...], ...], "vocab": V}) and SQUEEZE_LOGITS the
raw float32 file it wrote (samples × seq-len × vocabulary). A compressed-tensors directory is
loaded through the compressed-tensors package and decompressed to float32. Prints one JSON line:
the largest absolute difference, the quantization config transformers saw, and the load and
forward times.
"""
import json
import sys
import time

import numpy as np
import torch


def main():
    hf_dir, ids_path, logits_path = sys.argv[1:4]
    meta = json.load(open(ids_path))
    ids, vocab = meta["ids"], meta["vocab"]
    want = np.fromfile(logits_path, dtype=np.float32).reshape(len(ids), len(ids[0]), vocab)
    torch.set_num_threads(2)
    from transformers import AutoModelForCausalLM
    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    load_s = time.time() - t0
    qc = getattr(model.config, "quantization_config", None)
    t0 = time.time()
    worst = 0.0
    with torch.no_grad():
        for s, row in enumerate(ids):
            got = model(torch.tensor([row])).logits[0].float().numpy()
            worst = max(worst, float(np.abs(got - want[s]).max()))
    forward_s = time.time() - t0
    method = qc.get("quant_method") if isinstance(qc, dict) else getattr(qc, "quant_method", None)
    print(json.dumps({"max_abs_diff": worst, "quant_method": str(method) if method else None,
                      "load_s": round(load_s, 2), "forward_s": round(forward_s, 2),
                      "samples": len(ids), "seq_len": len(ids[0])}))


if __name__ == "__main__":
    main()
