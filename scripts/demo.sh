#!/usr/bin/env bash
# The demo: embedded server -> seed -> dry run -> migration -> reconcile -> status; then it stops
# the server and prints the way back in (the command that starts it again, then `linkage status`).
# Backups and Data Docs go to the default LINKAGE_HOME, the one every later `linkage` command uses,
# so the demo's database has its history in one place; the next demo deletes the demo's runs' with
# the database (var/demo-history names them).
set -euo pipefail
BIN=${BIN:-.venv/bin}
PORT=${DEMO_PORT:-27017}
VAR=${LINKAGE_VAR:-var}
DATA=$VAR/demo-db
export LINKAGE_MONGO_URI="mongodb://127.0.0.1:${PORT}/" LINKAGE_DB=app

source "$(dirname "$0")/processes.sh"
# before anything is deleted: a server on the port may be this demo's own database, started again to look
port_free "$PORT" || { echo "demo: port $PORT (DEMO_PORT) is in use (the demo's database started again? stop it" \
  "with kill %1 or Ctrl-C in its terminal), or run make demo DEMO_PORT=<free port>; nothing was deleted" >&2; exit 1; }
# an earlier demo's backups and Data Docs go with its database (unknown to every later one, they would stay)
HISTORY=$VAR/demo-history
if [ -f "$HISTORY" ]; then
  while IFS= read -r kept; do [ -n "$kept" ] && rm -rf -- "$kept"; done < "$HISTORY"
  rm -f "$HISTORY"
fi
rm -rf "$DATA"; mkdir -p "$VAR"
"$BIN/linkage" serve-db --port "$PORT" --data-dir "$DATA" > "$VAR/demo-server.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "wire server on" "$VAR/demo-server.log" 2>/dev/null && break
  kill -0 $SERVER 2>/dev/null || { cat "$VAR/demo-server.log"; exit 1; }
  sleep 0.2
done
HOME_USED=$("$BIN/python" -c "from linkage.core.settings import Settings; print(Settings.from_env().home)")

echo "== seed: ${DEMO_CUSTOMERS:-10000} customer profiles of dirty data"
"$BIN/linkage" seed --customers "${DEMO_CUSTOMERS:-10000}" --replace
echo; echo "== plan (dry run): what the migration would do"
"$BIN/linkage" plan --quiet
echo; echo "== migrate: the backup (whole, first), indexes, each relation planned then written, validation"
"$BIN/linkage" migrate --new
echo; echo "== migrate again: a finished run changes nothing"
"$BIN/linkage" migrate --new --quiet
echo; echo "== reconcile: the nightly job, run by hand (repairs one-sided pairs, links what is new)"
"$BIN/linkage" reconcile --quiet
echo; echo "== status"
"$BIN/linkage" status
"$BIN/linkage" status --json | tail -1 | "$BIN/python" -c '
import json, pathlib, sys
docs = pathlib.Path(sys.argv[1]) / "data_docs"
for run in json.load(sys.stdin)["recent_runs"]:
    site = (run.get("validation") or {}).get("data_docs")
    backup = (run.get("backup") or {}).get("path")
    print(*[path for path in (backup, site and docs / pathlib.Path(site).parent) if path], sep="\n")
' "$HOME_USED" > "$HISTORY"

uri=""; [ "$PORT" = 27017 ] || uri=" --uri mongodb://127.0.0.1:$PORT/"
cat <<MSG

== done. The demo's database is stopped now; its data stays in $DATA. To look again:
  $BIN/linkage serve-db --port $PORT --data-dir $DATA &    # starts it (kill %1, or Ctrl-C in its terminal, stops it)
  $BIN/linkage status$uri
Backups and Data Docs of these runs: LINKAGE_HOME=$HOME_USED (the default: later linkage commands use it too).
MSG
