"""The follow-up run of a failed pipeline run that Dagster launched (a schedule, a sensor, the
UI): when one object's extraction failed and the dbt step was skipped, a second run of the
pipeline job builds the dimensions of the objects whose extraction succeeded
(`held_back.held_back_dimensions`, the rule `sf-lakehouse run` follows too). At most one per
failed run, never for a follow-up run itself, never when no extraction succeeded. The failed
run is annotated (a tag and a line in its log) with the steps that did not run and why."""

from __future__ import annotations

from dagster import (
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    run_failure_sensor,
)

from sf_lakehouse.config import Settings
from sf_lakehouse.defs.held_back import (
    DBT_STEP,
    FOLLOW_UP_TAG,
    HELD_BACK_TAG,
    NOT_RUN_TAG,
    RunSteps,
    held_back_dimensions,
    not_run_summary,
    objects_of,
)
from sf_lakehouse.defs.jobs import PIPELINE_JOB_NAME
from sf_lakehouse.launch_tags import launched_by_cli

FOLLOW_UP_SENSOR_NAME = "held_back_dimensions_builder"
TRIGGER_TAG = "sf_lakehouse/trigger"


def annotate_failed_run(instance: DagsterInstance, run_id: str, steps: RunSteps, note: str) -> None:
    """Say on the failed run itself (a tag, a line of its log in the UI) which steps did not
    run, why, and what builds what they held back."""
    summary = not_run_summary(steps)
    run = instance.get_run_by_id(run_id)
    if not summary or run is None:
        return
    instance.add_run_tags(run_id, {NOT_RUN_TAG: summary[:4000]})
    instance.report_engine_event(" ".join([*steps.not_run_lines(), note]).strip(), run)


def follow_up_request(
    settings: Settings, instance: DagsterInstance, run: DagsterRun
) -> RunRequest | str:
    """The run that builds what the failed `run` held back, or why there is none."""
    if FOLLOW_UP_TAG in run.tags:
        return f"it is the follow-up run of run {run.tags[FOLLOW_UP_TAG]}"
    if launched_by_cli(run.tags):
        return "sf-lakehouse run builds the held-back dimensions itself"
    earlier = instance.get_runs(filters=RunsFilter(tags={FOLLOW_UP_TAG: run.run_id}), limit=1)
    if earlier:
        return f"run {earlier[0].run_id} already builds its held-back dimensions"
    steps = RunSteps.read(instance, run.run_id)
    keys = held_back_dimensions(settings.objects, steps)
    if not keys:
        annotate_failed_run(instance, run.run_id, steps, "")
        return "no dimension was held back by a failed extraction"
    objects = ", ".join(objects_of(settings.objects, keys))
    reason = f"{DBT_STEP} did not run in run {run.run_id}: {steps.not_run()[DBT_STEP]}"
    annotate_failed_run(
        instance,
        run.run_id,
        steps,
        f"The dimensions of {objects} (their extractions succeeded) are built by a follow-up "
        f"run tagged {FOLLOW_UP_TAG}={run.run_id}.",
    )
    return RunRequest(
        run_key=f"held-back-by-{run.run_id}",
        job_name=PIPELINE_JOB_NAME,
        asset_selection=keys,
        tags={
            FOLLOW_UP_TAG: run.run_id,
            HELD_BACK_TAG: reason[:4000],
            TRIGGER_TAG: FOLLOW_UP_SENSOR_NAME,
        },
    )


def build_follow_up_sensor(settings: Settings, pipeline_job: object) -> SensorDefinition:
    @run_failure_sensor(
        name=FOLLOW_UP_SENSOR_NAME,
        monitored_jobs=[pipeline_job],  # type: ignore[list-item]
        request_job=pipeline_job,  # type: ignore[arg-type]
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"When a {PIPELINE_JOB_NAME} run failed because some extractions failed, starts one "
            "run that builds the dimensions of the objects whose extraction succeeded (tagged "
            f"{FOLLOW_UP_TAG} and {HELD_BACK_TAG}: which run, and why)."
        ),
    )
    def held_back_dimensions_builder(context: RunFailureSensorContext) -> RunRequest | None:
        run = context.dagster_run
        request = follow_up_request(settings, context.instance, run)
        if isinstance(request, str):
            # None, not a SkipReason: the sensor goes on to the next failed run in this tick.
            context.log.info(f"run {run.run_id}: no follow-up run: {request}")
            return None
        return request

    return held_back_dimensions_builder
