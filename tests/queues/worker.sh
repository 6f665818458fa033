#!/usr/bin/env bash
# Starts one real worker of a job system for drill's queue tests, in the background, and
# writes its pid to $DRILL_PIDFILE: `worker.sh rq|celery|sidekiq`. It is also the restart
# command of the `process` target the tests stop. Environment: DRILL_REDIS (the broker),
# DRILL_QUEUE, DRILL_JOB_MS (time per job), DRILL_LOG; DRILL_TEST_PY is the virtualenv
# tests/services/up.sh installs RQ and Celery into.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${DRILL_TEST_PY:-/var/lib/drill-test/py}
case "${1:-}" in
  rq) cmd=("$py/bin/rq" worker --url "$DRILL_REDIS" --worker-class rq.worker.SimpleWorker
           --path "$here" --logging_level WARNING "$DRILL_QUEUE") ;;
  celery) cmd=("$py/bin/celery" --workdir "$here" -A celeryjobs worker --pool solo
               -Q "$DRILL_QUEUE" --without-gossip --without-mingle --without-heartbeat
               --loglevel WARNING) ;;
  sidekiq) cmd=(env REDIS_URL="$DRILL_REDIS" sidekiq -r "$here/sidekiqjobs.rb"
                -q "$DRILL_QUEUE" -c 1) ;;
  *) echo "usage: worker.sh rq|celery|sidekiq" >&2; exit 2 ;;
esac
nohup "${cmd[@]}" >>"${DRILL_LOG:-/dev/null}" 2>&1 </dev/null &
echo $! > "$DRILL_PIDFILE"
