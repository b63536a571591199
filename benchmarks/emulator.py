"""The Salesforce API emulator as its own process (`sf-lakehouse emulator`), so its memory
and CPU are measured apart from the pipeline's, and its clock moved over HTTPS like the README
shows (`PUT /_emulator/clock`)."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from benchmarks.common import REPO_ROOT, Json
from benchmarks.measure import PeakSampler
from benchmarks.project import Project, ProjectError


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text("utf-8").splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


class EmulatorProcess:
    """`sf-lakehouse emulator --history FILE --now T --env-file F`, watched while it lives."""

    def __init__(self, project: Project, history: Path, workdir: Path, now: str) -> None:
        self.project = project
        self.history = history
        self.workdir = workdir
        self.now = now
        self.env_file = workdir / "emulator.env"
        self.log_path = workdir / "emulator.log"
        self.load_seconds = 0.0
        self.rss_after_load = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._sampler: PeakSampler | None = None
        self._settings: dict[str, str] = {}

    def start(self, timeout: float) -> EmulatorProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env_file.unlink(missing_ok=True)
        command = self.project.cli(
            "emulator",
            "--history",
            str(self.history),
            "--now",
            self.now,
            "--env-file",
            str(self.env_file),
            "--workdir",
            str(self.workdir / "tls"),
        )
        started = time.perf_counter()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.project.env(),
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        self._sampler = PeakSampler(self._process.pid, interval=0.2).start()
        self._wait_for_env_file(timeout)
        self.load_seconds = time.perf_counter() - started
        self._settings = read_env_file(self.env_file)
        time.sleep(0.5)
        self.rss_after_load = self._sampler.last
        return self

    def _wait_for_env_file(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while not self.env_file.is_file():
            if self._process.poll() is not None:
                raise ProjectError(
                    f"the emulator exited {self._process.returncode} while loading; see "
                    f"{self.log_path}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ProjectError(f"the emulator did not start in {timeout:.0f} s")
            time.sleep(0.2)

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self._settings["SF_CA_BUNDLE"])

    def set_clock(self, now: str) -> None:
        request = urllib.request.Request(
            f"{self._settings['SF_LOGIN_URL']}/_emulator/clock",
            data=json.dumps({"now": now}).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=self._context(), timeout=60) as response:
            response.read()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def peak_rss(self) -> int:
        return self._sampler.peak if self._sampler else 0

    def reset_peak(self) -> None:
        """Start a new peak from the current sample (one phase's peak)."""
        if self._sampler is not None:
            self._sampler.reset()

    @property
    def current_rss(self) -> int:
        return self._sampler.last if self._sampler else 0

    def stats(self) -> Json:
        return {
            "load_seconds": self.load_seconds,
            "rss_after_load_bytes": self.rss_after_load,
            "peak_rss_bytes": self.peak_rss,
        }

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._sampler is not None:
            self._sampler.stop()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
