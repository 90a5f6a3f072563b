#!/usr/bin/env python3
"""Celery peer for the no-op throughput benchmark: N no-op tasks on a Redis broker, W workers with
the prefork pool (concurrency 2 each: the machine's cores); throughput = N / (last task start -
first task start), the window Squeeze is measured on. Usage: celery_noop.py REDIS_URL N W"""
import os
import subprocess
import sys
import time

import redis


def main():
    url, n, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    r = redis.Redis.from_url(url)
    r.flushdb()
    env = dict(os.environ, CELERY_BENCH_BROKER=url, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
    os.environ.update(env)
    sys.path.insert(0, env["PYTHONPATH"])
    from celery_noop_app import noop
    with noop.app.producer_pool.acquire(block=True) as producer:
        for _ in range(n):
            noop.apply_async(producer=producer)
    procs = [subprocess.Popen([sys.executable, "-m", "celery", "-A", "celery_noop_app", "worker", "--pool", "prefork", "--concurrency", "2",
                               "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING", "-n", f"bench{i}@%h"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env) for i in range(w)]
    deadline = time.time() + 600
    while r.llen("celery-bench-times") < n and time.time() < deadline:
        time.sleep(0.05)
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
    times = [float(t) for t in r.lrange("celery-bench-times", 0, -1)]
    if len(times) < n:
        print(f"celery: only {len(times)} of {n} ran", file=sys.stderr)
        sys.exit(1)
    print(f"{n / (max(times) - min(times)):.1f}")


if __name__ == "__main__":
    main()
