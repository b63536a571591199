"""Dagster definitions built from the object specs: asset, check, job, schedule and sensor
factories, the dbt assets, and the resources. `sf_lakehouse.definitions` assembles them."""

import datetime as dt

from dagster import FreshnessPolicy

from sf_lakehouse.config import FreshnessWindow

SALESFORCE_RAW_GROUP = "salesforce_raw"
CURATED_GROUP = "curated"
OWNERS = ["team:data-platform"]


def freshness_policy(window: FreshnessWindow) -> FreshnessPolicy:
    return FreshnessPolicy.time_window(
        fail_window=dt.timedelta(minutes=window.fail_after_minutes),
        warn_window=dt.timedelta(minutes=window.warn_after_minutes),
    )
