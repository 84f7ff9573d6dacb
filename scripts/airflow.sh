#!/usr/bin/env bash
# Local Airflow for linkage: `airflow standalone` (api-server, scheduler, dag-processor,
# triggerer; SQLite metadata) on localhost:8080 with this project's dags/ and plugins/,
# `mongo_default` pointing at the embedded MongoDB (seeded on first start).
# Ctrl-C stops everything it started (standalone is stopped with SIGINT, as it needs).
set -euo pipefail
set -m  # background jobs keep SIGINT (a non-interactive shell would ignore it for them)
ROOT=$(pwd)
BIN=${BIN:-$ROOT/.venv/bin}
MONGO_PORT=${MONGO_PORT:-27017}
VAR=${LINKAGE_VAR:-$ROOT/var}
export AIRFLOW_HOME=${AIRFLOW_HOME:-$VAR/airflow}
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__PARALLELISM=4 AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=4
export AIRFLOW__API__PORT=${AIRFLOW_PORT:-8080} AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=20
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:${AIRFLOW__API__PORT}/execution/"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW_USERS:-admin:admin}
export AIRFLOW_CONN_MONGO_DEFAULT=${AIRFLOW_CONN_MONGO_DEFAULT:-"mongo://127.0.0.1:${MONGO_PORT}/app?serverSelectionTimeoutMS=5000&connectTimeoutMS=5000"}
export LINKAGE_HOME=${LINKAGE_HOME:-$VAR}  # backups and Data Docs under var/
export GX_ANALYTICS_ENABLED=false PATH="$BIN:$PATH"
mkdir -p "$AIRFLOW_HOME" "$VAR"

pids=()
descendants() { local child; for child in $(pgrep -P "$1"); do echo "$child"; descendants "$child"; done; }
stop() {
  trap - INT TERM EXIT
  # every process started here, taken before any exits (task processes may leave the group)
  local tree pid
  tree=$(for pid in ${AIRFLOW_PID:-} "${pids[@]}"; do echo "$pid"; descendants "$pid"; done)
  if [ -n "${AIRFLOW_PID:-}" ]; then
    kill -INT "$AIRFLOW_PID" 2>/dev/null || true  # standalone stops its children on SIGINT only
    for _ in $(seq 1 30); do kill -0 "$AIRFLOW_PID" 2>/dev/null || break; sleep 1; done
    kill -TERM -- "-$AIRFLOW_PID" 2>/dev/null || true  # its whole process group, if it lingers
  fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done
  for pid in $tree; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 2
  for pid in $tree; do kill -KILL "$pid" 2>/dev/null || true; done
  echo "stopped"
}
trap stop INT TERM EXIT

if ! "$BIN/python" -c "from linkage.server import answers_ping; import sys; sys.exit(0 if answers_ping('mongodb://127.0.0.1:$MONGO_PORT/') else 1)"; then
  "$BIN/linkage" serve-db --port "$MONGO_PORT" --data-dir "$VAR/airflow-db" > "$VAR/airflow-db.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q "wire server on" "$VAR/airflow-db.log" 2>/dev/null && break; sleep 0.2; done
  "$BIN/linkage" seed --uri "mongodb://127.0.0.1:$MONGO_PORT/" --db app --customers "${DEMO_CUSTOMERS:-10000}" 2>/dev/null \
    | head -1 || true
fi

# Reset SIGINT before exec: a shell started in the background hands it down ignored,
# and then standalone could never be stopped the way it needs.
"$BIN/python" -c 'import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp("airflow", ["airflow", "standalone"])' \
  > "$VAR/airflow-standalone.log" 2>&1 &
AIRFLOW_PID=$!
for _ in $(seq 1 120); do
  curl -fsS "http://localhost:$AIRFLOW__API__PORT/api/v2/monitor/health" >/dev/null 2>&1 && break
  kill -0 "$AIRFLOW_PID" 2>/dev/null || { tail -20 "$VAR/airflow-standalone.log"; exit 1; }
  sleep 1
done
PASSWORD=$("$BIN/python" -c "import json,sys; print(json.load(open('$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated'))['admin'])")
cat <<MSG

Airflow is up: http://localhost:$AIRFLOW__API__PORT   user: admin   password: $PASSWORD
DAGs: linkage_migration (Trigger -> form), linkage_reconcile (nightly), linkage_rollback.
MongoDB: mongodb://127.0.0.1:$MONGO_PORT/ (database app). Logs: $VAR/airflow-standalone.log
Ctrl-C stops Airflow and the embedded database.
MSG
wait "$AIRFLOW_PID"
