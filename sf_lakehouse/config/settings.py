"""`Settings`: one environment resolved (its sections, its home, the object specs), and the names
and places derived from it: databases, table identifiers, dbt's vars, local paths, the catalog's
properties, the names of its AWS resources."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sf_lakehouse.config.errors import ConfigError
from sf_lakehouse.config.objects import CURATED_PREFIX, RAW_PREFIX, ObjectSpec
from sf_lakehouse.config.runtime import (
    MAX_RUNTIME_ENVIRONMENT_NAME,
    RuntimeNames,
    RuntimeSection,
)
from sf_lakehouse.config.sections import EnvironmentConfig, SalesforceAuth

BUCKET_KINDS = ("raw", "staging", "scripts", "athena-results")


@dataclass(frozen=True)
class AwsSettings:
    """Names of one AWS environment's resources, derived from the naming conventions."""

    environment: str
    region: str
    bucket_prefix: str
    athena_workgroup: str

    def bucket(self, kind: str) -> str:
        """`lumata-lakehouse-<env>-raw|staging|scripts|athena-results`."""
        if kind not in BUCKET_KINDS:
            raise ValueError(f"unknown bucket kind {kind!r}; use one of {BUCKET_KINDS}")
        return f"{self.bucket_prefix}-{kind}"

    @property
    def glue_role_name(self) -> str:
        return f"GlueServiceRole-{self.environment}"

    @property
    def glue_job_name(self) -> str:
        return f"sf-extraction-{self.environment}"

    @property
    def athena_results_location(self) -> str:
        return f"s3://{self.bucket('athena-results')}/"

    @property
    def glue_script_location(self) -> str:
        return f"s3://{self.bucket('scripts')}/glue/sf_extraction.py"


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one environment, with the object specs every environment shares."""

    environment: str
    home: Path
    config: EnvironmentConfig
    objects: tuple[ObjectSpec, ...]
    config_path: Path

    # --- plain views of the configuration ---

    @property
    def raw_database(self) -> str:
        return self.config.databases.raw

    @property
    def curated_database(self) -> str:
        return self.config.databases.curated

    @property
    def dbt_target(self) -> str:
        return self.config.dbt_target

    @property
    def dbt_invocation(self) -> str:
        """`dbt.invocation`, or its default for the environment's engine (DbtSection)."""
        chosen = self.config.dbt.invocation
        if chosen is not None:
            return chosen
        return "in_process" if self.config.catalog.type == "sql" else "subprocess"

    @property
    def api_version(self) -> str:
        return self.config.salesforce.api_version

    @property
    def auth(self) -> SalesforceAuth:
        return self.config.salesforce_auth

    @property
    def extraction_mode(self) -> str:
        return self.config.extraction.mode

    @property
    def is_local(self) -> bool:
        return self.environment == "local"

    @property
    def aws(self) -> AwsSettings | None:
        if self.config.aws is None or not self.config.bucket_prefix:
            return None
        return AwsSettings(
            environment=self.environment,
            region=self.config.aws.region,
            bucket_prefix=self.config.bucket_prefix,
            athena_workgroup=self.config.aws.athena_workgroup,
        )

    @property
    def runtime(self) -> RuntimeSection | None:
        return self.config.runtime if self.aws is not None else None

    def require_runtime(self) -> tuple[RuntimeSection, RuntimeNames]:
        """The runtime section of an AWS environment and its names, or one line saying why not."""
        self.require_aws()
        runtime = self.runtime
        if runtime is None:
            raise ConfigError(
                f"{self.config_path}: environments.{self.environment} has no runtime section "
                "(subnets, webserver, postgres); add one (see README 'In production')"
            )
        if len(self.environment) > MAX_RUNTIME_ENVIRONMENT_NAME:
            raise ConfigError(
                f"{self.config_path}: environment name {self.environment!r} is longer than "
                f"{MAX_RUNTIME_ENVIRONMENT_NAME} characters, too long for the names of its ECS "
                "run task definitions; use a shorter name"
            )
        return runtime, RuntimeNames(self.environment)

    def require_aws(self) -> AwsSettings:
        aws = self.aws
        if aws is None:
            raise ConfigError(
                f"{self.config_path}: environments.{self.environment} has no aws section "
                "(region, athena_workgroup) and bucket_prefix; add them"
            )
        return aws

    # --- objects and tables ---

    def object(self, name: str) -> ObjectSpec:
        """An object spec by API name (`User`) or snake name (`user`)."""
        for spec in self.objects:
            if name in (spec.api_name, spec.name):
                return spec
        known = ", ".join(s.api_name for s in self.objects)
        raise ConfigError(f"no object spec {name!r}; known objects: {known}")

    def database_for(self, key_prefix: str) -> str:
        """Asset keys are environment-free (`sf_raw/sf_user`); tables live in `<prefix>_<env>`."""
        databases = {RAW_PREFIX: self.raw_database, CURATED_PREFIX: self.curated_database}
        if key_prefix not in databases:
            raise ValueError(
                f"no database for asset key prefix {key_prefix!r}; use one of {sorted(databases)}"
            )
        return databases[key_prefix]

    def table_identifier(self, asset_key: Sequence[str]) -> str:
        """`<database>.<table>` of an asset: the key is the one source of the table name."""
        return table_identifier(asset_key, self.raw_database, self.curated_database)

    def dbt_vars(self) -> dict[str, str]:
        """The `--vars` of every dbt invocation, so dbt and Python agree on names and places."""
        variables = {
            "lakehouse_home": str(self.home),
            "raw_database": self.raw_database,
            "curated_database": self.curated_database,
        }
        aws = self.aws
        if aws is not None:
            variables |= {
                "aws_region": aws.region,
                "athena_workgroup": aws.athena_workgroup,
                "s3_staging_dir": aws.athena_results_location + "dbt/",
                "s3_data_dir": f"s3://{aws.bucket('staging')}/",
            }
        return variables

    def database_location(self, database: str) -> str:
        """Where a Glue database keeps its tables: raw in the raw bucket, curated in staging."""
        aws = self.require_aws()
        kind = "raw" if database == self.raw_database else "staging"
        return f"s3://{aws.bucket(kind)}/{database}"

    # --- local paths ---

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def catalog_db_path(self) -> Path:
        return self.home / "catalog.db"

    @property
    def duckdb_path(self) -> Path:
        return self.home / "dbt.duckdb"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def alerts_dir(self) -> Path:
        return self.home / self.config.alerts.directory

    def catalog_properties(self) -> dict[str, str]:
        """pyiceberg `load_catalog` properties for this environment."""
        if self.config.catalog.type == "sql":
            return {
                "type": "sql",
                "uri": f"sqlite:///{self.catalog_db_path}",
                "warehouse": self.warehouse_dir.as_uri(),
            }
        region = self.require_aws().region
        properties = {"type": "glue", "glue.region": region, "s3.region": region}
        # boto3 honours AWS_ENDPOINT_URL(_GLUE) itself; pyiceberg's S3 file IO needs it spelled
        # out (a moto server or a VPC endpoint).
        glue_endpoint = os.environ.get("AWS_ENDPOINT_URL_GLUE") or os.environ.get(
            "AWS_ENDPOINT_URL"
        )
        s3_endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if glue_endpoint:
            properties["glue.endpoint"] = glue_endpoint
        if s3_endpoint:
            properties["s3.endpoint"] = s3_endpoint
            properties["s3.force-virtual-addressing"] = "false"
        return properties


def table_identifier(asset_key: Sequence[str], raw_database: str, curated_database: str) -> str:
    key = list(asset_key)
    databases = {RAW_PREFIX: raw_database, CURATED_PREFIX: curated_database}
    if len(key) != 2 or key[0] not in databases:
        raise ValueError(f"asset key {key} is not [sf_raw|sf_curated, <table>]")
    return f"{databases[key[0]]}.{key[1]}"
