#!/usr/bin/env python3
"""A BERT GGUF Squeeze wrote, loaded and run by the real llama.cpp (embedding mode).

Usage (LD_PRELOAD the libstdc++ shim): check_bert_gguf.py GGUF SQUEEZE_EMBED_JSON MIN_COSINE [TOKENIZER_JSON SENTENCE ...]
  SQUEEZE_EMBED_JSON is `squeeze embed` output (windows' token ids and Squeeze's own pooled,
  normalized embeddings). llama.cpp runs the same ids with the model's pooling; prints the cosine of
  each window's embedding to Squeeze's and fails below MIN_COSINE. With a tokenizer.json and
  SENTENCEs, llama.cpp's own tokenizer (reading the GGUF's vocabulary) must give the ids the
  `tokenizers` package gives.
"""
import json
import os
import sys

import numpy as np

from llama_cpp_check import ffi, lib, quiet


def main():
    path, embed_json, min_cos = sys.argv[1], sys.argv[2], float(sys.argv[3])
    ref = json.load(open(embed_json))
    if not os.environ.get("LLAMA_CPP_VERBOSE"):
        lib.llama_log_set(quiet, ffi.NULL)
    lib.llama_backend_init()
    mp = lib.llama_model_default_params()
    mp.n_gpu_layers = 0
    model = lib.llama_model_load_from_file(path.encode(), mp)
    if model == ffi.NULL:
        print(json.dumps({"ok": False, "error": "llama.cpp could not load " + path}))
        sys.exit(1)
    n = max(len(r) for r in ref["ids"])
    cp = lib.llama_context_default_params()
    cp.n_ctx = cp.n_batch = cp.n_ubatch = max(n, 64)
    cp.n_threads = cp.n_threads_batch = os.cpu_count() or 1
    cp.embeddings = True
    cp.pooling_type = -1  # the model's bert.pooling_type
    ctx = lib.llama_init_from_model(model, cp)
    n_embd = lib.llama_model_n_embd(model)
    cosines = []
    for ids, want in zip(ref["ids"], ref["embeddings"]):
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
        lib.llama_batch_free(b)
        if rc != 0:
            print(json.dumps({"ok": False, "error": f"llama_decode returned {rc}"}))
            sys.exit(1)
        e = lib.llama_get_embeddings_seq(ctx, 0)
        got = np.frombuffer(ffi.buffer(e, 4 * n_embd), dtype=np.float32).astype(np.float64)
        w = np.asarray(want, dtype=np.float64)
        cosines.append(float(got @ w / (np.linalg.norm(got) * np.linalg.norm(w))))
    token_errors = []
    if len(sys.argv) > 4:
        from tokenizers import Tokenizer
        hf = Tokenizer.from_file(sys.argv[4])
        hf.no_padding()
        vocab = lib.llama_model_get_vocab(model)
        for s in sys.argv[5:]:
            text = s.encode()
            buf = ffi.new("int32_t[]", len(text) + 16)
            k = lib.llama_tokenize(vocab, text, len(text), buf, len(text) + 16, True, False)
            got, want = [buf[i] for i in range(k)], hf.encode(s).ids
            if got != want:
                token_errors.append({"text": s, "llama.cpp": got, "tokenizers": want})
    ok = min(cosines) >= min_cos and not token_errors
    print(json.dumps({"ok": ok, "min_cosine": min(cosines), "mean_cosine": sum(cosines) / len(cosines), "windows": len(cosines),
                      "sentences": len(sys.argv[5:]), "token_errors": token_errors}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
