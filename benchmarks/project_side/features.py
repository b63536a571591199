"""What this checkout offers, detected at run time: Bulk API 2.0 extraction (an object spec
with `extraction.bulk_threshold`), an incremental dimension (a dbt model materialized
`incremental` or using `is_incremental()`), the object specs, and the versions measured.

    python -m benchmarks.project_side.features
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT, Json, emit

PACKAGES = ("dagster", "dagster-dbt", "dbt-core", "dbt-duckdb", "duckdb", "pyiceberg", "pyarrow")
BULK_OPTION = "bulk_threshold"


def bulk_support() -> Json:
    """Whether object specs take `extraction.bulk_threshold` (the client's Bulk API 2.0)."""
    from sf_lakehouse.config.objects import ExtractionOptions

    fields = getattr(ExtractionOptions, "model_fields", {})
    if BULK_OPTION in fields:
        default = fields[BULK_OPTION].default
        return {"available": True, "detail": f"extraction.{BULK_OPTION} (default {default})"}
    return {
        "available": False,
        "detail": f"object specs have no extraction.{BULK_OPTION}: the client reads with the "
        "REST query API only (Bulk API 2.0 lands with branch client-bulk-retries)",
    }


def _manifest_models(manifest_path: Path) -> list[dict[str, Any]]:
    if not manifest_path.is_file():
        return []
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    return [
        node
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "model" and str(node.get("name", "")).startswith("dim_")
    ]


def incremental_support(dbt_dir: Path | None = None) -> Json:
    """Whether the dimensions are maintained incrementally (rule 8), from the dbt manifest and
    the SQL of the models and macros."""
    dbt_dir = dbt_dir or REPO_ROOT / "dbt_project"
    evidence = [
        f"{node['name']} materialized={node['config'].get('materialized')}"
        for node in _manifest_models(dbt_dir / "target" / "manifest.json")
        if "incremental" in str(node.get("config", {}).get("materialized"))
        or node.get("config", {}).get("incremental_strategy")
    ]
    for path in sorted([*dbt_dir.glob("macros/*.sql"), *dbt_dir.glob("models/marts/*.sql")]):
        if "is_incremental(" in path.read_text(encoding="utf-8"):
            evidence.append(f"{path.relative_to(dbt_dir)} uses is_incremental()")
    if evidence:
        return {"available": True, "detail": "; ".join(evidence[:4])}
    return {
        "available": False,
        "detail": "no dimension model is incremental: every run rebuilds each dimension from "
        "the whole raw table (incremental models land with branch dbt-scd2)",
    }


def object_specs() -> list[Json]:
    """The object specs as the peers need them: staging column names, what is compared."""
    from sf_lakehouse.config import resolve_settings

    return [
        {
            "api_name": spec.api_name,
            "name": spec.name,
            "key": spec.key_column,
            "tracked": list(spec.tracked_columns),
            "carried": list(spec.carried_columns),
            "deletions": spec.deletions,
            "compared": [*spec.tracked_columns, *(["is_deleted"] if spec.deletions else [])],
        }
        for spec in resolve_settings("local").objects
    ]


def _git(*args: str) -> str:
    try:
        completed = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return completed.stdout.strip()


def versions() -> Json:
    found: Json = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def features() -> Json:
    return {
        "bulk": bulk_support(),
        "incremental": incremental_support(),
        "objects": object_specs(),
        "versions": versions(),
        "git": {
            "commit": _git("rev-parse", "--short", "HEAD"),
            "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(
                # the benchmark's own outputs do not make the measured code different
                _git(
                    "status",
                    "--porcelain",
                    "--untracked-files=no",
                    "--",
                    ".",
                    ":!README.md",
                    ":!benchmarks/results",
                )
            ),
        },
        "python_executable": sys.executable,
    }


if __name__ == "__main__":
    emit(features())
