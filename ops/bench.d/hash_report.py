"""BENCHMARKS section for input hashing: hash_report.py RESULT.json FILE CPU-LINE (also times sha256sum on FILE)."""
import datetime
import json
import subprocess
import sys
import time

r = json.load(open(sys.argv[1]))
best = float("inf")
for _ in range(3):
    t0 = time.monotonic()
    out = subprocess.run(["sha256sum", sys.argv[2]], capture_output=True, text=True, check=True).stdout.split()[0]
    best = min(best, time.monotonic() - t0)
assert out == r["sha256"], "digests differ"
mbs = lambda s: r["bytes"] / s / 1e6
print(f"## Input hashing: SHA-256 of a 1 GiB file ({datetime.date.today()}, {sys.argv[3]}, release build, "
      "page cache warm)")
print()
print("Every submit and every run hashes whole models (the checksum recorded at submit and re-checked by the")
print("worker). Squeeze hashes through OpenSSL's libcrypto (EVP SHA-256); best of 3, same file, same run.")
print()
print("| what | seconds | MB/s | vs plain read |")
print("|---|---|---|---|")
print(f"| plain `pread` of the file (4 MiB chunks) | {r['read_seconds']:.2f} | {mbs(r['read_seconds']):,.0f} | 1.0× |")
print(f"| Squeeze SHA-256 (`FileOps.sha256`) | {r['sha256_seconds']:.2f} | {mbs(r['sha256_seconds']):,.0f} | {r['sha256_seconds'] / r['read_seconds']:.1f}× the read time |")
print(f"| coreutils `sha256sum` (peer) | {best:.2f} | {mbs(best):,.0f} | {best / r['read_seconds']:.1f}× the read time |")
print()
print("Digests identical.")
