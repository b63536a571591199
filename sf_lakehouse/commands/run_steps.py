"""`sf-lakehouse run`'s side of the held-back dimensions (the rule: defs/held_back.py): the steps
its run did not run and why, and the second run of the same job that builds the dimensions of
the objects whose extraction succeeded. (Runs Dagster launches get theirs from the follow-up
sensor, defs/follow_up.py.)"""

from __future__ import annotations

from collections.abc import Mapping

from dagster import AssetKey, DagsterInstance, Definitions, ExecuteInProcessResult

from sf_lakehouse.config import Settings
from sf_lakehouse.defs.follow_up import annotate_failed_run
from sf_lakehouse.defs.held_back import (
    DBT_STEP,
    FOLLOW_UP_TAG,
    HELD_BACK_TAG,
    RunSteps,
    held_back_dimensions,
    objects_of,
)


def not_run_lines(instance: DagsterInstance, result: ExecuteInProcessResult) -> list[str]:
    """One line per cause: the steps of the run that did not run because of it."""
    return RunSteps.read(instance, result.run_id).not_run_lines()


def build_held_back_dimensions(
    settings: Settings,
    instance: DagsterInstance,
    result: ExecuteInProcessResult,
    *,
    log_level: str,
    tags: Mapping[str, str],
    definitions: Definitions | None = None,
) -> ExecuteInProcessResult | None:
    """Run the job again for the dimensions a failed extraction held back (None: none), with
    the run's `definitions` when given (built once per process)."""
    from sf_lakehouse.definitions import build_definitions

    steps = RunSteps.read(instance, result.run_id)
    keys = held_back_dimensions(settings.objects, steps)
    if not keys:
        annotate_failed_run(instance, result.run_id, steps, "")
        return None
    objects = ", ".join(objects_of(settings.objects, keys))
    annotate_failed_run(
        instance,
        result.run_id,
        steps,
        f"sf-lakehouse run builds the dimensions of {objects} in a second run tagged "
        f"{FOLLOW_UP_TAG}={result.run_id}.",
    )
    job = (definitions or build_definitions(settings)).resolve_job_def(result.job_def.name)
    return job.execute_in_process(
        instance=instance,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=False,
        asset_selection=keys,
        tags={
            **tags,
            FOLLOW_UP_TAG: result.run_id,
            HELD_BACK_TAG: f"{DBT_STEP} did not run in run {result.run_id}: "
            f"{steps.not_run()[DBT_STEP]}",
        },
    )


def follow_up_lines(follow_up: ExecuteInProcessResult | None, settings: Settings) -> list[str]:
    """What the second run built, or why it failed (one line)."""
    if follow_up is None:
        return []
    materialized = {m.asset_key for m in follow_up.asset_materializations_for_node(DBT_STEP)}
    built = [
        spec.api_name
        for spec in sorted(settings.objects, key=lambda s: s.api_name)
        if AssetKey(list(spec.dimension_asset_key)) in materialized
    ]
    if follow_up.success:
        return [
            f"dimensions of {', '.join(built) or 'no object'} built in run {follow_up.run_id} "
            "(their extractions succeeded)"
        ]
    return [f"the build of the other dimensions (run {follow_up.run_id}) failed too"]
