"""The Celery app and task drill's queue tests enqueue for a real Celery worker (task
`celeryjobs.work`): sleeps DRILL_JOB_MS milliseconds, then counts itself in Redis."""

import os
import time

import redis
from celery import Celery

app = Celery("celeryjobs", broker=os.environ["DRILL_REDIS"])
app.conf.broker_connection_retry_on_startup = True
_redis = redis.Redis.from_url(os.environ["DRILL_REDIS"])


@app.task(name="celeryjobs.work")
def work(n):
    time.sleep(float(os.environ.get("DRILL_JOB_MS", "0")) / 1000)
    _redis.incr("drill:q:done:celery")
    return n
