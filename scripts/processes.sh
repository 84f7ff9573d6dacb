# What scripts/airflow.sh, scripts/cluster.sh and scripts/demo.sh share to check their ports and stop every
# process they started (sourced, after BIN is set, before anything is started).

# Ctrl-C (SIGINT) and SIGTERM must reach the script's `trap ... INT TERM` whatever started it. A signal that is
# ignored when bash starts cannot be trapped: `trap` is then silently a no-op, and SIGINT does nothing at all.
# A non-interactive shell starts its background jobs (`make test > log &`, `nohup make cluster &`, a CI step)
# with SIGINT and SIGQUIT ignored, and an ignored signal stays ignored across exec: pytest, make, and this
# script inherit it (issue 30: `make cluster | cat` ran on for 200 s after SIGINT, every component with it).
# So the script starts again, once, with the default disposition, before anything else has run.
if [ -n "$(trap -p INT TERM)" ] && [ -z "${LINKAGE_SIGNALS_RESET:-}" ]; then
  export LINKAGE_SIGNALS_RESET=1
  if env --default-signal=INT true 2>/dev/null; then exec env --default-signal=INT,TERM "$BASH" "$0" "$@"; fi
  # no coreutils 8.31: Python, which ignores SIGPIPE and SIGXFSZ itself, puts them back as subprocess does
  exec "$BIN/python" -c 'import os, signal, sys
for name in ("SIGINT", "SIGTERM", "SIGPIPE", "SIGXFSZ"): signal.signal(getattr(signal, name), signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$BASH" "$0" "$@"
fi
unset LINKAGE_SIGNALS_RESET

# port_free PORT: nothing listens on 127.0.0.1:PORT (binding it succeeds)
port_free() {
  "$BIN/python" -c "import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1])))" "$1" 2>/dev/null
}

# descendants PID: every process below PID (its children, theirs, ...)
descendants() { local child; for child in $(pgrep -P "$1" 2>/dev/null); do echo "$child"; descendants "$child"; done; }

# wait_gone SECONDS PID...: until none of the processes is alive, for SECONDS at most
wait_gone() {
  local seconds=$1 pid alive; shift
  for _ in $(seq 1 "$seconds"); do
    alive=""
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && return 0
    sleep 1
  done
}
