"""Issue 30: Ctrl-C stops `make cluster` and `make airflow` whatever started them.

A non-interactive shell starts its background jobs (`make test > log &`, a CI step, `nohup ... &`) with SIGINT
ignored, and an ignored signal stays ignored across exec: pytest, make, bash and every script below inherit it.
bash cannot trap a signal that was ignored when it started: `trap ... INT` is then silently a no-op. That is
how `make cluster | cat` ran on, every component with it, for 200 s after SIGINT. scripts/processes.sh, which
cluster.sh, airflow.sh and demo.sh source before they start anything, starts the script again with SIGINT's
default disposition. Fast: a few shell processes, no cluster.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

#: Runs a command with SIGINT ignored, as a background job of a non-interactive shell starts it.
IGNORING_SIGINT = [sys.executable, "-c",
                   "import os, signal, sys\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                   "os.execvp(sys.argv[1], sys.argv[1:])"]


def script(tmp_path: Path, source_processes: bool) -> Path:
    """A script shaped like cluster.sh: traps INT and TERM to stop, then waits for ever."""
    path = tmp_path / "script.sh"
    path.write_text(f"""set -euo pipefail
BIN={ROOT / '.venv/bin'}
{f'source {ROOT / "scripts/processes.sh"}' if source_processes else ''}
trap 'echo stopped; exit 130' INT
trap 'echo stopped; exit 143' TERM
echo "ready $(grep SigIgn /proc/$$/status | cut -f2)"
while true; do sleep 0.1; done
""")
    return path


def interrupted(command: list[str], within: float) -> tuple[int | None, str]:
    """(exit status, or None if it still runs `within` s after SIGINT; the SigIgn mask it reported when ready)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        assert ready.startswith("ready "), ready
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=within), ready.split()[1]
        except subprocess.TimeoutExpired:
            return None, ready.split()[1]
    finally:
        process.kill()
        process.wait()


def ignores_sigint(mask: str) -> bool:
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


def test_bash_cannot_trap_a_sigint_it_started_ignoring(tmp_path: Path) -> None:
    """The cause, without processes.sh: the trap is a no-op and SIGINT does nothing."""
    status, mask = interrupted([*IGNORING_SIGINT, "bash", str(script(tmp_path, source_processes=False))], within=3)
    assert ignores_sigint(mask) and status is None


@pytest.mark.parametrize("started", ["ignoring SIGINT", "as a terminal starts it"])
def test_a_script_that_sources_processes_sh_stops_on_sigint_however_it_was_started(
        tmp_path: Path, started: str) -> None:
    command = ["bash", str(script(tmp_path, source_processes=True))]
    if started == "ignoring SIGINT":
        command = [*IGNORING_SIGINT, *command]
    status, mask = interrupted(command, within=15)  # it stops at its next command: a tenth of a second, unloaded
    assert not ignores_sigint(mask) and status == 130, (status, mask)
