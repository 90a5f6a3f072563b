#!/usr/bin/env python3
"""RQ peer for the no-op throughput benchmark: N no-op jobs, W SimpleWorker processes (burst),
throughput = N / (last ended_at - first started_at), the same window Squeeze is measured on.
Usage: rq_noop.py REDIS_URL N W"""
import subprocess
import sys
import time

from redis import Redis
from rq import Queue
from rq.registry import FinishedJobRegistry


def main():
    url, n, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    conn = Redis.from_url(url)
    conn.flushdb()
    q = Queue("bench", connection=conn)
    with q.connection.pipeline() as pipe:
        jobs = [Queue.prepare_data("rq_noop_task.noop", result_ttl=600) for _ in range(n)]
        q.enqueue_many(jobs, pipeline=pipe)
        pipe.execute()
    procs = [subprocess.Popen([sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", url, "-w", "rq.worker.SimpleWorker",
                               "-q", "bench"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={"PYTHONPATH": __file__.rsplit("/", 1)[0]}) for _ in range(w)]
    for p in procs:
        p.wait()
    reg = FinishedJobRegistry("bench", connection=conn)
    ids = reg.get_job_ids()
    from rq.job import Job
    fetched = Job.fetch_many(ids, connection=conn)
    starts = [j.started_at for j in fetched if j and j.started_at]
    ends = [j.ended_at for j in fetched if j and j.ended_at]
    if len(ids) != n:
        print(f"rq: only {len(ids)} of {n} finished", file=sys.stderr)
        sys.exit(1)
    span = (max(ends) - min(starts)).total_seconds()
    print(f"{n / span:.1f}")


if __name__ == "__main__":
    main()
