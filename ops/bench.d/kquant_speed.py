"""GGUF k-quant export speed, file to file, against llama.cpp's `llama_model_quantize` (what
llama-quantize runs) on the same F32 GGUF with the same thread count, in the same run; and the
F32 bytes per second against a plain memory copy of the same data. Prints a Markdown table.
Usage (LD_PRELOAD the shim): kquant_speed.py SQUEEZE THREADS REPEATS MODEL:TYPE:FTYPE[:pure] ..."""
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "reference"))
import llama_cpp_check as L  # noqa: E402

sq, threads, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
L.lib.llama_log_set(L.quiet, L.ffi.NULL)
work = tempfile.mkdtemp(dir=os.environ.get("RUN"))


def median_time(f):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


# Types that are llama-quantize mixes in Squeeze too: `pure` must be said in the recipe.
MIXES = {"q3_k_m", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "iq4_nl", "iq4_xs"}


def squeeze(model, typ, pure=False):
    recipe = os.path.join(work, f"{typ}.yaml")
    extra = ", pure: true" if pure and typ in MIXES else ""
    open(recipe, "w").write(f"stages:\n  - export: {{format: gguf, type: {typ}{extra}}}\n")
    out = os.path.join(work, "sq")
    subprocess.run(["rm", "-rf", out], check=True)
    subprocess.run([sq, "run", "--model", model, "--recipe", recipe, "--out", out, "--threads", str(threads)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return os.path.getsize(os.path.join(out, f"model-{typ}.gguf"))


def llama(model, ftype, pure):
    p = L.lib.llama_model_quantize_default_params()
    p.ftype, p.pure, p.nthread = ftype, pure, threads
    out = os.path.join(work, "llama.gguf")
    assert L.lib.llama_model_quantize(model.encode(), out.encode(), L.ffi.new("llama_model_quantize_params *", p)) == 0
    return os.path.getsize(out)


rows = []
for spec in sys.argv[4:]:
    model, typ, ftype, *rest = spec.split(":")
    pure = bool(rest)
    size = os.path.getsize(model)
    t_sq = median_time(lambda: squeeze(model, typ, pure))
    t_ll = median_time(lambda: llama(model, int(ftype), pure))
    name = typ + (" (pure)" if pure and typ in MIXES else "")
    rows.append((os.path.basename(os.path.dirname(model)) or model, name, size, t_sq, t_ll, squeeze(model, typ, pure),
                 llama(model, int(ftype), pure)))

a = np.ones(256 << 20, dtype=np.uint8)
b = np.empty_like(a)
copy = median_time(lambda: np.copyto(b, a))
copy_rate = a.nbytes / copy

print(f"## GGUF k-quants against llama_model_quantize ({datetime.date.today()}, {os.environ.get('CPU_LINE', '')}, "
      f"{threads} threads, release build)")
print()
print(f"GGUF k-quant and IQ4 exports, file to file (F32 GGUF in, quantized GGUF out), {threads} threads, median of {repeats}:"
      f" `squeeze run` against llama.cpp's `llama_model_quantize` (llama-cpp-cffi 0.4.42) in the same run."
      f" Squeeze's time includes what llama.cpp does not do: SHA-256 of the input (on a thread of its own) and of"
      f" the output (on the write-behind thread), each tensor's relative error, and the manifest."
      f" Memory copy of 256 MiB: {copy_rate / 1e9:.1f} GB/s.\n")
print("| model | type | F32 in | Squeeze | llama.cpp | Squeeze speed-up | Squeeze F32 GB/s | of memcpy | output bytes (Squeeze / llama.cpp) |")
print("|---|---|---|---|---|---|---|---|---|")
for m, typ, size, ts, tl, bs, bl in rows:
    print(f"| {m} | {typ} | {size / 1e6:.0f} MB | {ts:.2f} s | {tl:.2f} s | {tl / ts:.2f}× | {size / ts / 1e9:.2f} | {size / ts / copy_rate:.0%} | {bs} / {bl} |")
