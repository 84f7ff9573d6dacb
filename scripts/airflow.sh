#!/usr/bin/env bash
# Local Airflow for linkage: what `airflow standalone` runs (api-server, scheduler, dag-processor,
# triggerer; SQLite metadata, LocalExecutor), started one by one so that every listener is on
# 127.0.0.1: the api-server on AIRFLOW_HOST (127.0.0.1 unless set), and no log servers (8793,
# 8794): on one machine the api-server reads the task logs from disk. With this project's dags/
# and plugins/, and `mongo_default` pointing at the embedded MongoDB (seeded on its first start).
# A port already taken is refused before anything starts. Ctrl-C stops everything it started, saying so.
# The banner says what to export for the `linkage` CLI to work on this Airflow's database and home (its
# backups and Data Docs are under var/, not the CLI's default ~/.local/share/linkage).
set -euo pipefail
set -m  # each component in a process group of its own
ROOT=$(pwd)
BIN=${BIN:-$ROOT/.venv/bin}
MONGO_PORT=${MONGO_PORT:-27017}
AIRFLOW_PORT=${AIRFLOW_PORT:-8080}
AIRFLOW_HOST=${AIRFLOW_HOST:-127.0.0.1}
VAR=${LINKAGE_VAR:-$ROOT/var}
LOGS=$VAR/airflow-logs
export AIRFLOW_HOME=${AIRFLOW_HOME:-$VAR/airflow}
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__PARALLELISM=4 AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=4
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__API__HOST=$AIRFLOW_HOST AIRFLOW__API__PORT=$AIRFLOW_PORT AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=20
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:${AIRFLOW_PORT}/execution/"
# Three people: `admin`, `reviewer` who approves what `admin` decided (linkage_apply_decisions' four eyes:
# nobody approves their own decisions), and `viewer` (role viewer) who reads the review queue but may not decide.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW_USERS:-admin:admin,reviewer:admin,viewer:viewer}
export AIRFLOW_CONN_MONGO_DEFAULT=${AIRFLOW_CONN_MONGO_DEFAULT:-"mongo://127.0.0.1:${MONGO_PORT}/app?serverSelectionTimeoutMS=5000&connectTimeoutMS=5000"}
export LINKAGE_HOME=${LINKAGE_HOME:-$VAR}  # this Airflow's own database: its backups and Data Docs under var/
export GX_ANALYTICS_ENABLED=false PATH="$BIN:$PATH"

die() { echo "airflow: $*" >&2; exit 1; }
source "$(dirname "$0")/processes.sh"
for port in AIRFLOW_PORT MONGO_PORT; do
  port_free "${!port}" \
    || die "port ${!port} ($port) is in use (another make airflow, make demo's database, make cluster?); stop it or set $port=<free port>"
done
mkdir -p "$AIRFLOW_HOME" "$VAR" "$LOGS"

pids=()
COMPONENTS="the embedded MongoDB"
stop() {
  trap - INT TERM EXIT
  trap '' PIPE  # Ctrl-C in `make airflow | tee` closes the pipe: writing to it must not end the stop
  set +e +m
  disown -a 2>/dev/null  # no "[2] Terminated ..." per component: one line says what stopped
  [ "${#pids[@]}" -gt 0 ] || return 0
  echo "" 2>/dev/null
  echo "airflow: stopping $COMPONENTS..." 2>/dev/null
  # every process started here, taken before any exits (task processes may leave the group)
  local tree pid
  tree=$(for pid in "${pids[@]}"; do echo "$pid"; descendants "$pid"; done)
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  wait_gone 20 "${pids[@]}"
  for pid in $tree; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in $tree; do kill -KILL "$pid" 2>/dev/null || true; done
  echo "airflow: stopped $COMPONENTS (${#pids[@]} processes and theirs); the data stays in $VAR" 2>/dev/null
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
start() {  # start NAME COMMAND...: in the background, its own process group and log
  local name=$1; shift
  "$@" > "$LOGS/$name.log" 2>&1 &
  pids+=($!)
}

fresh=""; [ -d "$VAR/airflow-db" ] || fresh=1
start mongo "$BIN/linkage" serve-db --port "$MONGO_PORT" --data-dir "$VAR/airflow-db"
for _ in $(seq 1 100); do grep -q "wire server on" "$LOGS/mongo.log" 2>/dev/null && break; sleep 0.2; done
if [ -n "$fresh" ]; then
  "$BIN/linkage" seed --uri "mongodb://127.0.0.1:$MONGO_PORT/" --db app --customers "${DEMO_CUSTOMERS:-10000}" 2>/dev/null \
    | head -1 || true
fi

airflow db migrate > "$LOGS/db-migrate.log" 2>&1 || { tail -20 "$LOGS/db-migrate.log"; die "airflow db migrate failed"; }
COMPONENTS="Airflow (api-server, scheduler, dag-processor, triggerer) and the embedded MongoDB on :$MONGO_PORT"
start api-server airflow api-server --host "$AIRFLOW_HOST" --port "$AIRFLOW_PORT"
start scheduler airflow scheduler --skip-serve-logs
start dag-processor airflow dag-processor
start triggerer airflow triggerer --skip-serve-logs
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$AIRFLOW_PORT/api/v2/monitor/health" 2>/dev/null | "$BIN/python" -c "
import json, sys
health = json.load(sys.stdin)
sys.exit(0 if all(health.get(part, {}).get('status') == 'healthy' for part in ('metadatabase', 'scheduler', 'triggerer', 'dag_processor')) else 1)" 2>/dev/null && break
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { tail -20 "$LOGS"/*.log; die "a component exited; logs in $LOGS"; }; done
  sleep 1
done
USERS=$("$BIN/python" -c "
import json, os, sys
passwords = json.load(open(sys.argv[1]))
names = [u.split(':')[0].strip() for u in os.environ['AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS'].split(',') if u.strip()]
print('\n'.join(f'  user: {u:<10} password: {passwords[u]}' for u in names if u in passwords))" "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated")
cat <<MSG

Airflow is up: http://$AIRFLOW_HOST:$AIRFLOW_PORT
$USERS
DAGs: linkage_migration (Trigger -> form), linkage_reconcile (nightly), linkage_rollback,
linkage_apply_decisions (people's review decisions; a second user approves in Browse -> Required Actions).
MongoDB: mongodb://127.0.0.1:$MONGO_PORT/ (database app). Logs: $LOGS
The linkage CLI on this Airflow's database, backups and Data Docs (not ~/.local/share/linkage):
  export LINKAGE_MONGO_URI=mongodb://127.0.0.1:$MONGO_PORT/ LINKAGE_DB=app LINKAGE_HOME=$LINKAGE_HOME
Ctrl-C stops Airflow and the embedded database.
MSG
while true; do
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "airflow: a component exited; logs in $LOGS" >&2; exit 1; }; done
  sleep 1
done
