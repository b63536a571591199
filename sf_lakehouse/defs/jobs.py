"""Jobs and schedules: one pipeline job over every object, one per object, and maintenance.

Maintenance runs one op per pool (sf_lakehouse.defs.pools): each object's raw table in the
object's pool, the dimensions in dbt's, so it never rewrites a table while a run writes it.
"""

import datetime as dt
from collections.abc import Sequence
from typing import Any

from dagster import (
    AssetKey,
    AssetObservation,
    AssetSelection,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    ExecutorDefinition,
    JobDefinition,
    OpDefinition,
    OpExecutionContext,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    job,
    multiprocess_executor,
    op,
    schedule,
)

from sf_lakehouse.config import ObjectSpec, Settings
from sf_lakehouse.defs.pools import DBT_POOL, raw_pool
from sf_lakehouse.lakehouse.maintenance import maintain_table
from sf_lakehouse.lakehouse.resource import LakehouseResource

PIPELINE_JOB_NAME = "salesforce_pipeline"
MAINTENANCE_JOB_NAME = "lakehouse_maintenance"


def object_selection(spec: ObjectSpec) -> AssetSelection:
    """An object's raw asset and everything built from it (staging, dimension, their checks)."""
    return AssetSelection.assets(AssetKey(list(spec.raw_asset_key))).downstream()


EXTRACTION_TAG = "sf_lakehouse/step"
EXTRACTION = "extraction"


def executor_config(max_parallel_objects: int) -> dict[str, Any]:
    """The multiprocess executor's config: at most `max_parallel_objects` extractions at once
    (the raw assets carry the op tag `sf_lakehouse/step: extraction`), other steps one per
    core."""
    return {
        "max_concurrent": 0,
        "tag_concurrency_limits": [
            {"key": EXTRACTION_TAG, "value": EXTRACTION, "limit": max_parallel_objects}
        ],
    }


def pipeline_executor(max_parallel_objects: int) -> ExecutorDefinition:
    """Steps in their own processes (runs Dagster launches); `sf-lakehouse run` executes in
    its own process, one step after another."""
    return multiprocess_executor.configured(executor_config(max_parallel_objects))


def build_pipeline_jobs(specs: Sequence[ObjectSpec], max_parallel_objects: int = 4) -> list[Any]:
    """The pipeline job over every object, then one job per object (the change sensor starts
    only the objects that changed)."""
    names = ", ".join(spec.api_name for spec in specs)
    everything = define_asset_job(
        PIPELINE_JOB_NAME,
        selection=AssetSelection.all(),
        executor_def=pipeline_executor(max_parallel_objects),
        description=f"Extract every object ({names}) into its raw table, then build the SCD2 "
        "dimensions.",
    )
    per_object = [
        define_asset_job(
            spec.job_name,
            selection=object_selection(spec),
            description=f"Extract Salesforce {spec.api_name} records into "
            f"{'/'.join(spec.raw_asset_key)}, then build {spec.dimension_model}.",
        )
        for spec in specs
    ]
    return [everything, *per_object]


def maintained_tables(specs: Sequence[ObjectSpec]) -> list[AssetKey]:
    """Every Iceberg table the pipeline writes: each object's raw table and dimension."""
    return [
        AssetKey(list(key))
        for spec in specs
        for key in (spec.raw_asset_key, spec.dimension_asset_key)
    ]


def _maintenance_op(
    name: str, pool: str, tables: Sequence[AssetKey], settings: Settings
) -> OpDefinition:
    names = ", ".join(key.to_user_string() for key in tables)

    @op(
        name=name,
        pool=pool,
        description=f"Compact small files, expire old snapshots and delete orphan files of "
        f"{names} (pool {pool}).",
    )
    def maintain(context: OpExecutionContext, lakehouse: LakehouseResource) -> None:
        now = dt.datetime.now(dt.UTC)
        for key in tables:
            identifier = lakehouse.identifier(key.path)
            table = lakehouse.load_table(key.path)
            if table is None:
                context.log.info(f"{identifier} does not exist yet; nothing to maintain")
                continue
            report = maintain_table(table, identifier, settings.config.maintenance, now)
            context.log.info(f"{identifier}: {report}")
            context.log_event(AssetObservation(asset_key=key, metadata=report.as_metadata()))

    return maintain


def build_maintenance_job(settings: Settings) -> JobDefinition:
    specs = settings.objects
    ops = [
        _maintenance_op(
            f"maintain_{spec.name}_raw_table",
            raw_pool(spec),
            [AssetKey(list(spec.raw_asset_key))],
            settings,
        )
        for spec in specs
    ]
    ops.append(
        _maintenance_op(
            "maintain_dimensions",
            DBT_POOL,
            [AssetKey(list(spec.dimension_asset_key)) for spec in specs],
            settings,
        )
    )

    @job(
        name=MAINTENANCE_JOB_NAME,
        description="Iceberg maintenance of every raw table and dimension (retention in "
        "config/pipeline-config.yml), each in the pool of the steps that write it.",
    )
    def lakehouse_maintenance() -> None:
        for maintain in ops:
            maintain()

    return lakehouse_maintenance


IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def runs_in_progress(instance: DagsterInstance, job_names: Sequence[str]) -> list[DagsterRun]:
    """Runs of these jobs that are queued or running."""
    runs: list[DagsterRun] = []
    for name in job_names:
        runs += instance.get_runs(filters=RunsFilter(job_name=name, statuses=IN_PROGRESS))
    return runs


def build_schedules(
    settings: Settings, pipeline_job: Any, maintenance_job: JobDefinition
) -> list[ScheduleDefinition]:
    schedules = settings.config.schedules

    @schedule(
        name=f"{PIPELINE_JOB_NAME}_schedule",
        job=pipeline_job,
        cron_schedule=schedules.pipeline.cron,
        execution_timezone=schedules.pipeline.timezone,
        description="Extract and rebuild every object on a fixed cadence, whether or not "
        "the change sensor fired; skipped while the previous pipeline run is still going.",
    )
    def pipeline_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        busy = runs_in_progress(context.instance, [PIPELINE_JOB_NAME])
        if busy:
            return SkipReason(
                f"run {busy[0].run_id} of {PIPELINE_JOB_NAME} is still in progress "
                f"({busy[0].status.value}); the next tick starts a new one"
            )
        return RunRequest()

    return [
        pipeline_schedule,
        ScheduleDefinition(
            name=f"{MAINTENANCE_JOB_NAME}_schedule",
            job=maintenance_job,
            cron_schedule=schedules.maintenance.cron,
            execution_timezone=schedules.maintenance.timezone,
        ),
    ]
