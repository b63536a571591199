"""The child processes of a run (dbt), and ending them when the run ends.

dagster-dbt forwards an interrupt to dbt and waits a little; whatever is still running when
`sf-lakehouse run` finishes or is stopped is terminated here, so no dbt outlives its run.
Linux reads the process tree from /proc; elsewhere `descendants()` finds nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (Linux /proc)."""
    parents: dict[int, int] = {}
    if not PROC.is_dir():
        return parents
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # ended meanwhile
        # `pid (command) state ppid ...`; the command may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1].isdigit():
            parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int | None = None) -> list[int]:
    """Every living process below `pid` (default: this one), children first."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    queue = list(children.get(root, []))
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has ended; it only waits for its parent to read its status.
    try:
        state = (PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True
    return state[state.rfind(")") + 2 :].split()[:1] != ["Z"]


# Python's own helper processes end by themselves with this one (and ignore SIGTERM).
HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def command_line(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace").strip()


def terminate_descendants(grace_seconds: float = 10.0) -> list[int]:
    """SIGTERM every descendant of this process (dbt), SIGKILL those still alive after
    `grace_seconds`. Returns the pids that were signalled."""
    targets = [pid for pid in descendants() if not any(h in command_line(pid) for h in HELPERS)]
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while any(alive(pid) for pid in targets) and time.monotonic() < deadline:
        _reap()
        time.sleep(0.1)
    for pid in targets:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    _reap()
    return targets


def _reap() -> None:
    """Collect ended children of this process (no zombies left behind)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# --- termination signals ---------------------------------------------------------------------

TERMINATING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SignalLog:
    """Records which termination signals reached this process, whoever handled them: Dagster
    replaces the Python handlers while it executes a run, but the interpreter still writes
    every signal's number to the wakeup file descriptor set here."""

    def __init__(self) -> None:
        self._read, write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(write, False)
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        self._seen: list[int] = []

    def received(self) -> list[int]:
        while True:
            try:
                chunk = os.read(self._read, 64)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._seen += [n for n in chunk if n in TERMINATING]
        return list(self._seen)

    @staticmethod
    def name(signum: int) -> str:
        return signal.Signals(signum).name


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


# The log of the command's signals (set once by handle_termination_signals, in the main thread).
_signal_log: SignalLog | None = None


def handle_termination_signals() -> SignalLog:
    """SIGTERM and SIGHUP stop the command like Ctrl-C (KeyboardInterrupt), so `finally`
    blocks run: children are ended, the run is marked, the lock is released. Main thread only."""
    global _signal_log
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    _signal_log = SignalLog()
    return _signal_log


def received_signals() -> list[int]:
    """The termination signals that reached this process since handle_termination_signals()."""
    return _signal_log.received() if _signal_log is not None else []
