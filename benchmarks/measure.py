"""Time and memory of processes: every measured step runs as its own process tree.

`peak_tree_rss_bytes` is the highest sum of the resident set sizes of a process and all its
descendants (sampled every 50 ms with psutil: the pipeline's Python process and its dbt
subprocess together); `max_rss_bytes` is the kernel's exact peak of the largest single
process of the tree (`wait4` rusage); `cpu_seconds` is user + system time of the tree;
`load_average` the machine's 1-minute load average when it ended (other work on the machine
shows there: wall times are only comparable at similar loads).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.05


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants (0 when it is gone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


class PeakSampler:
    """Samples `tree_rss(pid)` in a thread; `peak` is the highest sample so far."""

    def __init__(self, pid: int, interval: float = SAMPLE_SECONDS) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.last = tree_rss(self.pid)
            self.peak = max(self.peak, self.last)
            self._stop.wait(self.interval)

    def start(self) -> PeakSampler:
        self._thread.start()
        return self

    def reset(self) -> None:
        self.peak = self.last

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


@dataclass(frozen=True)
class Measured:
    """One process tree, start to exit."""

    command: str
    seconds: float
    peak_tree_rss_bytes: int
    max_rss_bytes: int
    cpu_seconds: float
    returncode: int
    load_average: float
    stdout: str

    def summary(self) -> dict[str, object]:
        values = asdict(self)
        values.pop("stdout")
        return values


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def run_measured(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> Measured:
    """Run `command` in its own session; stdout is returned (and logged), stderr is logged."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out_path = log_path.with_suffix(".stdout")
    with out_path.open("wb") as out, log_path.open("ab") as err:
        err.write(f"$ {' '.join(command)}\n".encode())
        err.flush()
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command), stdout=out, stderr=err, env=dict(env), cwd=cwd, start_new_session=True
        )
        sampler = PeakSampler(process.pid).start()
        timer = threading.Timer(timeout, _kill_tree, (process,)) if timeout else None
        if timer is not None:
            timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted: leave no process of ours behind
            _kill_tree(process)
            process.wait()
            sampler.stop()
            raise
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if timer is not None:
            timer.cancel()
        peak = sampler.stop()
    stdout = out_path.read_text(encoding="utf-8", errors="replace")
    return Measured(
        command=" ".join(command[:4]),
        seconds=elapsed,
        peak_tree_rss_bytes=peak,
        max_rss_bytes=usage.ru_maxrss * 1024,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        returncode=process.returncode,
        load_average=round(os.getloadavg()[0], 2),
        stdout=stdout,
    )
