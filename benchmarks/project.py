"""Running the project's code from the harness: its own venv's Python, this checkout on
PYTHONPATH (so the checkout is measured, whatever the venv was installed from), and the
local environment with no inherited DAGSTER_HOME."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT, last_json_line
from benchmarks.measure import Measured, run_measured

# Variables of the caller's shell that would point the project elsewhere.
DROPPED = ("DAGSTER_HOME", "SF_LAKEHOUSE_CONFIG", "PYTHONPATH", "VIRTUAL_ENV")


class ProjectError(RuntimeError):
    """A project-side step failed; the message names the step and its log."""


@dataclass(frozen=True)
class Project:
    python: Path

    def check(self) -> None:
        if not self.python.is_file():
            raise SystemExit(
                f"the project's Python {self.python} does not exist: run `make install` (or set "
                "BENCH_PROJECT_PYTHON to the python of a venv with sf_lakehouse installed)"
            )

    @property
    def bin_dir(self) -> Path:
        return self.python.parent

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in DROPPED}
        return env | {
            "PYTHONPATH": str(REPO_ROOT),
            "SF_LAKEHOUSE_ENV": "local",
            "PATH": f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}",
            "DAGSTER_DISABLE_TELEMETRY": "1",
            **extra,
        }

    def module(self, name: str, *args: str) -> list[str]:
        return [str(self.python), "-m", name, *args]

    def cli(self, *args: str) -> list[str]:
        """`sf-lakehouse ...`: the venv's console script when there is one."""
        script = self.bin_dir / "sf-lakehouse"
        if script.is_file():
            return [str(script), *args]
        return self.module("sf_lakehouse.cli", *args)

    def dbt(self) -> Path:
        return self.bin_dir / "dbt"

    def call(
        self, module: str, *args: str, log_path: Path, timeout: float | None = None, **env: str
    ) -> tuple[Any, Measured]:
        """Run a `benchmarks.project_side` module; its JSON answer and its measurement."""
        measured = run_measured(
            self.module(module, *args),
            env=self.env(**env),
            log_path=log_path,
            cwd=REPO_ROOT,
            timeout=timeout,
        )
        if measured.returncode != 0:
            raise ProjectError(f"{module} exited {measured.returncode}; see {log_path}")
        return last_json_line(measured.stdout), measured
