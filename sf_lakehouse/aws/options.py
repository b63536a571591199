"""Hardening settings of an AWS environment: its `aws` section of pipeline-config.yml
(`AwsSection`, validated with the rest of the configuration)."""

from __future__ import annotations

from sf_lakehouse.config import Settings
from sf_lakehouse.config.sections import AwsSection

HardeningOptions = AwsSection


def hardening_options(settings: Settings) -> HardeningOptions:
    """The environment's `aws` section (retention days, scan cutoff, Lake Formation mode)."""
    settings.require_aws()
    assert settings.config.aws is not None  # require_aws checked it
    return settings.config.aws
