"""The job drill's queue tests enqueue for real RQ workers (`drill enqueue` writes
`rqjobs.work(n)`): sleeps DRILL_JOB_MS milliseconds, then counts itself in Redis."""

import os
import time

import redis

_redis = redis.Redis.from_url(os.environ["DRILL_REDIS"])


def work(n):
    time.sleep(float(os.environ.get("DRILL_JOB_MS", "0")) / 1000)
    _redis.incr("drill:q:done:rq")
    return n
