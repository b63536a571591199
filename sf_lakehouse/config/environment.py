"""The one place where the environment is resolved.

`SF_LAKEHOUSE_ENV` (default `local`) picks an entry of `config/pipeline-config.yml`; the object
specs come from `config/objects/` beside it and are shared by every environment. Nothing reads
the process environment at import time: callers ask for `resolve_settings()` when they need it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from sf_lakehouse.config.alerts import Alerts, aws_only_problem
from sf_lakehouse.config.errors import ConfigError, StrictModel, describe_validation_error
from sf_lakehouse.config.names import (
    ATHENA_WORKGROUP,
    AWS_REGION,
    BUCKET_PREFIX,
    ENVIRONMENT_NAME,
    IAM_PRINCIPAL_ARN,
    SECRET_ID,
    SECRET_ID_HINT,
    check_name,
)
from sf_lakehouse.config.objects import (
    CURATED_PREFIX,
    OBJECTS_DIR_NAME,
    RAW_PREFIX,
    ObjectSpec,
    load_object_specs,
)
from sf_lakehouse.config.runtime import (
    MAX_RUNTIME_ENVIRONMENT_NAME,
    RuntimeNames,
    RuntimeSection,
)

ENV_VAR = "SF_LAKEHOUSE_ENV"
HOME_VAR = "SF_LAKEHOUSE_HOME"
CONFIG_VAR = "SF_LAKEHOUSE_CONFIG"
DEFAULT_ENVIRONMENT = "local"

PROJECT_DIR_VAR = "SF_LAKEHOUSE_PROJECT_DIR"

# The source checkout this package was imported from (an editable install, the tests); an
# installed copy (the image) finds `config/` and `dbt_project/` through `project_dir()`.
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DBT_FOLDER = "dbt_project"
CONFIG_FILE = Path("config") / "pipeline-config.yml"
DBT_PROJECT_DIR = REPO_ROOT / DBT_FOLDER
BUCKET_KINDS = ("raw", "staging", "scripts", "athena-results")


# --- the configuration file's sections ---------------------------------------------------------


class ScheduleSettings(StrictModel):
    cron: str = Field(min_length=1)
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError("a cron string has five fields, e.g. '0 * * * *'")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone; use e.g. UTC or Europe/Dublin") from None
        return value


class Schedules(StrictModel):
    pipeline: ScheduleSettings
    maintenance: ScheduleSettings


class Sensors(StrictModel):
    salesforce_change_interval_seconds: int = Field(gt=0)
    freshness_interval_seconds: int = Field(gt=0)


class MaintenanceSettings(StrictModel):
    snapshot_retention_hours: int = Field(ge=0)
    min_snapshots_to_keep: int = Field(ge=1)
    orphan_file_min_age_hours: int = Field(ge=1)
    compact_when_data_files_exceed: int = Field(ge=2)


class Extraction(StrictModel):
    mode: Literal["in_process", "glue"] = "in_process"
    # How many objects a pipeline run launched by Dagster (schedule, UI) extracts at once;
    # each object's own deadline still bounds it (extraction.deadline_seconds of its spec).
    max_parallel_objects: int = Field(default=4, ge=1, le=64)


class SalesforceApi(StrictModel):
    api_version: str = Field(pattern=r"^\d+\.\d$")
    # Every HTTP call (login, query, describe, Bulk) gives up after this many seconds of silence.
    timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    # Transient failures (resets, timeouts, 5xx, rate limits) are retried this many times.
    max_retries: int = Field(default=5, ge=0, le=20)
    retry_base_seconds: float = Field(default=1.0, gt=0, le=600)
    retry_max_seconds: float = Field(default=60.0, gt=0, le=3600)
    # REQUEST_LIMIT_EXCEEDED backs off from this instead of retry_base_seconds.
    rate_limit_retry_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Stop a run before the org's daily API usage passes this share of its limit.
    max_api_usage_share: float = Field(default=0.9, gt=0, le=1)
    # Bulk API 2.0 jobs: poll at most this far apart, abort and fail after this long.
    bulk_poll_seconds: float = Field(default=2.0, gt=0, le=60)
    bulk_max_wait_seconds: float = Field(default=1800.0, gt=0, le=86400)

    @field_validator("api_version", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @model_validator(mode="after")
    def _ordered(self) -> SalesforceApi:
        if self.retry_max_seconds < self.retry_base_seconds:
            raise ValueError("retry_max_seconds must be at least retry_base_seconds")
        return self


class SalesforceAuth(StrictModel):
    source: Literal["environment", "secretsmanager"] = "environment"
    secret_id: str | None = None

    @field_validator("secret_id")
    @classmethod
    def _secret_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_name(value, SECRET_ID, SECRET_ID_HINT)

    @model_validator(mode="after")
    def _secret(self) -> SalesforceAuth:
        if self.source == "secretsmanager" and not self.secret_id:
            raise ValueError("source secretsmanager needs secret_id (salesforce/<env>/credentials)")
        return self


class CatalogSection(StrictModel):
    type: Literal["sql", "glue"]


class Databases(StrictModel):
    raw: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    curated: str = Field(pattern=r"^[a-z][a-z0-9_]*$")


class AwsSection(StrictModel):
    """An AWS environment's region and workgroup, and how deploy hardens its resources."""

    region: str = Field(min_length=1)
    athena_workgroup: str = Field(min_length=1)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return check_name(value, AWS_REGION, "an AWS region looks like eu-west-1")

    @field_validator("athena_workgroup")
    @classmethod
    def _workgroup(cls, value: str) -> str:
        return check_name(
            value, ATHENA_WORKGROUP, "a workgroup name is letters, digits and ._- (1-128)"
        )

    athena_results_expiration_days: int = Field(default=30, ge=1)
    # Athena's smallest per-query data usage control is 10 MB.
    athena_bytes_scanned_cutoff_per_query: int = Field(default=10 * 1024**3, ge=10_000_000)
    noncurrent_version_expiration_days: int = Field(default=30, ge=1)
    abort_incomplete_multipart_upload_days: int = Field(default=7, ge=1)
    # True when the account enforces Lake Formation permissions: deploy then grants them.
    lake_formation: bool = False
    pipeline_principal_arn: str | None = Field(
        default=None,
        pattern=IAM_PRINCIPAL_ARN,
        description="The IAM role or user that runs Dagster (Lake Formation grants)",
    )


class DbtSection(StrictModel):
    """How a run invokes dbt: in the step's own process (dbt-core's dbtRunner, no start-up of
    its own) or as dagster-dbt's `dbt` subprocess. Unset: in_process on DuckDB (a `sql`
    catalog), subprocess on Athena (docs/design.md says why)."""

    invocation: Literal["in_process", "subprocess"] | None = None


class EnvironmentConfig(StrictModel):
    """One environment: the `defaults` section merged with its own entry."""

    catalog: CatalogSection
    databases: Databases
    dbt_target: str
    dbt: DbtSection = DbtSection()
    salesforce: SalesforceApi
    salesforce_auth: SalesforceAuth = SalesforceAuth()
    schedules: Schedules
    sensors: Sensors
    maintenance: MaintenanceSettings
    extraction: Extraction = Extraction()
    alerts: Alerts
    bucket_prefix: str | None = None
    aws: AwsSection | None = None
    # The production Dagster runtime on ECS (sf_lakehouse/config/runtime.py); AWS environments.
    runtime: RuntimeSection | None = None

    @field_validator("bucket_prefix")
    @classmethod
    def _bucket_prefix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_name(
            value,
            BUCKET_PREFIX,
            "a bucket prefix is 3-48 lowercase letters, digits and hyphens, starting and "
            "ending with a letter or digit",
        )

    @model_validator(mode="after")
    def _aws_when_glue(self) -> EnvironmentConfig:
        if self.catalog.type == "glue" and (self.aws is None or not self.bucket_prefix):
            raise ValueError(
                "a glue catalog needs an aws section (region, athena_workgroup) and bucket_prefix"
            )
        problem = aws_only_problem(self.alerts, self.aws is not None)
        if problem:
            raise ValueError(problem)
        return self


# --- resolved settings -------------------------------------------------------------------------


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


# --- loading ---------------------------------------------------------------------------------


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def project_dir() -> Path:
    """Where `config/` and `dbt_project/` are: `SF_LAKEHOUSE_PROJECT_DIR` (the image sets it),
    else the source checkout this package runs from."""
    configured = os.environ.get(PROJECT_DIR_VAR)
    root = Path(configured).expanduser().resolve() if configured else REPO_ROOT
    if not (root / DBT_FOLDER / "dbt_project.yml").is_file():
        where = f"{PROJECT_DIR_VAR}={configured}" if configured else f"the package's folder {root}"
        raise ConfigError(
            f"no dbt_project/ in {where}: this is an installed copy of sf_lakehouse; set "
            f"{PROJECT_DIR_VAR} to the folder holding config/ and dbt_project/ (the image sets it)"
        )
    return root


def dbt_project_dir() -> Path:
    """The dbt project the definitions and runs use (`<project dir>/dbt_project`)."""
    return project_dir() / DBT_FOLDER


def config_path_from_environment() -> Path:
    configured = os.environ.get(CONFIG_VAR)
    if configured:
        return Path(configured)
    return project_dir() / CONFIG_FILE


def load_config(path: Path | None = None) -> dict[str, Any]:
    config_path = path or config_path_from_environment()
    if not config_path.is_file():
        raise ConfigError(f"pipeline config {config_path} does not exist; set {CONFIG_VAR}")
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark is not None else ""
        raise ConfigError(
            f"{config_path}:{line} is not valid YAML ({getattr(error, 'problem', error)}); "
            "fix the syntax"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{config_path}: expected sections `defaults` and `environments`")
    unknown = sorted(set(data) - {"defaults", "environments"})
    if unknown:
        raise ConfigError(
            f"{config_path}: unknown top-level key {unknown[0]!r}; use defaults and environments"
        )
    return data


def environment_names(config: dict[str, Any]) -> list[str]:
    return sorted((config.get("environments") or {}).keys())


def resolve_settings(
    environment: str | None = None,
    *,
    home: Path | str | None = None,
    config: dict[str, Any] | None = None,
    objects: Sequence[ObjectSpec] | None = None,
) -> Settings:
    """Resolve one environment's settings; arguments win over the process environment."""
    env_name = environment or os.environ.get(ENV_VAR) or DEFAULT_ENVIRONMENT
    config_path = config_path_from_environment()
    raw_config = config if config is not None else load_config(config_path)
    environments = raw_config.get("environments") or {}
    if env_name not in environments:
        known = ", ".join(environment_names(raw_config)) or "none"
        raise ConfigError(
            f"unknown environment {env_name!r} (from {ENV_VAR} or --environment); "
            f"known environments in {config_path}: {known}"
        )
    try:
        check_name(env_name, ENVIRONMENT_NAME, "an environment name is")
    except ValueError:
        raise ConfigError(
            f"{config_path}: environment name {env_name[:40]!r} is not valid: use 1-32 lowercase "
            "letters, digits, _ and -, starting with a letter (it names roles, jobs and paths)"
        ) from None
    merged = _merge(raw_config.get("defaults") or {}, environments[env_name] or {})
    try:
        env_config = EnvironmentConfig.model_validate(merged)
    except ValidationError as error:
        raise ConfigError(
            describe_validation_error(
                error, config_path, f"environments.{env_name}", EnvironmentConfig
            )
        ) from None
    specs = (
        tuple(objects)
        if objects is not None
        else load_object_specs(config_path.parent / OBJECTS_DIR_NAME)
    )
    home_path = Path(home or os.environ.get(HOME_VAR) or ".lakehouse").expanduser().resolve()
    return Settings(
        environment=env_name,
        home=home_path,
        config=env_config,
        objects=specs,
        config_path=config_path,
    )
