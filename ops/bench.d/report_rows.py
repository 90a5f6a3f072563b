"""What the ops/bench.d renderers share: reading JSON-lines rows, a median, and an evaluation's ratio."""
import json
import os


def read_rows(path):
    """The JSON objects of a JSON-lines file, blank lines skipped."""
    return [json.loads(line) for line in open(path) if line.strip()]


def median(values):
    """The median (the mean of the middle two for an even count)."""
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def ratio(row):
    """A recipe row's perplexity over the dense model's, from its manifest's evaluation."""
    e = row["evaluation"]
    return e["perplexity"] / e["original_perplexity"]


def block_params(c):
    """Parameters of a Llama config.json's decoder blocks' linears, per-block widths and heads included,
    and a per-block slice's two shortcut matrices per block (`residual_shortcuts`)."""
    h, n = c["hidden_size"], c["num_hidden_layers"]
    d = c.get("head_dim") or h // c["num_attention_heads"]
    heads = c.get("layer_num_attention_heads", [c["num_attention_heads"]] * n)
    kv = c.get("layer_num_key_value_heads", [c.get("num_key_value_heads", c["num_attention_heads"])] * n)
    ffn = c.get("layer_intermediate_sizes", [c["intermediate_size"]] * n)
    shortcuts = 2 * h * h if c.get("residual_shortcuts", False) else 0
    return sum(h * (2 * heads[i] * d + 2 * kv[i] * d) + 3 * h * ffn[i] + shortcuts for i in range(n))


def prompt_speeds(d):
    """prompt(name, type): a structured row's llama.cpp prompt tokens/s from DIR/speed-{f32,q8_0}.json
    (llama_cpp_prompt_speed.py, by file path), None where the run did not measure it."""
    speed = {t: json.load(open(os.path.join(d, f"speed-{t}.json"))) for t in ["f32", "q8_0"]}
    return lambda name, t: speed[t].get(os.path.join(d, name, f"model-{t}.gguf"))


def row_block_params(row):
    """A structured bench row's block parameters: its config's, with a low-rank row's factored
    matrices counted as their factors (rank × (rows + cols))."""
    lr = row.get("lowrank")
    return block_params(row["config"]) - (lr["dense"] - lr["factors"] if lr else 0)


def generation_speeds(d):
    """generate(name, type): llama.cpp's greedy generation tokens/s of a structured row's GGUF from
    DIR/generate-{f32,q8_0}.jsonl (llama_cpp_generate.py per file), None where not measured."""
    speed = {}
    for t in ["f32", "q8_0"]:
        path = os.path.join(d, f"generate-{t}.jsonl")
        speed[t] = {r["path"]: r["tokens_per_s"] for r in read_rows(path)} if os.path.exists(path) else {}
    return lambda name, t: speed[t].get(os.path.join(d, name, f"model-{t}.gguf"))
