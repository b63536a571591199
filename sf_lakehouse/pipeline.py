"""Running the pipeline job outside the UI (the `run` and `demo` commands)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dagster import DagsterInstance, ExecuteInProcessResult

from sf_lakehouse.config import Settings
from sf_lakehouse.definitions import PIPELINE_JOB_NAME, build_definitions
from sf_lakehouse.defs.sensors import root_error_message

# Telemetry and the first-run pop-up off; the daemon evaluates FreshnessPolicy only when enabled.
INSTANCE_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
freshness:
  enabled: true
"""


def load_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (as `sf-lakehouse emulator --env-file` writes them)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "=" not in stripped:
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {stripped[:40]!r}")
        key, value = stripped.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def apply_environment(values: Mapping[str, str]) -> None:
    os.environ.update(values)


def dagster_instance(settings: Settings) -> DagsterInstance:
    """The instance under DAGSTER_HOME, else a persistent one under SF_LAKEHOUSE_HOME."""
    if os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.get()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML, encoding="utf-8")
    return DagsterInstance.from_config(str(home))


def run_pipeline(
    settings: Settings,
    instance: DagsterInstance,
    log_level: str = "INFO",
    job_name: str = PIPELINE_JOB_NAME,
) -> ExecuteInProcessResult:
    """Materialize the asset graph once (extract every object, then dbt build); `job_name`
    picks one object's job instead."""
    defs = build_definitions(settings)
    job = defs.resolve_job_def(job_name)
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    return job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)


def run_problems(result: ExecuteInProcessResult) -> list[str]:
    """Failed steps and failed asset checks of a run, one readable line each."""
    problems = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error if event.step_failure_data else None
        problems.append(f"step {event.step_key} failed: {root_error_message(error)}")
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            summary = evaluation.metadata.get("summary")
            detail = summary.value if summary is not None else evaluation.description or ""
            problems.append(
                f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} "
                f"failed: {detail}"
            )
    return problems


def extraction_counts(result: ExecuteInProcessResult, settings: Settings) -> dict[str, str]:
    """Per object: `N records read, M new versions` from the raw assets' metadata."""
    counts = {}
    for spec in settings.objects:
        node = "__".join(spec.raw_asset_key)
        materializations = (
            [
                m
                for m in result.asset_materializations_for_node(node)
                if "rows_extracted" in m.metadata
            ]
            if node in {n.name for n in result.job_def.nodes}
            else []
        )
        if materializations:
            metadata = materializations[0].metadata
            counts[spec.api_name] = (
                f"{metadata['rows_extracted'].value} read, {metadata['rows_appended'].value} new"
            )
    return counts
