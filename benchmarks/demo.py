"""`make demo`'s time after installation: `sf-lakehouse demo` (its default org) into an empty
lakehouse home, measured as one process tree. Written to `benchmarks/results/demo.json`."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from benchmarks.common import REPO_ROOT, Json
from benchmarks.measure import run_measured
from benchmarks.project import Project

DEMO_TIMEOUT = 1800.0


def measure_demo(project: Project, work: Path) -> Json:
    home = work / "demo-home"
    shutil.rmtree(home, ignore_errors=True)
    measured = run_measured(
        project.cli("demo", "--home", str(home)),
        env=project.env(),
        log_path=work / "logs" / "demo.log",
        cwd=REPO_ROOT,
        timeout=DEMO_TIMEOUT,
    )
    shutil.rmtree(home, ignore_errors=True)
    return {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "returncode": measured.returncode,
        "process": measured.summary(),
    }
