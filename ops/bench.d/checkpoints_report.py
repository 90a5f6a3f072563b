"""Markdown for `ops/bench checkpoints`: checkpoints_report.py ROWS.jsonl CPU-LINE CORES CONFIG.json.

Each row is one worker job (recipe, mode, pass, wall_s, the `checkpoints` and `units` events). The
overhead of a mode is its median job wall time over the `off` runs' median, per recipe."""
import json
import statistics
import sys
from datetime import datetime, timezone

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
cpu, cores, config = sys.argv[2], sys.argv[3], json.load(open(sys.argv[4]))
blocks = config["num_hidden_layers"]
bad = [r for r in rows if r["state"] != "succeeded"]
if bad:
    sys.exit(f"checkpoints_report: {len(bad)} job(s) did not succeed: {bad[0]}")

print(f"## Checkpoints ({datetime.now(timezone.utc):%Y-%m-%d}, {cores} cores, release build)")
print()
print(f"CPU: {cpu}.")
print()
modes = list(dict.fromkeys(r["mode"] for r in rows))
passes = max(r["pass"] for r in rows)
print("SmolLM2-135M through a worker (`--exit-when-idle`, one job, 128 × 256 calibration tokens, safetensors")
print(f"export), each recipe run with `--checkpoints` {', '.join(f'`{m}`' for m in modes)} in turn, {passes} time(s).")
print("`write-behind` (the default): a background thread writes and fsyncs each unit's checkpoint, then records")
print("the unit, while the next unit computes; `sync`: the compute thread does it before going on. Job wall")
print("time is the job row's `started_at` to `finished_at`; overhead is the median over the `off` median, and")
print("identical runs on this shared machine differ by up to 20%, far more than the cost measured. Write is the")
print("time spent writing, hashing and fsyncing checkpoint files (on the writer thread unless `sync`); stall the")
print("time the compute thread waited for room in the write-behind queue; bound = (write + stall) / the `off`")
print("median, what checkpointing would cost if none of the writer's work overlapped the compute.")
print()
print("| recipe | mode | job wall (runs) | overhead | checkpoints | bytes per block | write | stall | bound |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for recipe in dict.fromkeys(r["recipe"] for r in rows):
    mine = [r for r in rows if r["recipe"] == recipe]
    base = statistics.median(r["wall_s"] for r in mine if r["mode"] == "off")
    for mode in modes:
        runs = [r for r in mine if r["mode"] == mode]
        if not runs:
            continue
        walls = [r["wall_s"] for r in runs]
        med = statistics.median(walls)
        cp = runs[-1]["checkpoints"] or {}
        shown = " / ".join(f"{w:.1f}" for w in walls)
        over = "—" if mode == "off" else f"{(med / base - 1) * 100:+.1f}%"
        files = cp.get("checkpoints", 0)
        per_block = f"{cp.get('bytes', 0) / blocks / 1e6:.2f} MB" if files else "—"
        write = f"{statistics.median((r['checkpoints'] or {}).get('write_s', 0) for r in runs):.2f} s" if files else "—"
        w = statistics.median((r["checkpoints"] or {}).get("write_s", 0) for r in runs)
        st = statistics.median((r["checkpoints"] or {}).get("stall_s", 0) for r in runs)
        stall = f"{st:.2f} s" if files else "—"
        bound = f"{(w + st) / base * 100:.1f}%" if files else "—"
        print(f"| {recipe} | {mode} | {med:.1f} s ({shown}) | {over} | {files} | {per_block} | {write} | {stall} | {bound} |")
