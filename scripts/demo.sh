#!/usr/bin/env bash
# The demo: embedded server -> seed -> dry run -> migration -> status, then stop.
set -euo pipefail
BIN=${BIN:-.venv/bin}
PORT=${DEMO_PORT:-27017}
DATA=var/demo-db
export LINKAGE_MONGO_URI="mongodb://127.0.0.1:${PORT}/" LINKAGE_DB=app LINKAGE_HOME="$PWD/var"

rm -rf "$DATA"; mkdir -p var
"$BIN/linkage" serve-db --port "$PORT" --data-dir "$DATA" > var/demo-server.log 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "wire server on" var/demo-server.log 2>/dev/null && break
  kill -0 $SERVER 2>/dev/null || { cat var/demo-server.log; exit 1; }
  sleep 0.2
done

echo "== seed: 10,000 customer profiles of dirty data"
"$BIN/linkage" seed --customers "${DEMO_CUSTOMERS:-10000}" --replace
echo; echo "== plan (dry run): what the migration would do"
"$BIN/linkage" plan --quiet
echo; echo "== migrate: backup, indexes, both backfills, validation"
"$BIN/linkage" migrate --new
echo; echo "== migrate again: a finished run changes nothing"
"$BIN/linkage" migrate --new --quiet
echo; echo "== reconcile: the nightly job, run by hand (repairs one-sided pairs, links what is new)"
"$BIN/linkage" reconcile --quiet
echo; echo "== status"
"$BIN/linkage" status
