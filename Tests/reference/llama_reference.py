#!/usr/bin/env python3
"""Independent reference for Squeeze's decoder path: the `tokenizers` package on the model's
tokenizer.json, and a float64 numpy Llama forward (RMSNorm, rotate-half RoPE, grouped-query causal
attention, SwiGLU, tied or separate LM head, optional q/k/v biases, and a structurally pruned
model's per-layer widths and o_proj / down_proj biases as Squeeze's config.json states them:
`layer_intermediate_sizes`, `layer_num_attention_heads`, `layer_num_key_value_heads`,
`output_bias`) on the HF safetensors.

  llama_reference.py tokens HF_DIR TEXT SQUEEZE_JSON
      Squeeze's ids of the whole text (`squeeze logits --all-tokens`) must equal the package's.
  llama_reference.py logits HF_DIR TEXT SAMPLES SEQ_LEN PART SQUEEZE_JSON SQUEEZE_LOGITS
      Same windows (first 80% / last 20% of the tokens, evenly spaced), same ids, and logits within
      1e-4 of the largest logit magnitude (max |Δ| / max |ref|).
Prints JSON; exit 1 on failure.
"""
import hashlib
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def encode(hf_dir, text):
    """The package's ids of `text`; kept under $SQUEEZE_TEST_SCRATCH/token-ids, keyed by the
    tokenizer.json's and the text's bytes, where that is set (several models share a tokenizer)."""
    tokenizer_json = open(os.path.join(hf_dir, "tokenizer.json"), "rb").read()
    scratch = os.environ.get("SQUEEZE_TEST_SCRATCH")
    cached = None
    if scratch:
        key = hashlib.sha256(hashlib.sha256(tokenizer_json).digest() + text.encode("utf-8")).hexdigest()
        cached = os.path.join(scratch, "token-ids", key + ".json")
        if os.path.exists(cached):
            return json.load(open(cached))
    tok = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
    tok.no_truncation()
    tok.no_padding()
    ids = tok.encode(text, add_special_tokens=False).ids
    if cached:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        tmp = f"{cached}.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(ids, f)
        os.replace(tmp, cached)
    return ids


def framing(hf_dir):
    """The tokens the tokenizer's post-processor puts before a text (Llama 2's <s>), none for most."""
    tok = Tokenizer.from_file(os.path.join(hf_dir, "tokenizer.json"))
    return tok.encode("", add_special_tokens=True).ids


def windows(ids, samples, seq_len, part, prefix=()):
    cut = len(ids) * 4 // 5
    lo, hi = (0, cut) if part == "calibration" else (cut, len(ids))
    window = seq_len - len(prefix)
    spare = (hi - lo) - window
    return [list(prefix) + ids[lo + (0 if samples == 1 else i * spare // (samples - 1)):][:window]
            for i in range(samples)]


def forward(hf_dir, batch, on_product=None, on_inputs=None, on_final=None):
    """Logits [windows, L, vocab]; on_product(block, window, swiglu_product) sees down_proj's inputs,
    on_inputs(block, window, attention_norm, context, ffn_norm, swiglu_product) every linear's,
    on_final(stream) the last block's output (the final norm's input)."""
    c = json.load(open(os.path.join(hf_dir, "config.json")))
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(hf_dir, "model.safetensors")).items()}
    H, nh = c["hidden_size"], c["num_attention_heads"]
    nkv = c.get("num_key_value_heads", nh)
    d = c.get("head_dim") or H // nh
    eps, theta = c["rms_norm_eps"], c.get("rope_theta", 10000.0)
    bias = c["architectures"][0] == "Qwen2ForCausalLM" or c.get("attention_bias", False)
    L = len(batch[0])
    inv = 1.0 / theta ** (np.arange(0, d, 2) / d)
    ang = np.arange(L)[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    def rope(x):  # x: [L, heads, d]
        a, b = x[..., : d // 2], x[..., d // 2:]
        return np.concatenate([a * cos[:, None] - b * sin[:, None], b * cos[:, None] + a * sin[:, None]], -1)

    out_bias = c.get("output_bias", False)
    n_layers = c["num_hidden_layers"]
    heads = c.get("layer_num_attention_heads", [nh] * n_layers)
    kv_heads = c.get("layer_num_key_value_heads", [nkv] * n_layers)

    def lin(x, name):
        y = x @ w[name + ".weight"].T
        if name.endswith(("q_proj", "k_proj", "v_proj")):
            has_bias = bias
        else:
            has_bias = out_bias and name.endswith(("o_proj", "down_proj"))
        if has_bias:
            y = y + w[name + ".bias"]
        return y

    def shortcut(x, name):
        # A per-block slice (`residual_shortcuts`): the residual re-expressed in the next basis.
        return x @ w[name] if c.get("residual_shortcuts", False) else x

    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    mask = np.triu(np.full((L, L), -np.inf), 1)
    out = []
    for ids in batch:
        x = w["model.embed_tokens.weight"][ids]
        for i in range(n_layers):
            p = f"model.layers.{i}."
            nh, nkv = heads[i], kv_heads[i]
            h = h_att = rms(x, w[p + "input_layernorm.weight"])
            q = rope(lin(h, p + "self_attn.q_proj").reshape(L, nh, d))
            k = rope(lin(h, p + "self_attn.k_proj").reshape(L, nkv, d))
            v = lin(h, p + "self_attn.v_proj").reshape(L, nkv, d)
            k, v = np.repeat(k, nh // nkv, axis=1), np.repeat(v, nh // nkv, axis=1)
            s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(d) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = np.einsum("hqk,khd->qhd", s, v).reshape(L, nh * d)
            x = shortcut(x, p + "attn_shortcut_Q") + lin(ctx, p + "self_attn.o_proj")
            h = rms(x, w[p + "post_attention_layernorm.weight"])
            g = lin(h, p + "mlp.gate_proj")
            act = g / (1 + np.exp(-g)) * lin(h, p + "mlp.up_proj")
            if on_product:
                on_product(i, len(out), act)
            if on_inputs:
                on_inputs(i, len(out), h_att, ctx, h, act)
            x = shortcut(x, p + "mlp_shortcut_Q") + lin(act, p + "mlp.down_proj")
        if on_final:
            on_final(x)
        out.append(rms(x, w["model.norm.weight"]) @ head.T)
    return np.stack(out)


def main():
    mode = sys.argv[1]
    if mode == "tokens":
        hf_dir, text, sq = sys.argv[2:5]
        ref = encode(hf_dir, open(text, encoding="utf-8").read())
        got = json.load(open(sq))["ids"]
        first = next((i for i, (a, b) in enumerate(zip(ref, got)) if a != b), None)
        ok = ref == got
        print(json.dumps({"ok": ok, "tokens": len(ref), "squeeze_tokens": len(got), "first_difference": first}))
        sys.exit(0 if ok else 1)
    hf_dir, text, samples, seq_len, part, sq, logits_file = sys.argv[2:9]
    samples, seq_len = int(samples), int(seq_len)
    batch = windows(encode(hf_dir, open(text, encoding="utf-8").read()), samples, seq_len, part, framing(hf_dir))
    got = json.load(open(sq))
    ids_ok = got["ids"] == batch
    ref = forward(hf_dir, batch)
    sql = np.fromfile(logits_file, dtype="<f4").astype(np.float64).reshape(ref.shape)
    rel = float(np.abs(sql - ref).max() / np.abs(ref).max())
    agree = float((sql.argmax(-1) == ref.argmax(-1)).mean())
    ok = ids_ok and rel <= 1e-4
    print(json.dumps({"ok": ok, "ids_equal": ids_ok, "max_relative_difference": rel, "argmax_agreement": agree,
                      "shape": list(ref.shape)}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
