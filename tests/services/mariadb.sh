#!/usr/bin/env bash
# A MariaDB primary (127.0.0.1:3307) and a replica of it (127.0.0.1:3308), each a mariadbd of
# its own under /var/lib/drill-mariadb. Idempotent: creates what is missing and re-attaches
# the replica (CHANGE MASTER, read_only) when an earlier test promoted it.
set -euo pipefail

if ! command -v mariadbd >/dev/null 2>&1; then
  echo "+ apt-get install mariadb-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
fi
base=/var/lib/drill-mariadb
mkdir -p "$base"
chown mysql:mysql "$base"

sql() { mariadb -S "$base/$1.sock" -u root -N -B -e "$2"; }

start() { # role port server-id
  local role=$1 port=$2 id=$3 dir="$base/$1"
  if [ ! -d "$dir/mysql" ]; then
    echo "+ initialising MariaDB $role"
    mariadb-install-db --user=mysql --datadir="$dir" --auth-root-authentication-method=socket >/dev/null
  fi
  if ! mariadb-admin -S "$base/$role.sock" -u root ping >/dev/null 2>&1; then
    echo "+ starting MariaDB $role on 127.0.0.1:$port"
    nohup mariadbd --user=mysql --datadir="$dir" --port="$port" --bind-address=127.0.0.1 \
      --socket="$base/$role.sock" --pid-file="$base/$role.pid" --server-id="$id" \
      --log-bin=mysql-bin --log-basename="$role" --skip-name-resolve \
      >"$base/$role.log" 2>&1 &
    for _ in $(seq 100); do mariadb-admin -S "$base/$role.sock" -u root ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  sql "$role" "CREATE USER IF NOT EXISTS 'drill'@'%' IDENTIFIED BY 'drill'; GRANT ALL PRIVILEGES ON *.* TO 'drill'@'%'; CREATE DATABASE IF NOT EXISTS drill"
}

start primary 3307 1
start replica 3308 2
sql primary "CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'"
if [ -z "$(sql replica 'SHOW REPLICA STATUS')" ]; then
  echo "+ attaching the MariaDB replica to the primary"
  sql replica "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=3307, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos; START REPLICA"
fi
sql replica "SET GLOBAL read_only = ON"
for _ in $(seq 50); do
  [ "$(sql replica "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND='Slave_IO'" 2>/dev/null || echo 0)" != "0" ] && break
  sleep 0.1
done
echo "mariadb: primary 127.0.0.1:3307, replica 127.0.0.1:3308 (user drill/drill)"
