"""Markdown for `ops/bench queue`: queue_report.py DIR.

DIR/meta.json: the run (date, cpu, cores, jobs per run, worker concurrency, PostgreSQL settings, peer
versions, the 10,000-entry manifest's submit time); DIR/rows.jsonl: per worker count, the three runs'
jobs/s of Squeeze, RQ and Celery; DIR/latency.jsonl: submit-to-claim p50/p99 idle and under a backlog."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_rows import median, read_rows  # noqa: E402

d = sys.argv[1]
meta = json.load(open(os.path.join(d, "meta.json")))
rows = read_rows(os.path.join(d, "rows.jsonl"))
latency = read_rows(os.path.join(d, "latency.jsonl"))


print(f"## Queue: no-op throughput ({meta['date']}, {meta['cpu']}, {meta['cores']} cores, "
      f"PostgreSQL fsync={meta['fsync']}, synchronous_commit={meta['synchronous_commit']})")
print()
print(f"{meta['jobs']} no-op jobs per run, median of {len(rows[0]['squeeze']) if rows else 0} runs, all on the same "
      "PostgreSQL and Redis in the same window.")
print(f"Squeeze: `squeeze worker --concurrency {meta['concurrency']}` (hints for every free slot claimed in one "
      "statement,")
print("completions that finish together committed together), jobs/s = jobs / (last finish − first claim).")
print(f"RQ {meta['rq']}: `SimpleWorker` (no fork per job), `--burst`, jobs / (last end − first start).")
print(f"Celery {meta['celery']}: Redis broker, prefork pool with concurrency 2 per worker, prefetch 16,")
print("results ignored; each task pushes its start time to Redis; jobs / (last start − first start).")
print()
print("| workers | Squeeze jobs/s | RQ jobs/s | Celery jobs/s | vs RQ | vs Celery |")
print("|---|---|---|---|---|---|")
for r in rows:
    o, q, c = median(r["squeeze"]), median(r["rq"]), median(r["celery"])
    print(f"| {r['workers']} | {o:.1f} | {q:.1f} | {c:.1f} | {o / q:.1f}× | {o / c:.1f}× |")
print()
print("| submit → claim latency | p50 | p99 |")
print("|---|---|---|")
for r in latency:
    label = (f"idle ({r['workers']} workers)" if r["mode"] == "idle"
             else f"under a 10,000-job backlog ({r['workers']} workers draining it)")
    print(f"| {label} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms |")
print()
print("Each Squeeze job is a PostgreSQL claim (UPDATE + attempt + event), a lease and a fenced")
print("completion, every one committed durably; RQ and Celery keep state in Redis only. A 10,000-entry")
print(f"manifest (one model, one recipe, distinct idempotency keys) submits in {meta['manifest_submit_s']:.2f} s: "
      "validated,")
print("inserted in one transaction, pushed pipelined.")
