# What scripts/airflow.sh and scripts/cluster.sh share to stop every process they started (sourced).

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
