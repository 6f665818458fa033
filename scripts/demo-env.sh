#!/usr/bin/env bash
# The environment `drill demo` and the reference-target end-to-end tests run against, on
# loopback only:
#   Redis                    127.0.0.1:6390
#   PostgreSQL primary       127.0.0.1:5453   (database drill_demo, the dataset)
#   PostgreSQL replica       127.0.0.1:5454   (streaming, from pg_basebackup)
#   drill-target API         127.0.0.1:8088   (route: postgres://…5453,…5454/drill_demo)
#   queue workers            two Docker containers drill-demo-worker-{1,2} (label
#                            drill.demo=worker; playbooks/local.yaml), or one process
#                            whose pid is in $DRILL_DEMO_DIR/workers.pid
#                            (playbooks/local-processes.yaml)
#
# usage: scripts/demo-env.sh install          Debian packages (redis-server, postgresql)
#        scripts/demo-env.sh up [--broken NAME] [--workers docker|processes]
#                                             fresh environment (always rebuilt: a drill
#                                             promotes the replica and flushes Redis);
#                                             workers in containers where Docker runs,
#                                             else as a process ($DRILL_DEMO_WORKERS)
#        scripts/demo-env.sh start-worker     start the worker process again (the process
#                                             target's restart command); prints its pid
#        scripts/demo-env.sh down             stop and remove everything
# State (pid files, logs, load_credentials.json) lives in $DRILL_DEMO_DIR (/tmp/drill-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${DRILL_DEMO_DIR:-/tmp/drill-demo}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=${DRILL_TARGET_BIN:-$TARGET_DIR/debug/drill-target}
REDIS_PORT=6390
PRIMARY=drilldemo_primary
REPLICA=drilldemo_replica
log() { echo "demo-env: $*" >&2; }

install() {
  local need=()
  command -v redis-server >/dev/null || need+=(redis-server)
  command -v pg_createcluster >/dev/null || need+=(postgresql)
  command -v psql >/dev/null || need+=(postgresql-client)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

pgver() { ls /usr/lib/postgresql | sort -V | tail -1; }
psql_at() { runuser -u postgres -- psql -h 127.0.0.1 -p "$1" -U postgres -Atqc "$2"; }

pg_down() {
  local v; v=$(pgver)
  for c in "$REPLICA" "$PRIMARY"; do
    if pg_lsclusters -h | awk '{print $2}' | grep -qx "$c"; then
      pg_dropcluster --stop "$v" "$c" || true
    fi
  done
}

pg_up() {
  local v; v=$(pgver)
  pg_down
  log "PostgreSQL $v primary on 5453"
  pg_createcluster "$v" "$PRIMARY" -p 5453 >/dev/null -- --auth=trust
  local conf=/etc/postgresql/$v/$PRIMARY
  cat >> "$conf/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 5
hot_standby = on
fsync = off
synchronous_commit = off
CONF
  echo "host replication all 127.0.0.1/32 trust" >> "$conf/pg_hba.conf"
  echo "host all all 127.0.0.1/32 trust" >> "$conf/pg_hba.conf"
  pg_ctlcluster "$v" "$PRIMARY" start
  psql_at 5453 "CREATE DATABASE drill_demo" >/dev/null
}

replica_up() {
  local v; v=$(pgver)
  log "PostgreSQL streaming replica on 5454"
  pg_createcluster "$v" "$REPLICA" -p 5454 >/dev/null -- --auth=trust
  local conf=/etc/postgresql/$v/$REPLICA
  printf "listen_addresses = '127.0.0.1'\nhot_standby = on\nfsync = off\n" >> "$conf/postgresql.conf"
  echo "host all all 127.0.0.1/32 trust" >> "$conf/pg_hba.conf"
  local data=/var/lib/postgresql/$v/$REPLICA
  rm -rf "$data"
  runuser -u postgres -- pg_basebackup -h 127.0.0.1 -p 5453 -U postgres -D "$data" -R -X stream -c fast
  pg_ctlcluster "$v" "$REPLICA" start
  for _ in $(seq 100); do [ "$(psql_at 5454 'select pg_is_in_recovery()' 2>/dev/null)" = "t" ] && return; sleep 0.1; done
  log "the replica did not come up"; return 1
}

redis_up() {
  if ! redis-cli -p $REDIS_PORT ping >/dev/null 2>&1; then
    log "Redis on $REDIS_PORT"
    redis-server --port $REDIS_PORT --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
      --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"
    for _ in $(seq 50); do redis-cli -p $REDIS_PORT ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  redis-cli -p $REDIS_PORT flushall >/dev/null
}

image() {
  # A minimal image from our own binary and the libraries it links (no registry needed).
  local root; root=$(mktemp -d)
  mkdir -p "$root/etc" "$root/tmp"
  cp "$BIN" "$root/drill-target"
  for lib in $(ldd "$BIN" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
  done
  tar -C "$root" -c . | docker import -c 'ENTRYPOINT ["/drill-target"]' - drill-target:demo >/dev/null
  rm -rf "$root"
}

workers_up() {
  local broken=$1 mode=$2
  stop_pid "$DIR/workers.pid"
  for i in 1 2; do docker rm -f "drill-demo-worker-$i" >/dev/null 2>&1 || true; done
  if [ "$mode" = docker ]; then
    image
    for i in 1 2; do
      docker run -d --name "drill-demo-worker-$i" --label drill.demo=worker --network host \
        --stop-timeout 2 ${broken:+-e DRILL_TARGET_BROKEN=$broken} drill-target:demo \
        worker --redis "redis://127.0.0.1:$REDIS_PORT" --name "worker-$i" >/dev/null
    done
    log "two queue workers in Docker containers (drill-demo-worker-1, -2): playbooks/local.yaml"
  else
    start_worker >/dev/null
    log "the queue worker as a process (pid $(cat "$DIR/workers.pid"), $DIR/workers.pid): playbooks/local-processes.yaml"
  fi
}

# The worker process, in its own session (a Ctrl-C meant for drill does not reach it), with
# the binary and broken variant that `up` recorded. Waits until it works the queue and has
# written its pid file, so that a drill's revert sees it back at once.
start_worker() {
  # shellcheck source=/dev/null
  . "$DIR/target.env"
  rm -f "$DIR/workers.pid"
  env ${DEMO_BROKEN:+DRILL_TARGET_BROKEN=$DEMO_BROKEN} setsid "$DEMO_BIN" worker \
    --redis "redis://127.0.0.1:$REDIS_PORT" --name workers --pid-file "$DIR/workers.pid" \
    >> "$DIR/workers.log" 2>&1 < /dev/null &
  for _ in $(seq 100); do
    if [ -s "$DIR/workers.pid" ]; then cat "$DIR/workers.pid"; return; fi
    sleep 0.1
  done
  log "the worker did not start:"; tail -5 "$DIR/workers.log" >&2; return 1
}

api_up() {
  local broken=$1
  stop_pid "$DIR/api.pid"
  stop_stray
  env ${broken:+DRILL_TARGET_BROKEN=$broken} nohup "$BIN" serve --listen 127.0.0.1:8088 \
    --db "postgres://postgres@127.0.0.1:5453,127.0.0.1:5454/drill_demo" \
    --redis "redis://127.0.0.1:$REDIS_PORT" > "$DIR/api.log" 2>&1 &
  echo $! > "$DIR/api.pid"
  for _ in $(seq 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/8088) 2>/dev/null; then log "drill-target API on 127.0.0.1:8088${broken:+ (broken: $broken)}"; return; fi
    sleep 0.1
  done
  log "the API did not start:"; cat "$DIR/api.log" >&2; return 1
}

# Stops the process in a pid file and waits until it is gone.
stop_pid() {
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

# An API or worker process left by an environment with another DRILL_DEMO_DIR.
stop_stray() {
  pkill -f "drill-target serve --listen 127.0.0.1:8088" 2>/dev/null || true
  pkill -f "drill-target worker --redis redis://127.0.0.1:$REDIS_PORT" 2>/dev/null || true
  for _ in $(seq 50); do pgrep -f "drill-target serve --listen 127.0.0.1:8088" >/dev/null || break; sleep 0.1; done
}

down() {
  stop_stray
  for i in 1 2; do docker rm -f "drill-demo-worker-$i" >/dev/null 2>&1 || true; done
  for f in "$DIR"/*.pid; do
    [ -f "$f" ] || continue
    case "$f" in *redis.pid) continue ;; esac
    stop_pid "$f"
  done
  redis-cli -p $REDIS_PORT shutdown nosave >/dev/null 2>&1 || true
  pg_down
  log "down"
}

up() {
  local broken="" mode=${DRILL_DEMO_WORKERS:-}
  while [ $# -gt 0 ]; do
    case "$1" in
      --broken) broken=${2:?--broken needs a variant}; shift 2 ;;
      --workers) mode=${2:?--workers needs docker or processes}; shift 2 ;;
      *) echo "up: unknown option $1" >&2; exit 2 ;;
    esac
  done
  if [ -z "$mode" ]; then
    if docker info >/dev/null 2>&1; then mode=docker; else mode=processes; fi
  fi
  case "$mode" in
    docker|processes) ;;
    *) echo "up: --workers is docker or processes, not $mode" >&2; exit 2 ;;
  esac
  mkdir -p "$DIR"
  install
  if [ -z "${DRILL_TARGET_BIN:-}" ]; then
    log "building drill-target (cargo shows its progress; a few minutes on a cold machine)"
    cargo build -p drill-target
  fi
  redis_up
  pg_up
  "$BIN" prepare --db postgres://postgres@127.0.0.1:5453/drill_demo \
    --communities 3 --members 120 --posts 8 --comments 12 --reactions 30 --points 6 --tokens 25 \
    --output "$DIR/load_credentials.json" >&2
  replica_up
  printf 'DEMO_BIN=%q\nDEMO_BROKEN=%q\n' "$(realpath "$BIN")" "$broken" > "$DIR/target.env"
  api_up "$broken"
  workers_up "$broken" "$mode"
}

case "${1:-}" in
  install) install ;;
  up) shift; up "$@" ;;
  start-worker) start_worker ;;
  down) down ;;
  *) echo "usage: $0 install | up [--broken VARIANT] [--workers docker|processes] | start-worker | down" >&2; exit 2 ;;
esac
