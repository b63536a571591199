"""The raw asset: Salesforce User versions appended to `sf_raw_<env>.sf_user`."""

import datetime as dt

import pyarrow as pa
from dagster import AssetExecutionContext, AssetsDefinition, MetadataValue, Output, asset

from sf_lakehouse.assets import OWNERS, RAW_USER_KEY, SALESFORCE_RAW_GROUP
from sf_lakehouse.extraction import extract_increment
from sf_lakehouse.lakehouse import RAW_LAYOUT
from sf_lakehouse.resources import LakehouseResource
from sf_lakehouse.salesforce import SalesforceResource
from sf_lakehouse.settings import Settings


def _timestamp_metadata(value: dt.datetime | None) -> MetadataValue:
    if value is None:
        return MetadataValue.text("none")
    return MetadataValue.timestamp(value.replace(tzinfo=dt.UTC))


def build_raw_user_asset(settings: Settings) -> AssetsDefinition:
    sf_settings = settings.salesforce

    @asset(
        key=list(RAW_USER_KEY),
        group_name=SALESFORCE_RAW_GROUP,
        io_manager_key="iceberg_io_manager",
        owners=OWNERS,
        kinds={"salesforce", "iceberg", "python"},
        description=(
            f"Salesforce {sf_settings.object_name} records, one row per extracted version, "
            f"appended to Iceberg table {settings.raw_table_identifier}. Incremental on "
            f"{sf_settings.cursor_field} with a {sf_settings.lookback_seconds}s lookback; "
            "versions already stored are not appended again."
        ),
        metadata={
            **RAW_LAYOUT.as_metadata(),
            "write_mode": "append",
            "iceberg_table": settings.raw_table_identifier,
        },
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
        context.log.info(
            f"Fetched {increment.fetched} {sf_settings.object_name} records since "
            f"{increment.since or 'the beginning'}; {increment.appended} are new versions."
        )
        usage = client.api_usage
        return Output(
            increment.rows,
            metadata={
                "rows_extracted": increment.fetched,
                "rows_appended": increment.appended,
                "watermark": _timestamp_metadata(increment.watermark_after),
                "previous_watermark": _timestamp_metadata(increment.watermark_before),
                "query_start": _timestamp_metadata(increment.since),
                "api_calls": increment.api_calls,
                "org_api_usage": usage.get("used", 0),
                "org_api_limit": usage.get("limit", 0),
                "fields": MetadataValue.json([f.name for f in increment.fields]),
                "soql": MetadataValue.md(f"```sql\n{increment.soql}\n```"),
            },
        )

    return sf_user
