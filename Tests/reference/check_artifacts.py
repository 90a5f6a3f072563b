#!/usr/bin/env python3
"""Load every artifact of the given attempt directories with the standard Python tools:
*.safetensors with `safetensors` (numpy backend, ml_dtypes for BF16), *.gguf with gguf-py's
GGUFReader, and check manifest.json's sha256 of every output against the file (hashlib); with
--recorded FILE (a JSON list of {"path", "sha256", "bytes"}: what the artifacts table recorded),
each of those files' size and sha256 too. Prints JSON; exits 1 on any failure.
Usage: check_artifacts.py [--recorded FILE] DIR..."""
import hashlib
import json
import os
import sys

import ml_dtypes  # noqa: F401
from gguf_fast import GGUFTensorReader
from safetensors import safe_open


DIGESTS = {}


def sha256(path):
    """The file's digest, computed once per path."""
    if path in DIGESTS:
        return DIGESTS[path]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    DIGESTS[path] = h.hexdigest()
    return DIGESTS[path]


def main():
    errors, loaded = [], {"safetensors": 0, "gguf": 0, "tensors": 0, "recorded": 0}
    dirs, recorded = sys.argv[1:], []
    if dirs[:1] == ["--recorded"]:
        recorded, dirs = json.load(open(dirs[1])), dirs[2:]
    for d in dirs:
        manifest = json.load(open(os.path.join(d, "manifest.json")))
        for o in manifest["outputs"]:
            p = os.path.join(d, o["path"])
            if sha256(p) != o["sha256"]:
                errors.append(f"{p}: sha256 differs from manifest.json")
            if p.endswith(".safetensors"):
                with safe_open(p, framework="np") as f:
                    for k in f.keys():
                        f.get_tensor(k)
                        loaded["tensors"] += 1
                loaded["safetensors"] += 1
            elif p.endswith(".gguf"):
                r = GGUFTensorReader(p)
                loaded["tensors"] += len(r.tensors)
                loaded["gguf"] += 1
        if len(manifest["layers"]) == 0:
            errors.append(f"{d}: manifest has no layers")
    for r in recorded:
        p = r["path"]
        if not os.path.isfile(p):
            errors.append(f"{p}: recorded in SQL, not on disk")
        elif os.path.getsize(p) != int(r["bytes"]) or sha256(p) != r["sha256"]:
            errors.append(f"{p}: size or sha256 differs from the artifacts table")
        else:
            loaded["recorded"] += 1
    print(json.dumps({"ok": not errors, "loaded": loaded, "errors": errors}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
