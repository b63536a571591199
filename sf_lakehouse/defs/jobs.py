"""Jobs and schedules: one pipeline job over every object, one per object, and maintenance."""

import datetime as dt
from collections.abc import Sequence
from typing import Any

from dagster import (
    AssetKey,
    AssetObservation,
    AssetSelection,
    JobDefinition,
    OpExecutionContext,
    ScheduleDefinition,
    define_asset_job,
    job,
    op,
)

from sf_lakehouse.config import ObjectSpec, Settings
from sf_lakehouse.lakehouse.maintenance import maintain_table
from sf_lakehouse.lakehouse.resource import LakehouseResource

PIPELINE_JOB_NAME = "salesforce_pipeline"
MAINTENANCE_JOB_NAME = "lakehouse_maintenance"


def object_selection(spec: ObjectSpec) -> AssetSelection:
    """An object's raw asset and everything built from it (staging, dimension, their checks)."""
    return AssetSelection.assets(AssetKey(list(spec.raw_asset_key))).downstream()


def build_pipeline_jobs(specs: Sequence[ObjectSpec]) -> list[Any]:
    """The pipeline job over every object, then one job per object (the change sensor starts
    only the objects that changed)."""
    names = ", ".join(spec.api_name for spec in specs)
    everything = define_asset_job(
        PIPELINE_JOB_NAME,
        selection=AssetSelection.all(),
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


def build_maintenance_job(settings: Settings) -> JobDefinition:
    tables = maintained_tables(settings.objects)

    @op(description="Compact small files, expire old snapshots and delete orphan files.")
    def maintain_iceberg_tables(context: OpExecutionContext, lakehouse: LakehouseResource) -> None:
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

    @job(
        name=MAINTENANCE_JOB_NAME,
        description="Iceberg maintenance of every raw table and dimension (retention in "
        "config/pipeline-config.yml).",
    )
    def lakehouse_maintenance() -> None:
        maintain_iceberg_tables()

    return lakehouse_maintenance


def build_schedules(
    settings: Settings, pipeline_job: Any, maintenance_job: JobDefinition
) -> list[ScheduleDefinition]:
    schedules = settings.config.schedules
    return [
        ScheduleDefinition(
            name=f"{PIPELINE_JOB_NAME}_schedule",
            job=pipeline_job,
            cron_schedule=schedules.pipeline.cron,
            execution_timezone=schedules.pipeline.timezone,
            description="Extract and rebuild every object on a fixed cadence, whether or not "
            "the change sensor fired.",
        ),
        ScheduleDefinition(
            name=f"{MAINTENANCE_JOB_NAME}_schedule",
            job=maintenance_job,
            cron_schedule=schedules.maintenance.cron,
            execution_timezone=schedules.maintenance.timezone,
        ),
    ]
