"""dbt run for real in the test's own process (dbt-core's `dbtRunner`, dbt-duckdb through the
lakehouse plugin), for the SCD2 and rule 8 tests that build dimensions many times.

A `dbt` subprocess costs each build about 6 s of CPU before its first node (Python, dbt-core and
the adapter imported again; the project parsed again, since every test's lakehouse home changes
the profile). Here dbt is imported once per test process and handed the manifest `make install`
parsed (when it is current and was rendered with the run's databases; otherwise dbt parses), as
`sf-lakehouse run` does with `dbt.invocation: in_process`. What these tests check, the tables dbt
writes and the results of its tests, does not depend on how dbt was started; the `dbt` command
line itself is covered by test_dbt_cli and the subprocess invocation by test_dbt_in_process.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sf_lakehouse.config import Settings, dbt_project_dir
from sf_lakehouse.defs.dbt import manifest_is_current
from sf_lakehouse.defs.dbt_in_process import RunnerManifest, _release

_CONSOLE_LEVELS = frozenset({"info", "warn", "error"})


@dataclass(frozen=True)
class DbtOutcome:
    success: bool
    output: str  # dbt's console lines (info and above), without their time stamps
    events: list[dict[str, Any]]  # every event as dbt's JSON log writes it


@functools.cache
def _parsed_manifest(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if manifest_is_current(path) else None


def _manifest_for(settings: Settings) -> Any:
    """A fresh `Manifest` per invocation (dbt adds to the one it is given, e.g. `show --inline`),
    or None: dbt parses the project itself."""
    parsed = _parsed_manifest(dbt_project_dir() / "target" / "manifest.json")
    if parsed is None:
        return None
    runner = RunnerManifest(parsed)
    schemas = {"source": settings.raw_database, "model": settings.curated_database}
    return runner.dbt_manifest if runner.fits(schemas) else None


def run_dbt_here(settings: Settings, *args: str, target_path: Path | None = None) -> DbtOutcome:
    """`dbt <args>` on DuckDB against this settings' lakehouse, in this process."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import msg_to_dict

    project = str(dbt_project_dir())
    target = str(target_path or settings.home / "dbt_target")
    events: list[dict[str, Any]] = []
    lines: list[str] = []

    def collect(message: Any) -> None:
        events.append(msg_to_dict(message))
        if message.info.level in _CONSOLE_LEVELS:
            lines.append(message.info.msg)

    command = [
        *args,
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target",
        "local",
        "--target-path",
        target,
        "--log-path",
        target,
        "--vars",
        json.dumps(settings.dbt_vars()),
        "--log-level",
        "none",
        "--no-send-anonymous-usage-stats",
    ]
    try:
        result = dbtRunner(manifest=_manifest_for(settings), callbacks=[collect]).invoke(command)
    finally:
        _release()  # the DuckDB file, dbt's loggers and adapters: the next build starts afresh
    if result.exception is not None:
        lines.append(f"{type(result.exception).__name__}: {result.exception}")
    return DbtOutcome(bool(result.success), "\n".join(lines), events)
