#!/usr/bin/env bash
# `make cluster`: docker-compose.yaml's production topology, natively, without containers.
#   PostgreSQL (metadata)  Redis (Celery broker)  the embedded MongoDB  an SMTP sink (mailpit's role)
#   Airflow 3 with the CeleryExecutor: api-server, scheduler, dag-processor, triggerer,
#   and CLUSTER_WORKERS Celery workers (default 2), each with its own host name and queue.
# Configuration: deploy/airflow.env, the file the compose file uses too (scripts/cluster_env.py
# maps its container paths and the API address, nothing else); secrets: deploy/init_config.py.
# Everything lives in $LINKAGE_VAR/cluster (default var/cluster). A component that dies is
# started again (compose's `restart: always`). Ctrl-C (or SIGTERM) stops every process it started.
set -euo pipefail
umask 077  # everything it creates is its user's alone
set -m  # each component in a process group of its own: a terminal's Ctrl-C reaches this script only
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/.venv/bin}
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN ;; esac
VAR=${LINKAGE_VAR:-$ROOT/var}
HOME_DIR=$VAR/cluster
AIRFLOW_PORT=${AIRFLOW_PORT:-8080}
MONGO_PORT=${MONGO_PORT:-27017}
PG_PORT=${PG_PORT:-5433}
REDIS_PORT=${REDIS_PORT:-6380}
SMTP_PORT=${SMTP_PORT:-1026}
HEALTH_PORT=${SCHEDULER_HEALTH_PORT:-8974}
WORKERS=${CLUSTER_WORKERS:-2}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
RUN=$HOME_DIR/run LOGS=$HOME_DIR/logs SECRETS=$HOME_DIR/secrets
export PATH="$BIN:$PATH"

say() { echo "cluster: $*"; }
die() { echo "cluster: $*" >&2; exit 1; }
source "$ROOT/scripts/processes.sh"
[ -x "$PG_BIN/postgres" ] || die "PostgreSQL is not installed (make system-deps installs it)"
command -v redis-server >/dev/null || die "redis-server is not installed (make system-deps installs it)"
[ -x "$BIN/airflow" ] || die "no Airflow in $BIN (make install)"

for port in AIRFLOW_PORT MONGO_PORT PG_PORT REDIS_PORT SMTP_PORT SCHEDULER_HEALTH_PORT; do
  value=${!port:-}; [ "$port" = SCHEDULER_HEALTH_PORT ] && value=$HEALTH_PORT
  port_free "$value" \
    || die "port $value ($port) is in use (is make airflow or another cluster running?); set $port=<free port>"
done
# Secrets first: nothing starts on a bad password. Passwords neither given nor kept are generated
# and kept. .env is the compose file's too: its passwords count (an empty or change-me one is
# refused), but only this step sees them; no Airflow process gets a password in its environment.
(
  if [ -f "$ROOT/.env" ] && [ -z "${LINKAGE_NO_DOTENV:-}" ]; then
    eval "$("$BIN/python" "$ROOT/scripts/cluster_env.py" --dotenv "$ROOT/.env")"
  fi
  LINKAGE_MONGO_CONN=${CLUSTER_MONGO_CONN:-} exec "$BIN/python" "$ROOT/deploy/init_config.py" --secrets "$SECRETS" \
    --postgres "127.0.0.1:$PG_PORT" --redis "127.0.0.1:$REDIS_PORT" --mongo "127.0.0.1:$MONGO_PORT" \
    --smtp "127.0.0.1:$SMTP_PORT" --generate-missing
) | sed 's/^/cluster: /'
unset POSTGRES_PASSWORD REDIS_PASSWORD AIRFLOW_ADMIN_PASSWORD AIRFLOW_FERNET_KEY MONGO_ROOT_PASSWORD \
  LINKAGE_MONGO_PASSWORD LINKAGE_MONGO_CONN CLUSTER_MONGO_CONN

mkdir -p "$RUN" "$LOGS" "$HOME_DIR"/{backups,gx_docs,airflow,mail}
# only its owner may look inside (as root, PostgreSQL's user must be able to pass through)
if [ "$(id -u)" = 0 ]; then
  chmod 711 "$HOME_DIR" && chmod o+x "$VAR"
  setpriv --reuid=postgres --regid=postgres --clear-groups -- test -x "$HOME_DIR" \
    || die "PostgreSQL runs as user postgres, which cannot reach $HOME_DIR; set LINKAGE_VAR to a directory it can pass through"
else
  chmod 700 "$HOME_DIR"
fi

# The shared Airflow configuration, with this machine's paths and API port.
eval "$("$BIN/python" "$ROOT/scripts/cluster_env.py" --root "$ROOT" --home "$HOME_DIR" --api-port "$AIRFLOW_PORT")"
export AIRFLOW_HOME=$HOME_DIR/airflow
export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST=127.0.0.1
export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=$HEALTH_PORT

declare -A PIDS=() STARTED=()
ORDER=()
STOPPING=""

# PostgreSQL refuses to run as root: as root it runs as the `postgres` user.
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi; }

cmd_postgres() {
  local run=("$PG_BIN/postgres" -D "$HOME_DIR/pg" -p "$PG_PORT" -c listen_addresses=127.0.0.1
             -c unix_socket_directories="$HOME_DIR/pg-socket" -c max_connections=200 -c shared_buffers=64MB)
  if [ "$(id -u)" = 0 ]; then exec setpriv --reuid=postgres --regid=postgres --init-groups -- "${run[@]}"; fi
  exec "${run[@]}"
}
cmd_redis() {
  # the password goes in through stdin, never on a command line
  printf 'port %s\nbind 127.0.0.1\nprotected-mode yes\nrequirepass %s\ndir %s\nsave ""\nappendonly no\n' \
    "$REDIS_PORT" "$(cat "$SECRETS/redis_password")" "$HOME_DIR/redis" | exec redis-server -
}
cmd_mongo() { exec "$BIN/linkage" serve-db --port "$MONGO_PORT" --data-dir "$HOME_DIR/mongo"; }
# a maildir (tmp, new, cur) that every alert email lands in
cmd_smtp() {
  mkdir -p "$HOME_DIR/mail/tmp" "$HOME_DIR/mail/new" "$HOME_DIR/mail/cur"
  exec "$BIN/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$HOME_DIR/mail"
}
cmd_apiserver() { exec airflow api-server --host "${AIRFLOW_HOST:-127.0.0.1}" --port "$AIRFLOW_PORT"; }
cmd_scheduler() { exec airflow scheduler --skip-serve-logs; }
cmd_dag_processor() { exec airflow dag-processor; }
cmd_triggerer() { exec airflow triggerer --skip-serve-logs; }
# Logs are on storage every component shares (the compose file's airflow-logs volume), so
# workers serve none; each consumes the default queue and one of its own.
cmd_worker() { exec airflow celery worker --celery-hostname "$1@%h" --queues "default,$1" --skip-serve-logs; }

start() {  # start NAME: its command in the background, its own process group, its own log
  local name=$1 fn
  case "$name" in worker-*) fn="cmd_worker $name" ;; *) fn="cmd_${name//-/_}" ;; esac
  # the environment it starts with, kept for inspection (Airflow's process titles overwrite
  # /proc/<pid>/environ); no secret is in it: those are files in $SECRETS
  ( export LINKAGE_HOSTNAME="$name"; env -0 > "$RUN/$name.environ"; $fn ) >>"$LOGS/$name.log" 2>&1 &
  PIDS[$name]=$! STARTED[$name]=$(date +%s)
  echo "$!" > "$RUN/$name.pid"
}
launch() { ORDER+=("$1"); start "$1"; }

stop() {
  trap - INT TERM EXIT
  # Ctrl-C in `make cluster | tee cluster.log` ends tee too: a write to the closed pipe must not end
  # this script (SIGPIPE) or fail it (set -e) before it has stopped everything
  trap '' PIPE
  set +e
  STOPPING=1
  say "stopping..." 2>/dev/null
  local name pid tree airflow=() stores=()
  for name in "${ORDER[@]}"; do
    case "$name" in postgres|redis|mongo|smtp) stores+=("$name") ;; *) airflow+=("$name") ;; esac
  done
  # every process started here, taken before any exits (task processes may leave their group)
  tree=$(for name in "${ORDER[@]}"; do pid=${PIDS[$name]}; echo "$pid"; descendants "$pid"; done)
  for name in "${airflow[@]}"; do kill -TERM -- "-${PIDS[$name]}" 2>/dev/null || true; done
  wait_gone 20 $(for name in "${airflow[@]}"; do echo "${PIDS[$name]}"; done)
  for name in "${airflow[@]}"; do kill -KILL -- "-${PIDS[$name]}" 2>/dev/null || true; done
  for name in "${stores[@]}"; do
    if [ "$name" = postgres ]; then  # SIGINT is PostgreSQL's fast shutdown
      kill -INT "$(head -1 "$HOME_DIR/pg/postmaster.pid" 2>/dev/null || echo "${PIDS[$name]}")" 2>/dev/null || true
    else
      kill -TERM -- "-${PIDS[$name]}" 2>/dev/null || true
    fi
  done
  for name in "${stores[@]}"; do
    for _ in $(seq 1 20); do kill -0 "${PIDS[$name]}" 2>/dev/null || break; sleep 0.5; done
  done
  for pid in $tree; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in $tree; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$RUN"/*.pid
  say "stopped" 2>/dev/null
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

wait_for() {  # wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds
  local what=$1 seconds=$2; shift 2
  for _ in $(seq 1 $((seconds * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "$what did not come up within ${seconds}s; see $LOGS"
}

started=$(date +%s)
# --- PostgreSQL: a cluster of its own under var/, password (SCRAM) authentication only
if [ ! -f "$HOME_DIR/pg/PG_VERSION" ]; then
  rm -rf "$HOME_DIR/pg" && mkdir -p "$HOME_DIR/pg"
  install -m 600 "$SECRETS/postgres_password" "$HOME_DIR/.pg-pwfile"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$HOME_DIR/pg" "$HOME_DIR/.pg-pwfile"; fi
  as_pg "$PG_BIN/initdb" -D "$HOME_DIR/pg" -U airflow --pwfile="$HOME_DIR/.pg-pwfile" --auth=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 > "$LOGS/initdb.log" 2>&1 || { rm -f "$HOME_DIR/.pg-pwfile"; tail -5 "$LOGS/initdb.log"; die "initdb failed"; }
  rm -f "$HOME_DIR/.pg-pwfile"
fi
mkdir -p "$HOME_DIR/pg-socket" "$HOME_DIR/redis"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$HOME_DIR/pg-socket"; fi
launch postgres
wait_for PostgreSQL 30 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
if ! PGPASSWORD=$(cat "$SECRETS/postgres_password") "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U airflow -d postgres \
     -tAc "SELECT 1 FROM pg_database WHERE datname = 'airflow'" | grep -q 1; then
  PGPASSWORD=$(cat "$SECRETS/postgres_password") "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U airflow -d postgres \
    -c "CREATE DATABASE airflow"
fi

# --- Redis (broker), the embedded MongoDB (seeded with demo data on first start), the SMTP sink
launch redis
wait_for Redis 20 env REDISCLI_AUTH="$(cat "$SECRETS/redis_password")" redis-cli -p "$REDIS_PORT" ping
launch mongo
wait_for MongoDB 30 "$BIN/python" -c "from linkage.dev.server import answers_ping; import sys; sys.exit(0 if answers_ping('mongodb://127.0.0.1:$MONGO_PORT/') else 1)"
if [ ! -f "$HOME_DIR/mongo/.seeded" ] && [ "${DEMO_CUSTOMERS:-10000}" != 0 ]; then
  "$BIN/linkage" seed --uri "mongodb://127.0.0.1:$MONGO_PORT/" --db app --customers "${DEMO_CUSTOMERS:-10000}" 2>/dev/null \
    | head -1 | sed 's/^/cluster: /' || true
  touch "$HOME_DIR/mongo/.seeded"
fi
launch smtp

# --- Airflow: migrate the metadata database once, then every component
airflow db migrate > "$LOGS/db-migrate.log" 2>&1 || { tail -20 "$LOGS/db-migrate.log"; die "airflow db migrate failed"; }
launch apiserver
launch scheduler
launch dag-processor
launch triggerer
for i in $(seq 1 "$WORKERS"); do launch "worker-$i"; done

healthy() {
  curl -fsS "http://127.0.0.1:$AIRFLOW_PORT/api/v2/monitor/health" | "$BIN/python" -c "
import json, sys
health = json.load(sys.stdin)
sys.exit(0 if all(health.get(part, {}).get('status') == 'healthy'
                  for part in ('metadatabase', 'scheduler', 'triggerer', 'dag_processor')) else 1)"
}
workers_ready() { local i; for i in $(seq 1 "$WORKERS"); do grep -q "worker-$i@.* ready" "$LOGS/worker-$i.log" || return 1; done; }
wait_for "Airflow" 180 healthy
wait_for "the Celery workers" 120 workers_ready
up=$(( $(date +%s) - started ))
echo "$up" > "$RUN/up_seconds"
cat <<MSG

Airflow (CeleryExecutor, $WORKERS workers) is up in ${up}s: http://127.0.0.1:$AIRFLOW_PORT
  log in as admin; the password is in $SECRETS/admin_password (your AIRFLOW_ADMIN_PASSWORD if .env sets one)
  trigger: AIRFLOW_API=http://127.0.0.1:$AIRFLOW_PORT AIRFLOW_PASSWORD_FILE=$SECRETS/admin_password scripts/trigger.sh linkage_migration '{"partitions": 4}'
  MongoDB: mongodb://127.0.0.1:$MONGO_PORT/ (database app)  PostgreSQL: 127.0.0.1:$PG_PORT  Redis: 127.0.0.1:$REDIS_PORT
  alert mail: $HOME_DIR/mail   logs: $LOGS   backups: $HOME_DIR/backups   Data Docs: $HOME_DIR/gx_docs
Ctrl-C stops everything.
MSG

# --- supervise: a component that exits is started again (compose: restart: always), at once
# the first time, then, while it keeps dying within 30 s of its start, after 2, 4, ... 60 s
declare -A BACKOFF=() DUE=()
while true; do
  sleep 1
  now=$(date +%s)
  for name in "${ORDER[@]}"; do
    kill -0 "${PIDS[$name]}" 2>/dev/null && continue
    [ -n "$STOPPING" ] && break
    if [ -z "${DUE[$name]:-}" ]; then
      wait "${PIDS[$name]}" 2>/dev/null || true
      delay=0
      if [ $((now - STARTED[$name])) -lt 30 ]; then
        delay=${BACKOFF[$name]:-0}; [ "$delay" -lt 1 ] && delay=1
        delay=$((delay * 2)); [ "$delay" -gt 60 ] && delay=60
      fi
      BACKOFF[$name]=$delay DUE[$name]=$((now + delay))
      if [ "$delay" -gt 0 ]; then say "$name exited; starting it again in ${delay}s"; else say "$name exited; starting it again"; fi
      echo "restarted $(date -u +%FT%TZ)" >> "$LOGS/$name.log"
    fi
    if [ "$now" -ge "${DUE[$name]}" ]; then
      unset "DUE[$name]"
      start "$name"
    fi
  done
done
