#!/usr/bin/env python3
"""Write hostile inputs for Squeeze's parsers (the adversarial campaign's reproducers).

Written by hand, independent of the code under test. Usage: hostile_inputs.py OUTDIR
Writes safetensors, GGUF, recipe and manifest files whose names say what they attack.
"""
import json
import os
import struct
import sys


def safetensors(path, header, data=b""):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def gguf_string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gguf(path, kvs, tensors=b"", n_tensors=0, n_kv=None):
    out = b"GGUF" + struct.pack("<IQQ", 3, n_tensors, len(kvs) if n_kv is None else n_kv)
    for k, body in kvs:
        out += gguf_string(k) + body
    with open(path, "wb") as f:
        f.write(out + tensors)


def write_safetensors(d):
    # One metadata array of ~100 MB (was 2.8 GB of memory before it was refused).
    n = 100_000_000 - 64
    arr = b"[" + b",".join([b"1"] * ((n - 40) // 2)) + b"]"
    safetensors(f"{d}/meta-array-100mb.safetensors", b'{"__metadata__":{"a":' + arr + b"}}")
    # 24,000,000 dimensions of 1 (was accepted).
    shape = b"[" + b",".join([b"1"] * 2_000_000) + b"]"
    safetensors(f"{d}/dims-2m.safetensors", b'{"t":{"dtype":"U8","shape":' + shape + b',"data_offsets":[0,1]}}', b"\0")
    safetensors(f"{d}/dims-9.safetensors", {"t": {"dtype": "U8", "shape": [1] * 9, "data_offsets": [0, 1]}}, b"\0")
    # 5-D tensor: safetensors allows it, GGUF does not.
    safetensors(f"{d}/dims-5.safetensors", {"t.weight": {"dtype": "F32", "shape": [2, 2, 2, 2, 32], "data_offsets": [0, 2048]}},
                b"\0" * 2048)
    # Deep nesting and an unknown field holding a big nested value.
    safetensors(f"{d}/deep.safetensors", b"{" + b'"a":' * 1 + b"[" * 200_000 + b"]" * 200_000 + b"}")
    safetensors(f"{d}/dtype-not-string.safetensors", {"t": {"dtype": 5, "shape": [1], "data_offsets": [0, 1]}}, b"\0")
    safetensors(f"{d}/nul-name.safetensors", {"x.weight": {"dtype": "F32", "shape": [32], "data_offsets": [0, 128]},
                                               "x.weight\u0000evil": {"dtype": "F32", "shape": [32], "data_offsets": [128, 256]}},
                b"\0" * 256)
    # Many tiny tensors: a valid 20 MB header.
    parts, i, size = [], 0, 0
    while size < 20_000_000:
        e = f'"t{i}":{{"dtype":"U8","shape":[1],"data_offsets":[{i},{i + 1}]}}'
        parts.append(e)
        size += len(e) + 1
        i += 1
    safetensors(f"{d}/many-tensors.safetensors", ("{" + ",".join(parts) + "}").encode(), b"\0" * i)


def write_gguf(d):
    arr_u8 = struct.pack("<I", 9) + struct.pack("<IQ", 0, 16_000_000) + b"\1" * 16_000_000
    gguf(f"{d}/arrays-6x16mb-u8.gguf", [(f"k{i}", arr_u8) for i in range(6)])
    arr_str = struct.pack("<I", 9) + struct.pack("<IQ", 8, 2_000_000) + b"\0" * 16_000_000
    gguf(f"{d}/arrays-6x16mb-str.gguf", [(f"k{i}", arr_str) for i in range(6)])
    nested = struct.pack("<I", 9) + struct.pack("<IQ", 9, 1_000_000) + (struct.pack("<IQ", 0, 0)) * 1_000_000
    gguf(f"{d}/arrays-nested.gguf", [("n", nested)])
    lying = struct.pack("<I", 9) + struct.pack("<IQ", 4, 1 << 40)
    gguf(f"{d}/array-lying-count.gguf", [("l", lying)])
    gguf(f"{d}/kv-lying-count.gguf", [("a", struct.pack("<IB", 0, 1))], n_kv=1 << 23)
    gguf(f"{d}/string-lying-length.gguf", [("s", struct.pack("<I", 8) + struct.pack("<Q", 1 << 50))])


def write_yaml(d):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    laughs = "\n".join(lines) + "\n"
    with open(f"{d}/laughs.yaml", "w") as f:
        f.write(laughs + "stages: [{export: {format: safetensors}}]\n")
    with open(f"{d}/laughs-in-stage.yaml", "w") as f:
        f.write("stages:\n  - export: {format: safetensors, junk: &x0 [1,1,1,1,1,1,1,1,1,1]}\n"
                "  - export: {format: gguf, type: q8_0, junk: [" + ",".join(["*x0"] * 10) + "]}\n"
                + "".join(f"  - prune: {{sparsity: 0.5, j{i}: &x{i} [" + ",".join([f"*x{i - 1}"] * 10) + "]}\n" for i in range(1, 9)))
    with open(f"{d}/complex-key.yaml", "w") as f:
        f.write("? [stages]\n: 1\n")
    with open(f"{d}/complex-key-in-stage.yaml", "w") as f:
        f.write("stages:\n  - prune: {? {a: 1} : 2}\n  - export: {format: safetensors}\n")
    with open(f"{d}/deep-flow.yaml", "w") as f:
        f.write("stages: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with open(f"{d}/recipe-2mb.yaml", "w") as f:
        f.write("stages:\n  - export: {format: safetensors}\n" + "#" * (2 << 20) + "\n")
    with open(f"{d}/manifest-laughs.yaml", "w") as f:
        f.write("jobs:\n  - {model: m, recipe: r, key: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol]}\n"
                + "".join(f"  - {{model: m, recipe: r, key: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]}\n" for i in range(1, 10)))
    with open(f"{d}/manifest-complex-key.yaml", "w") as f:
        f.write("- {? [model] : x, recipe: r}\n")


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    write_safetensors(d)
    write_gguf(d)
    write_yaml(d)


if __name__ == "__main__":
    main()
