"""One writing `sf-lakehouse` command per lakehouse home at a time: a lock file.

`sf-lakehouse run`, `demo` and `repair` hold `<home>/sf-lakehouse.lock` while they work. The lock
is an advisory `flock`, which the kernel releases when the holder ends, however it ends (even
SIGKILL), so a lock is never stale. The file names the holder (pid, command, start, run id) for
the one line a second command prints. A holder that ends normally empties the file; a new holder
that finds it filled knows the previous one was killed, and marks that holder's runs failed
(`sf_lakehouse.pipeline.mark_abandoned_runs`).

A second command waits up to `--wait` seconds for the lock (a message says whom it waits for),
then gives up with exit code 3 (`BUSY_EXIT_CODE`) and one line naming the holder.

No Dagster here: the lock is taken before the slow imports, so a busy lakehouse answers at once.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from sf_lakehouse.owner_only import private_dir

LOCK_FILE_NAME = "sf-lakehouse.lock"
BUSY_EXIT_CODE = 3
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lakehouse lock."""

    pid: int
    command: str
    started_at: str
    host: str = ""
    run_id: str | None = None

    def describe(self) -> str:
        run = f", run {self.run_id}" if self.run_id else ""
        return f"pid {self.pid} (`sf-lakehouse {self.command}` since {self.started_at}{run})"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                command=str(data.get("command", "?")),
                started_at=str(data.get("started_at", "?")),
                host=str(data.get("host", "")),
                run_id=data.get("run_id"),
            )
        except (ValueError, KeyError, TypeError):
            return None


class LakehouseBusyError(RuntimeError):
    """Another command held the lakehouse lock for longer than this one would wait."""

    def __init__(self, path: Path, holder: Holder | None, waited: float) -> None:
        who = holder.describe() if holder else "another sf-lakehouse command"
        super().__init__(
            f"the lakehouse {path.parent} is busy: {who} holds its lock; waited {waited:.0f} s. "
            "Let it finish, or pass --wait SECONDS to wait longer"
        )
        self.holder = holder


class LakehouseLock:
    """`with LakehouseLock(home, "run").acquire(wait_seconds=60): ...`"""

    def __init__(self, home: Path, command: str, name: str = LOCK_FILE_NAME) -> None:
        self.path = Path(home) / name
        self.command = command
        self._handle: Any = None
        self.previous: Holder | None = None  # a holder that was killed, found at acquisition
        self.holder: Holder | None = None

    def acquire(
        self,
        wait_seconds: float = 0,
        on_wait: Callable[[Holder | None], None] | None = None,
    ) -> LakehouseLock:
        """Take the lock, waiting up to `wait_seconds`; `on_wait(holder)` is called once when
        it has to wait. Raises LakehouseBusyError when the time is up."""
        private_dir(self.path.parent)
        handle = self.path.open("a+", encoding="utf-8")
        started = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = self._read(handle)
                waited = time.monotonic() - started
                if waited >= wait_seconds:
                    handle.close()
                    raise LakehouseBusyError(self.path, holder, waited) from None
                if not told and on_wait is not None:
                    on_wait(holder)
                    told = True
                time.sleep(POLL_SECONDS)
        self._handle = handle
        self.previous = self._read(handle)
        self.holder = Holder(
            pid=os.getpid(),
            command=self.command,
            started_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            host=socket.gethostname(),
        )
        self._write(self.holder)
        return self

    def note_run(self, run_id: str) -> None:
        """Record the Dagster run this holder is executing (shown to a waiting command)."""
        if self.holder is not None and self._handle is not None:
            self.holder = Holder(**{**self.holder.__dict__, "run_id": run_id})
            self._write(self.holder)

    def release(self) -> None:
        if self._handle is None:
            return
        self._handle.seek(0)
        self._handle.truncate()  # empty: ended normally
        self._handle.flush()
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None

    def _read(self, handle: Any) -> Holder | None:
        handle.seek(0)
        return Holder.parse(handle.read())

    def _write(self, holder: Holder) -> None:
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(holder.__dict__, sort_keys=True))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def __enter__(self) -> LakehouseLock:
        if self._handle is None:
            self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
