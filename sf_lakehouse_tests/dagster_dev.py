"""Start `dagster dev` from the repository root for a test, and stop it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from sf_lakehouse.config import REPO_ROOT
from sf_lakehouse.pipeline import INSTANCE_YAML


@dataclass
class DagsterDev:
    url: str
    log_path: Path

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError { __typename ... on PythonError { message stack } }
} } } }
"""


# `dagster dev` stops on SIGINT, but a process started from a background job (`make test &`, CI
# runners) inherits SIGINT ignored, and then dagster dev ignores SIGTERM too (it gives SIGTERM the
# SIGINT handler): it sat out the 30 s below and was killed, its children never told to stop.
# This trampoline restores SIGINT's default before it execs the command (exec keeps SIG_DFL).
DEFAULT_SIGINT = (
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
)

# Between two looks at the code location while it loads: its start-up is what is waited for.
POLL_SECONDS = 0.25


@contextmanager
def dagster_dev(tmp_path: Path, env: dict[str, str], timeout: float = 180) -> Iterator[DagsterDev]:
    """`dagster dev` on 127.0.0.1 with a temporary DAGSTER_HOME; waits until the code location
    has loaded (and fails with its error if it did not)."""
    home = tmp_path / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML, encoding="utf-8")
    port = free_port()
    log_path = tmp_path / "dagster-dev.log"
    log = log_path.open("w", encoding="utf-8")
    dagster = Path(sys.executable).parent / "dagster"
    process = subprocess.Popen(
        [*DEFAULT_SIGINT, str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        # Unbuffered: the log shows what each process did up to the end, even a killed one.
        env={**env, "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so SIGINT reaches it and its children
    )
    server = DagsterDev(url=f"http://127.0.0.1:{port}", log_path=log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, log_path.read_text()[-5000:]
            assert time.monotonic() < deadline, "dagster dev did not load in time"
            try:
                entries = server.graphql(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
            except (requests.RequestException, AssertionError, KeyError):
                time.sleep(POLL_SECONDS)
                continue
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                for entry in entries:
                    location = entry["locationOrLoadError"]
                    assert location["__typename"] != "PythonError", location
                break
            time.sleep(POLL_SECONDS)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()
