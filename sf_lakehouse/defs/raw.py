"""The raw asset factory: one asset per object spec, `sf_raw/sf_<object>`, appending the
object's record versions to `sf_raw_<env>.sf_<object>`.

Two ways to run the same extraction, chosen by `extraction.mode` in the config: in the Dagster
run (`in_process`, the default; the Iceberg IO manager appends), or as the AWS Glue job
`sf-extraction-<env>` launched through Dagster Pipes (`glue`; the job appends itself and
reports the same metadata back).
"""

import datetime as dt
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TableSchema,
    asset,
)

from sf_lakehouse.config import ObjectSpec, Settings
from sf_lakehouse.defs import OWNERS, SALESFORCE_RAW_GROUP, freshness_policy
from sf_lakehouse.defs.jobs import EXTRACTION, EXTRACTION_TAG
from sf_lakehouse.defs.pools import raw_pool
from sf_lakehouse.extraction import extract_increment, store_increment
from sf_lakehouse.lakehouse.io_manager import column_schema
from sf_lakehouse.lakehouse.resource import LakehouseResource
from sf_lakehouse.lakehouse.tables import RAW_LAYOUT
from sf_lakehouse.salesforce.client import client_policy, connect
from sf_lakehouse.salesforce.deadline import extraction_deadline
from sf_lakehouse.salesforce.resource import SalesforceResource


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
        elif isinstance(value, TableSchema):
            converted[name] = value
        elif isinstance(value, list):
            converted[name] = MetadataValue.json(value)
        else:
            converted[name] = value
    return converted


def build_raw_asset(settings: Settings, spec: ObjectSpec) -> AssetsDefinition:
    """The raw asset of one object: `sf_raw/sf_<object>`, appended to its Iceberg table."""
    identifier = settings.table_identifier(spec.raw_asset_key)
    deletions = " Deleted records are read too (queryAll, IsDeleted)." if spec.deletions else ""
    description = (
        f"Salesforce {spec.api_name} records, one row per extracted version, appended to "
        f"Iceberg table {identifier}. Incremental on {spec.cursor} with a "
        f"{spec.lookback_seconds}s lookback; versions already stored are not appended again."
        f"{deletions}"
    )
    common: dict[str, Any] = {
        "key": list(spec.raw_asset_key),
        "group_name": SALESFORCE_RAW_GROUP,
        "owners": OWNERS,
        "freshness_policy": freshness_policy(spec.freshness.raw),
        # One writer of the raw table at a time (sf_lakehouse.defs.pools).
        "pool": raw_pool(spec),
        # At most extraction.max_parallel_objects of these at once (defs.jobs).
        "op_tags": {EXTRACTION_TAG: EXTRACTION},
        "metadata": {
            **RAW_LAYOUT.as_metadata(),
            "write_mode": "append",
            "iceberg_table": identifier,
            "salesforce_object": spec.api_name,
            "extraction_mode": settings.extraction_mode,
        },
    }
    if settings.extraction_mode == "glue":
        return _glue_raw_asset(settings, spec, description, common)

    @asset(
        **common,
        kinds={"salesforce", "iceberg", "python"},
        description=description,
    )
    def raw_records(
        context: AssetExecutionContext,
        salesforce: SalesforceResource,
        lakehouse: LakehouseResource,
    ) -> MaterializeResult:
        # The environment's timeouts, retries and API quota guard (`salesforce.*`), and the
        # object's overall deadline from the login on.
        client = connect(
            salesforce.connection_settings().replace(policy=client_policy(settings)),
            deadline=extraction_deadline(spec),
        )
        increment = extract_increment(
            client,
            lakehouse.load_table(spec.raw_asset_key),
            spec,
            run_id=context.run.run_id,
            extracted_at=dt.datetime.now(dt.UTC),
        )
        context.log.info(increment.summary())
        metadata = increment.metadata(client.api_usage)
        # Rejects, a type change's column, then the rows with the run's watermark (the same
        # write as the Glue job's).
        stored = store_increment(
            lakehouse.catalog(), identifier, settings.raw_database, spec, increment
        )
        for warning in stored.warnings:
            context.log.warning(warning)
        if stored.rejects_table is not None:
            metadata["rejects_table"] = stored.rejects_table
        table = lakehouse.load_table(spec.raw_asset_key)
        if table is not None:
            snapshot = table.current_snapshot()
            metadata["dagster/column_schema"] = column_schema(table)
            metadata["snapshot_id"] = str(snapshot.snapshot_id) if snapshot else "none"
        metadata["rows_written"] = stored.appended
        return MaterializeResult(metadata=dagster_metadata(metadata))

    return raw_records


def _glue_raw_asset(
    settings: Settings, spec: ObjectSpec, description: str, common: dict[str, Any]
) -> AssetsDefinition:
    aws = settings.require_aws()

    # The Pipes client is asked for by key, not by a typed parameter: a type would make every
    # process import dagster-aws (0.7 s), local runs included.
    @asset(
        **common,
        kinds={"salesforce", "iceberg", "glue"},
        description=f"{description} Runs as the AWS Glue job {aws.glue_job_name}.",
        required_resource_keys={"pipes_glue"},
    )
    def raw_records(context: AssetExecutionContext) -> MaterializeResult:
        invocation = context.resources.pipes_glue.run(
            context=context,
            start_job_run_params={
                "JobName": aws.glue_job_name,
                "Arguments": {
                    "--SF_LAKEHOUSE_ENV": settings.environment,
                    "--SF_OBJECT": spec.api_name,
                },
            },
        )
        return invocation.get_materialize_result()

    return raw_records
