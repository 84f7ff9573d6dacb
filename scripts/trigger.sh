#!/usr/bin/env bash
# Trigger a DAG through Airflow's REST API and wait for it: token, unpause, trigger, poll.
#   scripts/trigger.sh linkage_migration '{"dry_run": false, "partitions": 2}'
set -euo pipefail
DAG=${1:?dag id}; CONF=${2:-'{}'}
API=${AIRFLOW_API:-http://127.0.0.1:${AIRFLOW_PORT:-8080}}
USER=${AIRFLOW_USER:-admin}
if [ -n "${AIRFLOW_PASSWORD_FILE:-}" ]; then AIRFLOW_PASSWORD=$(cat "$AIRFLOW_PASSWORD_FILE"); fi  # make cluster
PASSWORD=${AIRFLOW_PASSWORD:-$(python3 -c "import json; print(json.load(open('${AIRFLOW_HOME:-var/airflow}/simple_auth_manager_passwords.json.generated'))['$USER'])")}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

TOKEN=$(curl -fsS -X POST "$API/auth/token" -H 'Content-Type: application/json' \
  -d "{\"username\": \"$USER\", \"password\": \"$PASSWORD\"}" | json "['access_token']")
AUTH=(-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json')
curl -fsS -X PATCH "$API/api/v2/dags/$DAG" "${AUTH[@]}" -d '{"is_paused": false}' > /dev/null
RUN=$(curl -fsS -X POST "$API/api/v2/dags/$DAG/dagRuns" "${AUTH[@]}" -d "{\"logical_date\": null, \"conf\": $CONF}" \
  | json "['dag_run_id']")
echo "triggered $DAG run $RUN"
for _ in $(seq 1 ${TIMEOUT_POLLS:-200}); do
  STATE=$(curl -fsS "$API/api/v2/dags/$DAG/dagRuns/$RUN" "${AUTH[@]}" | json "['state']")
  case "$STATE" in success|failed) break ;; esac
  sleep 3
done
echo "$DAG run $RUN: $STATE"
[ "$STATE" = success ]
