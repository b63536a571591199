"""How every write commits: one Iceberg commit, retried on a lost race where the write may be
redone, refused when the run that started this process has died, and the test-only barrier
that crash tests stop a writer at. `state_before_last_write` finds the table as it was before
a write that committed several snapshots at once."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

WRITE_ID_PROPERTY = "sf-lakehouse-write-id"
# Attempts of one write when other writers commit first (optimistic concurrency).
COMMIT_ATTEMPTS = 6
# Set by `sf-lakehouse run` to its pid: a child process (dbt) whose parent has died refuses to
# commit, so a killed run never rewrites a table after the fact.
OWNER_PID_VAR = "SF_LAKEHOUSE_OWNER_PID"
# Test-only hook (see `_test_pause`): tests that kill a run at a commit set these.
TEST_PAUSE_VAR = "SF_LAKEHOUSE_TEST_PAUSE_AT"
TEST_BARRIER_VAR = "SF_LAKEHOUSE_TEST_BARRIER"


class OrphanedWriteError(RuntimeError):
    """This process's run has ended (its parent died): committing now would change a table
    behind the back of the next run."""


def table_name(table: Table) -> str:
    return ".".join(table.name())


def _retryable(error: BaseException) -> bool:
    """Another writer committed first (or held the SQLite catalog a moment too long)."""
    if isinstance(error, CommitFailedException):
        return True
    return type(error).__name__ == "OperationalError" and "database is locked" in str(error)


def with_commit_retries(table: Table, write: Callable[[Table], Any]) -> Any:
    """Run `write` (one commit) until it wins: after a lost race, reload the table and redo the
    write from the start, so every check inside `write` sees the other writer's commit."""
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return write(table)
        except Exception as error:
            if not _retryable(error) or attempt == COMMIT_ATTEMPTS - 1:
                raise
            time.sleep(min(0.1 * 2**attempt, 2.0))
            table = table.refresh()
    raise AssertionError("unreachable")


def before_commit(table_name: str) -> None:
    """Checks just before a commit: the run that started this process is still alive."""
    _test_pause("commit", table_name)
    # Unset: not started by an sf-lakehouse run (dbt by hand, a test), nothing to check.
    owner = os.environ.get(OWNER_PID_VAR)
    if owner and owner.isdigit() and int(owner) not in (os.getpid(), os.getppid()):
        raise OrphanedWriteError(
            f"not committing to {table_name}: the sf-lakehouse run (pid {owner}) that started "
            "this process has ended"
        )


def _test_pause(point: str, detail: str) -> None:
    """Test-only barrier, off unless `SF_LAKEHOUSE_TEST_PAUSE_AT` is set (tests that kill a run
    in the middle of an Iceberg commit set it). `SF_LAKEHOUSE_TEST_PAUSE_AT=commit` pauses before
    every commit, `commit:<database>.<table>` before that table's: the process writes
    `<point>.reached` (its pid and the table) into the directory `SF_LAKEHOUSE_TEST_BARRIER` and
    waits until `<point>.release` appears there."""
    wanted = os.environ.get(TEST_PAUSE_VAR)
    if not wanted or wanted not in (point, f"{point}:{detail}"):
        return
    barrier = Path(os.environ.get(TEST_BARRIER_VAR) or ".")
    barrier.mkdir(parents=True, exist_ok=True)
    (barrier / f"{point}.reached").write_text(f"{os.getpid()} {detail}\n", encoding="utf-8")
    while not (barrier / f"{point}.release").exists():
        time.sleep(0.05)


def state_before_last_write(table: Table) -> int | None:
    """Snapshot id of the table as it was before its latest write (None: there was none)."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return None
    write_id = _write_id(snapshot)
    parent_id = snapshot.parent_snapshot_id
    while parent_id is not None:
        parent = table.snapshot_by_id(parent_id)
        if parent is None:  # expired by maintenance
            return None
        if write_id is None or _write_id(parent) != write_id:
            return parent.snapshot_id
        parent_id = parent.parent_snapshot_id
    return None


def _write_id(snapshot: Any) -> str | None:
    summary = snapshot.summary.additional_properties if snapshot.summary else {}
    return summary.get(WRITE_ID_PROPERTY)
