#!/usr/bin/env python3
"""Run every shipped recipe on a model with `squeeze run` and record the SHA-256 of each output.

Refactors must keep outputs byte-identical: record before, compare after.
Usage: recipe_hashes.py BINARY MODEL OUT.json [--compare BEFORE.json] [--threads N] [--recipes DIR]
For .safetensors and .gguf files the data section (everything after the header) is hashed too, so a
change confined to header metadata (the recipe's canonical JSON) is told apart from changed tensors.
manifest.json is skipped (it records timings). Exit 1 when a compared file's data differs.
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile


def data_offset(path):
    with open(path, "rb") as f:
        if path.endswith(".safetensors"):
            return 8 + struct.unpack("<Q", f.read(8))[0]
    if path.endswith(".gguf"):
        from gguf_fast import GGUFTensorReader
        r = GGUFTensorReader(path)
        return min((t.data_offset for t in r.tensors), default=os.path.getsize(path))
    return 0


def sha(path, start=0):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(start)
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--compare")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--recipes", default=os.path.join(os.path.dirname(__file__), "..", "..", "recipes"))
    a = ap.parse_args()
    result = {}
    work = tempfile.mkdtemp(prefix="squeeze-hashes-")
    try:
        for name in sorted(os.listdir(a.recipes)):
            if not name.endswith((".yaml", ".json")):
                continue
            out = os.path.join(work, name)
            r = subprocess.run([a.binary, "run", "--model", a.model, "--recipe", os.path.join(a.recipes, name), "--out", out,
                                "--threads", a.threads], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{name}: squeeze run failed: {r.stderr.strip()[-400:]}")
                sys.exit(1)
            files = {}
            for f in sorted(os.listdir(out)):
                if f == "manifest.json":
                    continue
                p = os.path.join(out, f)
                files[f] = {"file": sha(p), "data": sha(p, data_offset(p))}
            result[name] = files
            shutil.rmtree(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    if not a.compare:
        print(f"{sum(len(v) for v in result.values())} outputs of {len(result)} recipes recorded in {a.out}")
        return
    before = json.load(open(a.compare))
    same = header_only = 0
    bad = []
    for recipe in sorted(set(before) | set(result)):
        b, c = before.get(recipe, {}), result.get(recipe, {})
        for f in sorted(set(b) | set(c)):
            if f not in b or f not in c:
                bad.append(f"{recipe}/{f}: only {'after' if f in c else 'before'}")
            elif b[f]["file"] == c[f]["file"]:
                same += 1
            elif b[f]["data"] == c[f]["data"]:
                header_only += 1
                print(f"{recipe}/{f}: tensor data identical, header differs")
            else:
                bad.append(f"{recipe}/{f}: DATA DIFFERS")
    print(f"{same} outputs byte-identical, {header_only} with only the header changed, {len(bad)} different")
    for x in bad:
        print("  " + x)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
