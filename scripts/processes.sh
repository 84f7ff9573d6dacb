# What scripts/airflow.sh, scripts/cluster.sh and scripts/demo.sh share to check their ports and stop every
# process they started (sourced, after BIN is set).

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
