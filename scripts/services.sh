#!/usr/bin/env bash
# Makes sure the services the project needs are reachable on 127.0.0.1, and uses them when they are.
# What is missing is installed (apt-get) and started in the background. Their data lives with the
# machine, not the checkout ($DASHBOARD_SERVICES_DIR, default ~/.cache/dashboard-cache/services), so
# every clone finds the TLS CA of a server another clone started.
#
#   scripts/services.sh postgres            PostgreSQL on 5432 ($PG_PORT), trust auth for user postgres
#   scripts/services.sh redis 6379          Redis on the given port, nothing persisted
#   scripts/services.sh redis-cluster 7000  a 3-node Redis cluster on 7000-7002 (no replicas)
#   scripts/services.sh redis-tls 6390      Redis over TLS only, its CA in $DASHBOARD_SERVICES_DIR/tls/ca.crt
#   scripts/services.sh pgbouncer 6432      PgBouncer in transaction mode in front of the Postgres on 5432
#
# Only installing packages needs root (lib.sh's apt_install says so); starting servers does not.
set -euo pipefail
LOG_TAG=services
source "$(dirname "$0")/lib.sh"

state=${DASHBOARD_SERVICES_DIR:-$HOME/.cache/dashboard-cache/services}
mkdir -p "$state"

ensure_postgres() {
  local port=${PG_PORT:-5432}
  if port_open "$port"; then log "postgres: using the server on $port"; return; fi
  # A cluster installed with the machine but stopped: start it.
  if command -v pg_ctlcluster >/dev/null && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    local version; version=$(ls /etc/postgresql | sort -V | tail -n 1)
    log "postgres: starting cluster $version/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    if wait_port "$port"; then return; fi
  fi
  local initdb; initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$initdb" ]; then
    # Our own cluster below has trust auth; keep the package from creating (and starting) another.
    as_root mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
    apt_install postgresql
    initdb=$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
  fi
  local bin data="$state/pgdata" run=(); bin=$(dirname "$initdb")
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root, and the postgres user cannot enter root's home.
    run=(runuser -u postgres --)
    data=${DASHBOARD_PG_DIR:-/var/lib/dashboard-cache/pgdata}
  fi
  if [ ! -s "$data/PG_VERSION" ]; then
    log "postgres: creating a trust-auth cluster in $data"
    mkdir -p "$data"; [ "$(id -u)" = 0 ] && chown postgres "$data"; chmod 700 "$data"
    "${run[@]}" "$bin/initdb" -D "$data" --auth=trust -U postgres >/dev/null
  fi
  log "postgres: starting $data on $port"
  "${run[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $data" start >/dev/null
  wait_port "$port"
}

ensure_redis() {
  local port=$1
  if port_open "$port"; then log "redis: using the server on $port"; return; fi
  command -v redis-server >/dev/null || apt_install redis-server
  log "redis: starting redis-server on $port (log: $state/redis-$port.log)"
  # Run in the background rather than --daemonize: a daemonized server becomes a zombie when killed
  # where nothing reaps orphans.
  setsid nohup redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$state" >"$state/redis-$port.log" 2>&1 </dev/null &
  wait_port "$port"
}

start_redis() {  # start_redis <port> <dir> <extra args...>: in the background, logging to <dir>
  local port=$1 dir=$2; shift 2
  mkdir -p "$dir"
  setsid nohup redis-server --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" "$@" \
    >"$dir/redis-$port.log" 2>&1 </dev/null &
}

ensure_redis_cluster() {
  local base=$1 ports=("$1" $(($1 + 1)) $(($1 + 2)))
  command -v redis-server >/dev/null || apt_install redis-server
  for port in "${ports[@]}"; do
    if ! port_open "$port"; then
      log "redis-cluster: starting node $port"
      rm -rf "$state/cluster-$port"
      start_redis "$port" "$state/cluster-$port" --port "$port" --cluster-enabled yes \
        --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 2000
    fi
  done
  for port in "${ports[@]}"; do wait_port "$port"; done
  if ! redis-cli -p "$base" cluster info | grep -q 'cluster_state:ok'; then
    log "redis-cluster: creating the cluster on ${ports[*]}"
    redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null
    for _ in $(seq 1 100); do
      redis-cli -p "$base" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1
    done
  fi
  log "redis-cluster: using the cluster on ${ports[*]}"
}

# A CA and a server certificate signed by it (rustls refuses a self-signed leaf used as its own CA).
make_tls_certs() {
  local dir=$state/tls
  [ -s "$dir/ca.crt" ] && [ -s "$dir/server.crt" ] && return
  command -v openssl >/dev/null || apt_install openssl
  log "redis-tls: creating a test CA and certificate in $dir"
  mkdir -p "$dir"
  openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 3650 \
    -subj "/CN=dashboard-cache test CA" 2>/dev/null
  openssl req -new -nodes -newkey rsa:2048 -keyout "$dir/server.key" -out "$dir/server.csr" \
    -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' \
    >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -out "$dir/server.crt" -days 3650 -extfile "$dir/server.ext" 2>/dev/null
}

ensure_redis_tls() {
  local port=$1
  if port_open "$port"; then
    [ -s "$state/tls/ca.crt" ] || { log "redis-tls: a server runs on $port but its CA is not in $state/tls"; exit 1; }
    log "redis-tls: using the server on $port"; return
  fi
  make_tls_certs
  command -v redis-server >/dev/null || apt_install redis-server
  log "redis-tls: starting redis-server with TLS on $port"
  start_redis "$port" "$state/tls" --port 0 --tls-port "$port" --tls-cert-file "$state/tls/server.crt" \
    --tls-key-file "$state/tls/server.key" --tls-ca-cert-file "$state/tls/ca.crt" --tls-auth-clients no
  wait_port "$port"
}

# Transaction pooling, as RDS Proxy, Supabase's pooler and most Lambda deployments run it, with a pool
# per database smaller than the tests' concurrency, so that connections are really shared.
ensure_pgbouncer() {
  local port=$1 pg_port=${PG_PORT:-5432}
  if port_open "$port"; then log "pgbouncer: using the pooler on $port"; return; fi
  command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || apt_install pgbouncer
  local bin; bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  local dir=$state/pgbouncer run=()
  if [ "$(id -u)" = 0 ]; then
    # PgBouncer refuses to run as root, and the postgres user cannot enter root's home.
    dir=${DASHBOARD_PGBOUNCER_DIR:-/var/lib/dashboard-cache/pgbouncer}
    run=(runuser -u postgres --)
  fi
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  printf '"postgres" ""\n' >"$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 4000
# Tests drop their databases when they end: hold no idle server connection that would block it.
server_idle_timeout = 1
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  [ "$(id -u)" = 0 ] && chown postgres "$dir"/*
  log "pgbouncer: starting on $port (transaction mode, pool of 2 per database; log: $dir/pgbouncer.log)"
  setsid nohup "${run[@]}" "$bin" "$dir/pgbouncer.ini" >"$dir/stdout.log" 2>&1 </dev/null &
  wait_port "$port"
}

while [ $# -gt 0 ]; do
  case "$1" in
    postgres) ensure_postgres; shift ;;
    redis) ensure_redis "${2:?redis needs a port}"; shift 2 ;;
    redis-cluster) ensure_redis_cluster "${2:?redis-cluster needs a base port}"; shift 2 ;;
    redis-tls) ensure_redis_tls "${2:?redis-tls needs a port}"; shift 2 ;;
    pgbouncer) ensure_pgbouncer "${2:?pgbouncer needs a port}"; shift 2 ;;
    *) log "unknown service $1"; exit 2 ;;
  esac
done
