"""Jobs, schedules and sensors per environment: a snapshot of their names, selections and
cadences (what operators and the UI rely on)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from sf_lakehouse.config import resolve_settings
from sf_lakehouse.definitions import build_definitions
from sf_lakehouse.defs.alerting import SUCCESS_SENSOR_NAME
from sf_lakehouse.defs.checks import FULL_CHECKS_JOB_NAME
from sf_lakehouse.defs.follow_up import FOLLOW_UP_SENSOR_NAME
from sf_lakehouse.defs.jobs import MAINTENANCE_JOB_NAME, PIPELINE_JOB_NAME, maintained_tables
from sf_lakehouse.defs.sensors import CHANGE_SENSOR_NAME, FAILURE_SENSOR_NAME, FRESHNESS_SENSOR_NAME


def test_one_pipeline_job_over_all_objects_and_one_per_object(tmp_path: Path) -> None:
    settings = resolve_settings("local", home=tmp_path)
    definitions = build_definitions(settings)
    names = {job.name for job in definitions.resolve_all_job_defs()} - {"__ASSET_JOB"}
    assert names == {
        PIPELINE_JOB_NAME,
        MAINTENANCE_JOB_NAME,
        FULL_CHECKS_JOB_NAME,
        "sf_user_pipeline",
        "sf_account_pipeline",
        "sf_opportunity_pipeline",
    }
    everything = definitions.resolve_job_def(PIPELINE_JOB_NAME).asset_layer.selected_asset_keys
    for spec in settings.objects:
        selected = definitions.resolve_job_def(spec.job_name).asset_layer.selected_asset_keys
        assert selected == {
            dg.AssetKey(list(spec.raw_asset_key)),
            dg.AssetKey(list(spec.staging_asset_key)),
            dg.AssetKey(list(spec.dimension_asset_key)),
        }
        assert selected < everything


def test_maintenance_covers_every_table(tmp_path: Path) -> None:
    settings = resolve_settings("local", home=tmp_path)
    assert {key.path[-1] for key in maintained_tables(settings.objects)} == {
        "sf_user",
        "dim_sf_user_scd",
        "sf_account",
        "dim_sf_account_scd",
        "sf_opportunity",
        "dim_sf_opportunity_scd",
    }


def test_schedules_and_sensors_per_environment(tmp_path: Path) -> None:
    local = build_definitions(resolve_settings("local", home=tmp_path))
    prod = build_definitions(resolve_settings("prod", home=tmp_path))
    shape = {
        s.name: (s.job_name, s.cron_schedule, s.execution_timezone) for s in local.schedules or []
    }
    assert shape == {
        f"{PIPELINE_JOB_NAME}_schedule": (PIPELINE_JOB_NAME, "0 */6 * * *", "UTC"),
        f"{MAINTENANCE_JOB_NAME}_schedule": (MAINTENANCE_JOB_NAME, "30 3 * * *", "UTC"),
    }
    assert {s.name: (s.cron_schedule, s.execution_timezone) for s in prod.schedules or []}[
        f"{PIPELINE_JOB_NAME}_schedule"
    ] == ("15 * * * *", "Europe/Dublin")
    sensors = {s.name: s.default_status for s in local.sensors or []}
    assert sensors == {
        CHANGE_SENSOR_NAME: dg.DefaultSensorStatus.STOPPED,
        FRESHNESS_SENSOR_NAME: dg.DefaultSensorStatus.RUNNING,
        FAILURE_SENSOR_NAME: dg.DefaultSensorStatus.RUNNING,
        SUCCESS_SENSOR_NAME: dg.DefaultSensorStatus.RUNNING,
        FOLLOW_UP_SENSOR_NAME: dg.DefaultSensorStatus.RUNNING,
    }
    change = local.resolve_sensor_def(CHANGE_SENSOR_NAME)
    assert {job.name for job in change.jobs} == {
        "sf_user_pipeline",
        "sf_account_pipeline",
        "sf_opportunity_pipeline",
    }
