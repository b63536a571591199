"""Hardening settings of an AWS environment, read from its `aws` section with defaults.

They are proposed as fields of `AwsSection` in `sf_lakehouse/config/environment.py` (YAML keys
under `environments.<env>.aws`); until that model has them, the defaults here apply, and once it
has them, the configured values are read through the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from sf_lakehouse.config import ConfigError, Settings

GIB = 1024**3
# Athena's smallest per-query data usage control.
MIN_BYTES_SCANNED_CUTOFF = 10_000_000


@dataclass(frozen=True)
class HardeningOptions:
    athena_results_expiration_days: int = 30
    athena_bytes_scanned_cutoff_per_query: int = 10 * GIB
    noncurrent_version_expiration_days: int = 30
    abort_incomplete_multipart_upload_days: int = 7
    lake_formation: bool = False
    pipeline_principal_arn: str | None = None


def hardening_options(settings: Settings) -> HardeningOptions:
    """The environment's values (`aws.<name>` in pipeline-config.yml) or the defaults."""
    section = settings.config.aws
    defaults = HardeningOptions()
    values = {
        name: getattr(section, name, getattr(defaults, name))
        for name in HardeningOptions.__dataclass_fields__
    }
    options = HardeningOptions(**values)
    where = f"environments.{settings.environment}.aws"
    for name in (
        "athena_results_expiration_days",
        "noncurrent_version_expiration_days",
        "abort_incomplete_multipart_upload_days",
    ):
        value = getattr(options, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}.{name} is {value!r}; use a whole number of days >= 1")
    cutoff = options.athena_bytes_scanned_cutoff_per_query
    if not isinstance(cutoff, int) or cutoff < MIN_BYTES_SCANNED_CUTOFF:
        raise ConfigError(
            f"{where}.athena_bytes_scanned_cutoff_per_query is {cutoff!r}; use bytes >= "
            f"{MIN_BYTES_SCANNED_CUTOFF} (Athena's minimum)"
        )
    principal = options.pipeline_principal_arn
    if principal is not None and not str(principal).startswith("arn:aws:iam::"):
        raise ConfigError(
            f"{where}.pipeline_principal_arn is {principal!r}; use the IAM role or user ARN "
            "that runs Dagster (arn:aws:iam::<account>:role/<name>)"
        )
    return options
