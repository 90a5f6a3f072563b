#!/usr/bin/env python3
"""GGUF k-quant exports against the real llama.cpp and gguf-py.

Run with LD_PRELOAD set to the libstdc++ shim (Tests/reference/llama_cpp_shim.sh).
  check_kquants.py file F32_GGUF SQUEEZE_GGUF FTYPE [--pure] [--output-type T] [--embedding-type T]
      llama.cpp's `llama_model_quantize` (what llama-quantize runs, no importance matrix) makes
      the FTYPE file (LLAMA_FTYPE_MOSTLY_*: 10 Q2_K, 11 Q3_K_S, 12 Q3_K_M, 14 Q4_K_S, 15 Q4_K_M,
      16 Q5_K_S, 17 Q5_K_M, 18 Q6_K, 25 IQ4_NL, 30 IQ4_XS) from the F32 GGUF, with --pure every matrix in the file
      type's default type, with --output-type/--embedding-type (ggml type ids) those tensors' types;
      every tensor of Squeeze's file must have the same type and bytes.
      (The wheel's exported `ggml_quantize_chunk` is not the quantizer llama_model_quantize runs:
      its k-quants skip the final rounding to the packed scales, so it is not the reference here.)
  check_kquants.py imatrix F32_GGUF SQUEEZE_GGUF FTYPE IMATRIX [--pure]
      The same with an importance matrix: IMATRIX (llama.cpp's GGUF-based file or legacy .dat) is
      read as llama-quantize reads it (in_sum2 / counts in F32; .dat values / calls) into the
      std::unordered_map llama_model_quantize takes (Tests/reference/imatrix_map.cpp, built with
      g++ beside the libstdc++ shim), and llama.cpp quantizes with it.
  check_kquants.py errors SOURCE.safetensors GGUF MANIFEST
      Each tensor's relative_error in MANIFEST (whose last GGUF export is GGUF) equals
      ‖x̂ − x‖/‖x‖ with x̂ from gguf-py's dequantizer: Squeeze's k-quant decoder agrees with gguf-py's.
Prints JSON; exit 1 on any difference.
"""
import json
import os
import sys
import tempfile

import numpy as np
from gguf_fast import GGUFTensorReader
from gguf.constants import GGMLQuantizationType
from gguf.quants import dequantize


def load_imatrix(path):
    """{name: per-column weights} as llama-quantize computes them from an imatrix file."""
    with open(path, "rb") as f:
        magic = f.read(4)
    out = {}
    if magic == b"GGUF":
        r = GGUFTensorReader(path)
        ts = {t.name: np.asarray(t.data, dtype=np.float32).reshape(-1) for t in r.tensors}
        for name, sums in ts.items():
            if name.endswith(".in_sum2"):
                base = name[:-len(".in_sum2")]
                count = np.float32(ts[base + ".counts"][0])
                out[base] = (sums / count).astype(np.float32) if count > 0 else np.ones_like(sums)
        return out
    raw = open(path, "rb").read()
    n = int(np.frombuffer(raw, "<i4", 1, 0)[0])
    off = 4
    for _ in range(n):
        ln = int(np.frombuffer(raw, "<i4", 1, off)[0]); off += 4
        name = raw[off:off + ln].decode(); off += ln
        calls, nval = (int(v) for v in np.frombuffer(raw, "<i4", 2, off)); off += 8
        v = np.frombuffer(raw, "<f4", nval, off).copy(); off += 4 * nval
        out[name] = (v / np.float32(calls)).astype(np.float32) if calls > 0 else v
    return out


def imatrix_pointer(ffi, imatrix):
    """A std::unordered_map of `imatrix` (kept alive by the returned objects) as a void * for cffi."""
    import subprocess
    import cffi
    shim = os.environ.get("LD_PRELOAD", "").split(":")[0]
    so = os.path.join(os.path.dirname(shim) or tempfile.gettempdir(), "libimatrix_map.so")
    if not os.path.exists(so):
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imatrix_map.cpp")
        # ops/lib.sh builds it before the tests; this fallback (a direct run) may race other
        # processes, so each writes its own temporary file and renames it into place.
        tmp = f"{so}.tmp.{os.getpid()}"
        subprocess.run(["g++", "-shared", "-fPIC", "-O2", "-o", tmp, src], check=True)
        os.replace(tmp, so)
    f2 = cffi.FFI()
    f2.cdef("void *imatrix_map_new(void); void imatrix_map_put(void *, const char *, const float *, long);")
    lib2 = f2.dlopen(so)
    m = lib2.imatrix_map_new()
    keep = []
    for name, v in imatrix.items():
        v = np.ascontiguousarray(v, dtype=np.float32)
        keep.append(v)
        lib2.imatrix_map_put(m, name.encode(), f2.cast("float *", v.ctypes.data), v.size)
    return ffi.cast("void *", int(f2.cast("uintptr_t", m))), (lib2, keep)


def llama_file(f32, ftype, pure, output_type=None, embedding_type=None, imatrix=None):
    from llama_cpp_check import ffi, lib, quiet
    if not os.environ.get("LLAMA_CPP_VERBOSE"):
        lib.llama_log_set(quiet, ffi.NULL)
    out = os.path.join(tempfile.mkdtemp(), "llama.gguf")
    p = lib.llama_model_quantize_default_params()
    p.ftype = ftype
    p.pure = pure
    if output_type is not None:
        p.output_tensor_type = output_type
    if embedding_type is not None:
        p.token_embedding_type = embedding_type
    p.nthread = os.cpu_count() or 1
    if imatrix is not None:
        p.imatrix, _alive = imatrix_pointer(ffi, load_imatrix(imatrix))
    rc = lib.llama_model_quantize(f32.encode(), out.encode(), ffi.new("llama_model_quantize_params *", p))
    if rc != 0:
        print(json.dumps({"ok": False, "error": f"llama_model_quantize returned {rc}"}))
        sys.exit(1)
    return out


def compare_file(f32, mine_path, ftype, pure, output_type=None, embedding_type=None, imatrix=None):
    out = llama_file(f32, ftype, pure, output_type, embedding_type, imatrix)
    ref = {t.name: t for t in GGUFTensorReader(out).tensors}
    mine = {t.name: t for t in GGUFTensorReader(mine_path).tensors}
    bad, types = [], {}
    if set(ref) != set(mine):
        bad.append({"names only in one file": sorted(set(ref) ^ set(mine))[:10]})
    for name in sorted(set(ref) & set(mine)):
        a, b = ref[name], mine[name]
        tn = a.tensor_type.name
        types[tn] = types.get(tn, 0) + 1
        if a.tensor_type != b.tensor_type:
            bad.append({"tensor": name, "squeeze": b.tensor_type.name, "llama.cpp": tn})
        elif np.asarray(a.data).tobytes() != np.asarray(b.data).tobytes():
            bad.append({"tensor": name, "type": tn, "bytes": "differ"})
    os.remove(out)
    os.rmdir(os.path.dirname(out))
    return {"ok": not bad, "llama_types": types, "mismatches": bad[:10]}


def compare_errors(source, gguf_path, manifest):
    from safetensors.numpy import load_file
    src = load_file(source)
    with open(manifest) as f:
        metrics = {m["tensor"]: m["relative_error"] for m in json.load(f)["layers"]}
    bad, checked = [], 0
    for t in GGUFTensorReader(gguf_path).tensors:
        if int(t.tensor_type) in (0, 1, 30) or t.name not in metrics:
            continue
        x = src[t.name].astype(np.float64)
        with np.errstate(all="ignore"):
            xhat = dequantize(np.asarray(t.data), GGMLQuantizationType(int(t.tensor_type))).reshape(x.shape).astype(np.float64)
            want = np.linalg.norm(xhat - x) / max(np.linalg.norm(x), 1e-300)
        if not np.isfinite(want) or want >= 1:
            continue  # overflowed blocks (±3e38): the metric saturates on both sides
        checked += 1
        got = metrics[t.name]
        if got is None or abs(got - want) > 1e-6 * want + 1e-12:
            bad.append({"tensor": t.name, "type": t.tensor_type.name, "relative_error": [got, float(want)]})
    return {"ok": not bad and checked > 0, "checked": checked, "mismatches": bad[:10]}


def main():
    if sys.argv[1] == "file":
        rest = sys.argv[5:]
        opt = lambda k: int(rest[rest.index(k) + 1]) if k in rest else None
        r = compare_file(sys.argv[2], sys.argv[3], int(sys.argv[4]), "--pure" in rest, opt("--output-type"), opt("--embedding-type"))
    elif sys.argv[1] == "imatrix":
        r = compare_file(sys.argv[2], sys.argv[3], int(sys.argv[4]), "--pure" in sys.argv[6:], imatrix=sys.argv[5])
    else:
        r = compare_errors(sys.argv[2], sys.argv[3], sys.argv[4])
    print(json.dumps(r))
    sys.exit(0 if r["ok"] else 1)


if __name__ == "__main__":
    main()
