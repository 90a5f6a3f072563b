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
import sys

import numpy as np

from llama_cpp_check import decode, ffi, lib, open_model


def main():
    path, embed_json, min_cos = sys.argv[1], sys.argv[2], float(sys.argv[3])
    ref = json.load(open(embed_json))
    n = max(len(r) for r in ref["ids"])
    model, ctx = open_model(path, max(n, 64), embeddings=True)
    n_embd = lib.llama_model_n_embd(model)
    cosines = []
    for ids, want in zip(ref["ids"], ref["embeddings"]):
        lib.llama_batch_free(decode(ctx, ids))
        got = np.frombuffer(ffi.buffer(lib.llama_get_embeddings_seq(ctx, 0), 4 * n_embd), dtype=np.float32).astype(np.float64)
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
