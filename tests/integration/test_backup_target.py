"""Backups on real storage: a bad backup directory ends the run before any app write, naming the path.

Read-only and full directories are real: small tmpfs mounts where the machine
allows mounting (CI runs as root here); otherwise a read-only directory for an
unprivileged process and a file-size limit stand in for them.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pymongo.database import Database

from linkage.core.errors import LinkageError
from linkage.core.settings import Settings
from linkage.store import backup

from helpers import ROOT, cli_env, raw_bytes


@contextmanager
def tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A real filesystem of `size` at `path` for the block (skipped where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def migrate_into(settings: Settings, directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "linkage.cli.main", "migrate", "--new", "--quiet",
                           "--backup-dir", str(directory)], capture_output=True, text=True, timeout=120,
                          env=cli_env(settings), cwd=ROOT)


def assert_refused_before_any_write(settings: Settings, db: Database, directory: Path, reason: str,
                                    run: Callable[[], subprocess.CompletedProcess[str]]) -> None:
    before = raw_bytes(db)
    done = run()
    assert done.returncode == 1
    assert done.stderr.startswith(f"linkage migrate: backup directory {directory} {reason}"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert raw_bytes(db) == before
    runs = list(db[settings.collection("runs")].find())
    assert [r["state"] for r in runs] == ["failed"] and str(directory) in runs[0]["error"]
    assert db[settings.collection("journal")].count_documents({}) == 0


def test_a_missing_backup_directory_is_refused(settings: Settings, db: Database, seeded: dict, tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"
    assert_refused_before_any_write(settings, db, missing, "does not exist",
                                    lambda: migrate_into(settings, missing))
    assert not missing.exists()


def test_a_file_given_as_backup_directory_is_refused(settings: Settings, db: Database, seeded: dict,
                                                     tmp_path: Path) -> None:
    a_file = tmp_path / "backups.tar"
    a_file.write_text("not a directory")
    assert_refused_before_any_write(settings, db, a_file, "is a file, not a directory",
                                    lambda: migrate_into(settings, a_file))


def test_a_read_only_backup_directory_is_refused(settings: Settings, db: Database, seeded: dict,
                                                 tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as read_only:
        assert_refused_before_any_write(settings, db, read_only, "is not writable: Read-only file system",
                                        lambda: migrate_into(settings, read_only))


def test_a_backup_directory_without_room_for_the_estimate_is_refused(
        settings: Settings, db: Database, seeded: dict, tmp_path: Path) -> None:
    needed = backup.estimate_bytes(db, ["customers_v2", "delivery_statuses", "users"], compressed=True)
    assert needed > 64 * 1024, "the seeded data must not fit the small filesystem"
    with tmpfs(tmp_path / "small", "64k") as small:
        assert_refused_before_any_write(settings, db, small, "has 66 KB free; the backup needs about",
                                        lambda: migrate_into(settings, small))


def test_a_write_that_fails_during_the_dump_ends_with_the_path_not_a_traceback(
        settings: Settings, db: Database, seeded: dict, tmp_path: Path) -> None:
    """The estimate passes, then the disk refuses a write: the file-size limit makes the first big write fail."""
    target = tmp_path / "b"
    target.mkdir()

    def limited() -> subprocess.CompletedProcess[str]:
        def limit_file_size() -> None:
            import signal
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write (EFBIG) instead of killing the process
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        return subprocess.run([sys.executable, "-m", "linkage.cli.main", "migrate", "--new", "--quiet", "--backup-dir",
                               str(target)], capture_output=True, text=True, timeout=120, env=cli_env(settings),
                              cwd=ROOT, preexec_fn=limit_file_size)

    before = raw_bytes(db)
    done = limited()
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"linkage migrate: backup to {target}" in done.stderr and "File too large" in done.stderr
    assert raw_bytes(db) == before  # a migration's backup is its first read of the app's documents:
    assert db[settings.collection("journal")].count_documents({}) == 0  # nothing planned, nothing written


def test_check_target_accepts_a_writable_directory_and_creates_only_the_default(tmp_path: Path) -> None:
    backup.check_target(tmp_path, 1)
    default = tmp_path / "home" / "backups"
    backup.check_target(default, 1, create=True)
    assert default.is_dir()
    with pytest.raises(LinkageError, match="does not exist"):
        backup.check_target(tmp_path / "elsewhere", 1)
    assert Settings(home=tmp_path).create_backup_dir and not Settings(backup_dir=tmp_path).create_backup_dir
