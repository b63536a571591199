"""The code location: one Definitions object, assembled here and nowhere else.

Nothing happens at import time: Dagster calls `defs()` when it loads the code location, and only
then is the environment (SF_LAKEHOUSE_ENV) resolved into assets and resources.
"""

from __future__ import annotations

import dagster as dg

from sf_lakehouse.assets.dbt import build_dbt_assets
from sf_lakehouse.assets.raw import build_raw_user_asset
from sf_lakehouse.resources import build_resources
from sf_lakehouse.settings import Settings, resolve_settings

PIPELINE_JOB_NAME = "sf_user_pipeline"


def build_definitions(settings: Settings) -> dg.Definitions:
    pipeline_job = dg.define_asset_job(
        PIPELINE_JOB_NAME,
        selection=dg.AssetSelection.all(),
        description="Extract Salesforce Users into the raw table, then rebuild the SCD2 dimension.",
    )
    return dg.Definitions(
        assets=[build_raw_user_asset(settings), build_dbt_assets()],
        jobs=[pipeline_job],
        resources=build_resources(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(resolve_settings())
