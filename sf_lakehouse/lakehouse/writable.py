"""A local lakehouse home that cannot be written: checked before a run is recorded (the home, and
every folder and file a run writes that exists already), and named with its fix when a write
fails in the middle of a run (a disk that filled up meanwhile).

One line each, naming the place, the reason and the fix; never a traceback, and never a run left
in the instance for the next command to call killed."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import uuid
from pathlib import Path

from sf_lakehouse.config import ConfigError, Settings

_PERMISSION = "permission denied"
_FULL = "the disk is full"
REASONS = {
    errno.EROFS: "it is on a read-only file system",
    errno.EACCES: _PERMISSION,
    errno.EPERM: _PERMISSION,
    errno.ENOSPC: _FULL,
    errno.EDQUOT: "the disk quota is exhausted",
    # A file may not grow: the file size limit (`ulimit -f`) or a full file system.
    errno.EFBIG: "a file may not grow (the disk is full or `ulimit -f` is reached)",
    errno.EIO: "a disk I/O error (a full disk or a failing one)",
    errno.ENOTDIR: "a part of its path is a file, not a directory",
    errno.EEXIST: "it is a file, not a directory",
}
_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)
_RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class HomeNotWritableError(ConfigError):
    """The lakehouse home cannot hold the run's tables, logs and instance (`during_run`: found
    while a run was going, not by the checks before it)."""

    def __init__(self, message: str, *, during_run: bool = False) -> None:
        super().__init__(message)
        self.during_run = during_run


def fix_for(code: int, place: Path) -> str:
    """What to do when a write at `place` (in the home) fails with `code`."""
    if code in _SPACE:
        return (
            f"free space on the disk of {place} (or raise `ulimit -f`), or set "
            "SF_LAKEHOUSE_HOME to a directory with free space"
        )
    if code in (errno.ENOTDIR, errno.EEXIST):
        return "set SF_LAKEHOUSE_HOME to a directory"
    return (
        f"make {place} writable by the user running sf-lakehouse (chmod -R u+w), or set "
        "SF_LAKEHOUSE_HOME to a writable directory"
    )


def written_paths(settings: Settings) -> tuple[list[Path], list[Path]]:
    """The folders and files of the home a run writes into that exist already (what it
    creates, it creates in these). Per-run folders and files of the Dagster instance (named by
    run id) are written only by their own run."""
    from sf_lakehouse.monitoring.publish import METRICS_DIR_NAME
    from sf_lakehouse.run_lock import LOCK_FILE_NAME

    home = settings.home
    folders = [home, settings.logs_dir, settings.alerts_dir, home / METRICS_DIR_NAME]
    files = [settings.catalog_db_path, settings.duckdb_path, home / LOCK_FILE_NAME]
    for root in (settings.warehouse_dir, settings.dagster_home):
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if not _RUN_ID.match(d))
            folders.append(Path(folder))
            files += [Path(folder, n) for n in names if n.endswith(".db") and not _RUN_ID.match(n)]
    return [f for f in folders if f.is_dir()], [f for f in files if f.is_file()]


def _probe_folder(folder: Path, size: int) -> None:
    probe = folder / f".write-probe-{uuid.uuid4().hex}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if size:
                os.write(fd, b"\0" * size)
                os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)


def check_home_writable(settings: Settings) -> None:
    """Create the home and write a small file in it (a full disk fails here), then check every
    folder and file a run writes; one line naming the place, the reason and the fix otherwise."""
    home = settings.home
    where = home
    try:
        if home.exists() and not home.is_dir():
            raise FileExistsError(errno.EEXIST, "not a directory")
        home.mkdir(parents=True, exist_ok=True)
        _probe_folder(home, 4096)
        folders, files = written_paths(settings)
        for where in folders[1:]:
            _probe_folder(where, 0)
        for where in files:
            os.close(os.open(where, os.O_WRONLY | os.O_APPEND))  # writes nothing
    except OSError as error:
        code = error.errno or 0
        reason = REASONS.get(code, error.strerror or str(error))
        place = "" if where == home else f"{where.relative_to(home)}: "
        raise HomeNotWritableError(
            f"lakehouse home {home} cannot be written ({place}{reason}); {fix_for(code, where)}"
        ) from None


# --- a write that failed in the middle of a run ---------------------------------------------

_ERRNO = re.compile(r"\[Errno (\d+)\]")
# Errors without an errno: SQLite's (the catalog, the Dagster instance), and the OS's words
# that DuckDB and dbt quote.
_PHRASES = {
    "attempt to write a readonly database": errno.EACCES,
    "database or disk is full": errno.ENOSPC,
    "disk I/O error": errno.EIO,
    "No space left on device": errno.ENOSPC,
    "File too large": errno.EFBIG,
    "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES,
}
_SQLITE = tuple(_PHRASES)[:3]  # about the home's own databases even without a path


def storage_fix(message: str, settings: Settings) -> str | None:
    """The fix (one sentence) for a failed step or run whose error is the home's storage (a
    full disk, a read-only file), or None when it is something else (or somewhere else)."""
    match = _ERRNO.search(message)
    code = int(match.group(1)) if match else None
    if code is None:
        code = next((c for text, c in _PHRASES.items() if text in message), None)
    if code not in (*_SPACE, errno.EROFS, errno.EACCES, errno.EPERM):
        return None
    if str(settings.home) not in message and not any(text in message for text in _SQLITE):
        return None
    return f"{fix_for(code, settings.home)}; then run again"
