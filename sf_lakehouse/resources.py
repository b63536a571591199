"""Dagster resources: the Iceberg catalog, the Iceberg IO manager, and the per-environment set.

`build_resources(settings)` is the one place where an environment becomes resources.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
from dagster import (
    ConfigurableIOManager,
    ConfigurableResource,
    EnvVar,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)
from dagster_dbt import DbtCliResource
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from sf_lakehouse.lakehouse import (
    TableLayout,
    append_rows,
    ensure_table,
    open_catalog,
    replace_rows,
    scan,
)
from sf_lakehouse.salesforce import SalesforceResource
from sf_lakehouse.settings import DBT_PROJECT_DIR, ConfigError, Settings

# Salesforce resource field -> environment variable (what `sf-lakehouse emulator --env-file`
# writes, and what an operator exports for a real org).
SALESFORCE_ENV_VARS = {
    "auth_method": "SF_AUTH_METHOD",
    "login_url": "SF_LOGIN_URL",
    "domain": "SF_DOMAIN",
    "username": "SF_USERNAME",
    "password": "SF_PASSWORD",
    "security_token": "SF_SECURITY_TOKEN",
    "client_id": "SF_CLIENT_ID",
    "client_secret": "SF_CLIENT_SECRET",
    "session_id": "SF_SESSION_ID",
    "instance_url": "SF_INSTANCE_URL",
    "ca_bundle": "SF_CA_BUNDLE",
    "api_version": "SF_API_VERSION",
}


CONNECTION_FIELDS = {"login_url", "domain", "ca_bundle", "api_version"}


class LakehouseResource(ConfigurableResource):
    """The Iceberg catalog and the names of this environment's databases."""

    environment: str
    catalog_properties: dict[str, str]
    raw_database: str
    curated_database: str
    lakehouse_home: str
    dbt_variables: dict[str, str]

    def catalog(self) -> Catalog:
        return open_catalog(self.catalog_properties)

    def load_table(self, identifier: str) -> Table | None:
        from sf_lakehouse.lakehouse import load_table_or_none

        return load_table_or_none(self.catalog(), identifier)

    def database_for(self, key_prefix: str) -> str:
        """Asset keys are environment-free (`sf_raw/sf_user`); tables live in `<prefix>_<env>`."""
        databases = {"sf_raw": self.raw_database, "sf_curated": self.curated_database}
        if key_prefix not in databases:
            raise ValueError(
                f"no database for asset key prefix {key_prefix!r}; use one of {sorted(databases)}"
            )
        return databases[key_prefix]


class IcebergIOManager(ConfigurableIOManager):
    """Writes Arrow tables to Iceberg as the asset's metadata declares.

    Asset metadata: `partition_spec` and `table_properties` (see `TableLayout`), and
    `write_mode`: `append` (schema evolves by adding columns, never dropping them) or `replace`.
    Written instead of dagster-iceberg's PyArrowIcebergIOManager because that one derives the
    partition spec only from Dagster partitions (it removes a `day(_extracted_at)` spec from an
    unpartitioned asset) and its schema update drops columns missing from a batch, which would
    lose history in an append-only table.
    """

    lakehouse: LakehouseResource

    def _identifier(self, asset_key_path: list[str]) -> str:
        if len(asset_key_path) != 2:
            raise ValueError(f"asset key {asset_key_path} must be [<database prefix>, <table>]")
        return f"{self.lakehouse.database_for(asset_key_path[0])}.{asset_key_path[1]}"

    def handle_output(self, context: OutputContext, obj: pa.Table) -> None:
        metadata = context.definition_metadata or {}
        identifier = self._identifier(list(context.asset_key.path))
        layout = TableLayout.from_metadata(metadata)
        write_mode = metadata.get("write_mode", "append")
        catalog = self.lakehouse.catalog()
        table = ensure_table(catalog, identifier, obj.schema, layout)
        if write_mode == "append":
            written = append_rows(table, obj)
        elif write_mode == "replace":
            written = replace_rows(table, obj)
        else:
            raise ValueError(f"write_mode {write_mode!r} of {identifier}: use append or replace")
        table = catalog.load_table(identifier)
        snapshot = table.current_snapshot()
        summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
        context.add_output_metadata(
            {
                "dagster/column_schema": TableSchema(
                    columns=[
                        TableColumn(name=f.name, type=str(f.field_type))
                        for f in table.schema().fields
                    ]
                ),
                "iceberg_table": identifier,
                "rows_written": written,
                "table_rows": int(summary.get("total-records", 0)),
                "snapshot_id": str(snapshot.snapshot_id) if snapshot else "none",
                "metadata_location": MetadataValue.path(table.metadata_location),
            }
        )

    def load_input(self, context: InputContext) -> pa.Table:
        identifier = self._identifier(list(context.asset_key.path))
        table = self.lakehouse.load_table(identifier)
        if table is None:
            raise ValueError(f"Iceberg table {identifier} does not exist yet; materialize it first")
        return scan(table)


def salesforce_from_environment(settings: Settings) -> SalesforceResource:
    """Salesforce resource wired to the SF_* variables that are set; secrets stay EnvVars so
    their values never reach run config, logs or the UI."""
    config: dict[str, Any] = {"api_version": settings.salesforce.api_version}
    source = settings.salesforce.auth_source
    if source == "secretsmanager":
        if not settings.salesforce.secret_id:
            raise ConfigError(
                f"environments.{settings.environment}.salesforce_auth.secret_id is missing"
            )
        config["secret_id"] = settings.salesforce.secret_id
        config["aws_region"] = settings.require_aws().region
        # Connection settings may still come from the environment; credentials may not.
        allowed = CONNECTION_FIELDS
    elif source == "environment":
        allowed = set(SALESFORCE_ENV_VARS)
    else:
        raise ConfigError(
            f"environments.{settings.environment}.salesforce_auth.source is {source!r}; "
            "use environment or secretsmanager"
        )
    for field_name, var in SALESFORCE_ENV_VARS.items():
        if field_name in allowed and os.environ.get(var):
            config[field_name] = EnvVar(var)
    return SalesforceResource(**config)


def dbt_executable() -> str:
    """The dbt installed next to this interpreter (the venv need not be activated)."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.is_file():
        return str(beside)
    found = shutil.which("dbt")
    if found is None:
        raise FileNotFoundError("dbt is not installed; run `make install`")
    return found


def pipes_glue_client(settings: Settings) -> Any:
    """Launches the Glue job through Dagster Pipes; the run's context and the job's messages
    travel through the scripts bucket. (Creating boto3 clients makes no AWS call.)"""
    import boto3
    from dagster_aws.pipes import PipesGlueClient, PipesS3ContextInjector, PipesS3MessageReader

    aws = settings.require_aws()
    s3 = boto3.client("s3", region_name=aws.region)
    return PipesGlueClient(
        client=boto3.client("glue", region_name=aws.region),
        context_injector=PipesS3ContextInjector(bucket=aws.bucket("scripts"), client=s3),
        message_reader=PipesS3MessageReader(
            bucket=aws.bucket("scripts"), client=s3, interval=1, include_stdio_in_messages=False
        ),
    )


def build_resources(settings: Settings) -> dict[str, Any]:
    lakehouse = LakehouseResource(
        environment=settings.environment,
        catalog_properties=settings.catalog_properties(),
        raw_database=settings.raw_database,
        curated_database=settings.curated_database,
        lakehouse_home=str(settings.home),
        dbt_variables=settings.dbt_vars(),
    )
    resources: dict[str, Any] = {}
    if settings.extraction_mode == "glue":
        resources["pipes_glue"] = pipes_glue_client(settings)
    return resources | {
        "lakehouse": lakehouse,
        "iceberg_io_manager": IcebergIOManager(lakehouse=lakehouse),
        "salesforce": salesforce_from_environment(settings),
        "dbt": DbtCliResource(
            project_dir=str(DBT_PROJECT_DIR),
            profiles_dir=str(DBT_PROJECT_DIR),
            target=settings.dbt_target,
            dbt_executable=dbt_executable(),
        ),
    }


def dbt_vars_arg(lakehouse: LakehouseResource) -> str:
    return json.dumps(lakehouse.dbt_variables, sort_keys=True)
