#!/usr/bin/env bash
# A PostgreSQL primary (127.0.0.1:5433) and a real streaming replica of it (127.0.0.1:5434),
# as Debian clusters `drill_primary` and `drill_replica`. Idempotent: creates what is missing
# and rebuilds the replica (pg_basebackup) when an earlier test promoted it.
#   tests/services/postgres.sh            make sure both run, the replica in recovery
set -euo pipefail

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "+ apt-get install postgresql"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
primary=drill_primary
replica=drill_replica
psql_at() { runuser -u postgres -- psql -h 127.0.0.1 -p "$1" -U postgres -Atqc "$2"; }

if ! pg_lsclusters -h | awk '{print $2}' | grep -qx "$primary"; then
  echo "+ creating the primary cluster on 5433"
  pg_createcluster "$ver" "$primary" -p 5433 >/dev/null -- --auth=trust
  conf=/etc/postgresql/$ver/$primary
  cat >> "$conf/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 5
hot_standby = on
CONF
  echo "host replication all 127.0.0.1/32 trust" >> "$conf/pg_hba.conf"
  echo "host all all 127.0.0.1/32 trust" >> "$conf/pg_hba.conf"
fi
pg_ctlcluster "$ver" "$primary" status >/dev/null 2>&1 || pg_ctlcluster "$ver" "$primary" start

in_recovery=$(psql_at 5434 "select pg_is_in_recovery()" 2>/dev/null || echo missing)
if [ "$in_recovery" != "t" ]; then
  echo "+ (re)building the streaming replica on 5434 ($in_recovery)"
  if pg_lsclusters -h | awk '{print $2}' | grep -qx "$replica"; then
    pg_ctlcluster "$ver" "$replica" stop -m immediate >/dev/null 2>&1 || true
  else
    pg_createcluster "$ver" "$replica" -p 5434 >/dev/null -- --auth=trust
    conf=/etc/postgresql/$ver/$replica
    cat >> "$conf/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
hot_standby = on
CONF
    echo "host all all 127.0.0.1/32 trust" >> "$conf/pg_hba.conf"
  fi
  data=/var/lib/postgresql/$ver/$replica
  rm -rf "$data"
  runuser -u postgres -- pg_basebackup -h 127.0.0.1 -p 5433 -U postgres -D "$data" -R -X stream -c fast
  pg_ctlcluster "$ver" "$replica" start
  for _ in $(seq 50); do [ "$(psql_at 5434 'select pg_is_in_recovery()' 2>/dev/null)" = "t" ] && break; sleep 0.2; done
fi
echo "postgres: primary 127.0.0.1:5433, replica 127.0.0.1:5434 (in recovery: $(psql_at 5434 'select pg_is_in_recovery()'))"
