"""The SCD stage outside Dagster: the pipeline's own `dbt build` (same arguments, same dbt,
optionally `--full-refresh`), then the pipeline's dimension checks (the same evaluations the
`sf_<object>_dimension_checks` steps run, on the same tables), timed separately.

    python -m benchmarks.project_side.scd_stage --home DIR [--full-refresh]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Json, emit


def build_command(settings: Any, full_refresh: bool) -> list[str]:
    """The pipeline's dbt build command line (its own helpers when they exist)."""
    try:
        from sf_lakehouse.defs.dbt import dbt_build_args, dbt_command
        from sf_lakehouse.defs.resources import lakehouse_resource

        command = dbt_command(
            *dbt_build_args(lakehouse_resource(settings)), target=settings.dbt_target
        )
    except (ImportError, TypeError):  # another branch reshaped the helpers
        from sf_lakehouse.config import DBT_PROJECT_DIR
        from sf_lakehouse.defs.resources import dbt_executable

        project = str(DBT_PROJECT_DIR)
        variables = json.dumps(settings.dbt_vars(), sort_keys=True)
        command = [
            dbt_executable(),
            "build",
            "--vars",
            variables,
            "--exclude-resource-type",
            "unit_test",
            "--project-dir",
            project,
            "--profiles-dir",
            project,
            "--target",
            settings.dbt_target,
        ]
    return [*command, "--full-refresh"] if full_refresh else command


def run_dbt(command: list[str], home: Path) -> tuple[float, int, str]:
    env = {**os.environ, "SF_LAKEHOUSE_HOME": str(home)}
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    sys.stderr.write(completed.stdout[-4000:])
    return elapsed, completed.returncode, completed.stdout[-2000:]


def dimension_checks(settings: Any) -> tuple[float, dict[str, bool]]:
    """The dimension check steps' work on whole tables (what a full check run does): the same
    reads (projected raw columns, by record group where the pipeline has them) and evaluations."""
    from sf_lakehouse.defs.checks import dimension_checks as checks_of
    from sf_lakehouse.lakehouse.tables import open_catalog

    catalog = open_catalog(settings.catalog_properties())
    passed: dict[str, bool] = {}
    started = time.perf_counter()
    for spec in settings.objects:
        raw = catalog.load_table(settings.table_identifier(spec.raw_asset_key))
        dim = catalog.load_table(settings.table_identifier(spec.dimension_asset_key))
        for name, outcome in _evaluate(spec, raw, dim, checks_of(spec)).items():
            passed[f"{spec.name}.{name}"] = outcome.passed
    return time.perf_counter() - started, passed


def _evaluate(spec: Any, raw: Any, dim: Any, evaluations: dict[str, Any]) -> dict[str, Any]:
    try:
        from sf_lakehouse.defs.checks import evaluate_by_record_group
    except ImportError:  # a branch without it: whole tables at once
        raw_rows = raw.scan().to_arrow()
        dim_rows = dim.scan().to_arrow()
        return {name: evaluate(raw_rows, dim_rows) for name, (_, evaluate) in evaluations.items()}
    return evaluate_by_record_group(spec, raw, dim, evaluations)  # type: ignore[no-any-return]


def scd_stage(home: Path, full_refresh: bool) -> Json:
    from sf_lakehouse.config import resolve_settings

    settings = resolve_settings("local", home=home)
    command = build_command(settings, full_refresh)
    dbt_seconds, returncode, tail = run_dbt(command, home)
    result: Json = {
        "full_refresh": full_refresh,
        "dbt_seconds": dbt_seconds,
        "dbt_returncode": returncode,
        "command": " ".join(["dbt", *command[1:]]),
    }
    if returncode != 0:
        return {**result, "error": tail}
    checks_seconds, passed = dimension_checks(settings)
    return {
        **result,
        "checks_seconds": checks_seconds,
        "checks_passed": all(passed.values()),
        "checks": passed,
        "seconds": dbt_seconds + checks_seconds,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--full-refresh", action="store_true")
    args = parser.parse_args(argv)
    emit(scd_stage(args.home.resolve(), args.full_refresh))


if __name__ == "__main__":
    main()
