#!/usr/bin/env bash
# Installs and starts what the backend tests need, idempotently: Redis on 127.0.0.1:6379, RQ,
# Celery (PyPI, in a virtualenv) and Sidekiq (Debian) for the job formats, a
# PostgreSQL primary (5433) with a streaming replica (5434), a MariaDB primary (3307) with a
# replica (3308), and a local Docker image
# (drill-test-busybox) built from Debian's busybox-static, since no registry can be reached;
# Debian's headless Chromium, which opens the HTML report in crates/drill-cli/tests/report.rs;
# openssl, which makes the certificate of the daemon's TLS test (tests/security.rs).
# Safe to run again; it finds what is already there.
set -euo pipefail

missing=()
for pkg in redis-server busybox-static ruby-sidekiq chromium openssl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "+ apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "+ starting redis-server on 127.0.0.1:6379"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no --logfile /tmp/drill-redis.log
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "error: Redis did not start on 127.0.0.1:6379 (see /tmp/drill-redis.log)" >&2
  exit 1
fi

# Real job systems for the job-format tests (crates/drill-cli/tests/queues.rs): RQ and Celery
# from PyPI in a virtualenv, Sidekiq from Debian's ruby-sidekiq (above).
py=${DRILL_TEST_PY:-/var/lib/drill-test/py}
if ! "$py/bin/python" -c 'import rq, celery, redis' >/dev/null 2>&1; then
  echo "+ installing RQ and Celery into $py"
  python3 -m venv "$py"
  "$py/bin/pip" install -q 'rq>=2,<4' 'celery[redis]>=5.3,<6'
fi
# Helm's own library (helm-python-sdk: Helm v4's Go code, no helm binary) and the
# Kubernetes OpenAPI schemas (kubernetes-validate), for the chart test
# (crates/drill-cli/tests/chart.rs).
if ! "$py/bin/python" -c 'import helm_python, kubernetes_validate' >/dev/null 2>&1; then
  echo "+ installing helm-python-sdk and kubernetes-validate into $py"
  "$py/bin/pip" install -q 'helm-python-sdk>=0.2,<0.3' 'kubernetes-validate>=1.34,<2'
fi

# Python's own OpenMetrics parser, which the daemon's /metrics must satisfy whatever a
# playbook names (crates/drill-cli/tests/security.rs).
if ! "$py/bin/python" -c 'import prometheus_client' >/dev/null 2>&1; then
  echo "+ installing prometheus_client into $py"
  "$py/bin/pip" install -q 'prometheus-client>=0.20,<1'
fi

bash "$(dirname "$0")/postgres.sh"
bash "$(dirname "$0")/mariadb.sh"

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  if ! docker image inspect drill-test-busybox >/dev/null 2>&1; then
    echo "+ building the drill-test-busybox image from busybox-static"
    root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/tmp"
    cp "$(command -v busybox)" "$root/bin/busybox"
    for applet in sh sleep true cat echo ls; do ln -s busybox "$root/bin/$applet"; done
    tar -C "$root" -c . | docker import - drill-test-busybox:latest >/dev/null
    rm -rf "$root"
  fi
elif [ "${DRILL_TEST_SKIP_MISSING:-}" = 1 ]; then
  echo "! the Docker engine is not reachable; DRILL_TEST_SKIP_MISSING=1: the tests that need it will be SKIPPED"
else
  echo "error: the Docker engine is not reachable (docker info fails): the Docker tests need it." >&2
  echo "  start it (systemctl start docker, or dockerd &), or set DRILL_TEST_SKIP_MISSING=1 to skip those tests" >&2
  exit 1
fi
