"""The raw asset: Salesforce User versions appended to `sf_raw_<env>.sf_user`.

Two ways to run the same extraction, chosen by `extraction.mode` in the config: in the Dagster
run (`in_process`, the default; the Iceberg IO manager appends), or as the AWS Glue job
`sf-user-extraction-<env>` launched through Dagster Pipes (`glue`; the job appends itself and
reports the same metadata back).
"""

import datetime as dt
from typing import Any

import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)
from dagster_aws.pipes import PipesGlueClient

from sf_lakehouse.assets import OWNERS, RAW_USER_KEY, SALESFORCE_RAW_GROUP
from sf_lakehouse.extraction import extract_increment
from sf_lakehouse.lakehouse import RAW_LAYOUT
from sf_lakehouse.resources import LakehouseResource
from sf_lakehouse.salesforce import SalesforceResource
from sf_lakehouse.settings import Settings


def dagster_metadata(values: dict[str, Any]) -> dict[str, Any]:
    """Plain extraction metadata as Dagster metadata values (numbers stay numbers, so the UI
    plots them)."""
    converted: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dt.datetime):
            converted[name] = MetadataValue.timestamp(value.replace(tzinfo=dt.UTC))
        elif value is None:
            converted[name] = MetadataValue.text("none")
        elif name == "soql":
            converted[name] = MetadataValue.md(f"```sql\n{value}\n```")
        elif isinstance(value, list):
            converted[name] = MetadataValue.json(value)
        else:
            converted[name] = value
    return converted


def build_raw_user_asset(settings: Settings) -> AssetsDefinition:
    sf_settings = settings.salesforce
    description = (
        f"Salesforce {sf_settings.object_name} records, one row per extracted version, "
        f"appended to Iceberg table {settings.raw_table_identifier}. Incremental on "
        f"{sf_settings.cursor_field} with a {sf_settings.lookback_seconds}s lookback; "
        "versions already stored are not appended again."
    )
    common: dict[str, Any] = {
        "key": list(RAW_USER_KEY),
        "group_name": SALESFORCE_RAW_GROUP,
        "owners": OWNERS,
        "metadata": {
            **RAW_LAYOUT.as_metadata(),
            "write_mode": "append",
            "iceberg_table": settings.raw_table_identifier,
            "extraction_mode": settings.extraction_mode,
        },
    }
    if settings.extraction_mode == "glue":
        return _glue_raw_user_asset(settings, description, common)

    @asset(
        **common,
        io_manager_key="iceberg_io_manager",
        kinds={"salesforce", "iceberg", "python"},
        description=description,
    )
    def sf_user(
        context: AssetExecutionContext,
        salesforce: SalesforceResource,
        lakehouse: LakehouseResource,
    ) -> Output[pa.Table]:
        client = salesforce.connect()
        increment = extract_increment(
            client,
            lakehouse.load_table(settings.raw_table_identifier),
            sf_settings,
            run_id=context.run.run_id,
            extracted_at=dt.datetime.now(dt.UTC),
        )
        context.log.info(increment.summary(sf_settings.object_name))
        return Output(
            increment.rows, metadata=dagster_metadata(increment.metadata(client.api_usage))
        )

    return sf_user


def _glue_raw_user_asset(
    settings: Settings, description: str, common: dict[str, Any]
) -> AssetsDefinition:
    aws = settings.require_aws()

    @asset(
        **common,
        kinds={"salesforce", "iceberg", "glue"},
        description=f"{description} Runs as the AWS Glue job {aws.glue_job_name}.",
    )
    def sf_user(context: AssetExecutionContext, pipes_glue: PipesGlueClient) -> MaterializeResult:
        invocation = pipes_glue.run(
            context=context,
            start_job_run_params={
                "JobName": aws.glue_job_name,
                "Arguments": {"--SF_LAKEHOUSE_ENV": settings.environment},
            },
        )
        return invocation.get_materialize_result()

    return sf_user
