#!/usr/bin/env python3
"""Print a GGUF file's tensor types and general.file_type as JSON, read with gguf-py (independent of Squeeze).

  gguf_types.py FILE.gguf -> {"types": {NAME: TYPE, ...}, "file_type": N, "bytes": FILE_SIZE}
"""
import json
import os
import sys

from gguf_fast import GGUFTensorReader


def main():
    path = sys.argv[1]
    r = GGUFTensorReader(path)
    field = r.fields.get("general.file_type")
    file_type = int(field.parts[field.data[0]][0]) if field is not None else None
    types = {t.name: t.tensor_type.name for t in r.tensors}
    print(json.dumps({"types": types, "file_type": file_type, "bytes": os.path.getsize(path)}))


if __name__ == "__main__":
    main()
