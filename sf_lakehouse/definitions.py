"""The code location: one Definitions object, assembled here and nowhere else.

Nothing happens at import time: Dagster calls `defs()` when it loads the code location, and only
then is the environment (SF_LAKEHOUSE_ENV) resolved, and every object spec of `config/objects/`
becomes a raw asset, dbt models, checks, freshness policies and a job.
"""

import dagster as dg

from sf_lakehouse.config import Settings, resolve_settings
from sf_lakehouse.defs.checks import FULL_CHECKS_JOB_NAME, FULL_CHECKS_TAG, build_checks
from sf_lakehouse.defs.dbt import build_dbt_assets
from sf_lakehouse.defs.follow_up import build_follow_up_sensor
from sf_lakehouse.defs.jobs import (
    PIPELINE_JOB_NAME,
    build_maintenance_job,
    build_pipeline_jobs,
    build_schedules,
)
from sf_lakehouse.defs.raw import build_raw_asset
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse.defs.sensors import build_sensors

__all__ = ["PIPELINE_JOB_NAME", "build_definitions", "defs"]


def build_definitions(settings: Settings) -> dg.Definitions:
    specs = settings.objects
    pipeline_jobs = build_pipeline_jobs(specs, settings.config.extraction.max_parallel_objects)
    maintenance_job = build_maintenance_job(settings)
    full_checks_job = dg.define_asset_job(
        FULL_CHECKS_JOB_NAME,
        selection=dg.AssetSelection.all_asset_checks(),
        tags={FULL_CHECKS_TAG: "full"},
        description="Every Python check over whole tables (runs check only what they changed).",
    )
    return dg.Definitions(
        assets=[*(build_raw_asset(settings, spec) for spec in specs), build_dbt_assets(specs)],
        asset_checks=[check for spec in specs for check in build_checks(spec)],
        jobs=[*pipeline_jobs, maintenance_job, full_checks_job],
        schedules=build_schedules(settings, pipeline_jobs[0], maintenance_job),
        sensors=[
            *build_sensors(settings, pipeline_jobs[1:]),
            build_follow_up_sensor(settings, pipeline_jobs[0]),
        ],
        resources=build_resources(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(resolve_settings())
