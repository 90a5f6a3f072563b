#!/usr/bin/env python3
"""The real llama.cpp (PyPI `llama-cpp-cffi`, its CPU library through cffi) on a GGUF Squeeze wrote.

Run with LD_PRELOAD set to a shim defining `__cxa_call_terminate` (Debian 12's libstdc++ lacks it;
Tests/reference/llama_cpp_shim.sh builds it).

  llama_cpp_check.py logits GGUF SQUEEZE_JSON SQUEEZE_LOGITS MAX_REL [MIN_AGREE]
      llama.cpp loads the file, decodes each window of SQUEEZE_JSON's ids with every logit, and
      compares with Squeeze's own logits: max |Δ| / max |Squeeze| <= MAX_REL and the top tokens
      agree at >= MIN_AGREE of the positions (default 1). For quantized types llama.cpp also
      rounds the activations to 8 bits, so only a loose bound holds there.
  llama_cpp_check.py tokens GGUF TEXT SQUEEZE_JSON
      llama.cpp's tokenization of the text (no BOS, special tokens parsed) equals Squeeze's.
  llama_cpp_check.py generate GGUF SQUEEZE_JSON
      llama.cpp continues SQUEEZE_JSON's prompt greedily; its tokens equal Squeeze's `generated`.
Prints JSON; exit 1 on failure.
"""
import importlib.util
import json
import os
import sys

import numpy as np


def load_lib():
    """llama.cpp's CPU library, loaded once per interpreter (the test fork server loads it before forking)."""
    m = sys.modules.get("_llama_cpp_cpu")
    if m is None:
        d = importlib.util.find_spec("llama").submodule_search_locations[0]
        so = next(f for f in os.listdir(d) if f.startswith("_llama_cpp_cpu") and f.endswith(".so"))
        spec = importlib.util.spec_from_file_location("_llama_cpp_cpu", os.path.join(d, so))
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        sys.modules["_llama_cpp_cpu"] = m
    return m.lib, m.ffi


lib, ffi = load_lib()


@ffi.callback("void(enum ggml_log_level, char *, void *)")
def quiet(level, text, user):
    pass


def open_model(path, n_ctx, embeddings=False):
    """The model and a context of `n_ctx` tokens (embedding mode with the model's pooling when asked)."""
    if not os.environ.get("LLAMA_CPP_VERBOSE"):
        lib.llama_log_set(quiet, ffi.NULL)
    lib.llama_backend_init()
    mp = lib.llama_model_default_params()
    mp.n_gpu_layers = 0
    model = lib.llama_model_load_from_file(path.encode(), mp)
    if model == ffi.NULL:
        print(json.dumps({"ok": False, "error": "llama.cpp could not load " + path}))
        sys.exit(1)
    cp = lib.llama_context_default_params()
    cp.n_ctx = n_ctx
    cp.n_batch = n_ctx
    cp.n_ubatch = n_ctx
    # One thread: the checks run beside other tests on every core, where ggml's threads spin at each
    # barrier waiting for a descheduled peer (1.1 CPU seconds per check with two threads, 0.7 with one;
    # every row's dot products run on one thread either way, so the logits are the same).
    cp.n_threads = cp.n_threads_batch = 1
    cp.type_k = cp.type_v = 0  # F32 KV cache (the default F16 rounds keys and values)
    if embeddings:
        cp.embeddings = True
        cp.pooling_type = -1  # the model's own (bert.pooling_type)
    ctx = lib.llama_init_from_model(model, cp)
    return model, ctx


def decode(ctx, ids):
    """Runs `ids` as sequence 0 from a fresh KV cache, every position's output kept."""
    lib.llama_kv_self_clear(ctx)
    b = lib.llama_batch_init(len(ids), 0, 1)
    for i, t in enumerate(ids):
        b.token[i] = t
        b.pos[i] = i
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = 0
        b.logits[i] = 1
    b.n_tokens = len(ids)
    rc = lib.llama_decode(ctx, b)
    assert rc == 0, f"llama_decode returned {rc}"
    return b


def open_threads(path, n_ctx, threads):
    """open_model with THREADS threads for decoding; returns (model, ctx, vocabulary size)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    model, ctx = open_model(path, n_ctx)
    lib.llama_set_n_threads(ctx, threads, threads)
    return model, ctx, lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(model))


def prompt(ctx, ids):
    """Runs `ids` from a fresh KV cache with the last token's logits only (llama-bench's prompt test)."""
    lib.llama_kv_self_clear(ctx)
    b = lib.llama_batch_init(len(ids), 0, 1)
    for i, t in enumerate(ids):
        b.token[i], b.pos[i], b.n_seq_id[i] = t, i, 1
        b.seq_id[i][0] = 0
        b.logits[i] = 1 if i == len(ids) - 1 else 0
    b.n_tokens = len(ids)
    assert lib.llama_decode(ctx, b) == 0
    lib.llama_batch_free(b)


def decode_all(ctx, ids, n_vocab):
    """Logits of every position of `ids` (fresh KV cache)."""
    b = decode(ctx, ids)
    out = np.stack([np.frombuffer(ffi.buffer(lib.llama_get_logits_ith(ctx, i), 4 * n_vocab), dtype=np.float32).copy()
                    for i in range(len(ids))])
    lib.llama_batch_free(b)
    return out


def main():
    mode, gguf = sys.argv[1], sys.argv[2]
    if mode == "logits":
        sq = json.load(open(sys.argv[3]))
        windows, n_vocab = sq["ids"], sq["vocab"]
        mine = np.fromfile(sys.argv[4], dtype="<f4").reshape(len(windows), len(windows[0]), n_vocab)
        _, ctx = open_model(gguf, len(windows[0]))
        ref = np.stack([decode_all(ctx, w, n_vocab) for w in windows])
        rel = float(np.abs(ref - mine).max() / np.abs(mine).max())
        agree = float((ref.argmax(-1) == mine.argmax(-1)).mean())
        ok = rel <= float(sys.argv[5]) and agree >= (float(sys.argv[6]) if len(sys.argv) > 6 else 1.0)
        print(json.dumps({"ok": ok, "max_relative_difference": rel, "argmax_agreement": agree, "shape": list(ref.shape)}))
        sys.exit(0 if ok else 1)
    if mode == "tokens":
        text = open(sys.argv[3], encoding="utf-8").read().encode()
        want = json.load(open(sys.argv[4]))["ids"]
        model, _ = open_model(gguf, 64)
        vocab = lib.llama_model_get_vocab(model)
        buf = ffi.new("int32_t[]", len(text) + 16)
        n = lib.llama_tokenize(vocab, text, len(text), buf, len(text) + 16, False, True)
        got = [buf[i] for i in range(n)]
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
        ok = got == want
        print(json.dumps({"ok": ok, "tokens": len(got), "squeeze_tokens": len(want), "first_difference": first}))
        sys.exit(0 if ok else 1)
    sq = json.load(open(sys.argv[3]))
    prompt, want = sq["prompt"], sq["generated"]
    model, ctx = open_model(gguf, len(prompt) + len(want) + 8)
    n_vocab = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(model))
    ids = list(prompt)
    got = []
    for _ in range(len(want)):
        t = int(decode_all(ctx, ids, n_vocab)[-1].argmax())
        got.append(t)
        ids.append(t)
    ok = got == want
    print(json.dumps({"ok": ok, "llama_cpp": got, "squeeze": want}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
