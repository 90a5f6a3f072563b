#!/usr/bin/env python3
"""Process-level fuzzing of Squeeze's parsers through the real CLI.

Each input (the hostile corpus first, then seeded mutations of valid seeds for --seconds after it)
runs in its own `squeeze` process; every one must exit with a status below 128 (no crash, no
signal), within 10 s of CPU time and 60 s of wall time (no hang: a spinning process hits the
first, a blocked one the second; CPU time, because the tests run this beside other suites on two
cores, where a 3 s parse can wait 10 s for a core), with a peak RSS under 1 GB; a corpus file must
also stay within 3x its own size plus a constant (no amplification).

Usage: fuzz_cli.py BINARY KIND WORKDIR [--seconds 60] [--seed 1] [--corpus DIR]
KIND: safetensors | gguf | recipe | manifest. Prints one summary line; exits 1 on any finding.
"""
import argparse
import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time

HANG_CPU_S = 10
HANG_WALL_S = 60.0
RSS_LIMIT_KB = 1 << 20  # 1 GiB
BASE_RSS_KB = 64 << 10  # the binary, its libraries and the runtime: about 32 MiB


def run(binary, args, env):
    """Runs one process; returns (status or -signal, CPU seconds, peak RSS in KiB, stderr tail, hung)."""
    def limits():
        # A safety net only (the check is the RSS measured below): never let one input take the machine.
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
        # SIGXCPU at the CPU limit, SIGKILL a second later.
        resource.setrlimit(resource.RLIMIT_CPU, (HANG_CPU_S, HANG_CPU_S + 1))
    p = subprocess.Popen([binary] + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=limits)
    hung = threading.Event()

    def kill():
        hung.set()
        p.kill()
    timer = threading.Timer(HANG_WALL_S, kill)
    timer.start()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    timer.cancel()
    p.returncode = 0
    code = os.waitstatus_to_exitcode(status)
    cpu = ru.ru_utime + ru.ru_stime
    spun = code in (-signal.SIGXCPU, -signal.SIGKILL) and cpu >= HANG_CPU_S
    return code, cpu, ru.ru_maxrss, err.decode(errors="replace")[-300:], hung.is_set() or spun


TOKENS = [b"[", b"]", b"{", b"}", b":", b",", b"-", b"*a", b"&a ", b"!", b"?", b"|", b">", b"'", b'"', b"\n", b"  ", b"#",
          b"\x00", b"1e400", b"-1", b"9999999999999999999999", b"null", b"~", b"<<: *a", b"\t", b"\\u0000", b"\xff", b"0x"]


def mutate_bytes(seed, rng, text):
    b = bytearray(seed)
    for _ in range(1 + rng.randrange(4)):
        pos = rng.randrange(len(b) + 1)
        op = rng.randrange(8)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[pos:pos] = rng.choice(TOKENS) if text else bytes([rng.choice([0, 0xFF, 0x7F, 0x80, 0x22, 0x5B, 0x7B, 0x30])])
        elif op == 2 and not text:
            v = rng.choice([0, 1, 0xFFFFFFFF, 1 << 63, (1 << 64) - 1, 1 << 32, len(b)])
            b[pos:pos + 8] = v.to_bytes(8, "little")
        elif op == 3:
            del b[pos:pos + 1 + rng.randrange(32)]
        elif op == 4:
            src = rng.randrange(len(b) + 1)
            b[pos:pos] = b[src:src + 1 + rng.randrange(64)]
        elif op == 5:
            b = b[:pos]
        elif op == 6 and text:
            lines = bytes(b).split(b"\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[rng.randrange(len(lines))])
            b = bytearray(b"\n".join(lines))
        else:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(1 + rng.randrange(8)))
    return bytes(b)


def seeds(kind, repo, work):
    if kind == "safetensors":
        return [open(f"{work}/seed.safetensors", "rb").read()]
    if kind == "gguf":
        return [open(f"{work}/seed.gguf", "rb").read()]
    if kind == "recipe":
        d = f"{repo}/recipes"
        return [open(f"{d}/{n}", "rb").read() for n in sorted(os.listdir(d)) if n.endswith((".yaml", ".json"))]
    manifest = (b"jobs:\n  - {model: seed.safetensors, recipe: r.yaml, priority: 5, key: a}\n"
                b"  - {model: seed.safetensors, recipe: r.yaml, max_attempts: 2}\n")
    return [manifest, b"- model: seed.safetensors\n  recipe: r.yaml\n  key: 7\n"]


def command(kind, path, work):
    if kind in ("safetensors", "gguf"):
        return ["inspect", path]
    if kind == "recipe":
        return ["submit", "--dry-run", "--no-checksum", "--model", f"{work}/seed.safetensors", "--recipe", path]
    return ["submit", "--dry-run", "--no-checksum", "--manifest", path]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("kind", choices=["safetensors", "gguf", "recipe", "manifest"])
    ap.add_argument("work")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", help="directory of hostile inputs (hostile_inputs.py)")
    a = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_model  # noqa: E402  (the fixture model, written without Squeeze)
    os.makedirs(a.work, exist_ok=True)
    sys.argv = ["make_model.py", f"{a.work}/seed.safetensors"]
    make_model.main()
    with open(f"{a.work}/r.yaml", "w") as f:
        f.write("stages:\n  - prune: {method: magnitude, sparsity: 0.5, ignore: ['*embeddings*']}\n  - export: {format: safetensors}\n")
    if a.kind == "gguf":
        import numpy as np
        from gguf import GGUFWriter
        w = GGUFWriter(f"{a.work}/seed.gguf", "llama")
        w.add_string("general.name", "seed")
        w.add_array("tokenizer.ggml.tokens", ["a", "b", "c"])
        w.add_array("tokenizer.ggml.scores", [0.5, 1.0, 2.0])
        w.add_uint32("llama.block_count", 2)
        w.add_tensor("w", np.arange(64, dtype=np.float32).reshape(2, 32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    env = dict(os.environ, SQUEEZE_INPUT_ROOTS=a.work + ":" + (a.corpus or a.work))
    ext = {"safetensors": ".safetensors", "gguf": ".gguf", "recipe": ".yaml", "manifest": ".yaml"}[a.kind]
    inputs = []
    if a.corpus:
        for n in sorted(os.listdir(a.corpus)):
            is_manifest = n.startswith("manifest-")
            if n.endswith(ext) and (a.kind != "manifest" or is_manifest) and (a.kind != "recipe" or not is_manifest):
                inputs.append(("corpus", f"{a.corpus}/{n}"))
    rng = random.Random(a.seed)
    base = seeds(a.kind, repo, a.work)
    findings, n, worst_rss, worst_cpu = [], 0, 0, 0.0
    deadline = None  # the mutations' time budget starts when the corpus is done
    i = 0
    while True:
        if inputs:
            origin, path = inputs.pop(0)
        else:
            deadline = deadline or time.monotonic() + a.seconds
            if time.monotonic() > deadline:
                break
            path = f"{a.work}/input{ext}"
            with open(path, "wb") as f:
                f.write(mutate_bytes(rng.choice(base), rng, a.kind in ("recipe", "manifest")))
            origin = f"mutation {i}"
            i += 1
        code, cpu, rss, err, hung = run(a.binary, command(a.kind, path, a.work), env)
        n += 1
        worst_rss, worst_cpu = max(worst_rss, rss), max(worst_cpu, cpu)
        bound = RSS_LIMIT_KB if origin != "corpus" else min(RSS_LIMIT_KB, 3 * os.path.getsize(path) // 1024 + BASE_RSS_KB)
        problem = ("hang (killed after 10 s)" if hung else f"exit status {code}" if code >= 128 or code < 0
                   else f"peak RSS {rss // 1024} MiB over {bound // 1024} MiB" if rss > bound else None)
        if problem:
            keep = f"{a.work}/finding-{len(findings)}{ext}"
            if origin.startswith("mutation"):
                os.replace(path, keep)
            findings.append(f"{origin} ({keep if origin.startswith('mutation') else path}): {problem}: {err.strip()[-200:]}")
    print(f"fuzz {a.kind}: {n} inputs ({i} mutations, seed {a.seed}), worst peak RSS {worst_rss // 1024} MiB, "
          f"most CPU {worst_cpu:.2f} s, {len(findings)} findings")
    for f in findings[:20]:
        print("  FINDING", f)
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
