"""The host name Airflow records for a process (`[core] hostname_callable`).

A container is its own host, so under docker compose this is the container's name,
exactly as Airflow's default (`airflow.utils.net.getfqdn`). `make cluster` runs its
two Celery workers on one machine: it gives each its own name through
`LINKAGE_HOSTNAME`, as two machines would have, so a task instance's `hostname` says
which worker ran it.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("LINKAGE_HOSTNAME") or socket.getfqdn()
