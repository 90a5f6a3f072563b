"""Celery app for the no-op throughput benchmark: one task that records when it ran (a Redis
RPUSH of its start time, the one bookkeeping write the benchmark needs to measure the window)."""
import os
import time

from celery import Celery

app = Celery("squeeze_bench", broker=os.environ["CELERY_BENCH_BROKER"])
app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=16, task_acks_late=False, broker_connection_retry_on_startup=True,
                worker_hijack_root_logger=False)

_redis = None


@app.task(name="noop")
def noop():
    global _redis
    if _redis is None:
        import redis
        _redis = redis.Redis.from_url(os.environ["CELERY_BENCH_BROKER"])
    _redis.rpush("celery-bench-times", time.time())
