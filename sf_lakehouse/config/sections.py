"""The sections of one environment in `config/pipeline-config.yml` (pydantic models): schedules,
sensors, maintenance, extraction, the Salesforce API and its credentials, the catalog and
databases, AWS; `EnvironmentConfig` is `defaults` merged with the environment's own entry."""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from sf_lakehouse.config.alerts import Alerts, aws_only_problem
from sf_lakehouse.config.errors import StrictModel
from sf_lakehouse.config.names import (
    ATHENA_WORKGROUP,
    AWS_REGION,
    BUCKET_PREFIX,
    IAM_PRINCIPAL_ARN,
    SECRET_ID,
    SECRET_ID_HINT,
    check_name,
)
from sf_lakehouse.config.runtime import RuntimeSection


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
