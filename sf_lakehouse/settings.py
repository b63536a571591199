"""The one place where the environment is resolved.

`SF_LAKEHOUSE_ENV` (default `local`) picks an entry of `config/pipeline-config.yml`; everything
else (database names, dbt target, catalog, Salesforce field list) is derived from it here. Nothing
reads the environment at import time: callers ask for `resolve_settings()` when they need it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

ENV_VAR = "SF_LAKEHOUSE_ENV"
HOME_VAR = "SF_LAKEHOUSE_HOME"
CONFIG_VAR = "SF_LAKEHOUSE_CONFIG"
DEFAULT_ENVIRONMENT = "local"

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "config" / "pipeline-config.yml"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names it and says how to fix it."""


@dataclass(frozen=True)
class SalesforceSettings:
    object_name: str
    api_version: str
    fields: tuple[str, ...]
    cursor_field: str
    lookback_seconds: int
    page_size: int
    auth_source: str
    secret_id: str | None


@dataclass(frozen=True)
class ScheduleSettings:
    cron: str
    timezone: str


@dataclass(frozen=True)
class FreshnessWindow:
    warn_after_minutes: int
    fail_after_minutes: int


@dataclass(frozen=True)
class MaintenanceSettings:
    snapshot_retention_hours: int
    min_snapshots_to_keep: int
    orphan_file_min_age_hours: int
    compact_when_data_files_exceed: int


@dataclass(frozen=True)
class OperationsSettings:
    """Schedules, sensors, freshness windows, maintenance and alerting of one environment."""

    pipeline_schedule: ScheduleSettings
    maintenance_schedule: ScheduleSettings
    change_sensor_interval_seconds: int
    freshness_sensor_interval_seconds: int
    raw_freshness: FreshnessWindow
    dimension_freshness: FreshnessWindow
    maintenance: MaintenanceSettings
    alerts_directory: str
    webserver_url: str


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
        return f"sf-user-extraction-{self.environment}"

    @property
    def athena_results_location(self) -> str:
        return f"s3://{self.bucket('athena-results')}/"

    @property
    def glue_script_location(self) -> str:
        return f"s3://{self.bucket('scripts')}/glue/sf_user_extraction.py"


BUCKET_KINDS = ("raw", "staging", "scripts", "athena-results")


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one environment."""

    environment: str
    home: Path
    raw_database: str
    curated_database: str
    raw_table: str
    dimension_table: str
    dbt_target: str
    catalog: dict[str, Any]
    salesforce: SalesforceSettings
    tracked_fields: tuple[str, ...]
    operations: OperationsSettings
    extraction_mode: str = "in_process"
    aws: AwsSettings | None = None

    @property
    def is_local(self) -> bool:
        return self.environment == "local"

    def require_aws(self) -> AwsSettings:
        if self.aws is None:
            raise ConfigError(
                f"environment {self.environment!r} has no aws section in "
                "config/pipeline-config.yml (region, athena_workgroup, bucket_prefix)"
            )
        return self.aws

    def dbt_vars(self) -> dict[str, str]:
        """The `--vars` of every dbt invocation, so dbt and Python agree on names and places."""
        variables = {
            "lakehouse_home": str(self.home),
            "raw_database": self.raw_database,
            "curated_database": self.curated_database,
            "raw_table": self.raw_table,
        }
        if self.aws is not None:
            variables |= {
                "aws_region": self.aws.region,
                "athena_workgroup": self.aws.athena_workgroup,
                "s3_staging_dir": self.aws.athena_results_location + "dbt/",
                "s3_data_dir": f"s3://{self.aws.bucket('staging')}/",
            }
        return variables

    def database_location(self, database: str) -> str:
        """Where a Glue database keeps its tables: raw in the raw bucket, curated in staging."""
        aws = self.require_aws()
        kind = "raw" if database == self.raw_database else "staging"
        return f"s3://{aws.bucket(kind)}/{database}"

    @property
    def raw_table_identifier(self) -> str:
        return f"{self.raw_database}.{self.raw_table}"

    @property
    def dimension_identifier(self) -> str:
        return f"{self.curated_database}.{self.dimension_table}"

    @cached_property
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
        return self.home / self.operations.alerts_directory

    def catalog_properties(self) -> dict[str, str]:
        """pyiceberg `load_catalog` properties for this environment."""
        catalog_type = self.catalog.get("type")
        if catalog_type == "sql":
            return {
                "type": "sql",
                "uri": f"sqlite:///{self.catalog_db_path}",
                "warehouse": self.warehouse_dir.as_uri(),
            }
        if catalog_type == "glue":
            region = str(self.require_aws().region)
            properties = {"type": "glue", "glue.region": region, "s3.region": region}
            # boto3 honours AWS_ENDPOINT_URL(_GLUE) itself; pyiceberg's S3 file IO needs it
            # spelled out (a moto server or a VPC endpoint).
            glue_endpoint = os.environ.get("AWS_ENDPOINT_URL_GLUE") or os.environ.get(
                "AWS_ENDPOINT_URL"
            )
            s3_endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
                "AWS_ENDPOINT_URL"
            )
            if glue_endpoint:
                properties["glue.endpoint"] = glue_endpoint
            if s3_endpoint:
                properties["s3.endpoint"] = s3_endpoint
                properties["s3.force-virtual-addressing"] = "false"
            return properties
        raise ConfigError(
            f"environments.{self.environment}.catalog.type is {catalog_type!r}; "
            "use 'sql' (local) or 'glue' (AWS) in config/pipeline-config.yml"
        )


def _require(mapping: dict[str, Any], key: str, where: str) -> Any:
    if key not in mapping or mapping[key] in (None, ""):
        raise ConfigError(f"missing setting {where}.{key} in config/pipeline-config.yml")
    return mapping[key]


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _schedule(section: dict[str, Any], name: str, where: str) -> ScheduleSettings:
    entry = _require(section, name, where)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    timezone = _require(entry, "timezone", f"{where}.{name}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}.{name}.timezone {timezone!r} is not an IANA time zone (e.g. UTC, "
            "Europe/Dublin)"
        ) from None
    return ScheduleSettings(cron=_require(entry, "cron", f"{where}.{name}"), timezone=timezone)


def _freshness(section: dict[str, Any], name: str, where: str) -> FreshnessWindow:
    entry = _require(section, name, where)
    window = FreshnessWindow(
        warn_after_minutes=int(_require(entry, "warn_after_minutes", f"{where}.{name}")),
        fail_after_minutes=int(_require(entry, "fail_after_minutes", f"{where}.{name}")),
    )
    if not 0 < window.warn_after_minutes < window.fail_after_minutes:
        raise ConfigError(
            f"{where}.{name}: warn_after_minutes must be positive and below fail_after_minutes"
        )
    return window


def _operations(merged: dict[str, Any], where: str) -> OperationsSettings:
    schedules = _require(merged, "schedules", where)
    sensors = _require(merged, "sensors", where)
    freshness = _require(merged, "freshness", where)
    maintenance = _require(merged, "maintenance", where)
    alerts = _require(merged, "alerts", where)
    m_where = f"{where}.maintenance"
    return OperationsSettings(
        pipeline_schedule=_schedule(schedules, "pipeline", f"{where}.schedules"),
        maintenance_schedule=_schedule(schedules, "maintenance", f"{where}.schedules"),
        change_sensor_interval_seconds=int(
            _require(sensors, "salesforce_change_interval_seconds", f"{where}.sensors")
        ),
        freshness_sensor_interval_seconds=int(
            _require(sensors, "freshness_interval_seconds", f"{where}.sensors")
        ),
        raw_freshness=_freshness(freshness, "raw", f"{where}.freshness"),
        dimension_freshness=_freshness(freshness, "dimension", f"{where}.freshness"),
        maintenance=MaintenanceSettings(
            snapshot_retention_hours=int(
                _require(maintenance, "snapshot_retention_hours", m_where)
            ),
            min_snapshots_to_keep=int(_require(maintenance, "min_snapshots_to_keep", m_where)),
            orphan_file_min_age_hours=int(
                _require(maintenance, "orphan_file_min_age_hours", m_where)
            ),
            compact_when_data_files_exceed=int(
                _require(maintenance, "compact_when_data_files_exceed", m_where)
            ),
        ),
        alerts_directory=_require(alerts, "directory", f"{where}.alerts"),
        webserver_url=str(_require(alerts, "webserver_url", f"{where}.alerts")).rstrip("/"),
    )


def load_config(path: Path | None = None) -> dict[str, Any]:
    config_path = path or Path(os.environ.get(CONFIG_VAR) or DEFAULT_CONFIG_PATH)
    if not config_path.is_file():
        raise ConfigError(f"pipeline config {config_path} does not exist; set {CONFIG_VAR}")
    with config_path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def resolve_settings(
    environment: str | None = None,
    *,
    home: Path | str | None = None,
    config: dict[str, Any] | None = None,
) -> Settings:
    """Resolve one environment's settings; arguments win over the process environment."""
    env_name = environment or os.environ.get(ENV_VAR) or DEFAULT_ENVIRONMENT
    raw_config = config if config is not None else load_config()
    environments = raw_config.get("environments") or {}
    if env_name not in environments:
        known = ", ".join(sorted(environments)) or "none"
        raise ConfigError(
            f"unknown environment {env_name!r} in {ENV_VAR}; known environments: {known}"
        )
    merged = _merge(raw_config.get("defaults") or {}, environments[env_name] or {})
    where = f"environments.{env_name}"

    salesforce = _require(merged, "salesforce", where)
    auth = merged.get("salesforce_auth") or {}
    cursor_field = _require(salesforce, "cursor_field", f"{where}.salesforce")
    if cursor_field not in ("SystemModstamp", "LastModifiedDate"):
        raise ConfigError(
            f"{where}.salesforce.cursor_field is {cursor_field!r}; "
            "use SystemModstamp or LastModifiedDate"
        )
    fields = tuple(_require(salesforce, "fields", f"{where}.salesforce"))
    for needed in ("Id", "SystemModstamp", cursor_field):
        if needed not in fields:
            raise ConfigError(f"{where}.salesforce.fields must include {needed}")
    databases = _require(merged, "databases", where)
    tables = _require(merged, "tables", where)
    scd = _require(merged, "scd", where)

    home_path = Path(home or os.environ.get(HOME_VAR) or ".lakehouse").expanduser().resolve()
    return Settings(
        environment=env_name,
        home=home_path,
        raw_database=_require(databases, "raw", f"{where}.databases"),
        curated_database=_require(databases, "curated", f"{where}.databases"),
        raw_table=_require(tables, "raw_table", f"{where}.tables"),
        dimension_table=_require(tables, "dimension_table", f"{where}.tables"),
        dbt_target=_require(merged, "dbt_target", where),
        catalog=_require(merged, "catalog", where),
        salesforce=SalesforceSettings(
            object_name=_require(salesforce, "object", f"{where}.salesforce"),
            api_version=str(_require(salesforce, "api_version", f"{where}.salesforce")),
            fields=fields,
            cursor_field=cursor_field,
            lookback_seconds=int(_require(salesforce, "lookback_seconds", f"{where}.salesforce")),
            page_size=int(_require(salesforce, "page_size", f"{where}.salesforce")),
            auth_source=auth.get("source", "environment"),
            secret_id=auth.get("secret_id"),
        ),
        tracked_fields=tuple(_require(scd, "tracked_fields", f"{where}.scd")),
        operations=_operations(merged, where),
        extraction_mode=_extraction_mode(merged, where),
        aws=_aws(merged, env_name, where),
    )


def _extraction_mode(merged: dict[str, Any], where: str) -> str:
    mode = (merged.get("extraction") or {}).get("mode", "in_process")
    if mode not in ("in_process", "glue"):
        raise ConfigError(f"{where}.extraction.mode is {mode!r}; use in_process or glue")
    return mode


def _aws(merged: dict[str, Any], env_name: str, where: str) -> AwsSettings | None:
    if (merged.get("catalog") or {}).get("type") != "glue":
        return None
    aws = _require(merged, "aws", where)
    return AwsSettings(
        environment=env_name,
        region=_require(aws, "region", f"{where}.aws"),
        bucket_prefix=_require(merged, "bucket_prefix", where),
        athena_workgroup=_require(aws, "athena_workgroup", f"{where}.aws"),
    )
