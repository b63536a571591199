"""The code location: one Definitions object, assembled here and nowhere else.

Nothing happens at import time: Dagster calls `defs()` when it loads the code location, and only
then is the environment (SF_LAKEHOUSE_ENV) resolved into assets, checks, jobs and resources.
"""

import datetime as dt

import dagster as dg

from sf_lakehouse.defs import DIMENSION_KEY, RAW_USER_KEY
from sf_lakehouse.defs.dbt import build_dbt_assets
from sf_lakehouse.defs.raw import build_raw_user_asset
from sf_lakehouse.defs.automation import PIPELINE_JOB_NAME, build_automation
from sf_lakehouse.defs.checks import build_checks
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse.config import FreshnessWindow, Settings, resolve_settings

__all__ = ["PIPELINE_JOB_NAME", "build_definitions", "defs"]


def freshness_policy(window: FreshnessWindow) -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(minutes=window.fail_after_minutes),
        warn_window=dt.timedelta(minutes=window.warn_after_minutes),
    )


def build_definitions(settings: Settings) -> dg.Definitions:
    policies = {
        dg.AssetKey(list(RAW_USER_KEY)): freshness_policy(settings.operations.raw_freshness),
        dg.AssetKey(list(DIMENSION_KEY)): freshness_policy(settings.operations.dimension_freshness),
    }
    automation = build_automation(settings)
    defs = dg.Definitions(
        assets=[build_raw_user_asset(settings), build_dbt_assets()],
        asset_checks=build_checks(settings),
        jobs=automation["jobs"],
        schedules=automation["schedules"],
        sensors=automation["sensors"],
        resources=build_resources(settings),
    )
    return defs.map_asset_specs(
        func=lambda spec: (
            dg.apply_freshness_policy(spec, policies[spec.key]) if spec.key in policies else spec
        )
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(resolve_settings())
