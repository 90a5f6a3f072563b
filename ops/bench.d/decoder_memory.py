"""The memory arithmetic of a streamed decoder calibration, from a Hugging Face config.json.

usage: decoder_memory.py CONFIG SAMPLES SEQ_LEN  (prints a Markdown paragraph)
"""
import json
import sys

def paragraph(cfg, samples, seq):
    """The arithmetic as one Markdown paragraph, for a Hugging Face config and the calibration size."""
    h, ffn, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd = cfg.get("head_dim", h // heads)
    tokens = samples * seq
    mb = lambda n: n * 4 / 1e6
    block = h * (heads * hd * 2 + kv * hd * 2) + 3 * h * ffn
    acts, product, embed = tokens * h, tokens * max(ffn, heads * hd), vocab * h
    return (f"The arithmetic (F32): one block's weights {mb(block):.0f} MB; the calibration activations "
            f"(tokens × hidden = {tokens} × {h}) {mb(acts):.0f} MB; the embedding {mb(embed):.0f} MB; together "
            f"{mb(block + acts + embed):.0f} MB, × 1.5 = {1.5 * mb(block + acts + embed):.0f} MB. The streamed "
            "calibration also keeps "
            f"the SwiGLU product between its last two passes (tokens × intermediate = {mb(product):.0f} MB) rather "
            "than "
            f"computing gate and up twice; counted with it the bound is 1.5 × {mb(block + acts + embed + product):.0f} = "
            f"{1.5 * mb(block + acts + embed + product):.0f} MB. With `distill` the original model's activations "
            f"({mb(acts):.0f} MB) and block ({mb(block):.0f} MB) are held beside them.")


if __name__ == "__main__":
    print(paragraph(json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])))
